package plan

import (
	"sort"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/gitlab"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/hostfs"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/table"
)

// FreshIndex maps the entries of the live config as re-read after apply.
func FreshIndex(fresh *hostfs.LiveConfig) map[Ref]hostfs.LiveRunner {
	out := map[Ref]hostfs.LiveRunner{}
	if fresh != nil {
		for _, r := range fresh.Runners {
			if r.ID != 0 {
				key, _ := gitlab.NormalizeURL(r.URL)
				out[Ref{key, r.ID}] = r
			}
		}
	}
	return out
}

// Sections builds the [[runners]] entries to write: declared executors
// (sorted by name) with the credentials they hold after the run, the last
// good entries of executors whose file is invalid in their place among
// them, then entries kept verbatim (removals the plan could not make,
// foreign entries). The
// outcomes are the run's, or the plan's predicted ones (check mode). The
// runner a replace supersedes stays, verbatim, until oldGone says it was
// removed.
func Sections(prev Previous, plan Plan, outcomes []Outcome, fresh *hostfs.LiveConfig, oldGone map[int]bool) []hostfs.Section {
	freshByRef := FreshIndex(fresh)
	// An entry kept verbatim is taken as the file holds it now:
	// gitlab-runner may have rotated its token during the run.
	latest := func(lr hostfs.LiveRunner) *table.Table {
		key, _ := gitlab.NormalizeURL(lr.URL)
		if f, ok := freshByRef[Ref{key, lr.ID}]; ok && lr.ID != 0 {
			return f.Table
		}
		return lr.Table
	}
	var sections []hostfs.Section
	var verbatim []hostfs.Section
	for i, s := range plan.Steps {
		oc := &outcomes[i]
		if s.Held {
			// An executor whose file is invalid: its last good entry, in
			// its place, unless it left the config.
			if !oc.Deleted && s.Prev.Table != nil {
				sections = append(sections, hostfs.Section{Name: s.Prev.Name, Verbatim: latest(*s.Prev)})
			}
			continue
		}
		if s.Executor == nil { // delete, detach, forget
			// A pending removal's runner has no entry (Table) to keep.
			if !oc.Deleted && s.Prev != nil && s.Prev.Table != nil {
				verbatim = append(verbatim, hostfs.Section{Name: s.Prev.Name, Verbatim: latest(*s.Prev)})
			}
			continue
		}
		e := s.Executor
		sec := hostfs.Section{Name: e.Description, URL: e.Client.URL, Executor: e.Type, TLSCAFile: e.Client.TLSCAFile, Keys: e.Keys}
		switch {
		case oc.Creds != nil:
			sec.ID, sec.Token, sec.TokenObtained, sec.TokenExpiresAt = oc.Creds.ID, oc.Creds.Token, oc.Obtained, oc.Creds.ExpiresAt
			if sec.ID == 0 {
				sec.ID = s.ID
			}
			if s.Action == Replace && s.DeleteOld && s.Prev != nil && !oldGone[i] {
				verbatim = append(verbatim, hostfs.Section{Name: s.Prev.Name, Verbatim: latest(*s.Prev)})
			}
		case s.Prev != nil && (s.Action == Keep || s.Action == Update || oc.Err != nil):
			// Kept or updated, or an adopt/replace that failed: the entry on
			// disk stays, so no token is ever dropped.
			p := *s.Prev
			if f, ok := freshByRef[Ref{s.ClientKey, p.ID}]; ok && f.Token != "" && f.Token != p.Token {
				p = f // rotated by gitlab-runner during the run
			} else if s.Verified != nil && s.Verified.Token == p.Token && !hostfs.TOMLTime(s.Verified.ExpiresAt).Equal(hostfs.TOMLTime(p.TokenExpiresAt)) {
				p.TokenExpiresAt = s.Verified.ExpiresAt // gitlab-runner rotates by this date
			}
			sec.ID, sec.Token, sec.TokenObtained, sec.TokenExpiresAt = p.ID, p.Token, p.TokenObtained, p.TokenExpiresAt
			if (s.Action == Keep || s.Action == Update) && s.ID != 0 {
				sec.ID = s.ID
			}
		default:
			continue // failed create: nothing to write, the next run retries
		}
		sections = append(sections, sec)
	}
	for _, f := range prev.Foreign {
		verbatim = append(verbatim, hostfs.Section{Name: f.Name, Verbatim: latest(f)})
	}
	sort.SliceStable(verbatim, func(i, j int) bool { return verbatim[i].Name < verbatim[j].Name })
	return append(sections, verbatim...)
}

// NewState is the state file after the run: each executor's runner and
// the settings GitLab now holds, as far as known.
func NewState(plan Plan, outcomes []Outcome, old *hostfs.State, tokens map[string]hostfs.TokenRecord) *hostfs.State {
	st := &hostfs.State{Version: 1, Runners: map[string]hostfs.StateRunner{}, Tokens: tokens, Namespaces: old.Namespaces}
	for i, s := range plan.Steps {
		if s.Executor == nil {
			// A removal not made keeps its entry, and the record that
			// makes the entry this host's (a description of its own says
			// nothing of whose it is).
			if s.Prev != nil && s.Prev.Table != nil && !outcomes[i].Deleted {
				if o, ok := old.Runners[s.Name]; ok && o.ID == s.Prev.ID {
					st.Runners[s.Name] = o
				}
			}
			continue
		}
		oc := outcomes[i]
		id := oc.ID
		if oc.Creds != nil && oc.Creds.ID != 0 {
			id = oc.Creds.ID
		}
		if oc.Err != nil && oc.Creds == nil && s.Prev != nil {
			// Failed without a new token: the old runner stays, and so
			// does what is known of it.
			if o, ok := old.Runners[s.Name]; ok {
				st.Runners[s.Name] = o
			}
			continue
		}
		if id == 0 {
			continue
		}
		sr := hostfs.StateRunner{ID: id, URL: s.Executor.Client.URL}
		switch {
		case s.Unverified:
			// GitLab was not asked: what was last applied is still all we know.
			if o, ok := old.Runners[s.Name]; ok && o.ID == id {
				sr.Applied = o.Applied
			}
		case oc.Applied != nil:
			a := *oc.Applied
			sr.Applied = &a
		case s.Action == Keep:
			// Kept means GitLab matches what is declared (or it is unknown
			// and cannot be checked without a PAT).
			a := s.Settings
			sr.Applied = &a
		default:
			if o, ok := old.Runners[s.Name]; ok && o.ID == id {
				sr.Applied = o.Applied
			}
		}
		st.Runners[s.Name] = sr
	}
	return st
}

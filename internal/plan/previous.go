package plan

import (
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/config"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/gitlab"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/hostfs"
)

// Previous is the live config matched against the declared executors.
type Previous struct {
	// ByName holds the live entry of each declared executor.
	ByName map[string]*hostfs.LiveRunner
	// Owned are entries of this host and instance that are no longer
	// declared (or moved to another GitLab, or duplicates).
	Owned []OwnedRunner
	// Foreign are entries that do not carry this host's identity: kept
	// verbatim, never touched.
	Foreign []hostfs.LiveRunner
	// Held are the entries of executors declared but not served this run
	// (Desired.Skipped): their last good section, kept verbatim.
	Held []OwnedRunner
}

// OwnedRunner is a live entry of this host and instance that no declared
// executor keeps.
type OwnedRunner struct {
	Name   string
	Runner hostfs.LiveRunner
	// Pending: not in the config, but a removal an earlier run could not
	// finish (State.Pending); Runner.Name is then the description it
	// recorded and SystemID the host's system id it recorded (its proof,
	// with the token).
	Pending  bool
	SystemID string
}

// Ref is the runner an owned entry names.
func (o OwnedRunner) Ref() Ref {
	key, _ := gitlab.NormalizeURL(o.Runner.URL)
	return Ref{key, o.Runner.ID}
}

// MatchPrevious attributes each live [[runners]] entry to a declared
// executor, to this host and instance (no longer declared), or to nobody:
// by the id the state file recorded, by description, then by the default
// description's pattern.
func MatchPrevious(d *config.Desired, live *hostfs.LiveConfig, st *hostfs.State) Previous {
	prev := Previous{ByName: map[string]*hostfs.LiveRunner{}}
	byName := map[string]*config.Executor{}
	byDesc := map[string]string{} // client key + description -> executor name
	for _, e := range d.Executors {
		byName[e.Name] = e
		byDesc[e.Client.Key+"\x00"+e.Description] = e.Name
	}
	byState := map[Ref]string{}
	for sname, sr := range st.Runners {
		byState[Ref{sr.Key(), sr.ID}] = sname
	}
	pat := config.IdentityPattern(d.Hostname, d.Layout.Instance)
	for i := range live.Runners {
		lr := live.Runners[i]
		key, _ := gitlab.NormalizeURL(lr.URL)
		name := ""
		if lr.ID != 0 {
			name = byState[Ref{key, lr.ID}]
		}
		if name == "" {
			name = byDesc[key+"\x00"+lr.Name]
		}
		if name == "" {
			if m := pat.FindStringSubmatch(lr.Name); m != nil {
				name = m[1]
			}
		}
		if name == "" {
			prev.Foreign = append(prev.Foreign, lr)
			continue
		}
		if e := byName[name]; e != nil && e.Client.Key == key && prev.ByName[name] == nil && lr.Token != "" {
			prev.ByName[name] = &live.Runners[i]
			continue
		}
		if d.IsSkipped(name) && byName[name] == nil {
			if !d.Dropped(name) {
				prev.Held = append(prev.Held, OwnedRunner{Name: name, Runner: lr})
			}
			continue
		}
		prev.Owned = append(prev.Owned, OwnedRunner{Name: name, Runner: lr})
	}
	// Removals earlier runs could not finish: their entries left the
	// config, their runners are decided again as undeclared entries.
	inConfig := map[Ref]bool{}
	for _, lr := range live.Runners {
		key, _ := gitlab.NormalizeURL(lr.URL)
		inConfig[Ref{key, lr.ID}] = true
	}
	for _, pr := range st.Pending {
		key, _ := gitlab.NormalizeURL(pr.URL)
		if pr.ID != 0 && inConfig[Ref{key, pr.ID}] {
			continue
		}
		prev.Owned = append(prev.Owned, OwnedRunner{Name: pr.Name, Pending: true, SystemID: pr.SystemID,
			Runner: hostfs.LiveRunner{Name: pr.Description, URL: pr.URL, ID: pr.ID, Token: pr.Token}})
	}
	return prev
}

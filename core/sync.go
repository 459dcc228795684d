package core

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/config"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/gitlab"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/hostfs"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/input"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/table"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/tags"
)

// Planned is a plan together with what the disk held when it was made.
// Check mode shows it (preview); apply carries out exactly this value,
// never a fresh guess.
type Planned struct {
	Plan Plan
	// Degraded: GitLab could not be reached, but every declared executor
	// has a token on disk and nothing needs GitLab (no create, adopt or
	// delete): every step keeps its token unverified, so gitlab-runner can
	// start with what it has and retry GitLab by itself.
	Degraded bool

	desired *config.Desired
	prev    Previous
	state   *hostfs.State
	live    *hostfs.LiveConfig
	// unregister: removing the instance; with nothing left to keep, the
	// config and state file are removed rather than written.
	unregister bool
	// interrupted: the previous run left its marker (see apply).
	interrupted bool
	// tokens: the personal access tokens' records for the state file.
	tokens map[string]hostfs.TokenRecord
}

// Sync runs the whole sync for one instance: plan, then preview (check
// mode) or apply.
func Sync(ctx context.Context, o Options) (*Result, error) {
	return runPlan(ctx, o, (*engine).planSync)
}

// runPlan is every run's shape: start, plan, then preview or apply exactly
// that plan.
func runPlan(ctx context.Context, o Options, plan func(*engine, context.Context) (*Planned, error)) (*Result, error) {
	en, res, err := start(ctx, &o)
	defer en.finish()
	if err != nil {
		return res, err
	}
	p, err := plan(en, ctx)
	if err != nil {
		res.Warnings = en.warnings
		return res, err
	}
	if en.o.Check {
		return en.preview(p, res), nil
	}
	return en.apply(ctx, p, res)
}

// planSync loads what is declared and what the disk holds, observes
// GitLab with read-only requests and builds the plan.
func (en *engine) planSync(ctx context.Context) (*Planned, error) {
	o, l := en.o, en.l
	d, err := config.Load(l, o.Hostname, o.Overlay, o.Secrets, o.prefixMissing())
	if err != nil {
		return nil, err
	}
	if err := config.UniqueDescriptions(d); err != nil {
		return nil, err
	}
	en.warnPlainHTTP(d)
	if err := tags.Compute(ctx, d, o.Tags); err != nil {
		return nil, err
	}
	live, err := hostfs.ReadLiveConfig(l, o.Secrets)
	if err != nil {
		return nil, err
	}
	st, warn, err := hostfs.ReadState(l)
	if err != nil {
		return nil, err
	}
	en.d = d
	if warn != "" {
		en.warn("%s", warn)
	}
	sysID, writeID, err := hostfs.SystemID(l, o.MachineIDPaths)
	if err != nil {
		return nil, err
	}
	if writeID && !o.Check {
		// Persist before any request, so GitLab only ever sees this id.
		if _, err := hostfs.WriteAtomic(l.SystemIDPath(), []byte(sysID+"\n")); err != nil {
			return nil, fmt.Errorf("writing %s: %w", l.SystemIDPath(), err)
		}
	}
	en.systemID = sysID

	prev := matchPrevious(d, live, st)
	for _, f := range prev.Foreign {
		en.warn("config entry %q (id %d) does not carry this host's identity; keeping it as is", f.Name, f.ID)
	}
	p := &Planned{desired: d, prev: prev, state: st, live: live}
	// A marker that outlives a killed or failed run: GitLab may still carry
	// out requests that run sent, so this run settles their effects.
	_, statErr := os.Stat(l.IncompletePath())
	p.interrupted = statErr == nil
	p.tokens = en.checkTokens(ctx, d, st)
	obs, err := en.observe(ctx, prev, st, p.interrupted)
	if err != nil {
		if o.Strict || !gitlab.IsUnreachable(err) || !canStartDegraded(d, prev, obs) {
			return nil, err
		}
		en.warn("GitLab could not be reached (%v); every executor has a token on disk and nothing needs GitLab, so gitlab-runner starts with the tokens it has and retries GitLab by itself (%s fails instead)", err, o.Names(input.Strict))
		p.Plan, p.Degraded = keepUnverified(d, prev), true
		return p, nil
	}
	p.Plan = BuildPlan(d, prev, st, obs)
	for _, n := range p.Plan.Notes {
		en.warn("%s", n)
	}
	return p, nil
}

// loadDeclared loads and checks everything declared for the instance: the
// template, every executor file (or the Overlay's content), descriptions
// and tags. It makes no request and no write.
func loadDeclared(ctx context.Context, o Options, prefixMissing bool) (*config.Desired, error) {
	d, err := config.Load(hostfs.Layout{Prefix: o.Prefix, Instance: o.Instance}, o.Hostname, o.Overlay, o.Secrets, prefixMissing)
	if err != nil {
		return nil, err
	}
	if err := config.UniqueDescriptions(d); err != nil {
		return nil, err
	}
	if err := tags.Compute(ctx, d, o.Tags); err != nil {
		return nil, err
	}
	return d, nil
}

// canStartDegraded: every declared executor has a token on disk, none was
// seen rejected, and no runner waits to be deleted.
func canStartDegraded(d *config.Desired, prev Previous, obs Observation) bool {
	if len(prev.Owned) > 0 {
		return false
	}
	for _, e := range d.Executors {
		if prev.ByName[e.Name] == nil {
			return false
		}
		if v, ok := obs.Verified[e.Name]; ok && !v.Alive {
			return false
		}
	}
	return true
}

func keepUnverified(d *config.Desired, prev Previous) Plan {
	var plan Plan
	for _, e := range d.Executors {
		p := prev.ByName[e.Name]
		plan.Steps = append(plan.Steps, Step{Action: Keep, Name: e.Name, Executor: e, ClientKey: e.Client.Key, URL: e.Client.URL,
			ID: p.ID, Prev: p, Settings: e.Settings(), Unverified: true,
			Reason: "GitLab unreachable; keeping the token on disk, not verified"})
	}
	return plan
}

// preview reports what apply would do, making no request and no write.
func (en *engine) preview(p *Planned, res *Result) *Result {
	sections := composeSections(p.desired, p.prev, p.Plan, nil, nil, nil)
	after := en.render(p, sections, false)
	res.After = string(en.render(p, sections, true))
	res.Before = string(p.live.Redacted())
	res.ConfigChanged = !bytes.Equal(after, p.live.Raw)
	res.ConfigRemoved = after == nil && p.live.Exists
	res.Changed = p.Plan.Changed() || res.ConfigChanged
	res.Degraded = p.Degraded
	res.Runners = runnerResults(p.Plan, nil)
	res.Warnings = en.warnings
	return res
}

// render gives the config to write; nil when an unregister leaves nothing.
func (en *engine) render(p *Planned, sections []hostfs.Section, redact bool) []byte {
	if p.unregister && len(sections) == 0 {
		return nil
	}
	return hostfs.RenderConfig(en.l, p.desired.Globals, sections, redact)
}

// apply carries out the plan, then writes the config with every token
// obtained, whatever failed.
func (en *engine) apply(ctx context.Context, p *Planned, res *Result) (*Result, error) {
	l, plan := en.l, p.Plan
	res.Before = string(p.live.Redacted())
	res.Degraded = p.Degraded
	interrupted := p.interrupted && !p.Degraded
	en.interrupted = interrupted
	if interrupted {
		en.warn("the previous run did not finish cleanly; checking for effects of its requests that GitLab finished late")
	}
	if plan.Changed() {
		if _, err := hostfs.WriteAtomic(l.IncompletePath(), fmt.Appendf(nil, "pid %d started %s\n", os.Getpid(), en.o.Now().UTC().Format(time.RFC3339))); err != nil {
			return res, fmt.Errorf("writing %s: %w", l.IncompletePath(), err)
		}
	}
	outcomes := en.applySteps(ctx, plan)
	var extra []RunnerResult
	if interrupted && !p.unregister {
		extra = en.settle(ctx, plan, outcomes)
	}

	// gitlab-runner may have rotated a token while we worked: take token
	// fields from the file as it is now, never from the copy read earlier.
	fresh, ferr := hostfs.ReadLiveConfig(l, en.o.Secrets)
	if ferr != nil {
		fresh = p.live
	}
	oldGone := map[int]bool{} // replaced runners removed after the config holds their successors
	sections := composeSections(p.desired, p.prev, plan, outcomes, fresh, oldGone)
	data := en.render(p, sections, false)
	var errs []error
	var werr error
	if data == nil {
		res.ConfigRemoved, werr = removeFiles(l.ConfigPath(), l.StatePath())
	} else {
		res.ConfigChanged, werr = hostfs.WriteAtomic(l.ConfigPath(), data)
		if werr == nil && plan.replacesOld() {
			// Make before break: the new tokens are on disk; only now
			// remove the runners they replace, then write again without.
			oldGone = en.deleteReplaced(ctx, plan, outcomes, freshIndex(fresh))
			sections = composeSections(p.desired, p.prev, plan, outcomes, fresh, oldGone)
			var again bool
			again, werr = hostfs.WriteAtomic(l.ConfigPath(), en.render(p, sections, false))
			res.ConfigChanged = res.ConfigChanged || again
		}
		res.After = string(en.render(p, sections, true))
		if werr == nil && !p.Degraded {
			if _, err := hostfs.WriteAtomic(l.StatePath(), newState(plan, outcomes, p.state, p.tokens).Encode()); err != nil {
				en.warn("writing state file %s: %v", l.StatePath(), err)
			}
		}
	}
	if werr != nil {
		errs = append(errs, werr)
	}
	res.Runners = append(runnerResults(plan, outcomes), extra...)
	res.Changed = res.ConfigChanged || res.ConfigRemoved || len(extra) > 0
	for i, s := range plan.Steps {
		if s.Action != Keep && (outcomes[i].Err == nil || outcomes[i].Creds != nil || outcomes[i].Deleted) {
			res.Changed = true
		}
	}

	inDoubt := false // a create or token reset GitLab may have carried out unseen
	for i, oc := range outcomes {
		if oc.Err == nil {
			continue
		}
		s := plan.Steps[i]
		if s.Action == Delete && gitlab.IsUnreachable(oc.Err) && !en.o.Strict && !p.unregister {
			// A runner no longer declared, on a GitLab that does not
			// answer (decommissioned, say): its entry stays and the next
			// run tries again; the host still starts.
			en.warn("%v; its entry stays in the config until that GitLab answers (%s fails instead)", oc.Err, en.o.Names(input.Strict))
			continue
		}
		if (s.Action == Create || s.Action == Replace || s.Action == Adopt) && oc.Creds == nil && gitlab.IsUnreachable(oc.Err) {
			inDoubt = true
		}
		errs = append(errs, oc.Err)
	}
	res.Warnings = en.warnings
	for _, r := range extra {
		if r.Error != "" {
			errs = append(errs, errors.New(r.Error))
		}
	}
	// The marker widens what counts as this host's (see Observation.
	// Interrupted): it stays only while a create or reset may have been
	// carried out without this run seeing the answer.
	if !inDoubt && (plan.Changed() || interrupted) {
		if err := os.Remove(l.IncompletePath()); err != nil && !errors.Is(err, os.ErrNotExist) {
			en.warn("removing %s: %v", l.IncompletePath(), err)
		}
	}
	return res, errors.Join(errs...)
}

// removeFiles removes the config and state file; removed reports whether
// the config existed.
func removeFiles(config, state string) (removed bool, err error) {
	for _, path := range []string{config, state} {
		switch e := os.Remove(path); {
		case e == nil:
			removed = removed || path == config
		case !errors.Is(e, os.ErrNotExist):
			err = errors.Join(err, fmt.Errorf("removing %s: %w", path, e))
		}
	}
	return removed, err
}

// freshIndex maps the entries of the live config as re-read after apply.
func freshIndex(fresh *hostfs.LiveConfig) map[RunnerRef]hostfs.LiveRunner {
	out := map[RunnerRef]hostfs.LiveRunner{}
	if fresh != nil {
		for _, r := range fresh.Runners {
			if r.ID != 0 {
				key, _ := gitlab.NormalizeURL(r.URL)
				out[RunnerRef{key, r.ID}] = r
			}
		}
	}
	return out
}

// composeSections builds the [[runners]] entries to write: declared
// executors (sorted by name) with the credentials they hold after the run,
// then entries kept verbatim (deletes that failed, foreign entries). With
// nil outcomes it predicts the result of the plan (check mode). The
// runner a replace supersedes stays, verbatim, until oldGone says it was
// removed (check mode predicts it removed).
func composeSections(d *config.Desired, prev Previous, plan Plan, outcomes []Outcome, fresh *hostfs.LiveConfig, oldGone map[int]bool) []hostfs.Section {
	freshByRef := freshIndex(fresh)
	// An entry kept verbatim is taken as the file holds it now:
	// gitlab-runner may have rotated its token during the run.
	latest := func(lr hostfs.LiveRunner) *table.Table {
		key, _ := gitlab.NormalizeURL(lr.URL)
		if f, ok := freshByRef[RunnerRef{key, lr.ID}]; ok && lr.ID != 0 {
			return f.Table
		}
		return lr.Table
	}
	var sections []hostfs.Section
	var verbatim []hostfs.Section
	for i, s := range plan.Steps {
		var oc *Outcome
		if outcomes != nil {
			oc = &outcomes[i]
		}
		if s.Action == Delete {
			if oc != nil && !oc.Deleted && s.Prev != nil {
				verbatim = append(verbatim, hostfs.Section{Name: s.Prev.Name, Verbatim: latest(*s.Prev)})
			}
			continue
		}
		e := s.Executor
		sec := hostfs.Section{Name: e.Description, URL: e.Client.URL, Executor: e.Type, TLSCAFile: e.Client.TLSCAFile, Keys: e.Keys}
		switch {
		case oc != nil && oc.Creds != nil:
			sec.ID, sec.Token, sec.TokenObtained, sec.TokenExpiresAt = oc.Creds.ID, oc.Creds.Token, oc.Obtained, oc.Creds.ExpiresAt
			if sec.ID == 0 {
				sec.ID = s.ID
			}
			if s.Action == Replace && s.DeleteOld && s.Prev != nil && !oldGone[i] {
				verbatim = append(verbatim, hostfs.Section{Name: s.Prev.Name, Verbatim: latest(*s.Prev)})
			}
		case s.Prev != nil && (s.Action == Keep || s.Action == Update || (oc != nil && oc.Err != nil)):
			// Kept or updated, or an adopt/replace that failed: the entry on
			// disk stays, so no token is ever dropped.
			p := *s.Prev
			if f, ok := freshByRef[RunnerRef{s.ClientKey, p.ID}]; ok && f.Token != "" && f.Token != p.Token {
				p = f // rotated by gitlab-runner during the run
			} else if s.Verified != nil && s.Verified.Token == p.Token && !hostfs.TOMLTime(s.Verified.ExpiresAt).Equal(hostfs.TOMLTime(p.TokenExpiresAt)) {
				p.TokenExpiresAt = s.Verified.ExpiresAt // gitlab-runner rotates by this date
			}
			sec.ID, sec.Token, sec.TokenObtained, sec.TokenExpiresAt = p.ID, p.Token, p.TokenObtained, p.TokenExpiresAt
			if (s.Action == Keep || s.Action == Update) && s.ID != 0 {
				sec.ID = s.ID
			}
		case oc == nil:
			// Check mode: what the run would write. The token is not known yet.
			sec.ID = s.ID
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

func newState(plan Plan, outcomes []Outcome, old *hostfs.State, tokens map[string]hostfs.TokenRecord) *hostfs.State {
	st := &hostfs.State{Version: 1, Runners: map[string]hostfs.StateRunner{}, Tokens: tokens}
	for i, s := range plan.Steps {
		if s.Action == Delete {
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

func runnerResults(plan Plan, outcomes []Outcome) []RunnerResult {
	out := make([]RunnerResult, 0, len(plan.Steps))
	for i, s := range plan.Steps {
		r := RunnerResult{Name: s.Name, ID: s.ID, URL: s.URL, Action: s.Action, Reason: s.Reason}
		switch {
		case s.Executor != nil:
			r.Executor = s.Executor.Type
			r.Description, r.Tags = s.Executor.Description, append([]string{}, s.Executor.Tags...)
			if s.Action == Update {
				want := s.Settings
				r.SettingsBefore, r.SettingsAfter = s.Have, &want
			}
		case s.Prev != nil:
			r.Executor = s.Prev.Executor
		}
		if outcomes != nil {
			oc := outcomes[i]
			if oc.Creds != nil && oc.Creds.ID != 0 {
				r.ID = oc.Creds.ID
			}
			if oc.Err != nil {
				r.Error = oc.Err.Error()
			}
		}
		out = append(out, r)
	}
	return out
}

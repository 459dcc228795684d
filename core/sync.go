package core

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/config"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/gitlab"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/hostfs"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/input"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/plan"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/tags"
)

// Planned is a plan together with the evidence it was made from. Check
// mode shows it (preview); apply carries out exactly this value, never a
// fresh guess.
type Planned struct {
	Plan plan.Plan
	// Degraded: GitLab could not be reached, but every declared executor
	// has a token on disk and nothing needs GitLab (no create, adopt or
	// delete): every step keeps its token unverified, so gitlab-runner can
	// start with what it has and retry GitLab by itself.
	Degraded bool

	ev   plan.Evidence
	live *hostfs.LiveConfig
	// unregister: removing the instance; with nothing left to keep, the
	// config and state file are removed rather than written.
	unregister bool
	// tokens: the personal access tokens' records for the state file.
	tokens map[string]hostfs.TokenRecord
	// host is the host the state file is written for.
	host hostfs.HostRecord
}

// Sync runs the whole sync for one instance: plan, then preview (check
// mode) or apply.
func Sync(ctx context.Context, o Options) (*Result, error) {
	return runPlan(ctx, o, (*engine).planSync)
}

// runPlan is every run's shape: start, plan, then preview or apply exactly
// that plan.
func runPlan(ctx context.Context, o Options, makePlan func(*engine, context.Context) (*Planned, error)) (*Result, error) {
	en, res, err := start(ctx, &o)
	defer en.finish()
	if err != nil {
		return res, err
	}
	p, err := makePlan(en, ctx)
	if err != nil {
		res.Warnings = en.warnings
		return res, err
	}
	if en.o.Check {
		return en.preview(p, res)
	}
	return en.apply(ctx, p, res)
}

// planSync loads what is declared and what the disk holds, observes
// GitLab with read-only requests and builds the plan.
func (en *engine) planSync(ctx context.Context) (*Planned, error) {
	o := en.o
	d, err := loadDeclared(ctx, o, o.prefixMissing())
	if err != nil {
		return nil, err
	}
	en.d = d
	en.warnPlainHTTP(d)
	p, err := en.evidence(d)
	if err != nil {
		return nil, err
	}
	p.tokens = en.checkTokens(ctx, d, p.ev.State, p.ev.Tokens)
	for k, id := range o.namespaces {
		if p.ev.State.Namespaces == nil {
			p.ev.State.Namespaces = map[string]int64{}
		}
		p.ev.State.Namespaces[k] = id
	}
	if err := en.observe(ctx, &p.ev); err != nil {
		if o.Strict || !gitlab.IsUnreachable(err) || !plan.CanStartDegraded(p.ev) {
			return nil, err
		}
		en.warn("GitLab could not be reached (%v); every executor has a token on disk and nothing needs GitLab, so gitlab-runner starts with the tokens it has and retries GitLab by itself%s", err, o.fails(input.Strict))
		p.Plan, p.Degraded = plan.KeepUnverified(p.ev), true
		return p, nil
	}
	p.Plan = plan.Build(p.ev)
	en.leftBehind(p.Plan.Left)
	return p, nil
}

// evidence reads what the disk holds — live config, state file, system
// id, the marker — and matches the live config to what is declared. A
// prefix copied from another machine starts a fresh identity here.
func (en *engine) evidence(d *config.Desired) (*Planned, error) {
	o, l := en.o, en.l
	live, err := hostfs.ReadLiveConfig(l, o.Secrets)
	if err != nil {
		return nil, err
	}
	st, warn, err := hostfs.ReadState(l)
	if err != nil {
		return nil, err
	}
	if warn != "" {
		en.warn("%s", warn)
	}
	m, hardwareRead := hostfs.Machine{ID: hostfs.ReadMachineID()}, false
	if o.Machine != nil {
		m, hardwareRead = *o.Machine, true
	}
	sysID, writeID, err := hostfs.SystemID(l, m)
	if err != nil {
		return nil, err
	}
	ev := plan.NewEvidence()
	host := hostfs.RecordOf(o.Hostname, m, sysID)
	// The hardware tells a rename from a clone: read only when the record
	// is new or the host name changed, else kept as recorded.
	if st.Host != nil && st.Host.Hostname == o.Hostname && !hardwareRead {
		host.Hardware = st.Host.Hardware
	} else if !hardwareRead {
		m.Hardware = hostfs.ReadHardware()
		host = hostfs.RecordOf(o.Hostname, m, sysID)
	}
	switch row := plan.Lineage(st.Host, host); row.Then {
	case plan.Cloned:
		// Not this machine's files: a fresh system id (gitlab-runner's
		// format), none of the other machine's runners touched or kept.
		fresh := hostfs.NewSystemID(m)
		if fresh == sysID || (st.Host != nil && fresh == st.Host.SystemID) {
			fresh = hostfs.RandomSystemID()
		}
		en.warn("this prefix's files were generated on another machine (%s: %s); starting a fresh identity for this host (system id %s) and leaving that machine's runners alone", row.Name, row.When, fresh)
		sysID, writeID = fresh, true
		host.SystemID = fresh
		ev.Inherited = live.Runners
		st = &hostfs.State{Version: 1, Runners: map[string]hostfs.StateRunner{}, Tokens: st.Tokens, Namespaces: st.Namespaces}
		live = &hostfs.LiveConfig{Exists: live.Exists, Raw: live.Raw}
	case plan.Renamed:
		en.warn("this host was renamed from %s to %s; it keeps its runners, whose descriptions and tags follow the new name", st.Host.Hostname, o.Hostname)
	}
	if writeID && !o.Check {
		// Persist before any request, so GitLab only ever sees this id.
		if _, err := hostfs.WriteAtomic(l.SystemIDPath(), []byte(sysID+"\n")); err != nil {
			return nil, fmt.Errorf("writing %s: %w", l.SystemIDPath(), err)
		}
	}
	en.systemID = sysID
	ev.Desired, ev.State, ev.SystemID, ev.Now = d, st, sysID, o.Now()
	ev.Prev = plan.MatchPrevious(d, live, st)
	for _, f := range ev.Prev.Foreign {
		en.warn("config entry %q (id %d) does not carry this host's identity; keeping it as is", f.Name, f.ID)
	}
	// A marker that outlives a killed or failed run: GitLab may still carry
	// out requests that run sent, so this run settles their effects.
	_, statErr := os.Stat(l.IncompletePath())
	ev.Interrupted = statErr == nil
	return &Planned{ev: ev, live: live, host: host}, nil
}

// loadDeclared loads and checks everything declared for the instance: the
// template, every executor file (or the Overlay's content), descriptions
// and tags. It makes no request and no write.
func loadDeclared(ctx context.Context, o Options, prefixMissing bool) (*config.Desired, error) {
	d, err := config.Load(ctx, hostfs.Layout{Prefix: o.Prefix, Instance: o.Instance}, o.Hostname, o.Overlay, o.Secrets, prefixMissing)
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

// preview reports what apply would do, making no request and no write:
// the plan's predicted outcomes go through the same conclusion as a real
// run's, so check mode says what the run will do.
func (en *engine) preview(p *Planned, res *Result) (*Result, error) {
	outcomes := p.Plan.Predict()
	gone := map[int]bool{}
	for i := range p.Plan.Steps {
		gone[i] = true
	}
	sections := plan.Sections(p.ev.Prev, p.Plan, outcomes, nil, gone)
	after := en.render(p, sections, false)
	res.Before = string(p.live.Redacted())
	res.After = string(en.render(p, sections, true))
	res.ConfigChanged = after != nil && !bytes.Equal(after, p.live.Raw)
	res.ConfigRemoved = after == nil && p.live.Exists
	return en.conclude(p, res, outcomes, nil, nil)
}

// render gives the config to write; nil when an unregister leaves nothing.
func (en *engine) render(p *Planned, sections []hostfs.Section, masked bool) []byte {
	if p.unregister && len(sections) == 0 {
		return nil
	}
	return hostfs.RenderConfig(en.l, p.ev.Desired.Globals, sections, masked)
}

// apply carries out the plan, then writes the config with every token
// obtained, whatever failed.
func (en *engine) apply(ctx context.Context, p *Planned, res *Result) (*Result, error) {
	l, pl := en.l, p.Plan
	res.Before = string(p.live.Redacted())
	interrupted := p.ev.Interrupted && !p.Degraded
	if interrupted {
		en.warn("the previous run did not finish cleanly; checking for effects of its requests that GitLab finished late")
	}
	if pl.Changed() {
		if _, err := hostfs.WriteAtomic(l.IncompletePath(), fmt.Appendf(nil, "pid %d started %s\n", os.Getpid(), en.o.Now().UTC().Format(time.RFC3339))); err != nil {
			return res, fmt.Errorf("writing %s: %w", l.IncompletePath(), err)
		}
	}
	outcomes := en.applySteps(ctx, pl)
	var extra []RunnerResult
	if interrupted && !p.unregister {
		extra = en.settle(ctx, pl, outcomes, p.ev)
	}

	// gitlab-runner may have rotated a token while we worked: take token
	// fields from the file as it is now, never from the copy read earlier.
	fresh, ferr := hostfs.Reread(l, p.live, en.o.Secrets)
	if ferr != nil {
		fresh = p.live
	}
	oldGone := map[int]bool{} // replaced runners removed after the config holds their successors
	sections := plan.Sections(p.ev.Prev, pl, outcomes, fresh, oldGone)
	data := en.render(p, sections, false)
	var werr error
	if data == nil {
		res.ConfigRemoved, werr = removeFiles(l.ConfigPath(), l.StatePath())
	} else {
		res.ConfigChanged, werr = hostfs.Update(l.ConfigPath(), data, fresh.Snap)
		if werr == nil && pl.ReplacesOld() {
			// Make before break: the new tokens are on disk; only now
			// remove the runners they replace, then write again without.
			oldGone = en.deleteReplaced(ctx, pl, outcomes, plan.FreshIndex(fresh))
			sections = plan.Sections(p.ev.Prev, pl, outcomes, fresh, oldGone)
			var again bool
			again, werr = hostfs.WriteAtomic(l.ConfigPath(), en.render(p, sections, false))
			res.ConfigChanged = res.ConfigChanged || again
		}
		res.After = string(en.render(p, sections, true))
		if werr == nil && !p.Degraded {
			next := plan.NewState(pl, outcomes, p.ev.State, p.tokens)
			next.Host = &p.host
			if _, err := hostfs.Update(l.StatePath(), next.Encode(), p.ev.State.Snapshot()); err != nil {
				en.warn("writing state file %s: %v", l.StatePath(), err)
			}
		}
	}
	res, err := en.conclude(p, res, outcomes, extra, werr)

	// The marker widens what counts as this host's (see Evidence.
	// Interrupted): it stays only while a create or reset may have been
	// carried out without this run seeing the answer.
	if !inDoubt(pl, outcomes) && (pl.Changed() || interrupted) {
		if err := os.Remove(l.IncompletePath()); err != nil && !errors.Is(err, os.ErrNotExist) {
			en.warn("removing %s: %v", l.IncompletePath(), err)
		}
	}
	return res, err
}

// conclude fills the result from the outcomes — the run's, or the plan's
// predicted ones — and gives the run's error: one for preview and apply,
// so check mode tells what the run does.
func (en *engine) conclude(p *Planned, res *Result, outcomes []plan.Outcome, extra []RunnerResult, werr error) (*Result, error) {
	res.Degraded = p.Degraded
	res.Runners = append(runnerResults(p.Plan, outcomes), extra...)
	res.Changed = res.ConfigChanged || res.ConfigRemoved || len(extra) > 0
	var errs []error
	if werr != nil {
		errs = append(errs, werr)
	}
	for i, s := range p.Plan.Steps {
		oc := outcomes[i]
		if s.Action != plan.Keep && s.Action != plan.Forget && !oc.Forgot && (oc.Err == nil || oc.Creds != nil || oc.Deleted) {
			res.Changed = true
		}
		if oc.Err == nil {
			continue
		}
		err := fmt.Errorf("%s %s: %w", s.Action, s.Name, oc.Err)
		if s.Action == plan.Delete && gitlab.IsUnreachable(oc.Err) && !en.o.Strict && !p.unregister {
			// A runner no longer declared, on a GitLab that does not
			// answer (decommissioned, say): its entry stays and the next
			// run tries again; the host still starts.
			en.warn("%v; its entry stays in the config until that GitLab answers%s", err, en.o.fails(input.Strict))
			continue
		}
		errs = append(errs, err)
	}
	for _, r := range extra {
		if r.Error != "" {
			errs = append(errs, errors.New(r.Error))
		}
	}
	res.Warnings = en.warnings
	res.LeftBehind = en.left
	return res, errors.Join(errs...)
}

// leftBehind names the runners the plan leaves alone, in the result and
// in a warning each.
func (en *engine) leftBehind(left []plan.Left) {
	for _, l := range left {
		r := LeftRunner{ID: l.ID, URL: l.URL, Description: l.Description, Why: l.Why}
		if r.URL == "" {
			r.URL = l.ClientKey
		}
		if !l.LastContact.IsZero() {
			r.LastContact = l.LastContact.UTC().Format(time.RFC3339)
		}
		en.left = append(en.left, r)
		en.warn("%s", l.Note())
	}
}

// inDoubt: a create or token reset got no answer, so GitLab may have
// carried it out unseen.
func inDoubt(p plan.Plan, outcomes []plan.Outcome) bool {
	for i, oc := range outcomes {
		a := p.Steps[i].Action
		if oc.Err != nil && oc.Creds == nil && (a == plan.Create || a == plan.Replace || a == plan.Adopt) && gitlab.IsUnreachable(oc.Err) {
			return true
		}
	}
	return false
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

// runnerResults reports each step with what its outcome achieved.
func runnerResults(p plan.Plan, outcomes []plan.Outcome) []RunnerResult {
	out := make([]RunnerResult, 0, len(p.Steps))
	for i, s := range p.Steps {
		r := RunnerResult{Name: s.Name, ID: s.ID, URL: s.URL, Action: s.Action, Reason: s.Reason}
		switch {
		case s.Executor != nil:
			r.Executor = s.Executor.Type
			r.Description, r.Tags = s.Executor.Description, append([]string{}, s.Executor.Tags...)
			if s.Action == plan.Update {
				want := s.Settings
				r.SettingsBefore, r.SettingsAfter = s.Have, &want
			}
		case s.Prev != nil:
			r.Executor = s.Prev.Executor
		}
		oc := outcomes[i]
		if oc.Creds != nil && oc.Creds.ID != 0 {
			r.ID = oc.Creds.ID
		}
		if oc.Forgot {
			r.Action = plan.Forget
		}
		if oc.Err != nil {
			r.Error = oc.Err.Error()
		}
		out = append(out, r)
	}
	return out
}

package core

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
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
		res.Warnings, res.Skipped = en.warnings, en.skippedResults(nil)
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
	// The generated files are read while the declared ones are loaded:
	// both only read.
	read := make(chan disk, 1)
	go func() { read <- en.readDisk() }()
	d, err := loadDeclared(ctx, o, o.prefixMissing())
	ds := <-read
	if err != nil {
		return nil, err
	}
	if len(d.Executors) == 0 && len(d.Skipped) > 0 {
		// Tolerant, but nothing at all can be served.
		errs := make([]error, len(d.Skipped))
		for i, sk := range d.Skipped {
			errs[i] = sk.Err
		}
		return nil, errors.Join(errs...)
	}
	en.d = d
	en.warnPlainHTTP(d)
	for _, key := range sortedKeys(o.reresolve) {
		en.warn("%s", o.reresolve[key])
	}
	p, err := en.evidenceFrom(ds, d)
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
		dp, err := en.degraded(p, err)
		en.skipUnserved(d, p)
		return dp, err
	}
	p.Plan = plan.Build(p.ev)
	if err := en.verifyNamespaces(ctx, p.Plan); err != nil {
		return nil, err
	}
	en.skipUnserved(d, p)
	en.leftBehind(p.Plan.Left)
	return p, nil
}

// skipUnserved names the executors not served for their files (invalid),
// each with what became of its last good entry: kept, or out of the
// config because GitLab rejected its token (the plan's held steps).
func (en *engine) skipUnserved(d *config.Desired, p *Planned) {
	for _, sk := range d.Skipped {
		entry := noEntry
		for _, h := range p.ev.Prev.Held {
			if h.Name == sk.Name {
				entry = entryKept
			}
		}
		for _, s := range p.Plan.Steps {
			if s.Held && s.Name == sk.Name && s.Action == plan.Forget {
				entry = entryDropped
			}
		}
		en.skip(sk.Name, sk.File, sk.Reason, sk.Err, entry)
	}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// cleanupOption is the run option that makes an unconfirmed removal fail
// the run (the CLI's --strict).
const cleanupOption = input.Strict

// degraded plans a run whose GitLab did not answer: gitlab-runner starts
// with the tokens on disk, unverified, when every executor has one and
// nothing else needs GitLab. Tolerant, the executors that need GitLab (a
// new one, an expired token) are skipped, their entries kept, and the
// entries no longer declared leave the config, their removal pending;
// only when no executor at all can be served does the run fail. The
// failure names every executor that needs GitLab.
func (en *engine) degraded(p *Planned, err error) (*Planned, error) {
	o, d := en.o, p.ev.Desired
	late := plan.NeedGitLab(p.ev)
	fileOf := map[string]string{}
	for _, e := range d.Executors {
		fileOf[e.Name] = e.File
	}
	tolerable := o.Tolerant && len(late) < len(d.Executors)
	if o.Strict || gitlab.KindOf(err) != gitlab.Unreachable || (!tolerable && !plan.CanStartDegraded(p.ev)) {
		if len(late) == 0 || gitlab.KindOf(err) != gitlab.Unreachable {
			return nil, err
		}
		var names []string
		for _, l := range late {
			en.skip(l.Name, fileOf[l.Name], config.SkipLate, errors.New(l.Why), kept(p.ev.Prev.ByName[l.Name] != nil))
			names = append(names, l.Name+": "+l.Why)
		}
		return nil, &LateError{Err: err, Late: names}
	}
	for _, l := range late {
		// An entry whose token expired or was rejected is no good to
		// gitlab-runner: it leaves the config (the state file still names
		// the runner, healed once GitLab answers); a new executor has none.
		d.Skip(l.Name, config.SkipLate, errors.New(l.Why))
		d.Drop(l.Name)
		en.skip(l.Name, fileOf[l.Name], config.SkipLate, errors.New(l.Why), noEntry)
	}
	if len(late) > 0 {
		// Their entries are now held, kept as they are.
		p.ev.Prev = plan.MatchPrevious(d, p.live, p.ev.State)
	}
	what := "every executor has a token on disk and nothing needs GitLab"
	if len(late) > 0 {
		what = "the executors with a token on disk start"
	}
	en.warn("GitLab could not be reached (%v); %s, so gitlab-runner starts with the tokens it has and retries GitLab by itself%s", err, what, o.fails(input.Strict))
	p.Plan, p.Degraded = plan.KeepUnverified(p.ev), true
	return p, nil
}

// LateError is a run that failed because GitLab did not answer while
// executors needed it: Late names each, and why.
type LateError struct {
	Err  error
	Late []string
}

func (e *LateError) Error() string {
	return fmt.Sprintf("%v; these executors need GitLab: %s", e.Err, strings.Join(e.Late, "; "))
}

func (e *LateError) Unwrap() error { return e.Err }

// disk is what a run reads from the prefix before deciding anything:
// live config, state file, machine and system id, and the host's lineage.
// Reading it makes no request and no write, so it runs while the declared
// files are loaded; its warnings wait until the declaration is valid.
type disk struct {
	live     *hostfs.LiveConfig
	st       *hostfs.State
	sysID    string
	writeID  bool
	host     hostfs.HostRecord
	inherit  []hostfs.LiveRunner
	warnings []string
	err      error
}

// readDisk reads the prefix's generated files and decides the lineage: a
// prefix copied from another machine starts a fresh identity here.
func (en *engine) readDisk() disk {
	o, l := en.o, en.l
	var ds disk
	live, err := hostfs.ReadLiveConfig(l, o.Secrets)
	if err != nil {
		return disk{err: err}
	}
	st, warn, err := hostfs.ReadState(l)
	if err != nil {
		return disk{err: err}
	}
	for _, pr := range st.Pending {
		o.Secrets.Add(pr.Token)
	}
	if warn != "" {
		ds.warnings = append(ds.warnings, warn)
	}
	m, hardwareRead := hostfs.Machine{ID: hostfs.ReadMachineID()}, false
	if o.Machine != nil {
		m, hardwareRead = *o.Machine, true
	}
	sysID, writeID, err := hostfs.SystemID(l, m)
	if err != nil {
		return disk{err: err}
	}
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
		ds.warnings = append(ds.warnings, fmt.Sprintf("this prefix's files were generated on another machine (%s: %s); starting a fresh identity for this host (system id %s) and leaving that machine's runners alone", row.Name, row.When, fresh))
		sysID, writeID = fresh, true
		host.SystemID = fresh
		ds.inherit = live.Runners
		st = &hostfs.State{Version: 1, Runners: map[string]hostfs.StateRunner{}, Tokens: st.Tokens, Namespaces: st.Namespaces}
		live = &hostfs.LiveConfig{Exists: live.Exists, Raw: live.Raw}
	case plan.Renamed:
		ds.warnings = append(ds.warnings, fmt.Sprintf("this host was renamed from %s to %s; it keeps its runners, whose descriptions and tags follow the new name", st.Host.Hostname, o.Hostname))
	}
	ds.live, ds.st, ds.sysID, ds.writeID, ds.host = live, st, sysID, writeID, host
	return ds
}

// evidence reads what the disk holds and matches the live config to what
// is declared.
func (en *engine) evidence(d *config.Desired) (*Planned, error) {
	return en.evidenceFrom(en.readDisk(), d)
}

// evidenceFrom matches what the disk holds to what is declared, once the
// declaration is valid: the system id is written (before any request, so
// GitLab only ever sees this one), the live config's entries attributed.
func (en *engine) evidenceFrom(ds disk, d *config.Desired) (*Planned, error) {
	o, l := en.o, en.l
	if ds.err != nil {
		return nil, ds.err
	}
	for _, w := range ds.warnings {
		en.warn("%s", w)
	}
	if ds.writeID && !o.Check {
		if _, err := hostfs.WriteAtomic(l.SystemIDPath(), []byte(ds.sysID+"\n")); err != nil {
			return nil, fmt.Errorf("writing %s: %w", l.SystemIDPath(), err)
		}
	}
	en.systemID = ds.sysID
	ev := plan.NewEvidence()
	ev.Inherited = ds.inherit
	ev.Desired, ev.State, ev.SystemID, ev.Now = d, ds.st, ds.sysID, o.Now()
	ev.Prev = plan.MatchPrevious(d, ds.live, ds.st)
	for _, f := range ev.Prev.Foreign {
		en.warn("config entry %q (id %d) does not carry this host's identity; keeping it as is", f.Name, f.ID)
	}
	// A marker that outlives a killed or failed run: GitLab may still carry
	// out requests that run sent, so this run settles their effects.
	_, statErr := os.Stat(l.IncompletePath())
	ev.Interrupted = statErr == nil
	return &Planned{ev: ev, live: ds.live, host: ds.host}, nil
}

// loadDeclared loads and checks everything declared for the instance: the
// template, every executor file (or the Overlay's content), descriptions
// and tags. It makes no request and no write.
func loadDeclared(ctx context.Context, o Options, prefixMissing bool) (*config.Desired, error) {
	d, err := config.Load(ctx, config.LoadOptions{Layout: hostfs.Layout{Prefix: o.Prefix, Instance: o.Instance}, Hostname: o.Hostname,
		Fleet: o.Fleet, Overlay: o.Overlay, Secrets: o.Secrets, PrefixMissing: prefixMissing, Tolerant: o.Tolerant})
	if err != nil {
		return nil, err
	}
	if err := config.UniqueDescriptions(d, o.Tolerant); err != nil {
		return nil, err
	}
	to := o.Tags
	to.Tolerant = o.Tolerant
	if err := tags.Compute(ctx, d, to); err != nil {
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
	if en.o.Diff {
		res.Before = string(p.live.Redacted())
		res.After = string(en.render(p, sections, true))
	}
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

// apply carries out the plan in two phases. First every change that
// gives an executor its runner (create, adopt, replace, update), then the
// state file (recording every removal still to make) and the config,
// written once with every token obtained and without the runners to
// remove; gitlab-runner takes the new config (RunnerPID); only then are
// the runners removed, so gitlab-runner never polls with a token already
// dead, and a removal GitLab does not confirm stays recorded for the next
// run instead of keeping its runner in the config. The disk space both
// files need is reserved before the first change in GitLab.
func (en *engine) apply(ctx context.Context, p *Planned, res *Result) (*Result, error) {
	l, pl := en.l, p.Plan
	if en.o.Diff {
		res.Before = string(p.live.Redacted())
	}
	interrupted := p.ev.Interrupted && !p.Degraded
	if interrupted {
		en.warn("the previous run did not finish cleanly; checking for effects of its requests that GitLab finished late")
	}
	later := en.removalsLater(p)
	var rv reservations
	defer rv.release()
	if pl.Changed() {
		var err error
		if rv, err = en.reserve(p); err != nil {
			if !en.o.Tolerant || p.unregister {
				return en.failBeforeChanges(p, res, err)
			}
			// Nothing can be written: change nothing, serve what the
			// config holds.
			en.warn("%v; gitlab-runner starts with the config as it is", err)
			outcomes := make([]plan.Outcome, len(pl.Steps))
			for i, s := range pl.Steps {
				outcomes[i] = plan.Outcome{ID: s.ID}
				if s.Action == plan.Keep || s.Action == plan.Forget {
					continue
				}
				outcomes[i].Err = err
				if s.Executor != nil && s.Action != plan.Update {
					en.skip(s.Name, s.Executor.File, config.SkipNoSpace, err, kept(s.Prev != nil))
				}
			}
			res.After = res.Before
			return en.conclude(p, res, outcomes, nil, nil)
		}
		if _, err := hostfs.WriteAtomic(l.IncompletePath(), fmt.Appendf(nil, "pid %d started %s\n", os.Getpid(), en.o.Now().UTC().Format(time.RFC3339))); err != nil {
			return res, fmt.Errorf("writing %s: %w", l.IncompletePath(), err)
		}
	}
	outcomes := make([]plan.Outcome, len(pl.Steps))
	_ = en.each(ctx, len(pl.Steps), func(i int) error {
		if later[i] {
			outcomes[i] = plan.Outcome{ID: pl.Steps[i].ID, Deleted: true} // phase two
			return nil
		}
		outcomes[i] = en.applyStep(ctx, pl.Steps[i])
		return nil
	})
	var extra []RunnerResult
	if interrupted && !p.unregister {
		extra = en.settle(ctx, pl, outcomes, p.ev)
	}
	en.skipFailed(p, outcomes)

	// gitlab-runner may have rotated a token while we worked: take token
	// fields from the file as it is now, never from the copy read earlier.
	fresh, ferr := hostfs.Reread(l, p.live, en.o.Secrets)
	if ferr != nil {
		fresh = p.live
	}
	// The runners replaced leave the config with this write, in which
	// their successors arrive (make before break), and are removed after.
	replaced := map[int]bool{}
	for i, s := range pl.Steps {
		if s.Action == plan.Replace && s.DeleteOld && s.Prev != nil && outcomes[i].Creds != nil {
			replaced[i] = true
		}
	}
	freshByRef := plan.FreshIndex(fresh)
	pending := en.pendingRemovals(p, outcomes, later, replaced, freshByRef, nil)
	sections := plan.Sections(p.ev.Prev, pl, outcomes, fresh, replaced)
	data := en.render(p, sections, false)
	var werr error
	if data == nil {
		res.ConfigRemoved, werr = removeFiles(l.ConfigPath(), l.StatePath())
	} else {
		// The state file first: a removal is recorded before its entry
		// leaves the config. Without it, the entries stay, removed later.
		if err := en.writeState(p, outcomes, pending, rv.state); err != nil {
			en.warn("writing state file %s: %v; the runners to remove stay in the config for now", l.StatePath(), err)
			for i := range later {
				outcomes[i] = plan.Outcome{ID: pl.Steps[i].ID}
			}
			later, replaced, pending = nil, nil, nil
			sections = plan.Sections(p.ev.Prev, pl, outcomes, fresh, replaced)
			data = en.render(p, sections, false)
		}
		res.ConfigChanged, werr = rv.updateConfig(l.ConfigPath(), data, fresh.Snap)
		if en.o.Diff {
			res.After = string(en.render(p, sections, true))
		}
		if werr != nil {
			werr = fmt.Errorf("writing %s: %w", l.ConfigPath(), werr)
			en.compensate(ctx, pl, outcomes)
		} else if res.ConfigChanged && (len(pending) > 0 || en.o.RunnerPID > 0) {
			// gitlab-runner takes the config just written (and, before
			// the runners that left it are deleted, must have).
			res.Reload = en.reloadRunner(ctx, len(pending) > 0 && !p.Degraded)
		}
		if werr == nil && len(pending) > 0 {
			// Phase two: the runners that left the config.
			done := en.removeLater(ctx, p, outcomes, later, replaced, freshByRef)
			remaining := en.pendingRemovals(p, outcomes, later, replaced, freshByRef, done)
			if err := en.writeState(p, outcomes, remaining, nil); err != nil {
				en.warn("writing state file %s: %v", l.StatePath(), err)
			}
		}
	}
	if res.Reload == nil && en.refused != nil {
		res.Reload = &Reload{Refused: en.refused}
	}
	res, err := en.conclude(p, res, outcomes, extra, werr)

	// The marker widens what counts as this host's (see Evidence.
	// Interrupted): it stays while a create or reset may have been carried
	// out without this run seeing the answer, or GitLab and the disk may
	// disagree (a write failed).
	if werr == nil && !inDoubt(pl, outcomes) && (pl.Changed() || interrupted) {
		if err := os.Remove(l.IncompletePath()); err != nil && !errors.Is(err, os.ErrNotExist) {
			en.warn("removing %s: %v", l.IncompletePath(), err)
		}
	}
	return res, err
}

// failBeforeChanges ends a run that could not start changing anything.
func (en *engine) failBeforeChanges(p *Planned, res *Result, err error) (*Result, error) {
	res.Warnings, res.LeftBehind = en.warnings, en.left
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
		switch {
		case s.Executor == nil && !p.unregister && !oc.Predicted:
			// A removal GitLab did not confirm (or cannot be made yet):
			// the entry has left the config, or stays when the plan could
			// not prove the runner this host's; later runs retry.
			res.Runners[i].Pending = oc.Deleted
			if en.o.CleanupFails {
				errs = append(errs, err)
				continue
			}
			what := "its entry stays in the config"
			if oc.Deleted {
				what = "its entry has left the config and later runs retry the removal"
			}
			en.warn("%v; %s%s", err, what, en.o.fails(cleanupOption))
		case s.Executor != nil && en.isSkipped(s.Name):
			// Tolerant: skipped and said so (skipFailed).
		case s.Executor != nil && s.Action == plan.Update && en.o.Tolerant && !oc.Predicted:
			en.warn("%v; the runner works with the settings GitLab has, the next run tries again", err)
		default:
			errs = append(errs, err)
		}
	}
	for _, r := range extra {
		if r.Error != "" {
			errs = append(errs, errors.New(r.Error))
		}
	}
	if en.o.Tolerant && !p.unregister && len(errs) == 0 {
		// Serve what can be served; when that is nothing, fail.
		served, skipped := 0, []error{}
		for i, s := range p.Plan.Steps {
			if s.Executor == nil {
				continue
			}
			if en.isSkipped(s.Name) {
				skipped = append(skipped, fmt.Errorf("%s %s: %w", s.Action, s.Name, outcomes[i].Err))
				continue
			}
			served++
		}
		if served == 0 && len(skipped) > 0 {
			errs = append(errs, skipped...)
		}
	}
	res.Warnings = en.warnings
	res.LeftBehind = en.left
	res.Skipped = en.skippedResults(p)
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
		if oc.Err != nil && oc.Creds == nil && (a == plan.Create || a == plan.Replace || a == plan.Adopt) && gitlab.KindOf(oc.Err) == gitlab.Unreachable {
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
		r := RunnerResult{Name: s.Name, ID: s.ID, URL: s.URL, Action: s.Action, Reason: s.Reason, LastGood: s.Held}
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

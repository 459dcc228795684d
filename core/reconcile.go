package core

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/config"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/gitlab"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/hostfs"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/input"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/plan"
)

// A run reconciles in passes, as a controller-runtime reconciler
// requeues: each pass observes (read-only), plans (plan.Build) and applies
// exactly that plan, and asks for another pass when it left something to
// one. Pass one creates, adopts and updates, writes the config without the
// runners that leave it — recording their removals, and a replaced
// runner's, as pending in the state file — and has gitlab-runner take the
// config; the next pass is an ordinary run in which the existing rows
// decide (pending removals; after an interrupted run, late duplicates and
// tokens a late reset invalidated). Check mode shows pass one, and says
// what the next pass would do. A steady state is one pass: one verify per
// executor, nothing else.

// maxPasses bounds a run's passes.
const maxPasses = 3

// passHints are what a pass asks the next to look at.
type passHints struct {
	// again: the pass left removals to the next one.
	again bool
	// interrupted: the run follows an interrupted one and obtained tokens:
	// the next pass takes runners without a manager for that run's
	// (OwnInterrupted), and lists the scopes where this pass created.
	interrupted bool
	lookups     []lookupScope
	// replaced: the runners replaced by this pass (by runnerKey), whose
	// deletion the next pass carries out as part of the replace.
	replaced map[string]bool
}

func (h passHints) requeue() bool { return h.again || h.interrupted }

// Planned is one pass's plan together with the evidence it was made from.
// Check mode shows it (preview); apply carries out exactly this value.
type Planned struct {
	Plan plan.Plan
	// Degraded: GitLab could not be reached, but every declared executor
	// has a token on disk and nothing needs GitLab (no create, adopt or
	// delete): every step keeps its token unverified, so gitlab-runner can
	// start with what it has and retry GitLab by itself.
	Degraded bool

	ev plan.Evidence
	// live is the config the plan works from (the identity's: empty for a
	// clone).
	live *hostfs.LiveConfig
	// tokens: the personal access tokens' records for the state file.
	tokens map[string]hostfs.TokenRecord
	// host is the host the state file is written for.
	host hostfs.HostRecord
}

// reconcile runs the passes of a sync, or of a removal of the instance.
func reconcile(ctx context.Context, o Options) (*Result, error) {
	en, res, err := start(ctx, &o)
	defer en.finish()
	if err != nil {
		return res, err
	}
	makePlan := (*engine).planSync
	if en.o.Remove != "" {
		makePlan = (*engine).planRemoval
	}
	var errs []error
	for pass := 1; ; pass++ {
		p, err := makePlan(en, ctx)
		if err != nil {
			res.Warnings, res.Skipped, res.LeftBehind = en.warnings, en.skippedResults(nil), en.left
			return res, errors.Join(append(errs, err)...)
		}
		if en.o.Check {
			return en.preview(p, res)
		}
		out, next, err := en.apply(ctx, p)
		res = merge(res, out, pass, en.hints.replaced)
		if err != nil {
			errs = append(errs, err)
		}
		if !next.requeue() || pass == maxPasses {
			return res, errors.Join(errs...)
		}
		en.hints = next
	}
}

// merge adds a later pass's result to the run's: a removal an earlier
// pass left to it takes its outcome (keeping the reason it was made for),
// the deletion of a runner an earlier pass replaced is part of that
// replace (reported only when it failed), what else it changed is added;
// its keeps were reported already.
func merge(run, pass *Result, n int, replaced map[string]bool) *Result {
	if n == 1 {
		pass.Passes = 1
		return pass
	}
	run.Passes = n
	at := map[string]int{}
	for i, r := range run.Runners {
		at[runnerKey(r)] = i
	}
	for _, r := range pass.Runners {
		key := runnerKey(r)
		i, seen := at[key]
		switch {
		case replaced[key] && r.Error == "":
		case seen && run.Runners[i].Deferred:
			was := run.Runners[i]
			was.Action, was.Error, was.Pending, was.Deferred = r.Action, r.Error, r.Pending, false
			run.Runners[i] = was
		case seen && r.Action != plan.Keep:
			run.Runners[i] = r
		case !seen && r.Action != plan.Keep:
			run.Runners = append(run.Runners, r)
		}
	}
	run.Changed = run.Changed || pass.Changed
	run.ConfigChanged = run.ConfigChanged || pass.ConfigChanged
	run.ConfigRemoved = run.ConfigRemoved || pass.ConfigRemoved
	run.Warnings, run.LeftBehind, run.Skipped = pass.Warnings, pass.LeftBehind, pass.Skipped
	if pass.Reload != nil && run.Reload == nil {
		run.Reload = pass.Reload
	}
	if pass.After != "" {
		run.After = pass.After
	}
	return run
}

// runnerKey identifies a runner in results: an executor by its name, a
// removal by its GitLab and id.
func runnerKey(r RunnerResult) string {
	if r.Executor != "" && r.Action != plan.Delete && r.Action != plan.Detach && r.Action != plan.Forget {
		return "executor\x00" + r.Name
	}
	return removalKey(r.URL, r.ID)
}

// removalKey is runnerKey's key of a removal.
func removalKey(url string, id int64) string {
	key, _ := gitlab.NormalizeURL(url)
	return fmt.Sprintf("runner\x00%s\x00%d", key, id)
}

// planSync loads what is declared (once per run) and what the disk holds,
// observes GitLab with read-only requests and builds the pass's plan.
func (en *engine) planSync(ctx context.Context) (*Planned, error) {
	o := en.o
	// The generated files are read while the declared ones load: both only read.
	type read struct {
		ds  disk
		err error
	}
	got := make(chan read, 1)
	go func() { ds, err := en.readDisk(); got <- read{ds, err} }()
	if en.d == nil {
		d, err := loadDeclared(ctx, o, o.prefixMissing())
		if err == nil && len(d.Executors) == 0 && len(d.Skipped) > 0 {
			// Serving what can be served, but nothing at all can be.
			errs := make([]error, len(d.Skipped))
			for i, sk := range d.Skipped {
				errs[i] = sk.Err
			}
			err = errors.Join(errs...)
		}
		if err != nil {
			<-got
			return nil, err
		}
		en.d = d
		en.warnPlainHTTP(d)
		for _, key := range sortedKeys(o.declared.reresolve) {
			en.warn("%s", o.declared.reresolve[key])
		}
	}
	r := <-got
	if r.err != nil {
		return nil, r.err
	}
	d := en.d
	p, err := en.evidence(r.ds, d)
	if err != nil {
		return nil, err
	}
	p.tokens = en.checkTokens(ctx, d, p.ev.State, p.ev.Tokens)
	for k, id := range o.declared.namespaces {
		if p.ev.State.Namespaces == nil {
			p.ev.State.Namespaces = map[string]int64{}
		}
		p.ev.State.Namespaces[k] = id
	}
	if err := en.observe(ctx, &p.ev); err != nil {
		return en.degraded(p, err)
	}
	p.Plan = plan.Build(p.ev)
	if err := en.verifyNamespaces(ctx, p.Plan); err != nil {
		return nil, err
	}
	en.skipUnserved(d, p)
	en.leftBehind(p.Plan.Left)
	return p, nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// degraded plans a pass whose GitLab did not answer: gitlab-runner starts
// with the tokens on disk, unverified, when every executor has one and
// nothing else needs GitLab; serving what can be served, the executors
// that need GitLab (a new one, an expired token) are skipped, their
// entries left out, and the entries no longer declared leave the config,
// their removal pending (plan.CanDegrade). Otherwise the run fails,
// naming every executor that needs GitLab.
func (en *engine) degraded(p *Planned, err error) (*Planned, error) {
	if gitlab.KindOf(err) != gitlab.Unreachable {
		return nil, err
	}
	d := p.ev.Desired
	fileOf := map[string]string{}
	for _, e := range d.Executors {
		fileOf[e.Name] = e.File
	}
	late, ok := plan.CanDegrade(p.ev)
	if !ok {
		if len(late) == 0 {
			return nil, err
		}
		var names []string
		for _, l := range late {
			en.skip(l.Name, fileOf[l.Name], config.SkipLate, errors.New(l.Why), kept(p.ev.Prev.ByName[l.Name] != nil))
			names = append(names, l.Name+": "+l.Why)
		}
		return nil, &lateError{Err: err, Late: names}
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
		p.ev.Prev = plan.MatchPrevious(d, p.live, p.ev.State)
	}
	what := "every executor has a token on disk and nothing needs GitLab"
	if len(late) > 0 {
		what = "the executors with a token on disk start"
	}
	en.warn("GitLab could not be reached (%v); %s, so gitlab-runner starts with the tokens it has and retries GitLab by itself%s", err, what, en.o.fails(input.Strict))
	p.Plan, p.Degraded = plan.KeepUnverified(p.ev), true
	en.skipUnserved(d, p)
	return p, nil
}

// lateError is a run that failed because GitLab did not answer while
// executors needed it: Late names each, and why.
type lateError struct {
	Err  error
	Late []string
}

func (e *lateError) Error() string {
	return fmt.Sprintf("%v; these executors need GitLab: %s", e.Err, strings.Join(e.Late, "; "))
}

func (e *lateError) Unwrap() error { return e.Err }

// preview reports what the pass would do, making no request and no write:
// the plan's predicted outcomes go through the same conclusion as a real
// pass's, so check mode says what the run will do, and what its next pass
// would, when it knows.
func (en *engine) preview(p *Planned, res *Result) (*Result, error) {
	outcomes := p.Plan.Predict()
	gone := map[int]bool{}
	for i := range p.Plan.Steps {
		gone[i] = true
	}
	sections := plan.Sections(p.ev.Prev, p.Plan, outcomes, nil, gone)
	after := en.render(p, sections, false, false)
	if en.o.Diff {
		res.Before = string(p.live.Redacted())
		res.After = string(en.render(p, sections, true, false))
	}
	res.ConfigChanged = after != nil && p.live != nil && !bytes.Equal(after, p.live.Raw)
	res.ConfigRemoved = after == nil && p.live.Exists
	res.NextPass = nextPass(p)
	return en.conclude(p, res, outcomes, nil)
}

// nextPass says what a run's next pass would do after the plan's: the
// removals it leaves to it ("" when it leaves none).
func nextPass(p *Planned) string {
	var ids []string
	for _, s := range p.Plan.Steps {
		if deferred(s) {
			ids = append(ids, fmt.Sprint(s.ID))
		}
		if s.Action == plan.Replace && s.DeleteOld && s.Prev != nil && s.Fault == "" {
			ids = append(ids, fmt.Sprint(s.Prev.ID))
		}
	}
	if len(ids) == 0 {
		return ""
	}
	return fmt.Sprintf("a second pass deletes runners %s once gitlab-runner has taken the config without them", strings.Join(ids, ", "))
}

// conclude fills the result from the outcomes — the pass's, or the
// plan's predicted ones — as plan.Conclude reads them, and gives the
// pass's error: one for preview and apply, so check mode tells what the
// run does.
func (en *engine) conclude(p *Planned, res *Result, outcomes []plan.Outcome, werr error) (*Result, error) {
	v := plan.Conclude(p.Plan, outcomes)
	res.Degraded = p.Degraded
	res.Runners = runnerResults(p.Plan, outcomes)
	res.Changed = res.ConfigChanged || res.ConfigRemoved || v.Changed
	for i, pending := range v.Pending {
		res.Runners[i].Pending = pending
	}
	for _, w := range v.Warnings {
		fails := ""
		if w.FailsWith != "" {
			fails = en.o.fails(w.FailsWith)
		}
		en.warn("%v; %s%s", w.Err, w.Then, fails)
	}
	for _, sk := range v.Skipped {
		en.skip(sk.Name, sk.File, sk.Reason, sk.Cause, kept(sk.Kept))
	}
	res.Warnings, res.LeftBehind, res.Skipped = en.warnings, en.left, en.skippedResults(p)
	errs := v.Errors
	if werr != nil {
		errs = append([]error{werr}, errs...)
	}
	return res, errors.Join(errs...)
}

// deferred tells a removal the pass leaves to the next: a runner in the
// config whose token works (deleted with it, or only this host's manager
// detached), so gitlab-runner may still poll with it until it has taken
// the config without it. A runner whose token is dead is deleted by id at
// once: nothing polls with it. (On a degraded start every removal waits
// for later runs: Step.Waits.)
func deferred(s plan.Step) bool {
	if s.Executor != nil || s.Fault != "" || s.Waits != "" || s.Held || s.Prev == nil {
		return false
	}
	return s.Prev.Table != nil && (s.Action == plan.Detach || (s.Action == plan.Delete && s.Via == plan.ByToken))
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
		r.Deferred = oc.Deferred
		if oc.Err != nil {
			r.Error = oc.Err.Error()
		}
		out = append(out, r)
	}
	return out
}

// leftBehind names the runners the plan leaves alone, in the result and
// in a warning each (once per run).
func (en *engine) leftBehind(left []plan.Left) {
	for _, l := range left {
		r := LeftRunner{ID: l.ID, URL: l.URL, Description: l.Description, Why: l.Why}
		if r.URL == "" {
			r.URL = l.ClientKey
		}
		if !l.LastContact.IsZero() {
			r.LastContact = l.LastContact.UTC().Format("2006-01-02T15:04:05Z07:00")
		}
		dup := false
		for _, have := range en.left {
			dup = dup || (have.ID == r.ID && have.URL == r.URL)
		}
		if dup {
			continue
		}
		en.left = append(en.left, r)
		en.warn("%s", l.Note())
	}
}

package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/config"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/gitlab"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/input"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/plan"
)

// The observe and plan half of a pass: what is declared and on disk,
// GitLab's answers to read-only requests, the plan built from them; and
// check mode, which shows that plan without carrying it out.

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
	// A removal foretold to fail stays pending after the run: the config
	// and state file stay with it.
	pending := false
	for i, s := range p.Plan.Steps {
		pending = pending || (s.Executor == nil && outcomes[i].Deleted && outcomes[i].Err != nil)
	}
	after := en.render(p, sections, false, pending)
	if en.o.Diff {
		res.Before = string(p.live.Redacted())
		res.After = string(en.render(p, sections, true, pending))
	}
	res.ConfigChanged = after != nil && p.live != nil && !bytes.Equal(after, p.live.Raw)
	res.ConfigRemoved = after == nil && p.live.Exists
	res.NextPass = nextPass(p)
	return en.conclude(p, res, outcomes, nil)
}

// nextPass says what a run's next pass would do after the plan's: the
// removals it leaves to it ("" when it leaves none).
func nextPass(p *Planned) string {
	deletes, detaches := plan.NextPass(p.Plan)
	var parts []string
	if len(deletes) > 0 {
		parts = append(parts, "deletes "+runnerList(deletes))
	}
	if len(detaches) > 0 {
		parts = append(parts, "removes this host's manager from "+runnerList(detaches))
	}
	if len(parts) == 0 {
		return ""
	}
	them := "them"
	if len(deletes)+len(detaches) == 1 {
		them = "it"
	}
	return fmt.Sprintf("a second pass %s once gitlab-runner has taken the config without %s", strings.Join(parts, " and "), them)
}

// runnerList names runners by id: "runner 12", "runners 12, 14".
func runnerList(ids []int64) string {
	list := make([]string, len(ids))
	for i, id := range ids {
		list[i] = fmt.Sprint(id)
	}
	if len(ids) == 1 {
		return "runner " + list[0]
	}
	return "runners " + strings.Join(list, ", ")
}

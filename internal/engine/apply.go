package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/config"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/hostfs"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/plan"
)

// apply carries out one pass's plan: its host steps; then, once the disk
// space is reserved and the marker written, every step but the removals
// it leaves to the next pass (deferred); then the state file, recording
// those removals and a replaced runner's with their proof, and the config,
// written once with every token obtained and without the runners that
// leave it; then gitlab-runner takes the config. It says whether another
// pass must follow.
func (en *engine) apply(ctx context.Context, p *Planned) (*Result, passHints, error) {
	l, pl := en.l, p.Plan
	res := &Result{ConfigPath: l.ConfigPath(), Runners: []RunnerResult{}}
	if en.o.Diff {
		res.Before = string(p.live.Redacted())
	}
	if err := en.hostSteps(pl.Host); err != nil {
		res.Warnings, res.LeftBehind = en.warnings, en.left
		return res, passHints{}, err
	}
	interrupted := p.ev.Interrupted && !p.Degraded && !en.hints.interrupted
	if interrupted {
		en.warn("the previous run did not finish cleanly; checking for effects of its requests that GitLab finished late")
	}
	var rv reservations
	defer rv.release()
	if pl.Changed() {
		var err error
		if rv, err = en.reserve(p); err != nil {
			return en.noSpace(p, res, err)
		}
		if _, err := hostfs.WriteAtomic(l.IncompletePath(), fmt.Appendf(nil, "pid %d started %s\n", os.Getpid(), en.o.Now().UTC().Format(time.RFC3339))); err != nil {
			return res, passHints{}, fmt.Errorf("writing %s: %w", l.IncompletePath(), err)
		}
	}
	// The steps that send nothing have their outcome now; one the run did
	// not get to (it was stopped, or its time bound ran out) failed: its
	// entry stays as it is, nothing is taken for done.
	outcomes := make([]plan.Outcome, len(pl.Steps))
	for i, s := range pl.Steps {
		outcomes[i] = plan.Outcome{ID: s.ID, Err: errNotCarriedOut}
		if !sends(s) {
			outcomes[i] = en.carryOut(ctx, s)
		}
	}
	_ = en.each(ctx, len(pl.Steps), func(i int) error {
		if s := pl.Steps[i]; sends(s) {
			outcomes[i] = en.carryOut(ctx, s)
		}
		return nil
	})

	// gitlab-runner may have rotated a token while we worked: take token
	// fields from the file as it is now, never from the copy read earlier.
	fresh, ferr := hostfs.Reread(l, p.live, en.o.Secrets)
	if ferr != nil {
		fresh = p.live
	}
	// A runner replaced leaves the config with this write, in which its
	// successor arrives (make before break); the next pass deletes it.
	replaced := plan.Replaced(pl, outcomes)
	say := func(err error) string { return en.o.Secrets.Redact(err.Error()) }
	if p.Degraded {
		say = func(error) string { return "" }
	}
	pending := plan.Pending(p.ev, pl, outcomes, replaced, plan.FreshIndex(fresh), say)
	sections := plan.Sections(p.ev.Prev, pl, outcomes, fresh, replaced)
	werr := en.write(ctx, p, res, outcomes, sections, pending, replaced, fresh, &rv)
	res, err := en.conclude(p, res, outcomes, werr)
	if res.Reload == nil && en.refused != nil {
		res.Reload = &Reload{Refused: en.refused}
	}

	// The marker widens what counts as this host's (see Evidence.
	// Interrupted): it stays while a create or reset may have been carried
	// out without this pass seeing the answer, or GitLab and the disk may
	// disagree (a write failed).
	if werr == nil && !plan.InDoubt(pl, outcomes) && (pl.Changed() || p.ev.Interrupted) {
		if err := os.Remove(l.IncompletePath()); err != nil && !errors.Is(err, os.ErrNotExist) {
			en.warn("removing %s: %v", l.IncompletePath(), err)
		}
	}
	return res, en.next(p, outcomes, replaced, werr), err
}

// errNotCarriedOut is the outcome of a step the run did not get to.
var errNotCarriedOut = errors.New("not carried out: the run was stopped, or its time bound ran out, first")

// sends tells a step that sends GitLab a request; the others (a keep, a
// forget, a fault, a removal that waits for later runs or is left to the
// next pass) have their outcome at once.
func sends(s plan.Step) bool {
	return s.Waits == "" && !s.Deferred() && s.Fault == "" && s.Action != plan.Keep && s.Action != plan.Forget
}

// carryOut carries out one step of the pass.
func (en *engine) carryOut(ctx context.Context, s plan.Step) plan.Outcome {
	switch {
	case s.Waits != "":
		return plan.Outcome{ID: s.ID, Deleted: true, Err: plan.Fault(s.Waits)}
	case s.Deferred():
		return plan.Outcome{ID: s.ID, Deleted: true, Deferred: true}
	}
	oc := en.applyStep(ctx, s)
	if s.Executor == nil && !s.Held && oc.Err != nil && s.Prev != nil && (s.Fault == "" || s.Prev.Table == nil) {
		// The entry leaves (or, for a removal recorded earlier, has left)
		// the config; the removal stays pending.
		oc.Deleted = true
	}
	return oc
}

// compensateBound bounds the deletes that undo a pass's creates after its
// config could not be written: they are sent even when the run was
// stopped, or their runners' tokens would be lost.
const compensateBound = 30 * time.Second

// next says what the following pass must look at: the removals this one
// left to it (a removal GitLab refused waits for the next run); after an
// interrupted run, the runners a late request of that run may have left
// (in the scopes where this pass obtained tokens).
func (en *engine) next(p *Planned, outcomes []plan.Outcome, replaced map[int]bool, werr error) passHints {
	var h passHints
	if werr != nil || p.Degraded {
		return h
	}
	for i, s := range p.Plan.Steps {
		switch {
		case outcomes[i].Deferred:
			h.again = true
		case replaced[i]:
			h.again = true
			if h.replaced == nil {
				h.replaced = map[string]bool{}
			}
			h.replaced[removalKey(s.Prev.URL, s.Prev.ID)] = true
		}
	}
	if !p.ev.Interrupted || en.hints.interrupted {
		return h
	}
	seen := map[lookupScope]bool{}
	for i, s := range p.Plan.Steps {
		if s.Executor != nil && outcomes[i].Creds != nil {
			h.interrupted = true
			if sc := scopeOf(s.Executor); s.Executor.Client.PAT != "" && !seen[sc] {
				seen[sc] = true
				h.lookups = append(h.lookups, sc)
			}
		}
	}
	return h
}

// write writes the state file (recording the pending removals first: a
// removal is recorded before its entry leaves the config) and the config,
// then has gitlab-runner take it. Without the state file the entries that
// leave stay, for now. A config that cannot be written deletes again the
// runners this pass created: their tokens would be lost with it.
func (en *engine) write(ctx context.Context, p *Planned, res *Result, outcomes []plan.Outcome, sections []hostfs.Section,
	pending []hostfs.PendingRemoval, replaced map[int]bool, fresh *hostfs.LiveConfig, rv *reservations) error {
	l := en.l
	data := en.render(p, sections, false, len(pending) > 0)
	if data == nil {
		var err error
		res.ConfigRemoved, err = removeFiles(l.ConfigPath(), l.StatePath())
		return err
	}
	if err := en.writeState(p, outcomes, pending, rv.state); err != nil {
		// A removal is recorded before its entry leaves the config: the
		// entries stay (a replaced runner's too, beside its successor),
		// and the removals are not made.
		en.warn("writing state file %s: %v; the runners to remove stay in the config for now, and the next run decides again", l.StatePath(), err)
		clear(replaced)
		stay := fmt.Errorf("writing state file %s: %w; the entry stays in the config for now", l.StatePath(), err)
		for i, s := range p.Plan.Steps {
			if oc := &outcomes[i]; oc.Deferred || (s.Executor == nil && oc.Err != nil && oc.Deleted) {
				oc.Deferred, oc.Deleted = false, false
				if oc.Err == nil {
					oc.Err = stay
				}
			}
		}
		pending, sections = nil, plan.Sections(p.ev.Prev, p.Plan, outcomes, fresh, nil)
		data = en.render(p, sections, false, false)
	}
	changed, err := rv.updateConfig(l.ConfigPath(), data, fresh.Snap)
	res.ConfigChanged = changed
	if en.o.Diff {
		res.After = string(en.render(p, sections, true, len(pending) > 0))
	}
	if err != nil {
		en.compensate(ctx, p.Plan, outcomes)
		return fmt.Errorf("writing %s: %w", l.ConfigPath(), err)
	}
	if changed && (len(pending) > 0 || en.o.Runner.PID > 0) {
		// gitlab-runner takes the config just written (and, before the
		// runners that left it are deleted, must have).
		res.Reload = en.reloadRunner(ctx, len(pending) > 0 && !p.Degraded)
	}
	return nil
}

// hostSteps carries out the plan's changes to the host's own files.
func (en *engine) hostSteps(steps []plan.HostStep) error {
	for _, h := range steps {
		switch h.Kind {
		case plan.WriteSystemID:
			if _, err := hostfs.WriteAtomic(en.l.SystemIDPath(), []byte(h.SystemID+"\n")); err != nil {
				return fmt.Errorf("writing %s: %w", en.l.SystemIDPath(), err)
			}
		case plan.FreshIdentity:
			// The state file is written afresh by this pass; until then
			// it still names the other machine, which the next run sees
			// again and decides the same way.
		}
	}
	return nil
}

// noSpace ends a pass that could not reserve the disk space its writes
// need: nothing is changed in GitLab. Serving what can be served, the
// executors that needed a change are skipped and gitlab-runner starts
// with the config as it is.
func (en *engine) noSpace(p *Planned, res *Result, err error) (*Result, passHints, error) {
	if !en.o.Policy.Serve || en.o.Remove != "" {
		res.Warnings, res.LeftBehind = en.warnings, en.left
		return res, passHints{}, err
	}
	en.warn("%v; gitlab-runner starts with the config as it is", err)
	outcomes := make([]plan.Outcome, len(p.Plan.Steps))
	for i, s := range p.Plan.Steps {
		outcomes[i] = plan.Outcome{ID: s.ID}
		if s.Action != plan.Keep && s.Action != plan.Forget {
			outcomes[i].Err, outcomes[i].SkipReason = err, config.SkipNoSpace
		}
	}
	res.After = res.Before
	res, cerr := en.conclude(p, res, outcomes, nil)
	return res, passHints{}, cerr
}

// render gives the config to write; nil when a removal of the instance
// leaves nothing (no runner, no removal pending).
func (en *engine) render(p *Planned, sections []hostfs.Section, masked, pending bool) []byte {
	if en.o.Remove != "" && len(sections) == 0 && !pending {
		return nil
	}
	return hostfs.RenderConfig(en.l, p.ev.Desired.Globals, sections, masked)
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

// reservations hold the disk space of the config and state file a pass
// writes (nil: none taken).
type reservations struct {
	config, state *hostfs.Reservation
}

func (r reservations) release() {
	r.config.Release()
	r.state.Release()
}

// failConfigWrite and failStateWrite, when set (tests only:
// export_test.go), make the config or state file write fail after the
// space was reserved, as an I/O error would.
var failConfigWrite, failStateWrite func(path string) error

// updateConfig writes through the reservation when there is one.
func (r *reservations) updateConfig(path string, data []byte, was *hostfs.Snapshot) (bool, error) {
	if failConfigWrite != nil {
		if err := failConfigWrite(path); err != nil {
			return false, err
		}
	}
	if r.config == nil {
		return hostfs.Update(path, data, was)
	}
	return r.config.Update(data, was)
}

// Slack added to the sizes reserved: each runner's token, id and token
// times, and room for the rest.
const (
	reservePerRunner = 1 << 10
	reserveSlack     = 16 << 10
)

// reserve takes the disk space the config and state file will need after
// the plan, before any change in GitLab: what they hold now or will hold
// (as check mode renders them), plus room for every token obtained.
func (en *engine) reserve(p *Planned) (reservations, error) {
	var r reservations
	outcomes := p.Plan.Predict()
	gone := map[int]bool{}
	for i := range p.Plan.Steps {
		gone[i] = true
	}
	sections := plan.Sections(p.ev.Prev, p.Plan, outcomes, nil, gone)
	cfg := int64(len(hostfs.RenderConfig(en.l, p.ev.Desired.Globals, sections, false)))
	cfg = max(cfg, int64(len(p.live.Raw)))
	runners := int64(len(p.Plan.Steps) + len(p.live.Runners))
	st := plan.NewState(p.Plan, outcomes, p.ev.State, p.tokens)
	st.Host = &p.host
	state := int64(len(st.Encode()))
	if snap := p.ev.State.Snapshot(); snap != nil {
		state = max(state, int64(len(snap.Data)))
	}
	var err error
	if r.config, err = hostfs.Reserve(en.l.ConfigPath(), cfg+runners*reservePerRunner+reserveSlack); err != nil {
		return r, noSpaceError(en.l.ConfigPath(), err)
	}
	if r.state, err = hostfs.Reserve(en.l.StatePath(), state+runners*reservePerRunner+reserveSlack); err != nil {
		r.release()
		return reservations{}, noSpaceError(en.l.StatePath(), err)
	}
	return r, nil
}

// noSpaceError says that a file's space could not be reserved.
func noSpaceError(path string, err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("no space left to write %s (%w): free some space on its file system; nothing was changed in GitLab", path, err)
	}
	return fmt.Errorf("cannot reserve the space to write %s (%w); nothing was changed in GitLab", path, err)
}

// writeState writes the state file for the plan's outcomes, with the
// removals still pending and the executors skipped.
func (en *engine) writeState(p *Planned, outcomes []plan.Outcome, pending []hostfs.PendingRemoval, r *hostfs.Reservation) error {
	tokens := p.tokens
	if tokens == nil {
		tokens = p.ev.State.Tokens
	}
	next := plan.NewState(p.Plan, outcomes, p.ev.State, tokens)
	next.Host = &p.host
	// An executor not served keeps its record: the runner it names is
	// still this host's, healed or served again by a later run.
	for _, sk := range p.ev.Desired.Skipped {
		if old, ok := p.ev.State.Runners[sk.Name]; ok {
			next.Runners[sk.Name] = old
		}
	}
	next.Pending = pending
	next.Degraded = en.degradedRecords(p)
	if failStateWrite != nil {
		if err := failStateWrite(en.l.StatePath()); err != nil {
			return err
		}
	}
	if r != nil {
		_, err := r.Update(next.Encode(), p.ev.State.Snapshot())
		return err
	}
	_, err := hostfs.Update(en.l.StatePath(), next.Encode(), p.ev.State.Snapshot())
	return err
}

// compensate undoes, after the config could not be written, the runners
// this pass created: their tokens would be lost with it. Each is deleted
// with its own token; an adopted runner keeps its new (lost) token and the
// next run adopts it again.
func (en *engine) compensate(ctx context.Context, pl plan.Plan, outcomes []plan.Outcome) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), compensateBound)
	defer cancel()
	_ = en.each(ctx, len(pl.Steps), func(i int) error {
		s, oc := pl.Steps[i], &outcomes[i]
		if oc.Creds == nil || (s.Action != plan.Create && s.Action != plan.Replace) {
			return nil
		}
		c, err := en.gitlabFor(s.ClientKey)
		if err == nil {
			_, err = c.RemoveByToken(ctx, oc.Creds.Token)
		}
		if err != nil {
			en.warn("%s: runner %d was created but its token could not be written, and deleting it again failed (%v); the next run finds it by this host's identity", s.Name, oc.Creds.ID, err)
			return nil
		}
		en.warn("%s: runner %d was created but its token could not be written; it was deleted again", s.Name, oc.Creds.ID)
		oc.Err = errors.Join(oc.Err, fmt.Errorf("created runner %d, but the config could not be written; deleted it again", oc.Creds.ID))
		oc.Creds = nil
		return nil
	})
}

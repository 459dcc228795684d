package core

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/config"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/gitlab"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/hostfs"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/input"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/plan"
)

// removalsLater are the steps carried out in apply's second phase: the
// deletes and detaches of runners that leave the config (all of a sync's;
// an unregister removes everything in one phase).
func (en *engine) removalsLater(p *Planned) map[int]bool {
	later := map[int]bool{}
	if p.unregister {
		return later
	}
	for i, s := range p.Plan.Steps {
		if s.Executor == nil && (s.Action == plan.Delete || s.Action == plan.Detach) && s.Fault == "" {
			later[i] = true
		}
	}
	return later
}

// reservations hold the disk space of the config and state file a run
// writes (nil: none taken).
type reservations struct {
	config, state *hostfs.Reservation
}

func (r reservations) release() {
	r.config.Release()
	r.state.Release()
}

// failConfigWrite, when set (tests only: export_test.go), makes the
// config write fail after the space was reserved, as an I/O error would.
var failConfigWrite func(path string) error

// update writes through the reservation when there is one.
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
		return r, noSpace(en.l.ConfigPath(), err)
	}
	if r.state, err = hostfs.Reserve(en.l.StatePath(), state+runners*reservePerRunner+reserveSlack); err != nil {
		r.release()
		return reservations{}, noSpace(en.l.StatePath(), err)
	}
	return r, nil
}

// noSpace says that a file's space could not be reserved.
func noSpace(path string, err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("no space left to write %s (%w): free some space on its file system; nothing was changed in GitLab", path, err)
	}
	return fmt.Errorf("cannot reserve the space to write %s (%w); nothing was changed in GitLab", path, err)
}

// heldEntry is what became of the config entry of an executor not served.
type heldEntry int

const (
	noEntry      heldEntry = iota // it had none
	entryKept                     // its last good entry stays
	entryDropped                  // GitLab rejected its token: it left the config
)

// kept turns "whether the config holds an entry" into a heldEntry.
func kept(held bool) heldEntry {
	if held {
		return entryKept
	}
	return noEntry
}

// skip records an executor the run does not serve, and says so.
func (en *engine) skip(name, file, reason string, cause error, entry heldEntry) {
	en.mu.Lock()
	for _, s := range en.skipped {
		if s.Name == name {
			en.mu.Unlock()
			return
		}
	}
	sk := SkippedExecutor{Name: name, File: file, Reason: reason, Cause: en.describe(cause), Kept: entry == entryKept}
	if ie := input.As(cause); ie != nil && ie.Fix != "" {
		sk.Fix = en.o.Secrets.Redact(ie.Fix)
	}
	en.skipped = append(en.skipped, sk)
	en.mu.Unlock()
	where := name
	if file != "" {
		where += " (" + file + ")"
	}
	what := map[heldEntry]string{
		noEntry:      "it has no entry in the config yet",
		entryKept:    "its last good entry stays in the config",
		entryDropped: "GitLab rejected the token of its last good entry, which left the config (the state file still names its runner, healed once the file is fixed)",
	}[entry]
	en.warn("executor %s is not served (%s): %s; %s", where, reason, sk.Cause, what)
}

// describe renders an error as the front end names options, redacted.
func (en *engine) describe(err error) string {
	if err == nil {
		return ""
	}
	if ie := input.As(err); ie != nil && ie.Error() == err.Error() {
		return en.o.Secrets.Redact(ie.Render(en.o.Names))
	}
	return en.o.Secrets.Redact(err.Error())
}

// skipFailed, when the run is tolerant, takes the executors whose runner
// could not be obtained (registration, adopt or replace failed, or the
// plan found a fault only the administrator can fix) out of the run's
// failures: skipped, their entry (if any) kept.
func (en *engine) skipFailed(p *Planned, outcomes []plan.Outcome) {
	if !en.o.Tolerant {
		return
	}
	for i, s := range p.Plan.Steps {
		oc := outcomes[i]
		if s.Executor == nil || oc.Err == nil || oc.Creds != nil {
			continue
		}
		if s.Action == plan.Create || s.Action == plan.Adopt || s.Action == plan.Replace || s.Fault != "" {
			en.skip(s.Name, s.Executor.File, config.SkipFailed, oc.Err, kept(s.Prev != nil))
		}
	}
}

// isSkipped reports whether the run skipped an executor.
func (en *engine) isSkipped(name string) bool {
	en.mu.Lock()
	defer en.mu.Unlock()
	for _, s := range en.skipped {
		if s.Name == name {
			return true
		}
	}
	return false
}

// skippedResults are the skipped executors with the time runs started
// skipping each (from the state file).
func (en *engine) skippedResults(p *Planned) []SkippedExecutor {
	en.mu.Lock()
	defer en.mu.Unlock()
	out := append([]SkippedExecutor(nil), en.skipped...)
	for i := range out {
		since := en.o.Now()
		if p != nil && p.ev.State != nil {
			if d, ok := p.ev.State.Degraded[out[i].Name]; ok && !d.Since.IsZero() {
				since = d.Since
			}
		}
		out[i].Since = since.UTC().Format(time.RFC3339)
	}
	return out
}

// degradedRecords are the state file's record of the skipped executors.
func (en *engine) degradedRecords(p *Planned) map[string]hostfs.DegradedExecutor {
	list := en.skippedResults(p)
	if len(list) == 0 {
		return nil
	}
	out := map[string]hostfs.DegradedExecutor{}
	for _, s := range list {
		since, _ := time.Parse(time.RFC3339, s.Since)
		out[s.Name] = hostfs.DegradedExecutor{Since: since, Reason: s.Reason, Cause: s.Cause, Fix: s.Fix, Kept: s.Kept}
	}
	return out
}

// removed says which second-phase removals GitLab confirmed.
type removed struct {
	later, replaced map[int]bool
}

// pendingRemovals are the removals to record in the state file: before
// the second phase (done nil) every one it will make, after it those
// GitLab did not confirm, each with GitLab's last answer and its proof
// that the runner is this host's (its token; this host's system id and
// the runner's description, for when the token is dead).
func (en *engine) pendingRemovals(p *Planned, outcomes []plan.Outcome, later, replaced map[int]bool, freshByRef map[plan.Ref]hostfs.LiveRunner, done *removed) []hostfs.PendingRemoval {
	recorded := map[plan.Ref]hostfs.PendingRemoval{}
	for _, pr := range p.ev.State.Pending {
		key, _ := gitlab.NormalizeURL(pr.URL)
		recorded[plan.Ref{ClientKey: key, ID: pr.ID}] = pr
	}
	now := en.o.Now().UTC().Truncate(time.Second)
	// The description of a runner found by listing (a leftover, a
	// duplicate), which has no entry.
	listed := func(key string, id int64) string {
		for _, s := range p.ev.Found[key] {
			if s.ID == id {
				return s.Description
			}
		}
		return ""
	}
	record := func(action plan.Action, name, url string, id int64, prev *hostfs.LiveRunner, err error) hostfs.PendingRemoval {
		key, _ := gitlab.NormalizeURL(url)
		ref := plan.Ref{ClientKey: key, ID: id}
		token, description := "", listed(key, id)
		if prev != nil {
			token, description = prev.Token, prev.Name
		}
		if f, ok := freshByRef[ref]; ok && id != 0 && f.Token != "" {
			token = f.Token // rotated by gitlab-runner during the run
		}
		pr := hostfs.PendingRemoval{Action: string(action), Name: name, URL: url, ID: id, Token: token,
			SystemID: en.systemID, Description: description, Since: now}
		if old, ok := recorded[ref]; ok && prev != nil && prev.Table == nil {
			// Recorded by an earlier run, not in the config: it keeps the
			// proof it was recorded with, never one made up now.
			pr.SystemID, pr.Description = old.SystemID, old.Description
		}
		if old, ok := recorded[ref]; ok && !old.Since.IsZero() {
			pr.Since = old.Since
		}
		if err != nil {
			pr.LastError = en.o.Secrets.Redact(err.Error())
		}
		return pr
	}
	var out []hostfs.PendingRemoval
	for i, s := range p.Plan.Steps {
		oc := outcomes[i]
		switch {
		case later[i]:
			if done != nil && done.later[i] {
				continue
			}
			out = append(out, record(s.Action, s.Name, s.URL, s.ID, s.Prev, oc.Err))
		case replaced[i]:
			if done != nil && done.replaced[i] {
				continue
			}
			out = append(out, record(plan.Delete, s.Prev.Name, s.Prev.URL, s.Prev.ID, s.Prev, nil))
		case s.Executor == nil && s.Fault != "" && s.Prev != nil && s.Prev.Table == nil:
			// A pending removal the plan cannot make yet: it stays pending.
			out = append(out, record(s.Action, s.Name, s.URL, s.ID, s.Prev, oc.Err))
		}
	}
	return out
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
	if r != nil {
		_, err := r.Update(next.Encode(), p.ev.State.Snapshot())
		return err
	}
	_, err := hostfs.Update(en.l.StatePath(), next.Encode(), p.ev.State.Snapshot())
	return err
}

// compensate undoes, after the config could not be written, the runners
// this run created: their tokens would be lost with it. Each is deleted
// with its own token; an adopted runner keeps its new (lost) token and
// the next run adopts it again.
func (en *engine) compensate(ctx context.Context, pl plan.Plan, outcomes []plan.Outcome) {
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

// removeLater is the second phase: the removals of runners that left the
// config, and of the runners replaced. Nothing is sent on a degraded
// start: GitLab did not answer, the removals stay pending.
func (en *engine) removeLater(ctx context.Context, p *Planned, outcomes []plan.Outcome, later, replaced map[int]bool, freshByRef map[plan.Ref]hostfs.LiveRunner) *removed {
	done := &removed{later: map[int]bool{}, replaced: map[int]bool{}}
	if p.Degraded {
		for i := range later {
			outcomes[i].Err = errors.New("GitLab did not answer; the removal waits for it")
		}
		return done
	}
	var idx []int
	for i := range p.Plan.Steps {
		if later[i] || replaced[i] {
			idx = append(idx, i)
		}
	}
	ok := make([]bool, len(idx))
	_ = en.each(ctx, len(idx), func(j int) error {
		i := idx[j]
		s := p.Plan.Steps[i]
		if later[i] {
			if s.Prev != nil {
				prev := *s.Prev
				if f, found := freshByRef[s.Ref()]; found && s.ID != 0 && f.Token != "" {
					prev.Token = f.Token // rotated by gitlab-runner during the run
				}
				s.Prev = &prev
			}
			oc := en.applyStep(ctx, s)
			oc.Deleted = true // the entry has left the config either way
			outcomes[i] = oc
			ok[j] = oc.Err == nil
			return nil
		}
		token := s.Prev.Token
		if f, found := freshByRef[plan.Ref{ClientKey: s.ClientKey, ID: s.Prev.ID}]; found && f.Token != "" {
			token = f.Token
		}
		c, err := en.gitlabFor(s.ClientKey)
		if err == nil {
			_, err = c.RemoveByToken(ctx, token) // deleted, or its token is already dead
		}
		if err != nil {
			en.warn("%s: the new runner (id %d) is in place, but removing the old one (id %d) failed (%v); the next run removes it", s.Name, outcomes[i].Creds.ID, s.Prev.ID, err)
			return nil
		}
		ok[j] = true
		return nil
	})
	for j, i := range idx {
		if !ok[j] {
			continue
		}
		if later[i] {
			done.later[i] = true
		} else {
			done.replaced[i] = true
		}
	}
	return done
}

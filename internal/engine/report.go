package engine

import (
	"errors"
	"time"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/config"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/hostfs"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/input"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/plan"
)

// What a pass reports: the result of its steps as plan.Conclude reads
// them, the runners left alone, and the executors not served.

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

// The executors a run does not serve: skipped for an invalid file, while
// GitLab is down, or for a failure the policy skips (plan.Conclude), each
// named once with its file, the cause, the fix and what became of its
// last good entry.

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
	return en.o.Secrets.Redact(input.Describe(err, en.o.Names))
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

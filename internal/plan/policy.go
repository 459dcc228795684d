package plan

import (
	"fmt"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/config"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/input"
)

// Policy is what failures do to a run, as the front end asks: a service
// start serves what it can, the Ansible module and --check are all or
// nothing, --strict refuses even a degraded start. The plan turns it into
// each step's OnFailure; Conclude reads only the steps.
type Policy struct {
	// Serve: an executor that cannot be served (its registration, adopt or
	// replace fails, or the plan found a fault in it) is skipped and its
	// last good entry kept; a settings update that fails is a warning.
	Serve bool
	// CleanupFails: a removal GitLab does not confirm fails the run; else
	// it is a warning and the removal stays pending for later runs.
	CleanupFails bool
	// Strict: GitLab unreachable fails the run even when every executor
	// has a token on disk (no degraded start).
	Strict bool
	// Unregister: the run removes the instance; every removal must be made.
	Unregister bool
}

// OnFailure is what a step's failure does to the run.
type OnFailure string

// What a failure does.
const (
	// FailRun: the run fails (exit 1, the task fails).
	FailRun OnFailure = "fail"
	// SkipExecutor: the executor is not served this run; its last good
	// entry stays in the config, the others start.
	SkipExecutor OnFailure = "skip"
	// Warn: a warning; a removal stays pending, an update is tried again.
	Warn OnFailure = "warn"
)

// failureOf decides what a step's failure does under the policy.
func (pol Policy) failureOf(s Step) OnFailure {
	switch {
	case s.Executor == nil && pol.Unregister:
		return FailRun
	case s.Executor == nil && pol.CleanupFails:
		return FailRun
	case s.Executor == nil:
		return Warn
	case !pol.Serve:
		return FailRun
	case s.Action == Update:
		return Warn
	}
	return SkipExecutor
}

// withFailures sets each step's OnFailure.
func (p Plan) withFailures(pol Policy) Plan {
	for i := range p.Steps {
		p.Steps[i].OnFailure = pol.failureOf(p.Steps[i])
	}
	return p
}

// Verdict is what the outcomes of a plan's steps mean for the run.
type Verdict struct {
	// Errors fail the run.
	Errors []error
	// Warnings are said in the journal and the result; FailsWith names
	// the option that would make each a failure.
	Warnings []Warning
	// Skipped are the executors not served this run.
	Skipped []SkippedStep
	// Pending marks, by step, removals that stay pending.
	Pending map[int]bool
	// Changed: something was done to GitLab.
	Changed bool
}

// Warning is a failure the run only warns about.
type Warning struct {
	Err error
	// Then says what becomes of it.
	Then string
	// FailsWith is the option that makes it a failure ("" for none).
	FailsWith input.Option
}

// SkippedStep is an executor a step's failure took out of the run.
type SkippedStep struct {
	Name   string
	File   string
	Reason string
	Cause  error
	// Kept: its last good entry stays in the config.
	Kept bool
}

// Conclude reads the outcomes of a plan's steps — the run's, or the
// plan's predicted ones (check mode) — as their OnFailure says. It is
// pure: check mode and a real run conclude by the same code.
func Conclude(p Plan, outcomes []Outcome) Verdict {
	v := Verdict{Pending: map[int]bool{}}
	served, skipped := 0, []error(nil)
	for i, s := range p.Steps {
		oc := outcomes[i]
		if s.Action != Keep && s.Action != Forget && !oc.Forgot && (oc.Err == nil || oc.Creds != nil || oc.Deleted) {
			v.Changed = true
		}
		if oc.Err == nil {
			if s.Executor != nil {
				served++
			}
			continue
		}
		err := fmt.Errorf("%s %s: %w", s.Action, s.Name, oc.Err)
		if s.Executor == nil {
			v.Pending[i] = oc.Deleted
		}
		switch s.OnFailure {
		case Warn:
			switch {
			case s.Executor == nil:
				then := "its entry stays in the config"
				if oc.Deleted {
					then = "its entry has left the config and later runs retry the removal"
				}
				v.Warnings = append(v.Warnings, Warning{Err: err, Then: then, FailsWith: input.Strict})
			default:
				served++
				v.Warnings = append(v.Warnings, Warning{Err: err, Then: "the runner works with the settings GitLab has, the next run tries again"})
			}
		case SkipExecutor:
			if oc.Creds != nil {
				served++
				v.Errors = append(v.Errors, err)
				continue
			}
			reason := oc.SkipReason
			if reason == "" {
				reason = config.SkipFailed
			}
			v.Skipped = append(v.Skipped, SkippedStep{Name: s.Name, File: s.Executor.File, Reason: reason, Cause: oc.Err, Kept: s.Prev != nil})
			skipped = append(skipped, err)
		default:
			v.Errors = append(v.Errors, err)
		}
	}
	// Serve what can be served; when that is nothing, fail.
	if served == 0 && len(skipped) > 0 && len(v.Errors) == 0 {
		v.Errors = skipped
	}
	return v
}

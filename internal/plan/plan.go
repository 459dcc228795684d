// Package plan decides, from what a run knows, what it does to each
// runner. It is pure: Evidence in, Plan out, no request and no file. The
// rules that decide live here once, as a table (rules.go) that docs/design.md
// shows; the engine gathers the evidence and carries the plan out.
package plan

import (
	"fmt"
	"time"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/config"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/gitlab"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/hostfs"
)

// Action is what the plan does for one runner.
type Action string

// The actions of a plan.
const (
	Keep    Action = "keep"
	Create  Action = "create"
	Adopt   Action = "adopt"   // runner exists in GitLab; a new token is obtained by reset
	Replace Action = "replace" // the old runner is unusable; a new one is created
	Update  Action = "update"  // server-side settings drifted
	Delete  Action = "delete"
	// Detach removes only this host's runner manager from a runner another
	// host uses too (DELETE /runners/managers); the runner stays.
	Detach Action = "detach"
	// Forget takes an entry out of this host's config and sends nothing:
	// its runner is gone, or is not this host's to delete (named in Left).
	Forget Action = "forget"
)

// Past tense for output lines.
func (a Action) Past() string {
	switch a {
	case Keep:
		return "kept"
	case Create:
		return "created"
	case Adopt:
		return "adopted"
	case Replace:
		return "replaced"
	case Update:
		return "updated"
	case Delete:
		return "deleted"
	case Detach:
		return "detached"
	case Forget:
		return "forgotten"
	}
	return string(a)
}

// Ref identifies a runner everywhere: ids are numbered per GitLab, so the
// same id on two GitLabs is two runners.
type Ref struct {
	ClientKey string // normalised GitLab URL
	ID        int64
}

// Via says how a delete reaches GitLab.
type Via int

// The ways to delete.
const (
	// ByToken: DELETE /runners with the runner's own token (from this
	// host's config: the token is the proof the runner is this host's).
	ByToken Via = iota + 1
	// ByID: DELETE /runners/:id with the PAT (managers proved it is this
	// host's).
	ByID
	// Nothing: nothing to send (Forget).
	Nothing
)

// Step is one entry of a plan.
type Step struct {
	Action Action
	// Rule names the row of the decision table that chose this step.
	Rule string
	// Name is the executor name (for deletes: the name the runner carried).
	Name string
	// Executor is the declared executor (nil for deletes).
	Executor *config.Executor
	// ClientKey is the normalised GitLab URL the step talks to.
	ClientKey string
	URL       string
	// ID is the runner this step acts on (0 for create).
	ID int64
	// Prev is the runner's entry in the live config, if any.
	Prev *hostfs.LiveRunner
	// Via is how a delete reaches GitLab.
	Via Via
	// DeleteOld makes a replace remove the runner it supersedes (by
	// token) — last, once the new token is in the config (make before break).
	DeleteOld bool
	// UpdateAfterAdopt sends the desired settings after an adopt.
	UpdateAfterAdopt bool
	// Verified is GitLab's answer to verify (keep/update): its token expiry
	// is the one gitlab-runner needs to rotate in time.
	Verified *gitlab.Credentials
	// Unverified: a keep made without asking GitLab (degraded start).
	Unverified bool
	// Held: the step is the last good entry of a declared executor whose
	// file is invalid (Previous.Held), kept verbatim in its place, or
	// forgotten when GitLab rejects its token.
	Held bool
	// Fault, when set, fails this step without a request: the plan found
	// something only the administrator can fix (an orphaned runner, a
	// lookup the token may not make, a scope it lacks). Other steps run.
	Fault string
	// Waits, when set, is why a removal is not made by this pass at all:
	// its entry leaves the config and the removal is recorded as pending,
	// reported as failed with this reason (GitLab did not answer: a
	// degraded start). Later runs make it.
	Waits string
	// OnFailure is what a failure of this step does to the run (from the
	// run's Policy).
	OnFailure OnFailure
	Settings  gitlab.Settings
	// Have is what GitLab holds (read from GitLab, or last applied per the
	// state file) when the plan updates the settings: the diff's "before".
	Have   *gitlab.Settings
	Reason string
}

// Ref identifies the runner a step acts on.
func (s Step) Ref() Ref { return Ref{s.ClientKey, s.ID} }

// Plan is what one pass of a run carries out: the host steps first, then
// the steps, one per runner.
type Plan struct {
	Host  []HostStep
	Steps []Step
	// Left are the runners with this host's identity (or in its files)
	// that the plan leaves alone because nothing proves they are this
	// host's, or another host uses them: named, so an administrator (or
	// the fleet clean-up) can remove them.
	Left []Left
}

// Left is a runner the plan leaves alone, and why.
type Left struct {
	Ref
	URL         string
	Description string
	// LastContact is its last contact with GitLab, when known.
	LastContact time.Time
	Why         string
}

// Note is Left as a sentence.
func (l Left) Note() string {
	s := fmt.Sprintf("runner %d on %s", l.ID, l.ClientKey)
	if l.Description != "" {
		s += fmt.Sprintf(" (%q", l.Description)
		if !l.LastContact.IsZero() {
			s += ", last contact " + l.LastContact.UTC().Format(time.RFC3339)
		}
		s += ")"
	}
	return s + ": " + l.Why + "; leaving it alone"
}

// Changed reports whether the plan does anything to GitLab.
func (p Plan) Changed() bool {
	for _, s := range p.Steps {
		if s.Action != Keep && s.Action != Forget && s.Fault == "" {
			return true
		}
	}
	return false
}

// Outcome is what carrying out one step achieved. A step can half succeed
// (an adopt that got its token but failed to update settings): Creds is
// kept whenever GitLab handed out a token, whatever Err says.
type Outcome struct {
	ID       int64
	Creds    *gitlab.Credentials
	Obtained time.Time
	// Applied is what GitLab now stores, when this step sent it.
	Applied *gitlab.Settings
	// Deleted: the runner left this host (deleted, detached or forgotten):
	// its entry leaves the config.
	Deleted bool
	// Forgot: a delete found the runner's token dead when it was sent;
	// nothing proves it is gone, so it is reported as forgotten.
	Forgot bool
	Err    error
	// Predicted: not carried out, foretold from the plan (check mode).
	Predicted bool
	// Deferred: a removal of a runner whose token gitlab-runner holds,
	// left to the next pass (the entry leaves the config now; the runner
	// goes once gitlab-runner has taken the config without it).
	Deferred bool
	// SkipReason says why an executor is skipped when a step fails for a
	// reason of the host's (config.SkipNoSpace); empty: its own failure.
	SkipReason string
}

// Predict is what carrying out the plan does when GitLab does what it is
// asked: the outcomes check mode reports, so that check mode and a real
// run are told by the same code. A step with a fault fails; a create or
// replace gets a runner whose id and token are not known yet.
func (p Plan) Predict() []Outcome {
	out := make([]Outcome, len(p.Steps))
	for i, s := range p.Steps {
		o := Outcome{ID: s.ID, Predicted: true}
		switch {
		case s.Fault != "":
			// A removal recorded by an earlier run has no entry: it stays
			// pending.
			o.Err, o.Deleted = faultError(s.Fault), s.Executor == nil && !s.Held && s.Prev != nil && s.Prev.Table == nil
		case s.Waits != "":
			o.Err, o.Deleted = faultError(s.Waits), true
		case s.Action == Create || s.Action == Replace || s.Action == Adopt:
			o.Creds = &gitlab.Credentials{ID: s.ID}
		case s.Executor == nil && s.Action != Keep:
			o.Deleted = true
		}
		if s.Fault == "" && (s.Action == Create || s.Action == Replace || s.Action == Adopt || s.Action == Update) {
			a := s.Settings
			o.Applied = &a
		}
		out[i] = o
	}
	return out
}

// Fault is the error of a step the plan knew would fail.
type Fault string

func (f Fault) Error() string { return string(f) }

func faultError(s string) error { return Fault(s) }

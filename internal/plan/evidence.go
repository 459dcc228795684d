package plan

import (
	"time"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/config"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/gitlab"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/hostfs"
)

// Evidence is everything a run knows when it decides: what is declared,
// what the disk holds, and what GitLab answered. The engine gathers it
// with read-only requests; Build turns it into a Plan.
type Evidence struct {
	Desired *config.Desired
	// Prev is the live config matched against the declaration.
	Prev  Previous
	State *hostfs.State
	// SystemID is this host's gitlab-runner system id.
	SystemID string
	// Interrupted: the previous run did not finish (its marker is on
	// disk). A runner with this host's identity and no manager at all is
	// then taken as that run's: it was killed between creating the runner
	// and recording this host.
	Interrupted bool
	// Verified holds the verify answer of each executor's token on disk,
	// by executor name; Undeclared that of entries no longer declared, by
	// runner. A token GitLab did not answer for is absent.
	Verified   map[string]gitlab.Verification
	Undeclared map[Ref]gitlab.Verification
	// HeldVerified holds the verify answer of each held entry's token
	// (Previous.Held: the last good entry of an executor whose file is
	// invalid), by executor name.
	HeldVerified map[string]gitlab.Verification
	// Found lists, per GitLab, the runners tagged with this host and
	// instance; a GitLab absent from Found and from ListDenied was not
	// asked. ListDenied says what the token lacks to list.
	Found      map[string][]gitlab.Summary
	ListDenied map[string]string
	// Runners are the runners read by id (details, managers).
	Runners map[Ref]*RunnerFacts
	// Tokens says, per GitLab, what its personal access token may do, as
	// far as GitLab told (GET /personal_access_tokens/self).
	Tokens map[string]Capabilities
	// Now is when the evidence was gathered: managers and runners not
	// seen for StaleAfter before it are stale.
	Now time.Time
	// Inherited are config entries of another machine this prefix was
	// copied from (see Lineage): never touched, only named.
	Inherited []hostfs.LiveRunner
	// HostSteps are the changes to the host's own files the pass's
	// identity needs (Identify).
	HostSteps []HostStep
	// Policy is what failures do (each step's OnFailure).
	Policy Policy
}

// StaleAfter is how long GitLab keeps a runner manager nobody uses:
// Ci::RunnerManager::STALE_TIMEOUT (app/models/ci/runner_manager.rb),
// 7 days in every supported release; the hourly
// Ci::Runners::StaleManagersCleanupService deletes older ones. A host or
// runner not seen for longer is taken to be gone.
const StaleAfter = 7 * 24 * time.Hour

// NewEvidence returns evidence with every map ready.
func NewEvidence() Evidence {
	return Evidence{Verified: map[string]gitlab.Verification{}, Undeclared: map[Ref]gitlab.Verification{}, HeldVerified: map[string]gitlab.Verification{},
		Found: map[string][]gitlab.Summary{}, ListDenied: map[string]string{}, Runners: map[Ref]*RunnerFacts{},
		Tokens: map[string]Capabilities{}, State: hostfs.NewState()}
}

// Facts returns the facts of a runner, creating them when absent.
func (ev *Evidence) Facts(ref Ref) *RunnerFacts {
	f := ev.Runners[ref]
	if f == nil {
		f = &RunnerFacts{}
		ev.Runners[ref] = f
	}
	return f
}

// RunnerFacts is what GitLab said of one runner read by id.
type RunnerFacts struct {
	// Details is GET /runners/:id's answer (nil: not read, or not found).
	Details *gitlab.Runner
	// Gone: GitLab answered 404 for the runner (or its managers).
	Gone bool
	// Forbidden: the token may not read it (403). Never "gone".
	Forbidden bool
	// Unreadable says why reading it failed otherwise (5xx, no answer):
	// nothing may be decided about it.
	Unreadable string
	// Managers are the hosts that used its token; ManagersRead tells
	// whether they were read. NoManagers: this GitLab has no managers
	// route (before 17.1): who uses the runner cannot be known.
	Managers     []gitlab.Manager
	ManagersRead bool
	NoManagers   bool
}

// Capabilities is what a personal access token may do, from its scopes.
type Capabilities struct {
	// Known: GitLab told the token's scopes.
	Known  bool
	Scopes []string
}

// May reports whether the token has one of the scopes; an unknown token
// is assumed to (GitLab will say otherwise when asked).
func (c Capabilities) May(scopes ...string) bool {
	if !c.Known {
		return true
	}
	for _, s := range c.Scopes {
		for _, w := range scopes {
			if s == w {
				return true
			}
		}
	}
	return false
}

// What each kind of request needs (lib/api/ci/runners.rb, lib/api/user_runners.rb).
var (
	scopesCreate = []string{"api", "create_runner"}
	scopesManage = []string{"api", "manage_runner"}
)

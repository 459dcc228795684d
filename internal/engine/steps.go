package engine

// The steps of a plan as requests to GitLab: one function per action.

import (
	"context"
	"fmt"
	"time"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/gitlab"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/plan"
)

func (en *engine) applyStep(ctx context.Context, s plan.Step) plan.Outcome {
	if s.Fault != "" {
		return plan.Outcome{ID: s.ID, Err: plan.Fault(s.Fault)}
	}
	if s.Action == plan.Keep || s.Action == plan.Forget {
		return plan.Outcome{ID: s.ID, Deleted: s.Action == plan.Forget}
	}
	c, err := en.gitlabFor(s.ClientKey)
	if err != nil {
		return plan.Outcome{ID: s.ID, Err: err}
	}
	switch s.Action {
	case plan.Update:
		if err := c.UpdateRunner(ctx, s.ID, s.Settings); err != nil {
			return plan.Outcome{ID: s.ID, Err: err}
		}
		applied := s.Settings
		return plan.Outcome{ID: s.ID, Applied: &applied}
	case plan.Create, plan.Replace:
		return en.create(ctx, c, s)
	case plan.Adopt:
		return en.adopt(ctx, c, s)
	case plan.Delete:
		return en.remove(ctx, c, s)
	case plan.Detach:
		// Another host uses the runner: only this host's manager goes, as
		// gitlab-runner's own unregister does (commands/unregister.go).
		switch r, err := c.RemoveManager(ctx, s.Prev.Token, en.systemID); {
		case err != nil:
			return plan.Outcome{ID: s.ID, Err: err}
		case r == gitlab.Rejected:
			return plan.Outcome{ID: s.ID, Err: fmt.Errorf("GitLab rejected the token of runner %d (403), so this host's manager could not be removed from it", s.ID)}
		}
		return plan.Outcome{ID: s.ID, Deleted: true}
	}
	return plan.Outcome{ID: s.ID, Err: fmt.Errorf("unknown action %q", s.Action)}
}

// create registers a new runner. Make before break: a runner it replaces
// (DeleteOld) leaves the config when its successor arrives, and is deleted
// by the next pass.
func (en *engine) create(ctx context.Context, c *gitlab.Client, s plan.Step) plan.Outcome {
	e := s.Executor
	made, err := c.CreateRunner(ctx, gitlab.CreateRequest{RunnerType: e.RunnerType, GroupID: e.GroupID, ProjectID: e.ProjectID,
		Settings: s.Settings, RegistrationToken: e.Client.RegistrationToken})
	if err != nil {
		return plan.Outcome{Err: err}
	}
	if made.FellBack != "" {
		en.warn("%s", made.FellBack)
	}
	creds := made.Credentials
	en.o.Secrets.Add(creds.Token)
	en.markThisHost(ctx, c, s, creds)
	applied := s.Settings
	return plan.Outcome{ID: creds.ID, Creds: &creds, Obtained: en.now(), Applied: &applied}
}

// adopt gives an existing runner of this host a new token, then sends the
// declared settings when GitLab's differ.
func (en *engine) adopt(ctx context.Context, c *gitlab.Client, s plan.Step) plan.Outcome {
	creds, found, err := c.ResetToken(ctx, s.ID)
	switch {
	case err != nil:
		return plan.Outcome{ID: s.ID, Err: err}
	case found == gitlab.Gone:
		return plan.Outcome{ID: s.ID, Err: fmt.Errorf("runner %d disappeared from GitLab before its token could be reset; the next run creates a new one", s.ID)}
	case found == gitlab.Forbidden:
		return plan.Outcome{ID: s.ID, Err: fmt.Errorf("GitLab refused to reset the token of runner %d (403): the personal access token needs manage_runner (or api) and a role that may manage it", s.ID)}
	}
	en.o.Secrets.Add(creds.Token)
	creds.ID = s.ID
	en.markThisHost(ctx, c, s, creds)
	o := plan.Outcome{ID: s.ID, Creds: &creds, Obtained: en.now()}
	if s.UpdateAfterAdopt {
		if err := c.UpdateRunner(ctx, s.ID, s.Settings); err != nil {
			o.Err = fmt.Errorf("token reset, but updating settings failed: %w", err)
			return o
		}
	}
	applied := s.Settings
	o.Applied = &applied
	return o
}

// remove deletes a runner the plan proved this host's: with its own
// token, or by id.
func (en *engine) remove(ctx context.Context, c *gitlab.Client, s plan.Step) plan.Outcome {
	if s.Via == plan.ByID {
		if _, err := c.RemoveByID(ctx, s.ID); err != nil {
			return plan.Outcome{ID: s.ID, Err: err}
		}
		return plan.Outcome{ID: s.ID, Deleted: true}
	}
	r, err := c.RemoveByToken(ctx, s.Prev.Token)
	if err != nil {
		return plan.Outcome{ID: s.ID, Err: err}
	}
	if r == gitlab.Rejected {
		// Its token stopped working between observing and now (GitLab
		// came back, or the token was reset elsewhere): nothing proves
		// the runner is still this host's to delete, nor that it is gone.
		en.warn("runner %s (id %d) on %s: its token is no longer valid; its entry leaves the config, and the runner, if it still exists, is left alone", s.Name, s.ID, s.URL)
		return plan.Outcome{ID: s.ID, Deleted: true, Forgot: true}
	}
	return plan.Outcome{ID: s.ID, Deleted: true}
}

func (en *engine) now() time.Time { return en.o.Now().UTC().Truncate(time.Second) }

// markThisHost verifies a token just obtained, sending this host's system
// id: GitLab then records this host as the runner's manager, the mark that
// proves later (after a lost config, say) that the runner is this host's.
// A failure is not fatal: the next verify records it.
func (en *engine) markThisHost(ctx context.Context, c *gitlab.Client, s plan.Step, creds gitlab.Credentials) {
	if _, err := c.Verify(ctx, creds.Token, en.systemID); err != nil {
		en.warn("%s (id %d): could not record this host as its manager yet (%v); the next run does", s.Name, creds.ID, err)
	}
}

package core

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/config"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/gitlab"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/hostfs"
)

// Outcome is what carrying out one step achieved. A step can half succeed
// (an adopt that got its token but failed to update settings): Creds is
// kept whenever GitLab handed out a token, whatever Err says.
type Outcome struct {
	ID       int64
	Creds    *gitlab.Credentials
	Obtained time.Time
	// Applied is what GitLab now stores, when this step sent it.
	Applied *gitlab.Settings
	Deleted bool
	Err     error
}

// applySteps carries out the plan's steps, in parallel up to the
// concurrency limit.
func (en *engine) applySteps(ctx context.Context, plan Plan) []Outcome {
	out := make([]Outcome, len(plan.Steps))
	_ = en.parallel(len(plan.Steps), func(i int) error {
		out[i] = en.applyStep(ctx, plan.Steps[i])
		if out[i].Err != nil {
			out[i].Err = fmt.Errorf("%s %s: %w", plan.Steps[i].Action, plan.Steps[i].Name, out[i].Err)
		}
		return nil
	})
	return out
}

func (en *engine) applyStep(ctx context.Context, s Step) Outcome {
	if s.Fault != "" {
		return Outcome{ID: s.ID, Err: errors.New(s.Fault)}
	}
	if s.Action == Keep {
		return Outcome{ID: s.ID}
	}
	c, cc, err := en.gitlabFor(s.ClientKey)
	if err != nil {
		return Outcome{ID: s.ID, Err: err}
	}
	now := en.o.Now().UTC().Truncate(time.Second)
	switch s.Action {
	case Update:
		if _, err := c.UpdateRunner(ctx, s.ID, s.Settings); err != nil {
			return Outcome{ID: s.ID, Err: err}
		}
		applied := s.Settings
		return Outcome{ID: s.ID, Applied: &applied}

	case Create, Replace:
		// Make before break: a replaced runner (DeleteOld) is removed only
		// once the new token is in the config (see deleteReplaced).
		creds, err := en.create(ctx, c, cc, s)
		if err != nil {
			return Outcome{Err: err}
		}
		en.o.Secrets.Add(creds.Token)
		en.markThisHost(ctx, c, s, creds)
		applied := s.Settings
		return Outcome{ID: creds.ID, Creds: &creds, Obtained: now, Applied: &applied}

	case Adopt:
		creds, err := c.ResetToken(ctx, s.ID)
		if err != nil {
			if gitlab.IsNotFound(err) {
				return Outcome{ID: s.ID, Err: fmt.Errorf("runner %d disappeared from GitLab before its token could be reset; the next run creates a new one", s.ID)}
			}
			return Outcome{ID: s.ID, Err: err}
		}
		en.o.Secrets.Add(creds.Token)
		creds.ID = s.ID
		en.markThisHost(ctx, c, s, creds)
		o := Outcome{ID: s.ID, Creds: &creds, Obtained: now}
		if s.UpdateAfterAdopt {
			if _, err := c.UpdateRunner(ctx, s.ID, s.Settings); err != nil {
				o.Err = fmt.Errorf("token reset, but updating settings failed: %w", err)
				return o
			}
		}
		applied := s.Settings
		o.Applied = &applied
		return o

	case Delete:
		if s.ByToken && s.Prev != nil && s.Prev.Token != "" {
			err := c.DeleteByToken(ctx, s.Prev.Token)
			if err == nil {
				return Outcome{ID: s.ID, Deleted: true}
			}
			if !gitlab.IsForbidden(err) {
				return Outcome{ID: s.ID, Err: err}
			}
			// The token is no longer valid: the runner is gone, or its token
			// was reset elsewhere. With a PAT, make sure by id.
			if !c.HasPAT() || s.ID == 0 {
				en.warn("runner %s (id %d) on %s: its token is no longer valid, so it is considered gone", s.Name, s.ID, s.URL)
				return Outcome{ID: s.ID, Deleted: true}
			}
		}
		if !c.HasPAT() {
			return Outcome{ID: s.ID, Err: fmt.Errorf("cannot delete runner %d without its token or a personal access token", s.ID)}
		}
		if !s.OwnershipProven {
			ms, err := c.RunnerManagers(ctx, s.ID)
			if gitlab.IsNotFound(err) {
				return Outcome{ID: s.ID, Deleted: true}
			}
			if err != nil {
				return Outcome{ID: s.ID, Err: fmt.Errorf("reading its runner managers to make sure it is this host's: %w", err)}
			}
			if own := en.ownership(ms); own == OwnerOtherHost || (own == OwnerNone && !en.interrupted) {
				en.warn("%s", Observation{Owners: map[RunnerRef]Ownership{s.Ref(): own}}.notMineNote(s.Ref(), "executor "+s.Name))
				return Outcome{ID: s.ID, Deleted: true} // not ours: forget it, never delete it
			}
		}
		if err := c.DeleteByID(ctx, s.ID); err != nil && !gitlab.IsNotFound(err) {
			return Outcome{ID: s.ID, Err: err}
		}
		return Outcome{ID: s.ID, Deleted: true}
	}
	return Outcome{ID: s.ID, Err: fmt.Errorf("unknown action %q", s.Action)}
}

// markThisHost verifies a token just obtained, sending this host's system
// id: GitLab then records this host as the runner's manager, the mark that
// proves later (after a lost config, say) that the runner is this host's.
// A failure is not fatal: the next verify records it.
func (en *engine) markThisHost(ctx context.Context, c *gitlab.Client, s Step, creds gitlab.Credentials) {
	if _, err := c.Verify(ctx, creds.Token, en.systemID); err != nil {
		en.warn("%s (id %d): could not record this host as its manager yet (%v); the next run does", s.Name, creds.ID, err)
	}
}

// deleteReplaced removes the runners that replace steps superseded, now
// that their successors' tokens are in the config. It returns the indexes
// of the steps whose old runner is gone (deleted, or already dead).
func (en *engine) deleteReplaced(ctx context.Context, plan Plan, outcomes []Outcome, fresh map[RunnerRef]hostfs.LiveRunner) map[int]bool {
	var idx []int
	for i, s := range plan.Steps {
		if s.Action == Replace && s.DeleteOld && s.Prev != nil && outcomes[i].Creds != nil {
			idx = append(idx, i)
		}
	}
	gone := make([]bool, len(idx))
	_ = en.parallel(len(idx), func(j int) error {
		s := plan.Steps[idx[j]]
		token := s.Prev.Token
		if f, ok := fresh[RunnerRef{s.ClientKey, s.Prev.ID}]; ok && f.Token != "" {
			token = f.Token // rotated by gitlab-runner during the run
		}
		c, _, err := en.gitlabFor(s.ClientKey)
		if err == nil {
			err = c.DeleteByToken(ctx, token)
		}
		switch {
		case err == nil, gitlab.IsForbidden(err): // deleted, or its token is already dead
			gone[j] = true
		default:
			en.warn("%s: the new runner (id %d) is in place, but removing the old one (id %d) failed (%v); it stays in the config and the next run removes it", s.Name, outcomes[idx[j]].Creds.ID, s.Prev.ID, err)
		}
		return nil
	})
	out := map[int]bool{}
	for j, i := range idx {
		if gone[j] {
			out[i] = true
		}
	}
	return out
}

// create uses the runner creation workflow when a PAT is given, and the
// legacy registration token otherwise (or when the PAT lacks the scope).
func (en *engine) create(ctx context.Context, c *gitlab.Client, cc *config.ClientConfig, s Step) (gitlab.Credentials, error) {
	e := s.Executor
	if cc.PAT != "" {
		creds, err := c.CreateRunner(ctx, gitlab.CreateOptions{RunnerType: e.RunnerType, GroupID: e.GroupID,
			ProjectID: e.ProjectID, Settings: s.Settings})
		if err == nil {
			return creds, nil
		}
		// GitLab before 15.10 has no POST /user/runners (404): use the
		// registration token there, as for a PAT without create_runner.
		noEndpoint := gitlab.IsNotFound(err)
		if gitlab.IsForbidden(err) && !gitlab.IsInsufficientScope(err) && e.RunnerType == "instance_type" {
			return creds, fmt.Errorf("%w: instance runners can only be created with an administrator's token, and with Admin Mode on the token also needs the admin_mode scope (or use runner_type group_type/project_type)", err)
		}
		if !(gitlab.IsInsufficientScope(err) || noEndpoint) || cc.RegistrationToken == "" {
			switch {
			case gitlab.IsInsufficientScope(err):
				return creds, fmt.Errorf("%w; give the token the create_runner scope or add a registration_token", err)
			case noEndpoint:
				return creds, fmt.Errorf("%w: this GitLab has no runner creation workflow (GitLab 15.10 or later has); add a registration_token for %s", err, cc.URL)
			}
			return creds, err
		}
		if noEndpoint {
			en.warn("%s has no runner creation workflow (POST /user/runners); falling back to the registration token", cc.URL)
		} else {
			en.warn("the personal access token for %s lacks the create_runner scope; falling back to the registration token", cc.URL)
		}
	}
	creds, err := c.RegisterRunner(ctx, cc.RegistrationToken, s.Settings)
	if err != nil {
		switch {
		case gitlab.IsGone(err):
			return creds, fmt.Errorf("%w: registration tokens are disabled on %s; give a personal_access_token with the create_runner scope in client_configs", err, cc.URL)
		case gitlab.IsForbidden(err):
			return creds, fmt.Errorf("%w: GitLab rejected the registration token; check registration_token for %s", err, cc.URL)
		}
		return creds, err
	}
	return creds, nil
}

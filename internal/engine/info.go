package engine

import (
	"context"
	"sort"
	"time"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/gitlab"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/hostfs"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/plan"
)

// InfoRunner is one runner of this host and instance as GitLab sees it.
type InfoRunner struct {
	Name        string   `json:"name"`
	ID          int64    `json:"id"`
	URL         string   `json:"url"`
	Executor    string   `json:"executor,omitempty"`
	Description string   `json:"description,omitempty"`
	Tags        []string `json:"tags"`
	Paused      bool     `json:"paused"`
	Online      *bool    `json:"online,omitempty"`
	Status      string   `json:"status,omitempty"`
	ContactedAt string   `json:"contacted_at,omitempty"`
	// TokenExpiresAt is empty when the token does not expire or is unknown.
	TokenExpiresAt string `json:"token_expires_at,omitempty"`
	// Managers are the system ids GitLab has seen use the runner's token.
	Managers []string `json:"managers"`
	// Planned is what a sync would do to this runner, and why.
	Planned plan.Action `json:"planned_action"`
	Reason  string      `json:"reason,omitempty"`
	// Error says why GitLab's view could not be read (no PAT, 403, ...).
	Error string `json:"error,omitempty"`
}

// Info is the report of Inspect.
type Info struct {
	Runners []InfoRunner `json:"runners"`
	// Plan is the check-mode result of a sync: what it would do.
	Plan *Result `json:"plan"`
	// Skipped are the executors a service start skips (an invalid file,
	// say), and why; Degraded what the last run recorded (the state file).
	Skipped  []SkippedExecutor                  `json:"skipped,omitempty"`
	Degraded map[string]hostfs.DegradedExecutor `json:"degraded,omitempty"`
}

// Inspect reports this host's runners as GitLab sees them, and what a sync
// would do, with read-only requests only and no write: it is a check-mode
// sync that also reads each runner's details and managers with the PAT.
func Inspect(ctx context.Context, o Options) (*Info, error) {
	o.Check, o.Remove = true, ""
	ctx, cancel := bound(ctx, o.Limits.Timeout)
	defer cancel()
	en, res, err := start(ctx, &o)
	defer en.finish()
	info := &Info{Runners: []InfoRunner{}, Plan: res}
	if err != nil {
		return info, err
	}
	p, err := en.planSync(ctx)
	if err != nil {
		res.Warnings = en.warnings
		return info, err
	}
	info.Plan, _ = en.preview(p, res)
	info.Skipped, info.Degraded = info.Plan.Skipped, p.ev.State.Degraded
	info.Runners = make([]InfoRunner, len(p.Plan.Steps))
	_ = en.each(ctx, len(p.Plan.Steps), func(i int) error {
		info.Runners[i] = en.inspectStep(ctx, p.Plan.Steps[i])
		return nil
	})
	sort.SliceStable(info.Runners, func(i, j int) bool { return info.Runners[i].Name < info.Runners[j].Name })
	return info, nil
}

func (en *engine) inspectStep(ctx context.Context, s plan.Step) InfoRunner {
	r := InfoRunner{Name: s.Name, ID: s.ID, URL: s.URL, Planned: s.Action, Reason: s.Reason, Tags: []string{}, Managers: []string{}}
	if s.Fault != "" {
		r.Reason = s.Fault
	}
	switch {
	case s.Executor != nil:
		r.Executor = s.Executor.Type
	case s.Prev != nil:
		r.Executor = s.Prev.Executor
	}
	var exp time.Time
	if s.Verified != nil {
		exp = s.Verified.ExpiresAt
	} else if s.Prev != nil {
		exp = s.Prev.TokenExpiresAt
	}
	if !exp.IsZero() {
		r.TokenExpiresAt = exp.UTC().Format(time.RFC3339)
	}
	if s.ID == 0 {
		r.Error = "not registered"
		return r
	}
	c, err := en.gitlabFor(s.ClientKey)
	if err != nil {
		r.Error = en.o.Secrets.Redact(err.Error())
		return r
	}
	if !c.HasPAT() {
		r.Error = "no personal_access_token for " + s.URL + ": GitLab's view of the runner cannot be read"
		return r
	}
	st, found, err := c.ReadRunner(ctx, s.ID)
	switch {
	case err != nil:
		r.Error = en.o.Secrets.Redact(err.Error())
		return r
	case found == gitlab.Forbidden:
		r.Error = "GitLab refused to show the runner to this personal access token (403)"
		return r
	case found != gitlab.Found:
		r.Error = "GitLab has no such runner (404)"
		return r
	}
	r.Description, r.Paused, r.Online, r.Status = st.Description, st.Paused, st.Online, st.Status
	if st.ContactedAt != nil {
		r.ContactedAt = st.ContactedAt.UTC().Format(time.RFC3339)
	}
	if st.TagList != nil {
		r.Tags = append([]string{}, st.TagList...)
		sort.Strings(r.Tags)
	}
	ms, _, err := c.ReadManagers(ctx, s.ID)
	if err != nil {
		r.Error = en.o.Secrets.Redact(err.Error())
		return r
	}
	for _, m := range ms {
		r.Managers = append(r.Managers, m.SystemID)
	}
	return r
}

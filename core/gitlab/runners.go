package gitlab

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Credentials are what GitLab returns when it hands out a runner token.
type Credentials struct {
	ID        int64
	Token     string
	ExpiresAt time.Time // zero: the token does not expire
}

type credentialsJSON struct {
	ID             int64   `json:"id"`
	Token          string  `json:"token"`
	TokenExpiresAt *string `json:"token_expires_at"`
}

func (c credentialsJSON) credentials() Credentials {
	out := Credentials{ID: c.ID, Token: c.Token}
	if c.TokenExpiresAt != nil && *c.TokenExpiresAt != "" {
		if t, err := time.Parse(time.RFC3339Nano, *c.TokenExpiresAt); err == nil {
			out.ExpiresAt = t.UTC()
		}
	}
	return out
}

// Verify checks a runner token (POST /runners/verify). The system id is
// sent so GitLab records this host, not a phantom runner manager.
func (c *Client) Verify(ctx context.Context, token, systemID string) (Credentials, error) {
	var out credentialsJSON
	body := map[string]any{"token": token}
	if systemID != "" {
		body["system_id"] = systemID
	}
	err := c.do(ctx, call{method: http.MethodPost, path: "/api/v4/runners/verify", body: body, idempotent: true, out: &out})
	if err != nil {
		return Credentials{}, err
	}
	cr := out.credentials()
	if cr.Token == "" {
		cr.Token = token
	}
	return cr, nil
}

// CreateOptions describe a runner to create.
type CreateOptions struct {
	RunnerType string
	GroupID    int64
	ProjectID  int64
	Settings   Settings
}

// CreateRunner uses the runner creation workflow (POST /user/runners, PAT
// with create_runner).
func (c *Client) CreateRunner(ctx context.Context, o CreateOptions) (Credentials, error) {
	body := o.Settings.params()
	body["runner_type"] = o.RunnerType
	switch o.RunnerType {
	case "group_type":
		body["group_id"] = o.GroupID
	case "project_type":
		body["project_id"] = o.ProjectID
	}
	var out credentialsJSON
	// Not idempotent: a retry after a lost answer would create a second runner.
	if err := c.do(ctx, call{method: http.MethodPost, path: "/api/v4/user/runners", body: body, auth: authPAT, out: &out}); err != nil {
		return Credentials{}, err
	}
	return out.credentials(), nil
}

// RegisterRunner uses the legacy registration token (POST /runners).
func (c *Client) RegisterRunner(ctx context.Context, registrationToken string, s Settings) (Credentials, error) {
	body := s.params()
	body["token"] = registrationToken
	body["info"] = map[string]any{"name": "gitlab-runner-auth"}
	var out credentialsJSON
	if err := c.do(ctx, call{method: http.MethodPost, path: "/api/v4/runners", body: body, out: &out}); err != nil {
		return Credentials{}, err
	}
	return out.credentials(), nil
}

// DeleteByToken removes the runner that owns token (DELETE /runners).
func (c *Client) DeleteByToken(ctx context.Context, token string) error {
	return c.do(ctx, call{method: http.MethodDelete, path: "/api/v4/runners", body: map[string]any{"token": token}, idempotent: true})
}

// DeleteByID removes a runner with the PAT (DELETE /runners/:id).
func (c *Client) DeleteByID(ctx context.Context, id int64) error {
	return c.do(ctx, call{method: http.MethodDelete, path: fmt.Sprintf("/api/v4/runners/%d", id), auth: authPAT, idempotent: true})
}

// ResetToken gives a runner a new token (POST /runners/:id/reset_authentication_token).
func (c *Client) ResetToken(ctx context.Context, id int64) (Credentials, error) {
	var out credentialsJSON
	// Repeating a reset is harmless: the last token handed out is the valid one.
	err := c.do(ctx, call{method: http.MethodPost, path: fmt.Sprintf("/api/v4/runners/%d/reset_authentication_token", id),
		auth: authPAT, idempotent: true, out: &out})
	if err != nil {
		return Credentials{}, err
	}
	cr := out.credentials()
	cr.ID = id
	return cr, nil
}

// Runner is a runner as GET /runners/:id describes it.
type Runner struct {
	ID              int64    `json:"id"`
	Description     string   `json:"description"`
	RunnerType      string   `json:"runner_type"`
	Paused          bool     `json:"paused"`
	TagList         []string `json:"tag_list"`
	RunUntagged     bool     `json:"run_untagged"`
	Locked          bool     `json:"locked"`
	AccessLevel     string   `json:"access_level"`
	MaximumTimeout  *int64   `json:"maximum_timeout"`
	MaintenanceNote *string  `json:"maintenance_note"`
	// ContactedAt is the runner's last contact with GitLab (nil: never).
	ContactedAt *time.Time `json:"contacted_at"`
	CreatedAt   *time.Time `json:"created_at"`
}

// LastSeen is the runner's last contact, or its creation when it never
// made one (zero when GitLab said neither).
func (r Runner) LastSeen() time.Time {
	switch {
	case r.ContactedAt != nil:
		return *r.ContactedAt
	case r.CreatedAt != nil:
		return *r.CreatedAt
	}
	return time.Time{}
}

// Settings returns the server-side settings of a runner.
func (r Runner) Settings() Settings {
	s := Settings{Description: r.Description, TagList: r.TagList, RunUntagged: r.RunUntagged, Locked: r.Locked,
		Paused: r.Paused, AccessLevel: r.AccessLevel}
	if r.MaximumTimeout != nil {
		s.MaximumTimeout = *r.MaximumTimeout
	}
	if r.MaintenanceNote != nil {
		s.MaintenanceNote = *r.MaintenanceNote
	}
	return s
}

// GetRunner reads one runner (GET /runners/:id).
func (c *Client) GetRunner(ctx context.Context, id int64) (Runner, error) {
	var out Runner
	err := c.do(ctx, call{method: http.MethodGet, path: fmt.Sprintf("/api/v4/runners/%d", id), auth: authPAT, idempotent: true, out: &out})
	return out, err
}

// UpdateRunner changes a runner's settings (PUT /runners/:id).
func (c *Client) UpdateRunner(ctx context.Context, id int64, s Settings) (Runner, error) {
	body := s.params()
	// Explicit, so a removed value is cleared: GitLab keeps what a PUT
	// omits, and null clears maximum_timeout (lib/api/ci/runners.rb
	// `optional :maximum_timeout`; app/models/ci/runner.rb validates it
	// with allow_nil).
	body["maintenance_note"] = s.MaintenanceNote
	if s.MaximumTimeout == 0 {
		body["maximum_timeout"] = nil
	}
	var out Runner
	err := c.do(ctx, call{method: http.MethodPut, path: fmt.Sprintf("/api/v4/runners/%d", id), body: body, auth: authPAT, idempotent: true, out: &out})
	return out, err
}

// ListOptions select runners to list.
type ListOptions struct {
	// RunnerType selects the endpoint: instance_type lists /runners/all
	// (administrators), group_type /groups/:id/runners, project_type
	// /projects/:id/runners; it is also sent as the type filter.
	RunnerType string
	GroupID    int64
	ProjectID  int64
	// Tags: GitLab returns runners that carry all of them.
	Tags []string
}

// Summary is a runner as list endpoints describe it.
type Summary struct {
	ID          int64  `json:"id"`
	Description string `json:"description"`
	RunnerType  string `json:"runner_type"`
	Paused      bool   `json:"paused"`
}

type page struct {
	items []Summary
	next  string
}

func (p *page) UnmarshalJSON(b []byte) error { return json.Unmarshal(b, &p.items) }
func (p *page) setHeaders(h http.Header)     { p.next = h.Get("X-Next-Page") }

// ListRunners lists runners, following every page (per_page=100).
func (c *Client) ListRunners(ctx context.Context, o ListOptions) ([]Summary, error) {
	path := "/api/v4/runners/all"
	switch o.RunnerType {
	case "group_type":
		path = fmt.Sprintf("/api/v4/groups/%d/runners", o.GroupID)
	case "project_type":
		path = fmt.Sprintf("/api/v4/projects/%d/runners", o.ProjectID)
	}
	var all []Summary
	for pageNo := 1; pageNo <= 1000; {
		q := url.Values{}
		if o.RunnerType != "" {
			q.Set("type", o.RunnerType)
		}
		if len(o.Tags) > 0 {
			q.Set("tag_list", strings.Join(o.Tags, ","))
		}
		q.Set("per_page", "100")
		q.Set("page", strconv.Itoa(pageNo))
		var p page
		if err := c.do(ctx, call{method: http.MethodGet, path: path, query: q, auth: authPAT, idempotent: true, out: &p}); err != nil {
			return nil, err
		}
		all = append(all, p.items...)
		if p.next == "" {
			break
		}
		n, err := strconv.Atoi(p.next)
		if err != nil || n <= pageNo {
			break
		}
		pageNo = n
	}
	return all, nil
}

// Manager is one runner manager: a host that used the runner's token,
// identified by gitlab-runner's system id (GET /runners/:id/managers).
type Manager struct {
	ID       int64  `json:"id"`
	SystemID string `json:"system_id"`
	// ContactedAt is when GitLab last recorded a contact through it (nil:
	// never). GitLab deletes managers not contacted for 7 days
	// (Ci::RunnerManager::STALE_TIMEOUT, StaleManagersCleanupService).
	ContactedAt *time.Time `json:"contacted_at"`
	CreatedAt   *time.Time `json:"created_at"`
}

// LegacySystemID is the manager GitLab records for a call that sends no
// system id (API::Ci::Helpers::Runner::LEGACY_SYSTEM_XID,
// lib/api/ci/helpers/runner.rb current_runner_manager): gitlab-runner's
// own token rotation (POST /runners/reset_authentication_token sends the
// token alone, network/gitlab.go resetToken) creates one on the runner of
// the host that rotates. It names no host.
const LegacySystemID = "<legacy>"

// LastSeen is the manager's last contact, or its creation when it never
// made one.
func (m Manager) LastSeen() time.Time {
	switch {
	case m.ContactedAt != nil:
		return *m.ContactedAt
	case m.CreatedAt != nil:
		return *m.CreatedAt
	}
	return time.Time{}
}

// UnregisterManager removes this host's manager from a runner others may
// still use (DELETE /runners/managers with the runner's token and the
// system id), as gitlab-runner's unregister does for created runners
// (commands/unregister.go); the runner stays.
func (c *Client) UnregisterManager(ctx context.Context, token, systemID string) error {
	return c.do(ctx, call{method: http.MethodDelete, path: "/api/v4/runners/managers", body: map[string]any{"token": token, "system_id": systemID}, idempotent: true})
}

// RunnerManagers lists the hosts GitLab has seen using a runner's token.
// GitLab records one on every verify and job request that sends a
// system_id (lib/api/ci/helpers/runner.rb, ensure_manager).
func (c *Client) RunnerManagers(ctx context.Context, id int64) ([]Manager, error) {
	var out []Manager
	err := c.do(ctx, call{method: http.MethodGet, path: fmt.Sprintf("/api/v4/runners/%d/managers", id), auth: authPAT, idempotent: true, out: &out})
	return out, err
}

// TokenInfo describes the personal access token itself
// (GET /personal_access_tokens/self).
type TokenInfo struct {
	Name    string   `json:"name"`
	Scopes  []string `json:"scopes"`
	Active  bool     `json:"active"`
	Revoked bool     `json:"revoked"`
	// ExpiresAt is a date (YYYY-MM-DD); the token stops working that day.
	ExpiresAt *string `json:"expires_at"`
	UserID    int64   `json:"user_id"`
}

// Expiry returns the day the token stops working, or zero.
func (t TokenInfo) Expiry() time.Time {
	if t.ExpiresAt == nil {
		return time.Time{}
	}
	d, err := time.Parse("2006-01-02", *t.ExpiresAt)
	if err != nil {
		return time.Time{}
	}
	return d
}

// HasScope reports whether the token has any of the scopes.
func (t TokenInfo) HasScope(scopes ...string) bool {
	for _, s := range t.Scopes {
		for _, w := range scopes {
			if s == w {
				return true
			}
		}
	}
	return false
}

// TokenSelf reads the personal access token's own record. A revoked or
// expired token gets 401 here as everywhere.
func (c *Client) TokenSelf(ctx context.Context) (TokenInfo, error) {
	var out TokenInfo
	err := c.do(ctx, call{method: http.MethodGet, path: "/api/v4/personal_access_tokens/self", auth: authPAT, idempotent: true, out: &out})
	return out, err
}

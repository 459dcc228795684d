package gitlab

import (
	"bytes"
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
	// ContactedAt is the runner's last contact with GitLab (nil: never, or
	// a GitLab that does not say).
	ContactedAt *time.Time `json:"contacted_at"`
	// CreatedAt is when the runner was created (nil where the version's
	// details do not carry it).
	CreatedAt *time.Time `json:"created_at"`
	// Groups and Projects are the groups of a group runner and the
	// projects of a project runner, as far as the token may see them.
	Groups   []Owner `json:"groups"`
	Projects []Owner `json:"projects"`
}

// Owner is a group or project a runner belongs to, as the details name it.
type Owner struct {
	ID int64 `json:"id"`
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

// Listings are bounded, so that no GitLab (or what answers at its url)
// can make a run hold more than a few tens of MiB: each page holds at
// most ListPerPage runners, as asked with per_page; a listing follows at
// most ListMaxPages pages, returns at most ListMaxRunners runners and reads
// at most ListMaxBytes of answers. Real fleets are far below: a runner
// takes about 300 bytes of a list answer, and the tool lists by tags
// (this host's name and instance, or a fleet's tags).
const (
	ListPerPage    = 100
	ListMaxPages   = 1000
	ListMaxRunners = 50_000
	ListMaxBytes   = 64 << 20
)

// ListBound names the bound a listing went past.
type ListBound int

// The bounds of a listing.
const (
	// BoundPage: one page held more runners than per_page asked for.
	BoundPage ListBound = iota + 1
	// BoundPages: GitLab pointed to a next page after ListMaxPages.
	BoundPages
	// BoundRunners: the pages held more than ListMaxRunners runners.
	BoundRunners
	// BoundBytes: the answers were larger than ListMaxBytes together.
	BoundBytes
)

// ListTooLargeError is a listing refused because it went past a bound:
// the tool never decides on part of a list.
type ListTooLargeError struct {
	Host  string // the GitLab
	Path  string // the list's path: /api/v4/runners/all, /groups/:id/runners, ...
	Tags  []string
	Bound ListBound
	// Limit is the bound (runners, pages or bytes); Page the page that
	// went past it.
	Limit int
	Page  int
}

func (e *ListTooLargeError) Error() string {
	where := fmt.Sprintf("GitLab %s GET %s", e.Host, e.Path)
	if len(e.Tags) > 0 {
		where += fmt.Sprintf(" (tag_list=%s)", strings.Join(e.Tags, ","))
	}
	const narrow = "narrow the listing: list with more specific tags, or in a group or project (runner_type group_type or project_type) rather than the whole instance"
	switch e.Bound {
	case BoundPage:
		return fmt.Sprintf("%s: page %d holds more than the %d runners asked for (per_page=%d), which GitLab never sends; check that url names your GitLab", where, e.Page, e.Limit, e.Limit)
	case BoundPages:
		return fmt.Sprintf("%s: the listing goes on past %d pages; %s", where, e.Limit, narrow)
	case BoundRunners:
		return fmt.Sprintf("%s: the listing holds more than %d runners; %s", where, e.Limit, narrow)
	}
	return fmt.Sprintf("%s: the listing's answers exceed %d MiB together; %s", where, e.Limit>>20, narrow)
}

// page is one page of a listing, decoded one runner at a time so that a
// page with more runners than asked for is never held whole.
type page struct {
	max   int
	items []Summary
	over  bool // more than max runners
	size  int  // bytes of the answer
	next  string
}

func (p *page) UnmarshalJSON(b []byte) error {
	p.size = len(b)
	dec := json.NewDecoder(bytes.NewReader(b))
	if t, err := dec.Token(); err != nil {
		return err
	} else if d, ok := t.(json.Delim); !ok || d != '[' {
		return fmt.Errorf("a list of runners must be a JSON array")
	}
	for dec.More() {
		if len(p.items) == p.max {
			p.over = true
			return nil
		}
		var s Summary
		if err := dec.Decode(&s); err != nil {
			return err
		}
		p.items = append(p.items, s)
	}
	return nil
}

func (p *page) setHeaders(h http.Header) { p.next = h.Get("X-Next-Page") }

// ListRunners lists runners, following every page, within the listing
// bounds (a listing past one is a *ListTooLargeError).
func (c *Client) ListRunners(ctx context.Context, o ListOptions) ([]Summary, error) {
	path := "/api/v4/runners/all"
	switch o.RunnerType {
	case "group_type":
		path = fmt.Sprintf("/api/v4/groups/%d/runners", o.GroupID)
	case "project_type":
		path = fmt.Sprintf("/api/v4/projects/%d/runners", o.ProjectID)
	}
	tooLarge := func(b ListBound, limit, pageNo int) error {
		return &ListTooLargeError{Host: c.host, Path: path, Tags: o.Tags, Bound: b, Limit: limit, Page: pageNo}
	}
	var all []Summary
	read := 0
	for pages, pageNo := 1, 1; ; pages++ {
		if pages > ListMaxPages {
			return nil, tooLarge(BoundPages, ListMaxPages, pageNo)
		}
		q := url.Values{}
		if o.RunnerType != "" {
			q.Set("type", o.RunnerType)
		}
		if len(o.Tags) > 0 {
			q.Set("tag_list", strings.Join(o.Tags, ","))
		}
		q.Set("per_page", strconv.Itoa(ListPerPage))
		q.Set("page", strconv.Itoa(pageNo))
		p := page{max: ListPerPage}
		if err := c.do(ctx, call{method: http.MethodGet, path: path, query: q, auth: authPAT, idempotent: true, out: &p}); err != nil {
			return nil, err
		}
		switch read += p.size; {
		case p.over:
			return nil, tooLarge(BoundPage, ListPerPage, pageNo)
		case len(all)+len(p.items) > ListMaxRunners:
			return nil, tooLarge(BoundRunners, ListMaxRunners, pageNo)
		case read > ListMaxBytes:
			return nil, tooLarge(BoundBytes, ListMaxBytes, pageNo)
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

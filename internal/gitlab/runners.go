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
	// Online and Status are what GitLab says of the runner's life (nil
	// and empty where it does not say).
	Online *bool  `json:"online"`
	Status string `json:"status"`
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

// listRunners lists runners, following every page, within the listing
// bounds (a listing past one is a *ListTooLargeError).
func (c *Client) listRunners(ctx context.Context, o ListOptions) ([]Summary, error) {
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

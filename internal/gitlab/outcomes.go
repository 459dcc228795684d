package gitlab

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// The operations the engine asks of GitLab, one method each. What
// GitLab's answers mean lives here, once: the engine never compares status
// codes. Each answer that decides something (a token rejected, a runner
// gone, a list refused) is a typed outcome; an error is left for what
// decides nothing (no answer, 5xx, an answer no GitLab gives), and KindOf
// says which of those GitLab may carry out later.

// TokenState is what verifying a runner token told.
type TokenState int

// The states of a runner token.
const (
	// TokenAlive: 200, the token works (POST /runners/verify).
	TokenAlive TokenState = iota + 1
	// TokenRejected: 403, the token is revoked or expired, or its runner
	// is gone. It never says which.
	TokenRejected
	// TokenOrphaned: the runner's group or project is gone: 422 "Runner is
	// orphaned" (lib/api/ci/helpers/runner.rb), or 403 with the same
	// message where GitLab rejects orphaned runners outright.
	TokenOrphaned
)

func (s TokenState) String() string {
	switch s {
	case TokenAlive:
		return "alive"
	case TokenRejected:
		return "rejected"
	case TokenOrphaned:
		return "orphaned"
	}
	return "unknown"
}

// Verification is one verify answer.
type Verification struct {
	State TokenState
	// Creds is GitLab's answer for an alive token (id, expiry).
	Creds Credentials
}

// Verify checks a runner token (POST /runners/verify), sending this
// host's system id so GitLab records this host as a runner manager, not
// a phantom one.
func (c *Client) Verify(ctx context.Context, token, systemID string) (Verification, error) {
	var out credentialsJSON
	body := map[string]any{"token": token}
	if systemID != "" {
		body["system_id"] = systemID
	}
	err := c.do(ctx, call{method: http.MethodPost, path: "/api/v4/runners/verify", body: body, idempotent: true, out: &out})
	switch {
	case err == nil:
		cr := out.credentials()
		if cr.Token == "" {
			cr.Token = token
		}
		return Verification{State: TokenAlive, Creds: cr}, nil
	case isOrphaned(err):
		return Verification{State: TokenOrphaned}, nil
	case statusOf(err) == http.StatusForbidden:
		return Verification{State: TokenRejected}, nil
	}
	return Verification{}, err
}

func isOrphaned(err error) bool {
	var ae *APIError
	if !errors.As(err, &ae) {
		return false
	}
	return ae.Status == http.StatusUnprocessableEntity ||
		(ae.Status == http.StatusForbidden && strings.Contains(strings.ToLower(ae.Message), "orphaned"))
}

// Presence is what a read by id found.
type Presence int

// The answers of a read by id.
const (
	// Found: GitLab answered with the runner.
	Found Presence = iota + 1
	// Gone: 404, no such runner.
	Gone
	// Forbidden: 403, the token may not see it. Never "gone".
	Forbidden
	// Unsupported: this GitLab has no such route (404 from the catch-all
	// route, {"error":"404 Not Found"}, lib/api/api.rb): GET
	// /runners/:id/managers before GitLab 17.1 (MR 153715). It says
	// nothing of the runner.
	Unsupported
)

func presenceOf(err error) (Presence, error) {
	switch {
	case err == nil:
		return Found, nil
	case isUnknownRoute(err):
		return Unsupported, nil
	case statusOf(err) == http.StatusNotFound:
		return Gone, nil
	case statusOf(err) == http.StatusForbidden:
		return Forbidden, nil
	}
	return 0, err
}

// isUnknownRoute tells GitLab's answer for a route it does not have (the
// catch-all's {"error":"404 Not Found"}) from a record it does not have
// ({"message":"404 Not found"}, or "404 Runner Not Found").
func isUnknownRoute(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == http.StatusNotFound && ae.Code == "404 Not Found"
}

// ReadRunner reads one runner with the PAT (GET /runners/:id): its
// details, settings and status.
func (c *Client) ReadRunner(ctx context.Context, id int64) (Runner, Presence, error) {
	var out Runner
	err := c.do(ctx, call{method: http.MethodGet, path: runnerPath(id, ""), auth: authPAT, idempotent: true, out: &out})
	p, err := presenceOf(err)
	return out, p, err
}

// ReadManagers lists the hosts GitLab has seen using a runner's token
// (GET /runners/:id/managers). GitLab records one on every verify and job
// request that sends a system_id (lib/api/ci/helpers/runner.rb,
// ensure_manager).
func (c *Client) ReadManagers(ctx context.Context, id int64) ([]Manager, Presence, error) {
	var out []Manager
	err := c.do(ctx, call{method: http.MethodGet, path: runnerPath(id, "/managers"), auth: authPAT, idempotent: true, out: &out})
	p, err := presenceOf(err)
	return out, p, err
}

// UpdateRunner sends a runner's settings (PUT /runners/:id). Whatever
// GitLab refuses, the update failed: its outcome is its error.
func (c *Client) UpdateRunner(ctx context.Context, id int64, s Settings) error {
	body := s.params()
	// Explicit, so a removed value is cleared: GitLab keeps what a PUT
	// omits, and null clears maximum_timeout (lib/api/ci/runners.rb
	// `optional :maximum_timeout`; app/models/ci/runner.rb validates it
	// with allow_nil).
	body["maintenance_note"] = s.MaintenanceNote
	if s.MaximumTimeout == 0 {
		body["maximum_timeout"] = nil
	}
	return c.do(ctx, call{method: http.MethodPut, path: runnerPath(id, ""), body: body, auth: authPAT, idempotent: true})
}

// runnerPath is /api/v4/runners/:id followed by sub.
func runnerPath(id int64, sub string) string {
	return fmt.Sprintf("/api/v4/runners/%d%s", id, sub)
}

// Denial is a list GitLab refused: what the token lacks.
type Denial struct {
	// Missing names the scope or role the token needs.
	Missing string
	// Scope is true when a scope is missing, false for a role (or a token
	// GitLab no longer accepts).
	Scope bool
}

// ListRunners lists runners with the given tags, following every page
// within the listing bounds (past one, a *ListTooLargeError); a list the
// token may not make is a Denial, not an error.
func (c *Client) ListRunners(ctx context.Context, o ListOptions) ([]Summary, *Denial, error) {
	list, err := c.listRunners(ctx, o)
	switch st := statusOf(err); {
	case err == nil:
		return list, nil, nil
	case isInsufficientScope(err):
		return nil, &Denial{Missing: "listing runners needs the read_api or api scope; manage_runner is not enough", Scope: true}, nil
	case st == http.StatusForbidden:
		return nil, &Denial{Missing: listRole(o.RunnerType)}, nil
	case st == http.StatusUnauthorized:
		return nil, &Denial{Missing: "GitLab rejected the token (401): it is revoked or expired"}, nil
	case st == http.StatusNotFound && o.RunnerType != "instance_type":
		// GitLab answers 404 for a group or project the token cannot see.
		return nil, &Denial{Missing: fmt.Sprintf("GitLab says the %s does not exist or this token cannot see it", strings.TrimSuffix(o.RunnerType, "_type"))}, nil
	}
	return nil, nil, err
}

// listRole says who may list runners of a scope (403 without a scope
// problem).
func listRole(runnerType string) string {
	switch runnerType {
	case "group_type":
		return "listing a group's runners needs the Owner role in that group"
	case "project_type":
		return "listing a project's runners needs the Maintainer role in that project"
	}
	return "listing instance runners needs an administrator's token (with Admin Mode on, also the admin_mode scope)"
}

// ResetToken gives a runner a new token with the PAT (POST
// /runners/:id/reset_authentication_token).
func (c *Client) ResetToken(ctx context.Context, id int64) (Credentials, Presence, error) {
	var out credentialsJSON
	// Repeating a reset is harmless: the last token handed out is the valid one.
	err := c.do(ctx, call{method: http.MethodPost, path: runnerPath(id, "/reset_authentication_token"), auth: authPAT, idempotent: true, out: &out})
	p, err := presenceOf(err)
	if p != Found {
		return Credentials{}, p, err
	}
	cr := out.credentials()
	cr.ID = id
	return cr, p, nil
}

// Removal is what GitLab said to a removal.
type Removal int

// The answers of a removal.
const (
	// Removed: GitLab deleted it (204).
	Removed Removal = iota + 1
	// AlreadyGone: 404, there was nothing left to delete: the runner (by
	// id), or this host's manager of the runner.
	AlreadyGone
	// Rejected: 403 to a removal with a runner's token: the token no
	// longer works (revoked, expired, reset elsewhere, or its runner is
	// gone). Nothing was deleted, and nothing says whether the runner
	// still exists.
	Rejected
)

// RemoveByToken deletes the runner a token belongs to (DELETE /runners):
// Removed or Rejected.
func (c *Client) RemoveByToken(ctx context.Context, token string) (Removal, error) {
	err := c.do(ctx, call{method: http.MethodDelete, path: "/api/v4/runners", body: map[string]any{"token": token}, idempotent: true})
	return removal(err, Rejected, 0)
}

// RemoveByID deletes a runner with the PAT (DELETE /runners/:id): Removed
// or AlreadyGone.
func (c *Client) RemoveByID(ctx context.Context, id int64) (Removal, error) {
	err := c.do(ctx, call{method: http.MethodDelete, path: runnerPath(id, ""), auth: authPAT, idempotent: true})
	return removal(err, 0, AlreadyGone)
}

// RemoveManager removes this host's manager from a runner others may
// still use (DELETE /runners/managers with the runner's token and the
// system id), as gitlab-runner's unregister does for created runners
// (commands/unregister.go); the runner stays. Removed, AlreadyGone (no
// manager with that system id: 404 "Runner manager not found",
// lib/api/ci/runner.rb) or Rejected (403: the token no longer works).
func (c *Client) RemoveManager(ctx context.Context, token, systemID string) (Removal, error) {
	err := c.do(ctx, call{method: http.MethodDelete, path: "/api/v4/runners/managers", body: map[string]any{"token": token, "system_id": systemID}, idempotent: true})
	return removal(err, Rejected, AlreadyGone)
}

// removal is a removal's outcome: Removed, or what a 403 and a 404 mean
// for it (0: the answer is an error).
func removal(err error, on403, on404 Removal) (Removal, error) {
	switch st := statusOf(err); {
	case err == nil:
		return Removed, nil
	case st == http.StatusForbidden && on403 != 0:
		return on403, nil
	case st == http.StatusNotFound && on404 != 0:
		return on404, nil
	}
	return 0, err
}

// CreateRequest is a runner to register: with the PAT through the runner
// creation workflow, or with the registration token.
type CreateRequest struct {
	RunnerType        string
	GroupID           int64
	ProjectID         int64
	Settings          Settings
	RegistrationToken string
}

// Created is a runner GitLab created.
type Created struct {
	Credentials
	// FellBack, when set, says why the registration token was used
	// although a PAT was given.
	FellBack string
}

// CreateRunner registers a runner: POST /user/runners with the PAT when
// there is one, else (or when GitLab has no such route, or the PAT lacks
// create_runner, and a registration token is given) POST /runners with
// the registration token. Errors say what to give instead. Neither
// request is repeated after a lost answer: it would create a second
// runner.
func (c *Client) CreateRunner(ctx context.Context, r CreateRequest) (Created, error) {
	var fellBack string
	if c.HasPAT() {
		creds, err := c.createWithPAT(ctx, r)
		if err == nil {
			return Created{Credentials: creds}, nil
		}
		// GitLab before 15.10 has no POST /user/runners (404): use the
		// registration token there, as for a PAT without create_runner.
		noRoute := statusOf(err) == http.StatusNotFound
		scope := isInsufficientScope(err)
		if statusOf(err) == http.StatusForbidden && !scope {
			switch r.RunnerType {
			case "instance_type":
				return Created{}, fmt.Errorf("%w: instance runners can only be created with an administrator's token, and with Admin Mode on the token also needs the admin_mode scope (or use runner_type group_type/project_type)", err)
			case "group_type":
				// app/policies/group_policy.rb: create_runner needs the Owner
				// role, and is refused even to Owners when the group turned
				// runner registration off (namespace setting).
				return Created{}, fmt.Errorf("%w: creating runners in group %d needs the Owner role in it, and the group must allow runner registration (Settings > CI/CD > Runners; the namespace setting runner_registration_enabled)", err, r.GroupID)
			case "project_type":
				return Created{}, fmt.Errorf("%w: creating runners in project %d needs the Maintainer role in it, and runner registration must be allowed for the project and its group", err, r.ProjectID)
			}
		}
		if !(scope || noRoute) || r.RegistrationToken == "" {
			switch {
			case scope:
				return Created{}, fmt.Errorf("%w; give the token the create_runner scope or add a registration_token", err)
			case noRoute:
				return Created{}, fmt.Errorf("%w: this GitLab has no runner creation workflow (GitLab 15.10 or later has); add a registration_token for %s", err, c.base)
			}
			return Created{}, err
		}
		fellBack = fmt.Sprintf("the personal access token for %s lacks the create_runner scope; falling back to the registration token", c.base)
		if noRoute {
			fellBack = fmt.Sprintf("%s has no runner creation workflow (POST /user/runners); falling back to the registration token", c.base)
		}
	}
	creds, err := c.register(ctx, r.RegistrationToken, r.Settings)
	switch st := statusOf(err); {
	case err == nil:
		return Created{Credentials: creds, FellBack: fellBack}, nil
	case st == http.StatusGone:
		return Created{}, fmt.Errorf("%w: registration tokens are disabled on %s; give a personal_access_token with the create_runner scope", err, c.base)
	case st == http.StatusForbidden:
		return Created{}, fmt.Errorf("%w: GitLab rejected the registration token; check registration_token for %s", err, c.base)
	}
	return Created{}, err
}

// createWithPAT uses the runner creation workflow (POST /user/runners,
// PAT with create_runner).
func (c *Client) createWithPAT(ctx context.Context, r CreateRequest) (Credentials, error) {
	body := r.Settings.params()
	body["runner_type"] = r.RunnerType
	switch r.RunnerType {
	case "group_type":
		body["group_id"] = r.GroupID
	case "project_type":
		body["project_id"] = r.ProjectID
	}
	var out credentialsJSON
	// Not idempotent: a retry after a lost answer would create a second runner.
	if err := c.do(ctx, call{method: http.MethodPost, path: "/api/v4/user/runners", body: body, auth: authPAT, out: &out}); err != nil {
		return Credentials{}, err
	}
	return out.credentials(), nil
}

// register uses the legacy registration token (POST /runners).
func (c *Client) register(ctx context.Context, registrationToken string, s Settings) (Credentials, error) {
	body := s.params()
	body["token"] = registrationToken
	body["info"] = map[string]any{"name": "gitlab-runner-auth"}
	var out credentialsJSON
	if err := c.do(ctx, call{method: http.MethodPost, path: "/api/v4/runners", body: body, out: &out}); err != nil {
		return Credentials{}, err
	}
	return out.credentials(), nil
}

// TokenAnswer is what GitLab said when asked about a personal access token.
type TokenAnswer int

// The answers of GET /personal_access_tokens/self.
const (
	// TokenKnown: GitLab described the token.
	TokenKnown TokenAnswer = iota + 1
	// TokenRevoked: 401, the token is revoked or expired.
	TokenRevoked
	// NoTokenSelf: 404, this GitLab has no such route.
	NoTokenSelf
)

// DescribeToken reads the personal access token's own record (GET
// /personal_access_tokens/self). A revoked or expired token gets 401 here
// as everywhere.
func (c *Client) DescribeToken(ctx context.Context) (TokenInfo, TokenAnswer, error) {
	var info TokenInfo
	err := c.do(ctx, call{method: http.MethodGet, path: "/api/v4/personal_access_tokens/self", auth: authPAT, idempotent: true, out: &info})
	switch st := statusOf(err); {
	case err == nil:
		return info, TokenKnown, nil
	case st == http.StatusUnauthorized:
		return info, TokenRevoked, nil
	case st == http.StatusNotFound:
		return info, NoTokenSelf, nil
	}
	return info, 0, err
}

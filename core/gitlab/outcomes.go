package gitlab

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// What GitLab's answers mean lives here, once: the engine never compares
// status codes. Each read that can legitimately find nothing, or be
// refused, says so as a value; an error is left for what decides nothing
// (no answer, 5xx, an answer no GitLab gives).

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

// Check verifies a runner token (POST /runners/verify), sending this
// host's system id so GitLab records this host as a runner manager.
func (c *Client) Check(ctx context.Context, token, systemID string) (Verification, error) {
	creds, err := c.Verify(ctx, token, systemID)
	switch {
	case err == nil:
		return Verification{State: TokenAlive, Creds: creds}, nil
	case isOrphaned(err):
		return Verification{State: TokenOrphaned}, nil
	case IsForbidden(err):
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
	case IsNotFound(err):
		return Gone, nil
	case IsForbidden(err):
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

// ReadRunner reads one runner (GET /runners/:id).
func (c *Client) ReadRunner(ctx context.Context, id int64) (Runner, Presence, error) {
	r, err := c.GetRunner(ctx, id)
	p, err := presenceOf(err)
	return r, p, err
}

// ReadManagers lists a runner's managers (GET /runners/:id/managers).
func (c *Client) ReadManagers(ctx context.Context, id int64) ([]Manager, Presence, error) {
	ms, err := c.RunnerManagers(ctx, id)
	p, err := presenceOf(err)
	return ms, p, err
}

// Denial is a list GitLab refused: what the token lacks.
type Denial struct {
	// Missing names the scope or role the token needs.
	Missing string
	// Scope is true when a scope is missing, false for a role (or a token
	// GitLab no longer accepts).
	Scope bool
}

// List lists runners with the given tags; a list the token may not make
// is a Denial, not an error.
func (c *Client) List(ctx context.Context, o ListOptions) ([]Summary, *Denial, error) {
	list, err := c.ListRunners(ctx, o)
	switch {
	case err == nil:
		return list, nil, nil
	case IsInsufficientScope(err):
		return nil, &Denial{Missing: "listing runners needs the read_api or api scope; manage_runner is not enough", Scope: true}, nil
	case IsForbidden(err):
		return nil, &Denial{Missing: listRole(o.RunnerType)}, nil
	case StatusOf(err) == http.StatusUnauthorized:
		return nil, &Denial{Missing: "GitLab rejected the token (401): it is revoked or expired"}, nil
	case IsNotFound(err) && o.RunnerType != "instance_type":
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

// Reset gives a runner a new token (POST /runners/:id/reset_authentication_token).
func (c *Client) Reset(ctx context.Context, id int64) (Credentials, Presence, error) {
	creds, err := c.ResetToken(ctx, id)
	p, err := presenceOf(err)
	return creds, p, err
}

// Unregister removes the runner a token belongs to (DELETE /runners);
// TokenRejected says the token no longer works (the runner may be gone,
// or its token was reset elsewhere).
func (c *Client) Unregister(ctx context.Context, token string) (TokenState, error) {
	err := c.DeleteByToken(ctx, token)
	switch {
	case err == nil:
		return TokenAlive, nil
	case IsForbidden(err):
		return TokenRejected, nil
	}
	return 0, err
}

// Remove deletes a runner by id with the PAT (DELETE /runners/:id); a
// runner already gone is removed too.
func (c *Client) Remove(ctx context.Context, id int64) error {
	if err := c.DeleteByID(ctx, id); err != nil && !IsNotFound(err) {
		return err
	}
	return nil
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

// Create registers a runner: POST /user/runners with the PAT when there
// is one, else (or when GitLab has no such route, or the PAT lacks
// create_runner, and a registration token is given) POST /runners with
// the registration token. Errors say what to give instead.
func (c *Client) Create(ctx context.Context, r CreateRequest) (Created, error) {
	var fellBack string
	if c.HasPAT() {
		creds, err := c.CreateRunner(ctx, CreateOptions{RunnerType: r.RunnerType, GroupID: r.GroupID, ProjectID: r.ProjectID, Settings: r.Settings})
		if err == nil {
			return Created{Credentials: creds}, nil
		}
		// GitLab before 15.10 has no POST /user/runners (404): use the
		// registration token there, as for a PAT without create_runner.
		noRoute := IsNotFound(err)
		scope := IsInsufficientScope(err)
		if IsForbidden(err) && !scope {
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
	creds, err := c.RegisterRunner(ctx, r.RegistrationToken, r.Settings)
	switch {
	case err == nil:
		return Created{Credentials: creds, FellBack: fellBack}, nil
	case IsGone(err):
		return Created{}, fmt.Errorf("%w: registration tokens are disabled on %s; give a personal_access_token with the create_runner scope", err, c.base)
	case IsForbidden(err):
		return Created{}, fmt.Errorf("%w: GitLab rejected the registration token; check registration_token for %s", err, c.base)
	}
	return Created{}, err
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

// DescribeToken reads the personal access token's own record.
func (c *Client) DescribeToken(ctx context.Context) (TokenInfo, TokenAnswer, error) {
	info, err := c.TokenSelf(ctx)
	switch {
	case err == nil:
		return info, TokenKnown, nil
	case StatusOf(err) == http.StatusUnauthorized:
		return info, TokenRevoked, nil
	case IsNotFound(err):
		return info, NoTokenSelf, nil
	}
	return info, 0, err
}

// FindNamespace reads a group or project ("group", "project") by full
// path; Gone means it does not exist or the token may not see it (GitLab
// answers 404 for both).
func (c *Client) FindNamespace(ctx context.Context, kind, path string) (Namespace, Presence, error) {
	var ns Namespace
	var err error
	switch kind {
	case "group":
		ns, err = c.GetGroup(ctx, path)
	case "project":
		ns, err = c.GetProject(ctx, path)
	default:
		return ns, 0, fmt.Errorf("unknown namespace kind %q", kind)
	}
	p, err := presenceOf(err)
	return ns, p, err
}

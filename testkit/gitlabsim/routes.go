package gitlabsim

import (
	"net/http"
	"net/url"
	"strings"
)

// authKind says how GitLab authenticates a route.
type authKind int

const (
	// byRunnerToken: the runner's own token in the body (lib/api/ci/runner.rb).
	byRunnerToken authKind = iota
	// byRegistrationToken: a registration token in the body.
	byRegistrationToken
	// byPAT: a personal access token, with scopes (APIGuard).
	byPAT
	// byJobToken: a CI job's token, in the body or the JOB-TOKEN header
	// (authenticate_job!).
	byJobToken
)

// call is one request on its way through a handler.
type call struct {
	w      http.ResponseWriter
	r      *http.Request
	params map[string]any
	// body is the request body as sent (a trace patch reads it whole).
	body []byte
	// seg holds the path's :id parameter, URL-decoded ("a/b" for a%2Fb).
	seg   string
	actor actor
}

// route is one row of the route table: everything the simulator knows
// about an endpoint lives here, once.
type route struct {
	method  string
	pattern string // below /api/v4; ":id" matches one URL-encoded segment
	// kind names the request in the log, the counts and fault rules.
	kind string
	// mutating requests change GitLab's state (verify and the job poll do not
	// in any way a client can observe through the API).
	mutating bool
	auth     authKind
	scopes   scopeRule
	handle   func(*Sim, *call)
	// source is where GitLab implements the endpoint.
	source string
	// present tells whether the release has the route (nil: every
	// supported release); without it the path is an unknown route.
	present func(Profile) bool
}

// Scopes registered by the endpoint classes (allow_access_with_scope).
var (
	// lib/api/ci/runners.rb: manage_runner, `if: request.params.key?(:id) &&
	// request.path.match?(%r{\A/api/v[34]/runners/})` — /runners/:id routes
	// only; the scope exists since 17.1 (Profile.ManageRunnerScope).
	runnersByID  = scopeRule{registered: []string{"manage_runner"}, applies: []string{"manage_runner"}}
	runnersLists = scopeRule{registered: []string{"manage_runner"}}
	// lib/api/user_runners.rb: create_runner, `if: request.post?`.
	userRunners = scopeRule{registered: []string{"create_runner"}, applies: []string{"create_runner"}}
	// lib/api/users.rb: read_user for GET/HEAD.
	usersAPI = scopeRule{registered: []string{"read_user"}, applies: []string{"read_user"}}
	// lib/api/personal_access_tokens/self_information.rb: every scope
	// (`Gitlab::Auth.all_available_scopes`): any token may read itself.
	anyScope = scopeRule{registered: allScopes, applies: allScopes}
	// lib/api/groups.rb, lib/api/projects.rb: only API::API's.
	plainAPI = scopeRule{}
)

var allScopes = []string{"api", "read_api", "read_user", "create_runner", "manage_runner", "k8s_proxy",
	"read_repository", "write_repository", "read_registry", "write_registry", "sudo", "admin_mode", "ai_features", "self_rotate"}

// routes is the simulator's API. Order matters only where two patterns
// could match: literal segments before ":id". A route a release lacks
// (present) answers as an unknown route but keeps its kind in the log.
var routes = []route{
	// Runner-token and registration-token endpoints (lib/api/ci/runner.rb).
	{"POST", "/runners", "register", true, byRegistrationToken, scopeRule{}, (*Sim).register, "lib/api/ci/runner.rb POST /runners", nil},
	{"DELETE", "/runners", "delete-token", true, byRunnerToken, scopeRule{}, (*Sim).deleteByToken, "lib/api/ci/runner.rb DELETE /runners", nil},
	{"DELETE", "/runners/managers", "delete-manager", true, byRunnerToken, scopeRule{}, (*Sim).deleteManager, "lib/api/ci/runner.rb DELETE /runners/managers (16.0, MR 118212)", nil},
	{"POST", "/runners/verify", "verify", false, byRunnerToken, scopeRule{}, (*Sim).verify, "lib/api/ci/runner.rb POST /runners/verify", nil},
	{"POST", "/runners/reset_authentication_token", "rotate", true, byRunnerToken, scopeRule{}, (*Sim).rotate, "lib/api/ci/runner.rb POST /runners/reset_authentication_token", nil},
	{"POST", "/jobs/request", "jobs-request", false, byRunnerToken, scopeRule{}, (*Sim).requestJob, "lib/api/ci/runner.rb POST /jobs/request", nil},
	{"PUT", "/jobs/:id", "job-update", true, byJobToken, scopeRule{}, (*Sim).updateJob, "lib/api/ci/runner.rb PUT /jobs/:id (Ci::UpdateBuildStateService)", nil},
	{"PATCH", "/jobs/:id/trace", "job-trace", true, byJobToken, scopeRule{}, (*Sim).appendTrace, "lib/api/ci/runner.rb PATCH /jobs/:id/trace (Ci::AppendBuildTraceService)", nil},

	// Personal-access-token endpoints.
	{"POST", "/user/runners", "create", true, byPAT, userRunners, (*Sim).createUserRunner, "lib/api/user_runners.rb POST /user/runners (create_runner scope: 16.2, MR 124074)", nil},
	{"GET", "/runners", "list", false, byPAT, runnersLists, (*Sim).listOwned, "lib/api/ci/runners.rb GET /runners", nil},
	{"GET", "/runners/all", "list", false, byPAT, runnersLists, (*Sim).listAll, "lib/api/ci/runners.rb GET /runners/all", nil},
	{"GET", "/runners/:id", "get", false, byPAT, runnersByID, (*Sim).getRunner, "lib/api/ci/runners.rb GET /runners/:id", nil},
	{"PUT", "/runners/:id", "update", true, byPAT, runnersByID, (*Sim).updateRunner, "lib/api/ci/runners.rb PUT /runners/:id", nil},
	{"DELETE", "/runners/:id", "delete-id", true, byPAT, runnersByID, (*Sim).deleteByID, "lib/api/ci/runners.rb DELETE /runners/:id", nil},
	{"POST", "/runners/:id/reset_authentication_token", "reset", true, byPAT, runnersByID, (*Sim).resetByID, "lib/api/ci/runners.rb POST /runners/:id/reset_authentication_token", nil},
	{"GET", "/runners/:id/managers", "managers", false, byPAT, runnersByID, (*Sim).listManagers, "lib/api/ci/runners.rb GET /runners/:id/managers (17.1, MR 153715)", func(p Profile) bool { return p.ManagersRoute }},
	{"GET", "/groups/:id/runners", "list", false, byPAT, runnersLists, (*Sim).listGroupRunners, "lib/api/ci/runners.rb GET /groups/:id/runners", nil},
	{"GET", "/projects/:id/runners", "list", false, byPAT, runnersLists, (*Sim).listProjectRunners, "lib/api/ci/runners.rb GET /projects/:id/runners", nil},
	{"POST", "/projects/:id/runners", "assign", true, byPAT, runnersLists, (*Sim).assignRunner, "lib/api/ci/runners.rb POST /projects/:id/runners + app/services/ci/runners/assign_runner_service.rb", nil},
	{"GET", "/groups/:id", "group", false, byPAT, plainAPI, (*Sim).getGroup, "lib/api/groups.rb GET /groups/:id", nil},
	{"GET", "/projects/:id", "project", false, byPAT, plainAPI, (*Sim).getProject, "lib/api/projects.rb GET /projects/:id", nil},
	{"GET", "/personal_access_tokens/self", "pat-self", false, byPAT, anyScope, (*Sim).patSelf, "lib/api/personal_access_tokens/self_information.rb", func(p Profile) bool { return p.PATSelf }},
	{"GET", "/user", "user", false, byPAT, usersAPI, (*Sim).currentUser, "lib/api/users.rb GET /user", nil},
}

const apiPrefix = "/api/v4"

// match finds the route of a request; seg is the decoded :id segment.
func match(method, escapedPath string) (*route, string) {
	rest, ok := strings.CutPrefix(escapedPath, apiPrefix)
	if !ok {
		return nil, ""
	}
	got := strings.Split(strings.TrimPrefix(rest, "/"), "/")
	for i := range routes {
		rt := &routes[i]
		if rt.method != method {
			continue
		}
		want := strings.Split(strings.TrimPrefix(rt.pattern, "/"), "/")
		if len(want) != len(got) {
			continue
		}
		seg, ok := "", true
		for j := range want {
			if want[j] == ":id" {
				v, err := url.PathUnescape(got[j])
				if err != nil || v == "" {
					ok = false
					break
				}
				seg = v
			} else if want[j] != got[j] {
				ok = false
				break
			}
		}
		if ok {
			return rt, seg
		}
	}
	return nil, ""
}

// kindOf names a request that has no log entry kind yet.
func kindOf(method, path string) string {
	if rt, _ := match(method, path); rt != nil {
		return rt.kind
	}
	return method + " " + strings.TrimPrefix(path, apiPrefix)
}

// dispatch runs the route: authentication, scopes, then the handler. It
// returns what the log records as the request's credentials.
func (s *Sim) dispatch(rt *route, c *call) string {
	switch rt.auth {
	case byRunnerToken, byRegistrationToken, byJobToken:
		// Every lib/api/ci/runner.rb endpoint first passes
		// `before { check_if_backoff_required! }`.
		if !s.backoff(c) {
			rt.handle(s, c)
		}
		switch rt.auth {
		case byRunnerToken:
			return "runner-token"
		case byJobToken:
			return "job-token"
		}
		return "registration-token"
	}
	s.mu.Lock()
	a, ok := s.authenticate(c.w, c.r)
	s.mu.Unlock()
	if !ok {
		return "pat:?"
	}
	s.mu.Lock()
	sr := rt.scopes.forProfile(s.profile)
	s.mu.Unlock()
	if checkScope(c.w, c.r.Method, sr, a) {
		c.actor = a
		rt.handle(s, c)
	}
	return "pat:" + a.pat.Name
}

package gitlabsim

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The conformance table: one request against a fresh, known world, over
// real HTTP, and the status and body shape GitLab answers with. The source
// column names the GitLab file that decides the answer (gitlabhq/gitlabhq
// unless it says gitlab-runner), and the versions column the profiles the
// row holds for (empty: every profile). A behaviour that differs between
// releases has one row per answer, each with its versions and the change
// (MR) that made the difference.
//
// The world:
//
//	users     root (admin), alice (owner of ops), bob (maintainer of ops),
//	          carol (maintainer of ops/app), eve (owner of ops/sub), dave (nothing)
//	groups    ops (100, registration token grp-reg), ops/sub (101), dev (102)
//	projects  ops/app (200, registration token proj-reg)
//	runners   1 instance [host1 main], manager s_aaaaaaaaaaaa
//	          2 group ops   3 project ops/app   4 group dev   5 group ops, orphaned
//	PATs      <user>-api [api], alice-manage [create_runner manage_runner],
//	          alice-read [read_api], root-read [read_api], root-mode [api admin_mode],
//	          revoked, expired (dave, [api])

func newWorld(t *testing.T, p Profile) (*Sim, *httptest.Server) {
	t.Helper()
	yesterday := time.Now().AddDate(0, 0, -1)
	s := New(Options{
		Version: p.Version,
		Users: []User{{Username: "root", Admin: true}, {Username: "alice"}, {Username: "bob"},
			{Username: "carol"}, {Username: "dave"}, {Username: "eve"}},
		Groups: []Group{
			{ID: 100, FullPath: "ops", RegistrationToken: "grp-reg", Members: map[string]AccessLevel{"alice": Owner, "bob": Maintainer}},
			{ID: 101, FullPath: "ops/sub", Members: map[string]AccessLevel{"eve": Owner}},
			{ID: 102, FullPath: "dev"},
		},
		Projects: []Project{{ID: 200, FullPath: "ops/app", RegistrationToken: "proj-reg", Members: map[string]AccessLevel{"carol": Maintainer}}},
		PATs: []PAT{
			{Name: "root-api", Value: "root-api", User: "root", Scopes: []string{"api"}},
			{Name: "root-read", Value: "root-read", User: "root", Scopes: []string{"read_api"}},
			{Name: "root-mode", Value: "root-mode", User: "root", Scopes: []string{"api", "admin_mode"}},
			{Name: "alice-api", Value: "alice-api", User: "alice", Scopes: []string{"api"}},
			{Name: "alice-manage", Value: "alice-manage", User: "alice", Scopes: []string{"create_runner", "manage_runner"}},
			{Name: "alice-read", Value: "alice-read", User: "alice", Scopes: []string{"read_api"}},
			{Name: "bob-api", Value: "bob-api", User: "bob", Scopes: []string{"api"}},
			{Name: "carol-api", Value: "carol-api", User: "carol", Scopes: []string{"api"}},
			{Name: "dave-api", Value: "dave-api", User: "dave", Scopes: []string{"api"}},
			{Name: "eve-api", Value: "eve-api", User: "eve", Scopes: []string{"api"}},
			{Name: "revoked", Value: "revoked", User: "dave", Scopes: []string{"api"}, Revoked: true},
			{Name: "expired", Value: "expired", User: "dave", Scopes: []string{"api"}, ExpiresAt: yesterday},
		},
		RegistrationToken: "inst-reg",
	})
	s.AddRunner(Runner{Description: "inst", TagList: []string{"host1", "main"}, Managers: map[string]Manager{"s_aaaaaaaaaaaa": {}}})
	s.AddRunner(Runner{Description: "grp", RunnerType: "group_type", GroupID: 100, TagList: []string{"g"}})
	s.AddRunner(Runner{Description: "prj", RunnerType: "project_type", ProjectID: 200, TagList: []string{"p"}})
	s.AddRunner(Runner{Description: "dev", RunnerType: "group_type", GroupID: 102, TagList: []string{"d"}})
	s.AddRunner(Runner{Description: "orphan", RunnerType: "group_type", GroupID: 100, TagList: []string{"o"}, Orphaned: true})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, srv
}

// prefix matches a string field by its start (tokens are random).
type prefix string

// present matches any value of a field that must be there.
type present struct{}

// shape matches a string field against a regular expression.
type shape string

type conformanceRow struct {
	name         string
	versions     []string // the profiles the row holds for; nil: all
	method, path string
	pat          string
	body         map[string]any
	setup        func(*Sim)
	status       int
	want         map[string]any // top-level fields of a JSON object
	absent       []string       // fields that must not be there (in every item of a list)
	items        int            // for list answers: the number of items; -1: not a list
	text         string         // a plain-text body
	header       map[string]string
	// reqHeader are request headers; trace, when set, is sent as the
	// text/plain body instead of body. "$job<n>" in either is job n's token.
	reqHeader map[string]string
	trace     string
	source    string
}

func conformanceRows() []conformanceRow {
	tags51 := make([]string, 51)
	for i := range tags51 {
		tags51[i] = fmt.Sprintf("t%d", i)
	}
	insufficient := func(scope string) map[string]any {
		return map[string]any{"error": "insufficient_scope", "scope": scope,
			"error_description": "The request requires higher privileges than provided by the access token."}
	}
	msg := func(m string) map[string]any { return map[string]any{"message": m} }
	errBody := func(m string) map[string]any { return map[string]any{"error": m} }
	// The versions columns, named after the change that splits them.
	var (
		before171 = []string{"16.11", "17.0"} // managers route and manage_runner scope: 17.1
		since171  = []string{"17.9", "18.5"}
		before176 = []string{"16.11", "17.0"} // partition prefix of runner tokens: 17.6
		since176  = []string{"17.9", "18.5"}
		before179 = []string{"16.11", "17.0"} // orphaned runners refused: 17.9
		since179  = []string{"17.9", "18.5"}
		tokensOn  = []string{"16.11"} // registration tokens off by default: 17.0
		tokensOff = []string{"17.0", "17.9", "18.5"}

		allowTokens = func(s *Sim) { s.SetRegistrationTokensAllowed(true) }
		orphans422  = func(s *Sim) {
			p := s.Profile()
			p.OrphanedRunner = OrphanUnprocessable
			s.SetProfile(p)
		}
		timeout3600 = func(s *Sim) { s.UpdateRunner(1, func(r *Runner) { r.MaximumTimeout = 3600 }) }
		// queued: job 1 for runner 1, not taken yet; running: runner 1 took
		// it (with a real poll); finished: it succeeded.
		queued   = func(s *Sim) { s.EnqueueJob(JobSpec{Script: []string{"echo hi"}, RunnerID: 1}) }
		running  = func(s *Sim) { queued(s); takeJobs(s, 1) }
		finished = func(s *Sim) {
			running(s)
			s.mu.Lock()
			s.jobs[1].Status = JobSuccess
			s.mu.Unlock()
		}
		jobToken1    = map[string]string{"Job-Token": "$job1", "Content-Range": "0-4"}
		opsNoRunners = func(s *Sim) { s.UpdateGroup("ops", func(g *Group) { g.RunnerRegistrationDisabled = true }) }
	)
	const (
		runnersRB = "lib/api/ci/runners.rb"
		runnerRB  = "lib/api/ci/runner.rb"
		userRunRB = "lib/api/user_runners.rb + app/services/ci/runners/create_runner_service.rb"
		guardRB   = "lib/api/api_guard.rb"
		policyRB  = "lib/api/ci/runners.rb + app/policies/ci/runner_policy.rb"
		modelRB   = "app/models/ci/runner.rb (validations) + lib/api/helpers.rb render_validation_error!"
		regRB     = "lib/api/ci/runner.rb + app/services/ci/runners/register_runner_service.rb"
	)
	return []conformanceRow{
		// Authentication (lib/api/helpers.rb, lib/api/api_guard.rb).
		{name: "no token", method: "GET", path: "/runners/all", status: 401, want: msg("401 Unauthorized"), items: -1, source: "lib/api/helpers.rb unauthorized!"},
		{name: "unknown token", method: "GET", path: "/runners/all", pat: "nope", status: 401, want: msg("401 Unauthorized"), items: -1, source: "lib/gitlab/auth/auth_finders.rb UnauthorizedError"},
		{name: "revoked token", method: "GET", path: "/runners", pat: "revoked", status: 401, items: -1, source: guardRB,
			want:   map[string]any{"error": "invalid_token", "error_description": "Token was revoked. You have to re-authorize from the user."},
			header: map[string]string{"WWW-Authenticate": `Bearer realm="The API", error="invalid_token", error_description="Token was revoked. You have to re-authorize from the user."`}},
		{name: "expired token", method: "GET", path: "/personal_access_tokens/self", pat: "expired", status: 401, items: -1, source: guardRB,
			want: map[string]any{"error": "invalid_token", "error_description": "Token is expired. You can either do re-authorization or token refresh."}},

		// Scopes per route (allow_access_with_scope in lib/api/api.rb, runners.rb, user_runners.rb).
		{name: "manage_runner cannot list own runners", versions: since171, method: "GET", path: "/runners", pat: "alice-manage", status: 403, want: insufficient("manage_runner api read_api"), items: -1, source: runnersRB},
		{name: "no manage_runner scope before 17.1", versions: before171, method: "GET", path: "/runners", pat: "alice-manage", status: 403, want: insufficient("api read_api"), items: -1, source: runnersRB + " (manage_runner: 17.1, MR 153285)"},
		{name: "manage_runner cannot list all runners", versions: since171, method: "GET", path: "/runners/all", pat: "alice-manage", status: 403, want: insufficient("manage_runner api read_api"), items: -1, source: runnersRB},
		{name: "manage_runner cannot list group runners", versions: since171, method: "GET", path: "/groups/ops/runners", pat: "alice-manage", status: 403, want: insufficient("manage_runner api read_api"), items: -1, source: runnersRB},
		{name: "manage_runner cannot resolve a group", method: "GET", path: "/groups/ops", pat: "alice-manage", status: 403, want: insufficient("api read_api"), items: -1, source: "lib/api/api.rb + lib/api/groups.rb"},
		{name: "manage_runner reads a runner by id", versions: since171, method: "GET", path: "/runners/2", pat: "alice-manage", status: 200, want: map[string]any{"id": 2.0, "runner_type": "group_type"}, items: -1, source: runnersRB},
		{name: "manage_runner opens nothing before 17.1", versions: before171, method: "GET", path: "/runners/2", pat: "alice-manage", status: 403, want: insufficient("api read_api"), items: -1, source: runnersRB + " (manage_runner: 17.1, MR 153285)"},
		{name: "manage_runner updates a runner by id", versions: since171, method: "PUT", path: "/runners/2", pat: "alice-manage", body: map[string]any{"paused": true}, status: 200, want: map[string]any{"paused": true}, items: -1, source: runnersRB},
		{name: "manage_runner resets a token by id", versions: since171, method: "POST", path: "/runners/2/reset_authentication_token", pat: "alice-manage", status: 201, want: map[string]any{"token": prefix("glrt-t2_"), "token_expires_at": nil}, items: -1, source: runnersRB},
		{name: "manage_runner reads managers", versions: since171, method: "GET", path: "/runners/2/managers", pat: "alice-manage", status: 200, items: 0, source: runnersRB},
		{name: "read_api reads managers", versions: since171, method: "GET", path: "/runners/1/managers", pat: "alice-read", status: 200, items: 1, source: "lib/api/api.rb read_api on GET"},
		{name: "no managers route before 17.1", versions: before171, method: "GET", path: "/runners/1/managers", pat: "root-api", status: 404, want: errBody("404 Not Found"), items: -1, source: "lib/api/api.rb route :any, '*path' (GET /runners/:id/managers: 17.1, MR 153715)"},
		{name: "no managers route before 17.1, even without a token", versions: before171, method: "GET", path: "/runners/1/managers", status: 404, want: errBody("404 Not Found"), items: -1, source: "lib/api/api.rb route :any, '*path' (Grape routes before it authenticates)"},
		{name: "read_api lists", method: "GET", path: "/runners", pat: "alice-read", status: 200, items: 3, absent: []string{"tag_list"}, source: runnersRB},
		{name: "read_api cannot update", versions: since171, method: "PUT", path: "/runners/2", pat: "alice-read", body: map[string]any{"paused": true}, status: 403, want: insufficient("manage_runner api read_api"), items: -1, source: "lib/api/api.rb read_api only for GET/HEAD"},
		{name: "read_api cannot update (no manage_runner yet)", versions: before171, method: "PUT", path: "/runners/2", pat: "alice-read", body: map[string]any{"paused": true}, status: 403, want: insufficient("api read_api"), items: -1, source: "lib/api/api.rb read_api only for GET/HEAD"},
		{name: "read_api cannot create", method: "POST", path: "/user/runners", pat: "alice-read", body: map[string]any{"runner_type": "group_type", "group_id": 100}, status: 403, want: insufficient("create_runner api read_api"), items: -1, source: "lib/api/user_runners.rb"},
		{name: "create_runner creates a group runner", method: "POST", path: "/user/runners", pat: "alice-manage", body: map[string]any{"runner_type": "group_type", "group_id": 100, "tag_list": []string{"a"}}, status: 201, want: map[string]any{"id": 6.0, "token": prefix("glrt-"), "token_expires_at": nil}, items: -1, source: userRunRB},
		{name: "any scope reads its own token", method: "GET", path: "/personal_access_tokens/self", pat: "alice-manage", status: 200, items: -1, source: "lib/api/personal_access_tokens/self_information.rb + lib/api/entities/personal_access_token.rb",
			want: map[string]any{"name": "alice-manage", "active": true, "revoked": false, "expires_at": nil, "scopes": []any{"create_runner", "manage_runner"}, "user_id": 2.0}},

		// Creating runners: who may, and what is checked (user_runners.rb, runner_creation_strategies).
		{name: "instance runner needs an administrator", method: "POST", path: "/user/runners", pat: "alice-api", body: map[string]any{"runner_type": "instance_type"}, status: 403, want: msg("403 Forbidden - Insufficient permissions"), items: -1, source: userRunRB},
		{name: "group runner needs a group owner", method: "POST", path: "/user/runners", pat: "bob-api", body: map[string]any{"runner_type": "group_type", "group_id": 100}, status: 403, want: msg("403 Forbidden - Insufficient permissions"), items: -1, source: "app/services/ci/runners/runner_creation_strategies/group_runner_strategy.rb"},
		{name: "project maintainer creates a project runner", method: "POST", path: "/user/runners", pat: "carol-api", body: map[string]any{"runner_type": "project_type", "project_id": 200}, status: 201, want: map[string]any{"token": shape(`^glrt-t3_[A-Za-z0-9_-]{20}$`)}, versions: since176, items: -1, source: "app/services/ci/runners/runner_creation_strategies/project_runner_strategy.rb; token: app/models/ci/runner.rb prefix_for_new_and_legacy_runner (t3_: MR 168017, 17.6)"},
		{name: "created runner token before the partition prefix", versions: before176, method: "POST", path: "/user/runners", pat: "carol-api", body: map[string]any{"runner_type": "project_type", "project_id": 200}, status: 201, want: map[string]any{"token": shape(`^glrt-[A-Za-z0-9_-]{20}$`)}, items: -1, source: "app/models/ci/runner.rb prefix_for_new_and_legacy_runner (glrt-: MR 110275)"},
		{name: "unknown group", method: "POST", path: "/user/runners", pat: "alice-api", body: map[string]any{"runner_type": "group_type", "group_id": 999}, status: 400, want: msg("400 Bad request - Missing/invalid group"), items: -1, source: "group_runner_strategy.rb validate_params"},
		{name: "group_id missing", method: "POST", path: "/user/runners", pat: "alice-api", body: map[string]any{"runner_type": "group_type"}, status: 400, want: errBody("group_id is missing"), items: -1, source: "lib/api/user_runners.rb given runner_type"},
		{name: "runner_type missing", method: "POST", path: "/user/runners", pat: "alice-api", body: map[string]any{}, status: 400, want: errBody("runner_type is missing"), items: -1, source: "lib/api/user_runners.rb requires :runner_type"},
		{name: "51 tags on create", method: "POST", path: "/user/runners", pat: "root-api", body: map[string]any{"runner_type": "instance_type", "tag_list": tags51}, status: 400, want: msg("400 Bad request - Tags list Too many tags specified. Please limit the number of tags to 50"), items: -1, source: "app/models/ci/runner.rb tag_constraints + create_runner_service.rb"},
		{name: "no tags and not run_untagged", method: "POST", path: "/user/runners", pat: "root-api", body: map[string]any{"runner_type": "instance_type", "run_untagged": false}, status: 400, want: msg("400 Bad request - Tags list can not be empty when runner is not allowed to pick untagged jobs"), items: -1, source: "app/models/ci/runner.rb tag_constraints"},
		{name: "group with runner registration off refuses its owner", setup: opsNoRunners, method: "POST", path: "/user/runners", pat: "alice-api", body: map[string]any{"runner_type": "group_type", "group_id": 100}, status: 403, want: msg("403 Forbidden - Insufficient permissions"), items: -1, source: "app/policies/group_policy.rb `rule { ~admin & ~group_runner_registration_allowed }` prevent :create_runner"},
		{name: "runner registration off holds for subgroups", setup: opsNoRunners, method: "POST", path: "/user/runners", pat: "eve-api", body: map[string]any{"runner_type": "group_type", "group_id": 101}, status: 403, want: msg("403 Forbidden - Insufficient permissions"), items: -1, source: "app/models/namespace_setting.rb runner_registration_enabled? (all ancestors)"},
		{name: "runner registration off: administrators still create", setup: opsNoRunners, method: "POST", path: "/user/runners", pat: "root-api", body: map[string]any{"runner_type": "group_type", "group_id": 100}, status: 201, want: map[string]any{"token": prefix("glrt-")}, items: -1, source: "app/policies/group_policy.rb ~admin"},
		{name: "administrator creates an instance runner", method: "POST", path: "/user/runners", pat: "root-api", body: map[string]any{"runner_type": "instance_type", "tag_list": "a, b"}, status: 201, want: map[string]any{"token": prefix("glrt-")}, items: -1, source: userRunRB},

		// Permissions on /runners/:id (authenticate_*_runner! + RunnerPolicy); 404 before 403.
		{name: "missing runner", method: "GET", path: "/runners/999", pat: "root-api", status: 404, want: msg("404 Not found"), items: -1, source: "lib/api/api.rb rescue_from ActiveRecord::RecordNotFound (get_runner uses Ci::Runner.find)"},
		{name: "missing runner's managers", versions: since171, method: "GET", path: "/runners/999/managers", pat: "root-api", status: 404, want: msg("404 Not found"), items: -1, source: runnersRB + " get_runner"},
		{name: "missing runner on delete", method: "DELETE", path: "/runners/999", pat: "alice-api", status: 404, want: msg("404 Not found"), items: -1, source: "lib/api/api.rb"},
		{name: "non-integer id", method: "GET", path: "/runners/abc", pat: "root-api", status: 400, want: errBody("id is invalid"), items: -1, source: "lib/api/ci/runners.rb requires :id, type: Integer"},
		{name: "stranger reads a group runner", method: "GET", path: "/runners/2", pat: "dave-api", status: 403, want: msg("403 Forbidden - No access granted"), items: -1, source: policyRB},
		{name: "anyone reads an instance runner", method: "GET", path: "/runners/1", pat: "dave-api", status: 200, want: map[string]any{"tag_list": []any{"host1", "main"}, "maintenance_note": nil}, items: -1, source: policyRB + " is_instance_runner"},
		{name: "stranger updates an instance runner", method: "PUT", path: "/runners/1", pat: "dave-api", body: map[string]any{"paused": true}, status: 403, want: msg("403 Forbidden - No access granted"), items: -1, source: policyRB},
		{name: "stranger resets a token", method: "POST", path: "/runners/4/reset_authentication_token", pat: "alice-api", status: 403, want: msg("403 Forbidden - No access granted"), items: -1, source: policyRB},
		{name: "group maintainer reads a group runner", method: "GET", path: "/runners/2", pat: "bob-api", status: 200, items: -1, source: policyRB + " maintainer_in_any_associated_groups"},
		{name: "group maintainer cannot delete it", method: "DELETE", path: "/runners/2", pat: "bob-api", status: 403, want: msg("403 Forbidden - No access granted"), items: -1, source: policyRB + " can_admin_runner"},
		{name: "group owner deletes it", method: "DELETE", path: "/runners/2", pat: "alice-api", status: 204, items: -1, source: runnersRB},
		{name: "project maintainer updates a project runner", method: "PUT", path: "/runners/3", pat: "carol-api", body: map[string]any{"description": "x"}, status: 200, items: -1, source: policyRB + " maintainer_in_owner_scope"},
		{name: "stranger reads managers", versions: since171, method: "GET", path: "/runners/4/managers", pat: "alice-api", status: 403, want: msg("403 Forbidden - No access granted"), items: -1, source: runnersRB + " authenticate_show_runner!"},

		// PUT /runners/:id parameters and validations.
		{name: "maximum_timeout below 600", method: "PUT", path: "/runners/1", pat: "root-api", body: map[string]any{"maximum_timeout": 300}, status: 400, want: map[string]any{"message": map[string]any{"maximum_timeout": []any{"needs to be at least 10 minutes"}}}, items: -1, source: modelRB},
		{name: "maximum_timeout 0 is a value", method: "PUT", path: "/runners/1", pat: "root-api", body: map[string]any{"maximum_timeout": 0}, status: 400, want: map[string]any{"message": map[string]any{"maximum_timeout": []any{"needs to be at least 10 minutes"}}}, items: -1, source: modelRB + " validates :maximum_timeout, allow_nil: true"},
		{name: "maximum_timeout omitted stays", setup: timeout3600, method: "PUT", path: "/runners/1", pat: "root-api", body: map[string]any{"description": "x"}, status: 200, want: map[string]any{"maximum_timeout": 3600.0}, items: -1, source: runnersRB + " declared_params(include_missing: false)"},
		{name: "maximum_timeout null clears it", setup: timeout3600, method: "PUT", path: "/runners/1", pat: "root-api", body: map[string]any{"maximum_timeout": nil}, status: 200, want: map[string]any{"maximum_timeout": nil}, items: -1, source: runnersRB + " optional :maximum_timeout, type: Integer (nil allowed) + " + modelRB},
		{name: "51 tags on update", method: "PUT", path: "/runners/1", pat: "root-api", body: map[string]any{"tag_list": tags51}, status: 400, want: map[string]any{"message": map[string]any{"tags_list": []any{"Too many tags specified. Please limit the number of tags to 50"}}}, items: -1, source: modelRB + " TAG_LIST_MAX_LENGTH"},
		{name: "active and paused together", method: "PUT", path: "/runners/1", pat: "root-api", body: map[string]any{"active": true, "paused": false}, status: 400, want: errBody("active, paused are mutually exclusive"), items: -1, source: runnersRB + " mutually_exclusive"},
		{name: "nothing to update", method: "PUT", path: "/runners/1", pat: "root-api", body: map[string]any{}, status: 400, want: errBody("description, active, paused, tag_list, run_untagged, locked, access_level, maximum_timeout, maintenance_note are missing, at least one parameter must be provided"), items: -1, source: runnersRB + " at_least_one_of"},
		{name: "tags with commas are split", method: "PUT", path: "/runners/1", pat: "root-api", body: map[string]any{"tag_list": []string{"a,b", "c"}}, status: 200, want: map[string]any{"tag_list": []any{"a", "b", "c"}}, items: -1, source: "lib/api/validations/types/comma_separated_to_array.rb"},
		{name: "bad access_level", method: "PUT", path: "/runners/1", pat: "root-api", body: map[string]any{"access_level": "x"}, status: 400, want: errBody("access_level does not have a valid value"), items: -1, source: runnersRB + " values: access_levels"},

		// Lists: which runners, which entity, which filters.
		{name: "owned runners", method: "GET", path: "/runners", pat: "alice-api", status: 200, items: 3, absent: []string{"tag_list", "token"}, source: "app/models/user.rb ci_owned_runners"},
		{name: "all runners needs an administrator", method: "GET", path: "/runners/all", pat: "alice-api", status: 403, want: msg("403 Forbidden"), items: -1, source: runnersRB + " authenticated_as_admin!"},
		{name: "tag_list is AND", method: "GET", path: "/runners/all?tag_list=host1,main", pat: "root-api", status: 200, items: 1, source: runnersRB + " tagged_with"},
		{name: "tag_list is case-sensitive", method: "GET", path: "/runners/all?tag_list=HOST1", pat: "root-api", status: 200, items: 0, source: runnersRB + " tagged_with"},
		{name: "type filter", method: "GET", path: "/runners/all?type=group_type", pat: "root-read", status: 200, items: 3, source: runnersRB + " filter_params"},
		{name: "bad type filter", method: "GET", path: "/runners/all?type=shared", pat: "root-api", status: 400, want: errBody("type does not have a valid value"), items: -1, source: runnersRB + " values: AVAILABLE_TYPES"},
		{name: "group runners include ancestors and instance", method: "GET", path: "/groups/ops%2Fsub/runners", pat: "eve-api", status: 200, items: 3, source: "app/models/ci/runner.rb group_or_instance_wide"},
		{name: "group maintainer lists group runners", method: "GET", path: "/groups/ops/runners", pat: "bob-api", status: 200, items: 3, source: "app/policies/group_policy.rb `rule { maintainer }` read_group_runners (16.4, MR 128607, MR 130500)"},
		{name: "group runners need a group maintainer", method: "GET", path: "/groups/ops/runners", pat: "carol-api", status: 403, want: msg("403 Forbidden"), items: -1, source: "lib/api/ci/runners.rb authorize! :read_group_runners"},
		{name: "unknown group", method: "GET", path: "/groups/nope/runners", pat: "alice-api", status: 404, want: msg("404 Group Not Found"), items: -1, source: "lib/api/helpers.rb find_group!"},
		{name: "invisible group is 404", method: "GET", path: "/groups/102/runners", pat: "alice-api", status: 404, want: msg("404 Group Not Found"), items: -1, source: "lib/api/helpers.rb find_group!"},
		{name: "project runners", method: "GET", path: "/projects/ops%2Fapp/runners", pat: "carol-api", status: 200, items: 4, source: "app/models/ci/runner.rb owned_or_instance_wide"},
		{name: "invisible project is 404", method: "GET", path: "/projects/200/runners", pat: "dave-api", status: 404, want: msg("404 Project Not Found"), items: -1, source: "lib/api/helpers.rb find_project!"},

		// Groups, projects, the user.
		{name: "group by path", method: "GET", path: "/groups/ops%2Fsub", pat: "eve-api", status: 200, want: map[string]any{"id": 101.0, "full_path": "ops/sub", "parent_id": 100.0}, items: -1, source: "lib/api/groups.rb + lib/api/entities/group.rb"},
		{name: "ancestor visible to a subgroup member", method: "GET", path: "/groups/ops", pat: "eve-api", status: 200, want: map[string]any{"id": 100.0}, items: -1, source: "app/policies/group_policy.rb"},
		{name: "group hidden from strangers", method: "GET", path: "/groups/ops", pat: "dave-api", status: 404, want: msg("404 Group Not Found"), items: -1, source: "lib/api/helpers.rb find_group!"},
		{name: "project by path", method: "GET", path: "/projects/ops%2Fapp", pat: "carol-api", status: 200, want: map[string]any{"id": 200.0, "path_with_namespace": "ops/app"}, absent: []string{"full_path"}, items: -1, source: "lib/api/projects.rb + lib/api/entities/project.rb"},
		{name: "user as administrator", method: "GET", path: "/user", pat: "root-api", status: 200, want: map[string]any{"username": "root", "is_admin": true}, items: -1, source: "lib/api/users.rb Entities::UserWithAdmin"},
		{name: "user as non-administrator", method: "GET", path: "/user", pat: "dave-api", status: 200, absent: []string{"is_admin"}, items: -1, source: "lib/api/users.rb Entities::UserPublic"},

		// Admin Mode (lib/gitlab/auth/current_user_mode.rb).
		{name: "admin mode: api alone is no administrator", method: "GET", path: "/runners/all", pat: "root-api", setup: func(s *Sim) { s.SetAdminMode(true) }, status: 403, want: msg("403 Forbidden"), items: -1, source: "lib/gitlab/auth/current_user_mode.rb"},
		{name: "admin mode: admin_mode scope", method: "GET", path: "/runners/all", pat: "root-mode", setup: func(s *Sim) { s.SetAdminMode(true) }, status: 200, items: 5, source: "lib/gitlab/auth/current_user_mode.rb"},
		{name: "admin mode: instance runner without admin_mode", method: "POST", path: "/user/runners", pat: "root-api", body: map[string]any{"runner_type": "instance_type"}, setup: func(s *Sim) { s.SetAdminMode(true) }, status: 403, want: msg("403 Forbidden - Insufficient permissions"), items: -1, source: "instance_runner_strategy.rb"},
		{name: "admin mode: user still shows is_admin", method: "GET", path: "/user", pat: "root-api", setup: func(s *Sim) { s.SetAdminMode(true) }, status: 200, want: map[string]any{"is_admin": true}, items: -1, source: "lib/api/users.rb current_user.admin?"},

		// Runner-token endpoints (lib/api/ci/runner.rb).
		{name: "verify", method: "POST", path: "/runners/verify", body: map[string]any{"token": "$tok1", "system_id": "s_bbbbbbbbbbbb"}, status: 200, want: map[string]any{"id": 1.0, "token": prefix("glrt-"), "token_expires_at": nil}, items: -1, source: runnerRB + " POST /verify (Entities::Ci::RunnerRegistrationDetails)"},
		{name: "verify with a wrong token", method: "POST", path: "/runners/verify", body: map[string]any{"token": "glrt-nope"}, status: 403, want: msg("403 Forbidden"), items: -1, source: "lib/api/ci/helpers/runner.rb authenticate_runner!"},
		{name: "verify without a token", method: "POST", path: "/runners/verify", body: map[string]any{}, status: 400, want: errBody("token is missing"), items: -1, source: runnerRB + " requires :token"},
		{name: "verify an orphaned runner", versions: since179, method: "POST", path: "/runners/verify", body: map[string]any{"token": "$tok5"}, status: 403, want: msg("403 Forbidden - Runner is orphaned"), items: -1, source: "lib/api/ci/helpers/runner.rb authenticate_runner! forbidden!('Runner is orphaned') (17.9, MR 180163, MR 180918)"},
		{name: "orphaned runners verify before 17.9", versions: before179, method: "POST", path: "/runners/verify", body: map[string]any{"token": "$tok5"}, status: 200, want: map[string]any{"id": 5.0}, items: -1, source: "lib/api/ci/helpers/runner.rb authenticate_runner! (no owner check before 17.9)"},
		{name: "verify an orphaned runner, reject_orphaned_runners off", versions: []string{"17.9"}, setup: orphans422, method: "POST", path: "/runners/verify", body: map[string]any{"token": "$tok5"}, status: 422, want: msg("Runner is orphaned"), items: -1, source: runnerRB + " rescue UnknownRunnerOwnerError (MR 180163, flag off)"},
		{name: "unregister an orphaned runner", versions: since179, method: "DELETE", path: "/runners", body: map[string]any{"token": "$tok5"}, status: 403, want: msg("403 Forbidden - Runner is orphaned"), items: -1, source: "lib/api/ci/helpers/runner.rb authenticate_runner! (every runner-token endpoint)"},
		{name: "unregister an orphaned runner, reject_orphaned_runners off", versions: []string{"17.9"}, setup: orphans422, method: "DELETE", path: "/runners", body: map[string]any{"token": "$tok5"}, status: 204, items: -1, source: runnerRB + " DELETE / (ensure_runner_manager: false: no UnknownRunnerOwnerError)"},
		{name: "orphaned runner rotates, reject_orphaned_runners off", versions: []string{"17.9"}, setup: orphans422, method: "POST", path: "/runners/reset_authentication_token", body: map[string]any{"token": "$tok5"}, status: 500, items: -1, source: runnerRB + " POST /reset_authentication_token does not rescue UnknownRunnerOwnerError"},
		{name: "verify during migrations", method: "POST", path: "/runners/verify", body: map[string]any{"token": "$tok1"}, setup: func(s *Sim) { s.SetMigrationBackoff(true) }, status: 429, want: msg("Executing database migrations. Please retry later."), header: map[string]string{"Retry-After": "60"}, items: -1, source: "lib/api/ci/helpers/runner.rb check_if_backoff_required!"},
		{name: "job poll", method: "POST", path: "/jobs/request", body: map[string]any{"token": "$tok1", "system_id": "s_bbbbbbbbbbbb", "info": map[string]any{"version": "17.9.3"}}, status: 204, header: map[string]string{"X-GitLab-Last-Update": "?"}, items: -1, source: runnerRB + " POST /jobs/request; gitlab-runner network/gitlab.go RequestJob"},
		{name: "job poll with a wrong token", method: "POST", path: "/jobs/request", body: map[string]any{"token": "glrt-nope"}, status: 403, want: msg("403 Forbidden"), items: -1, source: runnerRB},
		{name: "job poll of an orphaned runner", versions: since179, method: "POST", path: "/jobs/request", body: map[string]any{"token": "$tok5"}, status: 403, want: msg("403 Forbidden - Runner is orphaned"), items: -1, source: "lib/api/ci/helpers/runner.rb authenticate_runner! (17.9)"},
		{name: "job poll of an orphaned runner before 17.9", versions: before179, method: "POST", path: "/jobs/request", body: map[string]any{"token": "$tok5"}, status: 204, items: -1, source: runnerRB},
		{name: "job poll of an orphaned runner, reject_orphaned_runners off", versions: []string{"17.9"}, setup: orphans422, method: "POST", path: "/jobs/request", body: map[string]any{"token": "$tok5"}, status: 422, want: msg("Runner is orphaned"), items: -1, source: runnerRB + " rescue UnknownRunnerOwnerError"},
		{name: "job poll with a job queued", setup: queued, method: "POST", path: "/jobs/request", body: map[string]any{"token": "$tok1", "system_id": "s_bbbbbbbbbbbb"}, status: 201, items: -1,
			want:   map[string]any{"id": 1.0, "token": prefix("glcbt-"), "allow_git_fetch": true, "job_info": present{}, "git_info": present{}, "runner_info": present{}, "variables": present{}, "steps": present{}, "features": present{}},
			source: runnerRB + " POST /jobs/request (Ci::RegisterJobService) + lib/api/entities/ci/job_request/response.rb; gitlab-runner network/gitlab.go RequestJob 201 into common.JobResponse"},
		{name: "job poll: the job is another runner's", method: "POST", path: "/jobs/request", body: map[string]any{"token": "$tok2"}, setup: queued, status: 204, header: map[string]string{"X-GitLab-Last-Update": "?"}, items: -1, source: "app/services/ci/register_job_service.rb (builds the runner may pick)"},
		{name: "job poll of a paused runner", method: "POST", path: "/jobs/request", body: map[string]any{"token": "$tok1"}, setup: func(s *Sim) { queued(s); s.UpdateRunner(1, func(r *Runner) { r.Paused = true }) }, status: 204, header: map[string]string{"X-GitLab-Last-Update": "?"}, items: -1, source: runnerRB + " `unless current_runner.active?` no_content!"},
		{name: "job keep-alive", setup: running, method: "PUT", path: "/jobs/1", body: map[string]any{"token": "$job1", "state": "running"}, status: 200, text: `"200"`, items: -1, source: runnerRB + " PUT /jobs/:id + app/services/ci/update_build_state_service.rb update_build_state!"},
		{name: "job succeeds", setup: running, method: "PUT", path: "/jobs/1", body: map[string]any{"token": "$job1", "state": "success", "output": map[string]any{"checksum": "crc32:0", "bytesize": 0}}, status: 200, text: `"200"`, items: -1, source: "app/services/ci/update_build_state_service.rb (200 without live trace chunks, ci_job_live_trace_enabled off)"},
		{name: "job fails", setup: running, method: "PUT", path: "/jobs/1", body: map[string]any{"token": "$job1", "state": "failed", "failure_reason": "script_failure", "exit_code": 1}, status: 200, text: `"200"`, items: -1, source: "app/services/ci/update_build_state_service.rb drop_with_exit_code!"},
		{name: "job update in an unknown state", setup: running, method: "PUT", path: "/jobs/1", body: map[string]any{"token": "$job1", "state": "paused"}, status: 400, text: `"400"`, items: -1, source: "app/services/ci/update_build_state_service.rb Result.new(status: 400)"},
		{name: "job update without a token", setup: running, method: "PUT", path: "/jobs/1", body: map[string]any{"state": "running"}, status: 400, want: errBody("token is missing"), items: -1, source: runnerRB + " requires :token"},
		{name: "job update with a wrong token", setup: running, method: "PUT", path: "/jobs/1", body: map[string]any{"token": "glcbt-nope", "state": "running"}, status: 403, want: msg("403 Forbidden"), items: -1, source: "lib/api/ci/helpers/runner.rb authenticate_job! valid_token?"},
		{name: "job update of an unknown job", setup: running, method: "PUT", path: "/jobs/9", body: map[string]any{"token": "$job1", "state": "running"}, status: 403, want: msg("403 Forbidden"), items: -1, source: "lib/api/ci/helpers/runner.rb authenticate_job! (403, not 404, so that the runner stops the job)"},
		{name: "job update after the job finished", setup: finished, method: "PUT", path: "/jobs/1", body: map[string]any{"token": "$job1", "state": "success"}, status: 403, want: msg("403 Forbidden - Job is not running"), header: map[string]string{"Job-Status": "success"}, items: -1, source: "lib/api/ci/helpers/runner.rb job_forbidden!(job, 'Job is not running')"},
		{name: "trace patch", setup: running, method: "PATCH", path: "/jobs/1/trace", reqHeader: jobToken1, trace: "hello", status: 202, items: -1,
			header: map[string]string{"Range": "0-5", "Job-Status": "running", "X-GitLab-Trace-Update-Interval": "60"},
			source: runnerRB + " PATCH /jobs/:id/trace + app/services/ci/append_build_trace_service.rb; gitlab-runner network/gitlab.go PatchTrace"},
		{name: "trace patch at the wrong offset", setup: running, method: "PATCH", path: "/jobs/1/trace", reqHeader: map[string]string{"Job-Token": "$job1", "Content-Range": "7-11"}, trace: "hello", status: 416, want: msg("416 Range Not Satisfiable"), header: map[string]string{"Range": "0-0"}, items: -1, source: "app/services/ci/append_build_trace_service.rb + lib/gitlab/ci/trace.rb append (offset must be the size)"},
		{name: "trace patch without Content-Range", setup: running, method: "PATCH", path: "/jobs/1/trace", reqHeader: map[string]string{"Job-Token": "$job1"}, trace: "hello", status: 400, want: msg("400 Missing header Content-Range"), items: -1, source: runnerRB + " error!('400 Missing header Content-Range', 400)"},
		{name: "trace patch with a wrong token", setup: running, method: "PATCH", path: "/jobs/1/trace", reqHeader: map[string]string{"Job-Token": "glcbt-nope", "Content-Range": "0-4"}, trace: "hello", status: 403, want: msg("403 Forbidden"), items: -1, source: "lib/api/ci/helpers/runner.rb authenticate_job!"},
		{name: "runner rotates its token", method: "POST", path: "/runners/reset_authentication_token", body: map[string]any{"token": "$tok1"}, status: 201, want: map[string]any{"token": prefix("glrt-")}, items: -1, source: runnerRB},
		{name: "unregister by token", method: "DELETE", path: "/runners", body: map[string]any{"token": "$tok3"}, status: 204, items: -1, source: runnerRB + " DELETE /"},
		{name: "unregister one host", method: "DELETE", path: "/runners/managers", body: map[string]any{"token": "$tok1", "system_id": "s_aaaaaaaaaaaa"}, status: 204, items: -1, source: runnerRB + " DELETE /managers"},
		{name: "unregister an unknown host", method: "DELETE", path: "/runners/managers", body: map[string]any{"token": "$tok1", "system_id": "s_cccccccccccc"}, status: 404, want: msg("404 Runner manager not found Not Found"), items: -1, source: runnerRB + " not_found!('Runner manager not found')"},

		// Legacy registration (register_runner_service.rb).
		{name: "registration tokens allowed by default", versions: tokensOn, method: "POST", path: "/runners", body: map[string]any{"token": "inst-reg", "description": "l"}, status: 201, want: map[string]any{"id": 6.0, "token": shape(`^[A-Za-z0-9_-]{20}$`)}, items: -1, source: regRB + " (allow_runner_registration_token on; legacy tokens unprefixed before MR 168017)"},
		{name: "registration tokens off by default", versions: tokensOff, method: "POST", path: "/runners", body: map[string]any{"token": "inst-reg"}, status: 410, want: msg("410 Gone - runner registration disallowed"), items: -1, source: regRB + " registration_token_allowed? (17.0: off on every instance, MR 150648)"},
		{name: "any token is gone while registration tokens are off", versions: tokensOff, method: "POST", path: "/runners", body: map[string]any{"token": "wrong"}, status: 410, want: msg("410 Gone - runner registration disallowed"), items: -1, source: regRB + " attrs_from_token {} when !allow_runner_registration_token"},
		{name: "instance registration token", setup: allowTokens, versions: since176, method: "POST", path: "/runners", body: map[string]any{"token": "inst-reg", "description": "l"}, status: 201, want: map[string]any{"id": 6.0, "token": shape(`^t1_[A-Za-z0-9_-]{20}$`)}, items: -1, source: regRB + "; token prefix: MR 168017 (17.6)"},
		{name: "group registration token", setup: allowTokens, versions: since176, method: "POST", path: "/runners", body: map[string]any{"token": "grp-reg"}, status: 201, want: map[string]any{"token": prefix("t2_")}, items: -1, source: regRB},
		{name: "project registration token", setup: allowTokens, versions: since176, method: "POST", path: "/runners", body: map[string]any{"token": "proj-reg"}, status: 201, want: map[string]any{"token": prefix("t3_")}, items: -1, source: regRB},
		{name: "group registration token before the partition prefix", setup: allowTokens, versions: before176, method: "POST", path: "/runners", body: map[string]any{"token": "grp-reg"}, status: 201, want: map[string]any{"token": shape(`^[A-Za-z0-9_-]{20}$`)}, items: -1, source: regRB},
		{name: "wrong registration token", setup: allowTokens, method: "POST", path: "/runners", body: map[string]any{"token": "wrong"}, status: 403, want: msg("403 Forbidden - invalid token supplied"), items: -1, source: regRB},
		{name: "registration tokens disabled", method: "POST", path: "/runners", body: map[string]any{"token": "inst-reg"}, setup: func(s *Sim) { s.SetRegistrationDisabled(true) }, status: 410, want: msg("410 Gone - runner registration disallowed"), items: -1, source: regRB + " :runner_registration_disallowed"},
		{name: "top-level group disallows registration tokens", method: "POST", path: "/runners", body: map[string]any{"token": "grp-reg"}, status: 410, want: msg("410 Gone - runner registration disallowed"), items: -1,
			setup: func(s *Sim) {
				allowTokens(s)
				s.UpdateGroup("ops", func(g *Group) { g.RegistrationTokensDisallowed = true })
			},
			source: regRB + " registration_token_allowed? + app/models/namespace_setting.rb allow_runner_registration_token? (root ancestor)"},
		{name: "legacy registration validates too", setup: allowTokens, method: "POST", path: "/runners", body: map[string]any{"token": "inst-reg", "maximum_timeout": 1}, status: 400, want: map[string]any{"message": map[string]any{"maximum_timeout": []any{"needs to be at least 10 minutes"}}}, items: -1, source: modelRB},

		// Throttling and unknown routes.
		{name: "Rack::Attack throttle", method: "GET", path: "/runners/all", pat: "root-api", setup: func(s *Sim) { s.InjectFault(Fault{Type: FaultRateLimit, RetryAfter: 9223372037}) }, status: 429, text: "Retry later\n",
			header: map[string]string{"Retry-After": "9223372037", "Content-Type": "text/plain", "RateLimit-Name": "throttle_authenticated_api"}, items: -1, source: "lib/gitlab/rack_attack.rb throttled_response"},
		{name: "unknown route", method: "GET", path: "/nope", pat: "root-api", status: 404, want: errBody("404 Not Found"), items: -1, source: "lib/api/api.rb route :any, '*path'"},
	}
}

func TestConformance(t *testing.T) {
	for _, row := range conformanceRows() {
		for _, v := range row.versions {
			if _, ok := LookupProfile(v); !ok {
				t.Errorf("row %q: no profile %q", row.name, v)
			}
		}
		if row.source == "" {
			t.Errorf("row %q names no source", row.name)
		}
	}
	for _, p := range Profiles() {
		t.Run(p.Version, func(t *testing.T) {
			for _, row := range conformanceRows() {
				if row.versions == nil || slices.Contains(row.versions, p.Version) {
					t.Run(row.name, func(t *testing.T) { conform(t, p, row) })
				}
			}
		})
	}
}

func conform(t *testing.T, p Profile, row conformanceRow) {
	s, srv := newWorld(t, p)
	if row.setup != nil {
		row.setup(s)
	}
	body := map[string]any{}
	for k, v := range row.body {
		if str, ok := v.(string); ok {
			v = tokenOf(s, str)
		}
		body[k] = v
	}
	var payload any
	if row.body != nil {
		payload = body
	}
	var (
		status int
		header http.Header
		raw    []byte
	)
	if row.trace != "" {
		h := map[string]string{}
		for k, v := range row.reqHeader {
			h[k] = tokenOf(s, v)
		}
		status, header, raw = sendText(t, srv, row.method, "/api/v4"+row.path, h, row.trace)
	} else {
		status, header, raw = send(t, srv, row.method, "/api/v4"+row.path, row.pat, payload)
	}
	if status != row.status {
		t.Fatalf("%s %s: status %d, want %d (%s); body %s", row.method, row.path, status, row.status, row.source, raw)
	}
	for k, v := range row.header {
		if got := header.Get(k); (v == "?" && got == "") || (v != "?" && got != v) {
			t.Errorf("header %s = %q, want %q (%s)", k, got, v, row.source)
		}
	}
	if row.text != "" {
		if string(raw) != row.text {
			t.Errorf("body %q, want %q (%s)", raw, row.text, row.source)
		}
		return
	}
	if row.items >= 0 {
		var list []map[string]any
		if err := json.Unmarshal(raw, &list); err != nil {
			t.Fatalf("want a list: %s", raw)
		}
		if len(list) != row.items {
			t.Errorf("%d items, want %d (%s): %s", len(list), row.items, row.source, raw)
		}
		for _, item := range list {
			for _, k := range row.absent {
				if _, ok := item[k]; ok {
					t.Errorf("list item has %q (%s)", k, row.source)
				}
			}
		}
		return
	}
	if len(raw) == 0 {
		if row.want != nil {
			t.Fatalf("empty body, want %v", row.want)
		}
		return
	}
	var obj map[string]any
	if err := json.Unmarshal(raw, &obj); err != nil {
		t.Fatalf("want a JSON object: %q", raw)
	}
	for k, want := range row.want {
		got, ok := obj[k]
		switch w := want.(type) {
		case prefix:
			if s, _ := got.(string); !strings.HasPrefix(s, string(w)) {
				t.Errorf("%s = %v, want prefix %q (%s)", k, got, w, row.source)
			}
		case present:
			if !ok {
				t.Errorf("%s missing (%s)", k, row.source)
			}
		case shape:
			if str, _ := got.(string); !regexp.MustCompile(string(w)).MatchString(str) {
				t.Errorf("%s = %v, want the shape %s (%s)", k, got, w, row.source)
			}
		default:
			if !ok || !jsonEqual(got, want) {
				t.Errorf("%s = %#v, want %#v (%s)", k, got, want, row.source)
			}
		}
	}
	for _, k := range row.absent {
		if _, ok := obj[k]; ok {
			t.Errorf("field %q must be absent (%s)", k, row.source)
		}
	}
}

// tokenOf resolves "$tok<n>" to runner n's token and "$job<n>" to job n's.
func tokenOf(s *Sim, v string) string {
	switch {
	case strings.HasPrefix(v, "$tok"):
		id, _ := strconv.ParseInt(strings.TrimPrefix(v, "$tok"), 10, 64)
		r, _ := s.Runner(id)
		return r.Token
	case strings.HasPrefix(v, "$job"):
		id, _ := strconv.ParseInt(strings.TrimPrefix(v, "$job"), 10, 64)
		s.mu.Lock()
		defer s.mu.Unlock()
		if j := s.jobs[id]; j != nil {
			return j.token
		}
	}
	return v
}

// takeJobs has runner id poll once, as gitlab-runner would, through the
// simulator's own handler.
func takeJobs(s *Sim, id int64) {
	r, _ := s.Runner(id)
	b, _ := json.Marshal(map[string]any{"token": r.Token})
	req := httptest.NewRequest("POST", "/api/v4/jobs/request", strings.NewReader(string(b)))
	req.Header.Set("Content-Type", "application/json")
	s.ServeHTTP(httptest.NewRecorder(), req)
}

func jsonEqual(got, want any) bool {
	a, _ := json.Marshal(got)
	b, _ := json.Marshal(want)
	return string(a) == string(b)
}

func send(t *testing.T, srv *httptest.Server, method, path, pat string, body any) (int, http.Header, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = strings.NewReader(string(b))
	}
	req, _ := http.NewRequest(method, srv.URL+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if pat != "" {
		req.Header.Set("PRIVATE-TOKEN", pat)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, data
}

// sendText sends a text/plain body with headers, as gitlab-runner's trace
// patches are sent.
func sendText(t *testing.T, srv *httptest.Server, method, path string, headers map[string]string, body string) (int, http.Header, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "text/plain")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, data
}

package gitlabsim

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"slices"
	"testing"
)

// Project runners assigned to several projects (GitLab's
// ci_runner_projects), over HTTP in the conformance world plus a second
// project ops/web (201) that carol maintains and frank maintains alone.

func withSecondProject(t *testing.T, p Profile) (*Sim, *httptest.Server) {
	t.Helper()
	s, srv := newWorld(t, p)
	s.AddUser(User{Username: "frank"})
	s.AddPAT(PAT{Name: "frank-api", Value: "frank-api", User: "frank", Scopes: []string{"api"}})
	s.AddProject(Project{ID: 201, FullPath: "ops/web", Members: map[string]AccessLevel{"carol": Maintainer, "frank": Maintainer}})
	return s, srv
}

func decodeObj(t *testing.T, raw []byte) map[string]any {
	t.Helper()
	var obj map[string]any
	if err := json.Unmarshal(raw, &obj); err != nil {
		t.Fatalf("not a JSON object: %s", raw)
	}
	return obj
}

func msgBody(m string) map[string]any { return map[string]any{"message": m} }

func listedIDs(t *testing.T, list []map[string]any) []int64 {
	var ids []int64
	for _, item := range list {
		ids = append(ids, idOf(t, item))
	}
	return ids
}

func projectIDsOf(t *testing.T, d map[string]any) []int64 {
	var ids []int64
	ps, _ := d["projects"].([]any)
	for _, p := range ps {
		ids = append(ids, idOf(t, p.(map[string]any)))
	}
	return ids
}

// POST /projects/:id/runners assigns a project runner to one more project
// (lib/api/ci/runners.rb, Ci::Runners::AssignRunnerService); the runner
// then appears in that project's GET /projects/:id/runners
// (owned_or_instance_wide: `belonging_to_project` through
// ci_runner_projects) and in its details' projects.
func TestAssignRunnerToAnotherProject(t *testing.T) {
	for _, p := range Profiles() {
		t.Run(p.Version, func(t *testing.T) {
			_, srv := withSecondProject(t, p)
			// Before: ops/web lists the instance runner and ops's group
			// runners (2, 5), not project runner 3.
			web := listedIDs(t, expectList(t, srv, "/projects/201/runners", "frank-api"))
			if slices.Contains(web, 3) {
				t.Fatalf("runner 3 is not assigned to ops/web yet: %v", web)
			}
			a := expect(t, srv, "POST", "/projects/201/runners", "carol-api", map[string]any{"runner_id": 3}, 201)
			if idOf(t, a) != 3 || a["runner_type"] != "project_type" {
				t.Fatalf("the answer is the runner: %v", a)
			}
			for _, pat := range []string{"frank-api", "carol-api"} {
				if ids := listedIDs(t, expectList(t, srv, "/projects/201/runners", pat)); !slices.Contains(ids, 3) {
					t.Fatalf("ops/web lists the assigned runner for %s: %v", pat, ids)
				}
			}
			if ids := listedIDs(t, expectList(t, srv, "/projects/200/runners", "carol-api")); !slices.Contains(ids, 3) {
				t.Fatalf("ops/app still lists its runner: %v", ids)
			}
			// Details: every project for an administrator, the caller's own otherwise.
			if ids := projectIDsOf(t, expect(t, srv, "GET", "/runners/3", "root-api", nil, 200)); !slices.Equal(ids, []int64{200, 201}) {
				t.Fatalf("administrator sees the runner's projects %v, want [200 201]", ids)
			}
			if ids := projectIDsOf(t, expect(t, srv, "GET", "/runners/3", "frank-api", nil, 200)); !slices.Equal(ids, []int64{201}) {
				t.Fatalf("frank (maintainer of ops/web only) sees %v, want [201]", ids)
			}
			// GET /runners (ci_owned_runners) lists it for frank now.
			if ids := listedIDs(t, expectList(t, srv, "/runners", "frank-api")); !slices.Equal(ids, []int64{3}) {
				t.Fatalf("frank's owned runners: %v", ids)
			}
			// Assigning it again is the model's uniqueness error; a group
			// runner and a stranger are refused.
			if code, _, raw := send(t, srv, "POST", "/api/v4/projects/201/runners", "carol-api", map[string]any{"runner_id": 3}); code != 400 {
				t.Fatalf("assigned twice: %d %s", code, raw)
			}
			if code, _, raw := send(t, srv, "POST", "/api/v4/projects/201/runners", "carol-api", map[string]any{"runner_id": 2}); code != 403 || !jsonEqual(decodeObj(t, raw), msgBody("403 Forbidden - Runner is a group runner")) {
				t.Fatalf("group runner: %d %s", code, raw)
			}
			if code, _, raw := send(t, srv, "POST", "/api/v4/projects/201/runners", "carol-api", map[string]any{"runner_id": 999}); code != 404 || !jsonEqual(decodeObj(t, raw), msgBody("404 Not found")) {
				t.Fatalf("missing runner: %d %s", code, raw)
			}
			if code, _, raw := send(t, srv, "POST", "/api/v4/projects/201/runners", "carol-api", map[string]any{}); code != 400 || !jsonEqual(decodeObj(t, raw), map[string]any{"error": "runner_id is missing"}) {
				t.Fatalf("no runner_id: %d %s", code, raw)
			}
			if code, _, raw := send(t, srv, "POST", "/api/v4/projects/201/runners", "dave-api", map[string]any{"runner_id": 3}); code != 404 {
				t.Fatalf("a stranger cannot see the project: %d %s", code, raw)
			}
		})
	}
}

// authenticate_enable_runner!: a locked runner is refused to everyone but
// administrators ("Runner is locked"); a maintainer of the target project
// who cannot administer the runner gets "No access granted".
func TestAssignRunnerRefusals(t *testing.T) {
	p, _ := LookupProfile("17.9")
	s, srv := withSecondProject(t, p)
	if code, _, raw := send(t, srv, "POST", "/api/v4/projects/201/runners", "frank-api", map[string]any{"runner_id": 3}); code != 403 || !jsonEqual(decodeObj(t, raw), msgBody("403 Forbidden - No access granted")) {
		t.Fatalf("frank does not maintain the runner's project: %d %s", code, raw)
	}
	s.UpdateRunner(3, func(r *Runner) { r.Locked = true })
	if code, _, raw := send(t, srv, "POST", "/api/v4/projects/201/runners", "carol-api", map[string]any{"runner_id": 3}); code != 403 || !jsonEqual(decodeObj(t, raw), msgBody("403 Forbidden - Runner is locked")) {
		t.Fatalf("locked runner: %d %s", code, raw)
	}
	if code, _, raw := send(t, srv, "POST", "/api/v4/projects/201/runners", "root-api", map[string]any{"runner_id": 3}); code != 201 {
		t.Fatalf("an administrator assigns a locked runner: %d %s", code, raw)
	}
}

// DELETE /runners/:id of a runner assigned to two projects
// (authenticate_delete_runner!): anyone but an administrator gets 403
// "Runner associated with more than one project", even a maintainer of
// both; an administrator deletes it, for every project.
func TestDeleteMultiProjectRunner(t *testing.T) {
	for _, p := range Profiles() {
		t.Run(p.Version, func(t *testing.T) {
			s, srv := withSecondProject(t, p)
			if !s.AssignRunner(3, 201) {
				t.Fatal("AssignRunner")
			}
			if s.AssignRunner(3, 201) || s.AssignRunner(2, 201) || s.AssignRunner(3, 999) {
				t.Fatal("AssignRunner must refuse a second assignment, a group runner and a missing project")
			}
			for _, pat := range []string{"carol-api", "frank-api", "alice-api"} {
				code, _, raw := send(t, srv, "DELETE", "/api/v4/runners/3", pat, nil)
				if code != 403 || !jsonEqual(decodeObj(t, raw), msgBody("403 Forbidden - Runner associated with more than one project")) {
					t.Fatalf("%s deletes a runner of two projects: %d %s", pat, code, raw)
				}
			}
			if _, ok := s.Runner(3); !ok {
				t.Fatal("the runner must still exist")
			}
			if code, _, raw := send(t, srv, "DELETE", "/api/v4/runners/3", "root-api", nil); code != 204 {
				t.Fatalf("administrator: %d %s", code, raw)
			}
			for _, pid := range []int{200, 201} {
				if ids := listedIDs(t, expectList(t, srv, fmt.Sprintf("/projects/%d/runners", pid), "carol-api")); slices.Contains(ids, 3) {
					t.Fatalf("project %d still lists the deleted runner: %v", pid, ids)
				}
			}
		})
	}
}

// The control API assigns too (POST /-/sim/runners/{id}/projects).
func TestControlAssignsRunner(t *testing.T) {
	p, _ := LookupProfile("18.5")
	s, srv := withSecondProject(t, p)
	s.EnableControl()
	code, _, raw := send(t, srv, "POST", "/-/sim/runners/3/projects", "", map[string]any{"project_id": 201})
	if code != 204 {
		t.Fatalf("assign: %d %s", code, raw)
	}
	if code, _, _ := send(t, srv, "POST", "/-/sim/runners/3/projects", "", map[string]any{"project_id": 201}); code != 404 {
		t.Fatalf("assigning twice: %d", code)
	}
	r, _ := s.Runner(3)
	if !slices.Equal(r.AssignedProjectIDs, []int64{201}) || !slices.Equal(r.View().AssignedProjectIDs, []int64{201}) {
		t.Fatalf("assigned projects: %v", r.AssignedProjectIDs)
	}
}

// GET /groups/:id/runners is Ci::Runner.group_or_instance_wide: the group
// runners of the group and of every ancestor, plus instance runners —
// never a subgroup's runners nor project runners (app/models/ci/runner.rb
// `belonging_to_group_and_ancestors`, every release).
func TestGroupRunnersAreTheGroupsAndItsAncestors(t *testing.T) {
	for _, p := range Profiles() {
		t.Run(p.Version, func(t *testing.T) {
			s, srv := newWorld(t, p)
			sub := s.AddRunner(Runner{Description: "sub", RunnerType: "group_type", GroupID: 101})
			for _, c := range []struct {
				path string
				want []int64
			}{
				{"/groups/ops/runners", []int64{1, 2, 5}},
				{"/groups/ops%2Fsub/runners", []int64{1, 2, 5, sub}},
			} {
				if ids := listedIDs(t, expectList(t, srv, c.path, "root-api")); !slices.Equal(ids, c.want) {
					t.Errorf("%s lists %v, want %v", c.path, ids, c.want)
				}
			}
		})
	}
}

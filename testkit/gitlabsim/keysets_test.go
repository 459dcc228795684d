package gitlabsim

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"testing"
)

// The JSON keys of every runner answer, per release, as GitLab's entities
// (lib/api/entities/...) expose them: one cited list per answer and set of
// releases. TestEntityKeySets asks the simulator for each answer over HTTP
// and compares the keys it sends with the list, so a key the simulator
// invents, or one it leaves out, fails. docs/simulator.md shows the same
// table (TestDocsShowTheKeySets).
//
// Snapshots are commits of the gitlabhq/gitlabhq mirror, dated by the
// feature flags first stored with them: 58340cfe ≈ 17.0, 800235cc ≈ 17.9,
// dbabd9d3 ≈ 18.2 (before 2025-10-09), 0286e4c6 ≈ 18.6 development.

var (
	allVersions = []string{"16.11", "17.0", "17.9", "18.5"}
	upTo179     = []string{"16.11", "17.0", "17.9"}
	only179     = []string{"17.9"}
	only185     = []string{"18.5"}

	// Entities::Ci::Runner up to 17.9.
	runnerKeys = []string{"id", "description", "ip_address", "active", "paused", "is_shared", "runner_type", "name", "online", "status"}
	// Entities::Ci::Runner from ≈18.2, without the conditional created_by.
	runnerKeys18 = plus(runnerKeys, "created_at", "job_execution_status")
	// What Entities::Ci::RunnerDetails adds.
	detailsKeys = []string{"tag_list", "run_untagged", "locked", "maximum_timeout", "access_level", "version", "revision",
		"platform", "architecture", "contacted_at", "maintenance_note", "projects", "groups"}
	managerKeys = []string{"id", "system_id", "version", "revision", "platform", "architecture", "created_at", "contacted_at", "ip_address", "status"}
	// Entities::BasicProjectDetails for a caller who may :read_code.
	projectKeys = []string{"id", "description", "name", "name_with_namespace", "path", "path_with_namespace", "created_at",
		"default_branch", "tag_list", "topics", "ssh_url_to_repo", "http_url_to_repo", "web_url", "readme_url", "forks_count",
		"avatar_url", "star_count", "last_activity_at", "namespace"}
)

const (
	runnerRB        = "lib/api/entities/ci/runner.rb"
	runnerDetailsRB = "lib/api/entities/ci/runner_details.rb"
)

func plus(base []string, more ...string) []string {
	return append(append([]string(nil), base...), more...)
}

// keyProbe asks the simulator, in the conformance world (newWorld), for
// one answer and returns the object whose keys the list names.
type keyProbe func(t *testing.T, s *Sim, srv *httptest.Server) map[string]any

type keySet struct {
	// answer names the request and the case.
	answer   string
	versions []string
	keys     []string
	// source is the GitLab file and where it was read (snapshot or MR).
	source string
	probe  keyProbe
}

func keySets() []keySet {
	return []keySet{
		{"`GET /runners/all` item, runner without a creator (registration token)", upTo179, runnerKeys,
			runnerRB + " (snapshot fc0d8fd4 and before; unchanged at 800235cc, 17.9)", listItem(registered)},
		{"`GET /runners/all` item, runner without a creator (registration token)", only185, runnerKeys18,
			runnerRB + " (snapshot dbabd9d3, ≈18.2: created_by only `if` the creator is readable)", listItem(registered)},
		{"`GET /runners/all` item, runner created with `POST /user/runners`", upTo179, runnerKeys,
			runnerRB + " (fc0d8fd4; 800235cc)", listItem(created)},
		{"`GET /runners/all` item, runner created with `POST /user/runners`", only185, plus(runnerKeys18, "created_by"),
			runnerRB + " (dbabd9d3)", listItem(created)},
		{"`POST /projects/:id/runners` (assign)", upTo179, runnerKeys,
			"lib/api/ci/runners.rb `present runner, with: Entities::Ci::Runner`; " + runnerRB, assigned},
		{"`POST /projects/:id/runners` (assign)", only185, runnerKeys18, "lib/api/ci/runners.rb; " + runnerRB + " (dbabd9d3)", assigned},
		{"`GET /runners/:id`, runner without a creator", upTo179, plus(runnerKeys, detailsKeys...),
			runnerDetailsRB + " (58340cfe, 17.0; 800235cc, 17.9; maintenance_note since 16.10, MR 144482): no created_at", details(registered)},
		{"`GET /runners/:id`, runner without a creator", only185, plus(runnerKeys18, detailsKeys...),
			runnerDetailsRB + " < " + runnerRB + " (dbabd9d3)", details(registered)},
		{"`GET /runners/:id`, runner created with `POST /user/runners`", upTo179, plus(runnerKeys, detailsKeys...),
			runnerDetailsRB + " (58340cfe; 800235cc)", details(created)},
		{"`GET /runners/:id`, runner created with `POST /user/runners`", only185, plus(plus(runnerKeys18, "created_by"), detailsKeys...),
			runnerDetailsRB + " < " + runnerRB + " (dbabd9d3)", details(created)},
		{"`PUT /runners/:id`", upTo179, plus(runnerKeys, detailsKeys...), "lib/api/ci/runners.rb `present runner, with: Entities::Ci::RunnerDetails`", updated},
		{"`PUT /runners/:id`", only185, plus(runnerKeys18, detailsKeys...), "lib/api/ci/runners.rb; " + runnerDetailsRB + " (dbabd9d3)", updated},
		{"`GET /runners/:id/managers` item", only179, managerKeys,
			"lib/api/entities/ci/runner_manager.rb (ecdf7129, route since 17.1, MR 153715; unchanged at 800235cc)", managerItem},
		{"`GET /runners/:id/managers` item", only185, plus(managerKeys, "job_execution_status"),
			"lib/api/entities/ci/runner_manager.rb (dbabd9d3)", managerItem},
		{"`POST /user/runners`", allVersions, []string{"id", "token", "token_expires_at"},
			"lib/api/entities/ci/runner_registration_details.rb (a7b35607); lib/api/user_runners.rb", createAnswer},
		{"`POST /runners` (registration token)", allVersions, []string{"id", "token", "token_expires_at"},
			"lib/api/entities/ci/runner_registration_details.rb; lib/api/ci/runner.rb (800235cc)", registerAnswer},
		{"`POST /runners/verify`", allVersions, []string{"id", "token", "token_expires_at"},
			"lib/api/entities/ci/runner_registration_details.rb; lib/api/ci/runner.rb `status 200` (800235cc)", verifyAnswer},
		{"`POST /runners/:id/reset_authentication_token`", allVersions, []string{"token", "token_expires_at"},
			"lib/api/entities/ci/reset_token_result.rb: token_expires_at `if object.expirable?`, always for runner tokens (Ci::Runner `expires_at: :compute_token_expiration`)", resetByIDAnswer},
		{"`POST /runners/reset_authentication_token`", allVersions, []string{"token", "token_expires_at"},
			"lib/api/entities/ci/reset_token_result.rb; lib/api/ci/runner.rb (800235cc)", rotateAnswer},
		{"`GET /runners/:id` `projects` item, caller an administrator", allVersions, plus(projectKeys, "repository_storage"),
			"lib/api/entities/basic_project_details.rb (cb81e07a; version per release not pinned) < project_identity.rb; repository_storage `if` :change_repository_storage", projectItem("root-api")},
		{"`GET /runners/:id` `projects` item, caller a project maintainer", allVersions, projectKeys,
			"lib/api/entities/basic_project_details.rb (cb81e07a; not pinned): default_branch, readme_url, forks_count `if` :read_code", projectItem("carol-api")},
		{"`projects` item's `namespace`", allVersions, []string{"id", "name", "path", "kind", "full_path", "parent_id", "avatar_url", "web_url"},
			"lib/api/entities/namespace_basic.rb (1737a58c)", namespaceItem},
		{"`GET /runners/:id` `groups` item", allVersions, []string{"id", "web_url", "name"},
			"lib/api/entities/basic_group_details.rb", groupItem},
		{"`created_by`", only185, []string{"id", "username", "public_email", "name", "state", "locked", "avatar_url", "web_url"},
			"lib/api/entities/user_basic.rb < user_safe.rb, as an 18.x answer sends it (public_email: not pinned per release)", createdBy},
	}
}

// The probes. registered and created make the runner (id 6) a probe reads.

func registered(t *testing.T, s *Sim, srv *httptest.Server) int64 {
	t.Helper()
	s.SetRegistrationTokensAllowed(true)
	return idOf(t, expect(t, srv, "POST", "/runners", "", map[string]any{"token": "inst-reg", "info": map[string]any{"name": "n"}}, 201))
}

func created(t *testing.T, s *Sim, srv *httptest.Server) int64 {
	t.Helper()
	return idOf(t, expect(t, srv, "POST", "/user/runners", "root-api", map[string]any{"runner_type": "instance_type"}, 201))
}

func listItem(mk func(*testing.T, *Sim, *httptest.Server) int64) keyProbe {
	return func(t *testing.T, s *Sim, srv *httptest.Server) map[string]any {
		id := mk(t, s, srv)
		for _, item := range expectList(t, srv, "/runners/all", "root-api") {
			if idOf(t, item) == id {
				return item
			}
		}
		t.Fatalf("runner %d not listed", id)
		return nil
	}
}

func details(mk func(*testing.T, *Sim, *httptest.Server) int64) keyProbe {
	return func(t *testing.T, s *Sim, srv *httptest.Server) map[string]any {
		return expect(t, srv, "GET", fmt.Sprintf("/runners/%d", mk(t, s, srv)), "root-api", nil, 200)
	}
}

func assigned(t *testing.T, s *Sim, srv *httptest.Server) map[string]any {
	s.AddProject(Project{ID: 201, FullPath: "ops/web", Members: map[string]AccessLevel{"carol": Maintainer}})
	return expect(t, srv, "POST", "/projects/201/runners", "carol-api", map[string]any{"runner_id": 3}, 201)
}

func updated(t *testing.T, s *Sim, srv *httptest.Server) map[string]any {
	return expect(t, srv, "PUT", "/runners/1", "root-api", map[string]any{"description": "x"}, 200)
}

func managerItem(t *testing.T, s *Sim, srv *httptest.Server) map[string]any {
	list := expectList(t, srv, "/runners/1/managers", "root-api")
	if len(list) != 1 {
		t.Fatalf("want runner 1's one manager: %v", list)
	}
	return list[0]
}

func createAnswer(t *testing.T, s *Sim, srv *httptest.Server) map[string]any {
	return expect(t, srv, "POST", "/user/runners", "root-api", map[string]any{"runner_type": "instance_type"}, 201)
}

func registerAnswer(t *testing.T, s *Sim, srv *httptest.Server) map[string]any {
	s.SetRegistrationTokensAllowed(true)
	return expect(t, srv, "POST", "/runners", "", map[string]any{"token": "inst-reg"}, 201)
}

func verifyAnswer(t *testing.T, s *Sim, srv *httptest.Server) map[string]any {
	return expect(t, srv, "POST", "/runners/verify", "", map[string]any{"token": tokenOf(s, "$tok1")}, 200)
}

func resetByIDAnswer(t *testing.T, s *Sim, srv *httptest.Server) map[string]any {
	return expect(t, srv, "POST", "/runners/1/reset_authentication_token", "root-api", nil, 201)
}

func rotateAnswer(t *testing.T, s *Sim, srv *httptest.Server) map[string]any {
	return expect(t, srv, "POST", "/runners/reset_authentication_token", "", map[string]any{"token": tokenOf(s, "$tok1")}, 201)
}

func projectItem(pat string) keyProbe {
	return func(t *testing.T, s *Sim, srv *httptest.Server) map[string]any {
		projects, _ := expect(t, srv, "GET", "/runners/3", pat, nil, 200)["projects"].([]any)
		if len(projects) != 1 {
			t.Fatalf("runner 3's projects: %v", projects)
		}
		return projects[0].(map[string]any)
	}
}

func namespaceItem(t *testing.T, s *Sim, srv *httptest.Server) map[string]any {
	ns, _ := projectItem("root-api")(t, s, srv)["namespace"].(map[string]any)
	return ns
}

func groupItem(t *testing.T, s *Sim, srv *httptest.Server) map[string]any {
	groups, _ := expect(t, srv, "GET", "/runners/2", "root-api", nil, 200)["groups"].([]any)
	if len(groups) != 1 {
		t.Fatalf("runner 2's groups: %v", groups)
	}
	return groups[0].(map[string]any)
}

func createdBy(t *testing.T, s *Sim, srv *httptest.Server) map[string]any {
	u, _ := details(created)(t, s, srv)["created_by"].(map[string]any)
	return u
}

func expect(t *testing.T, srv *httptest.Server, method, path, pat string, body any, status int) map[string]any {
	t.Helper()
	code, _, raw := send(t, srv, method, "/api/v4"+path, pat, body)
	if code != status {
		t.Fatalf("%s %s: %d, want %d: %s", method, path, code, status, raw)
	}
	var obj map[string]any
	if err := json.Unmarshal(raw, &obj); err != nil {
		t.Fatalf("%s %s: not an object: %s", method, path, raw)
	}
	return obj
}

func expectList(t *testing.T, srv *httptest.Server, path, pat string) []map[string]any {
	t.Helper()
	code, _, raw := send(t, srv, "GET", "/api/v4"+path, pat, nil)
	var list []map[string]any
	if err := json.Unmarshal(raw, &list); code != 200 || err != nil {
		t.Fatalf("GET %s: %d %s", path, code, raw)
	}
	return list
}

func idOf(t *testing.T, obj map[string]any) int64 {
	t.Helper()
	id, ok := obj["id"].(float64)
	if !ok {
		t.Fatalf("no id in %v", obj)
	}
	return int64(id)
}

// The key sets the simulator sends over HTTP are GitLab's, per release.
func TestEntityKeySets(t *testing.T) {
	seen := map[string]bool{}
	for _, ks := range keySets() {
		for _, v := range ks.versions {
			if _, ok := LookupProfile(v); !ok {
				t.Errorf("%s: no profile %s", ks.answer, v)
			}
			if seen[ks.answer+"@"+v] {
				t.Errorf("%s: two lists for %s", ks.answer, v)
			}
			seen[ks.answer+"@"+v] = true
		}
	}
	for _, p := range Profiles() {
		t.Run(p.Version, func(t *testing.T) {
			for _, ks := range keySets() {
				if !slices.Contains(ks.versions, p.Version) {
					continue
				}
				t.Run(ks.answer, func(t *testing.T) {
					s, srv := newWorld(t, p)
					obj := ks.probe(t, s, srv)
					var got []string
					for k := range obj {
						got = append(got, k)
					}
					if extra, missing := diffKeys(got, ks.keys); len(extra)+len(missing) > 0 {
						t.Errorf("GitLab %s sends %v (%s);\n  the simulator sends keys GitLab lacks: %v\n  and lacks: %v",
							p.Version, ks.keys, ks.source, extra, missing)
					}
				})
			}
		})
	}
}

func diffKeys(got, want []string) (extra, missing []string) {
	for _, k := range got {
		if !slices.Contains(want, k) {
			extra = append(extra, k)
		}
	}
	for _, k := range want {
		if !slices.Contains(got, k) {
			missing = append(missing, k)
		}
	}
	sort.Strings(extra)
	sort.Strings(missing)
	return extra, missing
}

// keySetsTable is the key-set table docs/simulator.md shows.
func keySetsTable() string {
	var b strings.Builder
	b.WriteString("| Answer | Profiles | Keys | GitLab source |\n| --- | --- | --- | --- |\n")
	for _, ks := range keySets() {
		keys := make([]string, len(ks.keys))
		for i, k := range ks.keys {
			keys[i] = "`" + k + "`"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", ks.answer, strings.Join(ks.versions, ", "), strings.Join(keys, ", "), ks.source)
	}
	return b.String()
}

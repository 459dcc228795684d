package ownership

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/engine"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/gitlab"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/plan"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/testkit/coretest"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/testkit/gitlabsim"
)

// An http:// URL for a GitLab served over https answers 301: the run
// names the status and where it points, tries each call once, and never
// takes it for "GitLab unreachable" (so it does not start degraded).
func TestRedirectIsNamedNotRetried(t *testing.T) {
	sim := simAt(t, "18.5", nil)
	h := newHost(t, sim, "node9", "machine-9", "hw-9")
	h.executor("shell", "")
	h.executor("docker", "")
	h.mustRun()

	var mu sync.Mutex
	hits := map[string]int{} // request id -> attempts
	moved := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits[r.Header.Get("X-Request-Id")]++
		mu.Unlock()
		http.Redirect(w, r, "https://gitlab.example.com"+r.URL.Path+"?private_token=leak", http.StatusMovedPermanently)
	}))
	t.Cleanup(moved.Close)
	for _, f := range []string{"config.template.main.toml", "main/shell.toml", "main/docker.toml", "config.main.toml"} {
		b, err := readFile(h.p.Dir, f)
		if err != nil {
			t.Fatal(err)
		}
		h.p.Write(f, strings.ReplaceAll(string(b), sim.URL, moved.URL))
	}
	res, err := h.run()
	var ae *gitlab.APIError
	if err == nil || !errors.As(err, &ae) {
		t.Fatalf("want an API error for the redirect, got %v", err)
	}
	if ae.Status != http.StatusMovedPermanently || !strings.HasPrefix(ae.Location, "https://gitlab.example.com/api/v4/runners/verify") {
		t.Fatalf("redirect %d to %q", ae.Status, ae.Location)
	}
	if strings.Contains(ae.Location, "leak") {
		t.Fatalf("the location keeps its query: %q", ae.Location)
	}
	if gitlab.KindOf(err) == gitlab.Unreachable || (res != nil && res.Degraded) {
		t.Fatal("a redirect was taken for an unreachable GitLab")
	}
	mu.Lock()
	defer mu.Unlock()
	for id, n := range hits {
		if n != 1 {
			t.Fatalf("call %s was sent %d times: redirects were retried", id, n)
		}
	}
	if len(hits) < 2 {
		t.Fatalf("%d calls, want at least the 2 verifies", len(hits))
	}
}

// A group whose runner registration is turned off refuses even its
// Owners (app/policies/group_policy.rb): the error says so.
func TestGroupWithRegistrationOffIsExplained(t *testing.T) {
	sim := simAt(t, "18.5", nil)
	gid := sim.AddGroup(gitlabsim.Group{FullPath: "ops", Members: map[string]gitlabsim.AccessLevel{"group-owner": gitlabsim.Owner},
		RunnerRegistrationDisabled: true})
	h := newHost(t, sim, "node10", "machine-10", "hw-10")
	h.pat = coretest.GroupPAT
	h.p.Template("", coretest.ClientConfig{URL: sim.URL, PAT: h.pat, Extra: "runner_type = \"group_type\"\ngroup_id = " + itoa(gid) + "\n"})
	h.executor("shell", "")
	_, err := h.run()
	var ae *gitlab.APIError
	if err == nil || !errors.As(err, &ae) || ae.Status != http.StatusForbidden {
		t.Fatalf("want a 403 from GitLab, got %v", err)
	}
	// It names the group and the group's setting that refuses.
	if !strings.Contains(err.Error(), "group "+itoa(gid)) || !strings.Contains(err.Error(), "runner_registration_enabled") {
		t.Fatalf("the refusal does not name the group %d and its setting runner_registration_enabled: %v", gid, err)
	}
	if n := len(sim.Runners()); n != 0 {
		t.Fatalf("%d runners", n)
	}
}

// Since GitLab 16.4 a group's Maintainers may list its runners
// (group_policy.rb): with a Maintainer's token a host that lost its
// config finds its runner instead of refusing for want of a listing —
// and, since only Owners may reset it, fails without a duplicate.
func TestGroupMaintainerFindsItsRunner(t *testing.T) {
	sim := simAt(t, "18.5", nil)
	gid := sim.AddGroup(gitlabsim.Group{FullPath: "ops", Members: map[string]gitlabsim.AccessLevel{"group-owner": gitlabsim.Owner, "maint": gitlabsim.Maintainer}})
	const maintPAT = "glpat-SECRETmaintainer-4d8a2c6e1f"
	sim.AddPAT(gitlabsim.PAT{Name: "maint", Value: maintPAT, Scopes: []string{"api"}, User: "maint"})
	h := newHost(t, sim, "node11", "machine-11", "hw-11")
	extra := "runner_type = \"group_type\"\ngroup_id = " + itoa(gid) + "\n"
	h.p.Template("", coretest.ClientConfig{URL: sim.URL, PAT: coretest.GroupPAT, Extra: extra})
	h.executor("shell", "")
	h.mustRun()
	id := h.ids()[0]
	h.p.Remove("config.main.toml")
	h.p.Template("", coretest.ClientConfig{URL: sim.URL, PAT: maintPAT, Extra: extra})
	sim.ResetLog()
	res, _ := h.run()
	if a := actions(res)["shell"]; a != plan.Adopt {
		t.Fatalf("shell: %s, want adopt (found by listing as a Maintainer)", a)
	}
	if c := sim.RequestCounts(); c.ByKind["create"] != 0 || len(sim.Runners()) != 1 {
		t.Fatalf("a duplicate was registered: %+v", c.ByKind)
	}
	if r := res.Runners[0]; r.ID != id {
		t.Fatalf("adopted %d, want %d", r.ID, id)
	}
}

// GitLab 17.9 and later answer an orphaned runner's verify 403 "Runner is
// orphaned": it fails alone, and its token is not reset run after run.
func TestOrphanedRunnerAnswered403FailsAlone(t *testing.T) {
	sim := simAt(t, "18.5", nil)
	gid := sim.AddGroup(gitlabsim.Group{FullPath: "ops", Members: map[string]gitlabsim.AccessLevel{"group-owner": gitlabsim.Owner}})
	h := newHost(t, sim, "node12", "machine-12", "hw-12")
	h.pat = coretest.GroupPAT
	h.p.Template("", coretest.ClientConfig{URL: sim.URL, PAT: h.pat, Extra: "runner_type = \"group_type\"\ngroup_id = " + itoa(gid) + "\n"})
	h.executor("shell", "")
	h.executor("docker", "")
	h.mustRun()
	var shellID int64
	for _, e := range h.config() {
		if strings.Contains(e.Name, "shell") {
			shellID = e.ID
		}
	}
	sim.OrphanRunner(shellID)
	for i := 0; i < 2; i++ {
		sim.ResetLog()
		res, err := h.run()
		if err == nil {
			t.Fatal("an orphaned runner did not fail its executor")
		}
		if a := actions(res); a["shell"] != plan.Keep || a["docker"] != plan.Keep {
			t.Fatalf("run %d: %v", i, a)
		}
		if n := sim.MutatingRequests(); n != 0 {
			t.Fatalf("run %d sent %d mutating requests for an orphaned runner: %+v", i, n, sim.Requests())
		}
	}
}

// Removing maximum_timeout clears it in GitLab (PUT with null): GitLab
// keeps what a PUT omits. After that, neither a restart nor --refresh
// sends another PUT.
func TestRemovedMaximumTimeoutIsCleared(t *testing.T) {
	sim := simAt(t, "18.5", nil)
	h := newHost(t, sim, "node13", "machine-13", "hw-13")
	h.executor("shell", "maximum_timeout = 3600\n")
	h.mustRun()
	id := h.ids()[0]
	if r, _ := sim.Runner(id); r.MaximumTimeout != 3600 {
		t.Fatalf("maximum_timeout %d", r.MaximumTimeout)
	}
	h.executor("shell", "")
	if a := actions(h.mustRun())["shell"]; a != plan.Update {
		t.Fatalf("shell: %s, want update", a)
	}
	if r, _ := sim.Runner(id); r.MaximumTimeout != 0 {
		t.Fatalf("maximum_timeout still %d in GitLab", r.MaximumTimeout)
	}
	for _, refresh := range []bool{false, true} {
		sim.ResetLog()
		res := h.mustRun(func(o *engine.Options) { o.Refresh = refresh })
		if a := actions(res)["shell"]; a != plan.Keep || sim.RequestCounts().ByKind["update"] != 0 {
			t.Fatalf("refresh %v: %s, %+v", refresh, a, sim.RequestCounts().ByKind)
		}
	}
}

// A GitLab that cannot describe a token (GET /personal_access_tokens/self
// answers 404) is asked once, not on every restart.
func TestUndescribedTokenIsAskedOnce(t *testing.T) {
	p := gitlabsim.NewestProfile()
	p.PATSelf = false
	sim := simAt(t, "", func(o *gitlabsim.Options) { o.Profile = p })
	h := newHost(t, sim, "node14", "machine-14", "hw-14")
	h.executor("shell", "")
	h.mustRun()
	if n := sim.RequestCounts().ByKind["pat-self"]; n != 1 {
		t.Fatalf("first run asked %d times", n)
	}
	for i := 0; i < 2; i++ {
		sim.ResetLog()
		h.mustRun()
		if n := sim.RequestCounts().ByKind["pat-self"]; n != 0 {
			t.Fatalf("restart %d asked about the token again (%d)", i, n)
		}
	}
}

func itoa(i int64) string { return strconv.FormatInt(i, 10) }

package module

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/input"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/testkit/coretest"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/testkit/gitlabsim"
)

// pruneGitLab holds a live host's runner, a decommissioned host's and
// another team's, created ten days ago on GitLab's clock.
func pruneGitLab(t *testing.T) (sim *coretest.Sim, live, gone, foreign int64) {
	// The controller's record of first sightings goes to a folder of the test's.
	t.Setenv("XDG_STATE_HOME", t.TempDir())
	sim = coretest.NewSim(t, coretest.SimOptions())
	runner := func(desc, host string) gitlabsim.Runner {
		return gitlabsim.Runner{Description: desc, TagList: []string{"main"}, MaintenanceNote: coretest.Marked("ci", host)}
	}
	ids := sim.AddRunnersAgo(10*24*time.Hour, runner("nodea main shell Runner", "nodea"), runner("noded main shell Runner", "noded"),
		gitlabsim.Runner{Description: "team-x builder", TagList: []string{"main"}})
	return sim, ids[0], ids[1], ids[2]
}

func pruneArgs(sim *coretest.Sim, keep ...int64) map[string]any {
	ids := []any{}
	for _, id := range keep {
		ids = append(ids, id)
	}
	return map[string]any{"_gra_module": "prune", "url": sim.URL, "personal_access_token": coretest.AdminPAT,
		"fleet": "ci", "tags": []any{"main"}, "keep": ids, "hosts_expected": []any{"nodea"}, "hosts_reported": []any{"nodea"},
		"_ansible_check_mode": false, "_ansible_diff": true}
}

func wouldDeleteOf(t *testing.T, out map[string]any) []int64 {
	t.Helper()
	var ids []int64
	b, _ := json.Marshal(out["would_delete"])
	if err := json.Unmarshal(b, &ids); err != nil {
		t.Fatalf("would_delete: %v in %v", err, out)
	}
	return ids
}

// The module deletes what no host owns; check mode and state: listed
// delete nothing, and only check mode reports a change. The token given
// in the task is nowhere in the result.
func TestPruneModule(t *testing.T) {
	sim, live, gone, foreign := pruneGitLab(t)
	for _, c := range []struct {
		name    string
		set     map[string]any
		changed bool
	}{
		{"check mode", map[string]any{"_ansible_check_mode": true}, true},
		{"listed", map[string]any{"state": "listed"}, false},
	} {
		a := pruneArgs(sim, live)
		for k, v := range c.set {
			a[k] = v
		}
		out := runModule(t, a)
		if out["failed"] == true || out["changed"] != c.changed || !reflect.DeepEqual(wouldDeleteOf(t, out), []int64{gone}) {
			t.Fatalf("%s: %v", c.name, out)
		}
		if len(sim.Runners()) != 3 {
			t.Fatalf("%s deleted a runner", c.name)
		}
	}
	out := runModule(t, pruneArgs(sim, live))
	if out["failed"] == true || out["changed"] != true || out["deleted"] != float64(1) {
		t.Fatalf("prune: %v", out)
	}
	if _, ok := sim.Runner(gone); ok {
		t.Fatal("the decommissioned host's runner is still in GitLab")
	}
	if _, ok := sim.Runner(foreign); !ok {
		t.Fatal("another team's runner was deleted")
	}
	diff := out["diff"].([]any)[0].(map[string]any)
	if strings.Count(diff["before"].(string), "\n") != 2 || strings.Count(diff["after"].(string), "\n") != 1 {
		t.Fatalf("diff %v", diff)
	}
	b, _ := json.Marshal(out)
	if s := coretest.FindSecret(string(b)); s != "" {
		t.Fatalf("the result holds a secret: %s", s)
	}
	out = runModule(t, pruneArgs(sim, live))
	if out["changed"] != false || len(wouldDeleteOf(t, out)) != 0 {
		t.Fatalf("second run: %v", out)
	}
}

// Over max_delete the task fails, deletes nothing, lists the ids in
// refused and names the module's options.
func TestPruneModuleRefusesOverMaxDelete(t *testing.T) {
	sim, live, gone, _ := pruneGitLab(t)
	a := pruneArgs(sim)
	a["max_delete"] = "1"
	out := runModule(t, a)
	refused, _ := json.Marshal(out["refused"])
	if out["failed"] != true || out["changed"] != false || string(refused) != "["+itoa(live)+","+itoa(gone)+"]" {
		t.Fatalf("over max_delete: %v", out)
	}
	if msg := out["msg"].(string); !strings.Contains(msg, "max_delete") || strings.Contains(msg, "--") {
		t.Fatalf("msg does not name the module's option: %s", msg)
	}
	if len(sim.Runners()) != 3 {
		t.Fatal("a refused run deleted a runner")
	}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

// Each bad option is named by its path, in input_errors, before any
// request.
func TestPruneModuleOptionErrors(t *testing.T) {
	sim, _, _, _ := pruneGitLab(t)
	for _, c := range []struct {
		set    map[string]any
		option string
	}{
		{map[string]any{"keep": []any{12, "twelve"}}, "keep[1]"},
		{map[string]any{"min_idle": "a week"}, "min_idle"},
		{map[string]any{"state": "present"}, "state"},
		{map[string]any{"max_delete": -1}, "max_delete"},
		{map[string]any{"group": "ops", "project_id": 3}, "group"},
		{map[string]any{"personal_access_token_file": "/x"}, "personal_access_token"},
		{map[string]any{"refresh": true}, "refresh"},
		{map[string]any{"tls_ca_file": "~other/ca.pem"}, "tls_ca_file"},
		{map[string]any{"description_pattern": "(("}, "description_pattern"},
	} {
		a := pruneArgs(sim)
		for k, v := range c.set {
			a[k] = v
		}
		sim.ResetLog()
		out := runModule(t, a)
		ies, _ := out["input_errors"].([]any)
		if out["failed"] != true || len(ies) != 1 || ies[0].(map[string]any)["option"] != c.option {
			t.Errorf("%v: %v, want input error on %s", c.set, out, c.option)
		}
		if n := sim.RequestCounts().Total; n != 0 {
			t.Errorf("%v: %d requests before the options were checked", c.set, n)
		}
	}
}

// A path option's "~user/" is refused naming that option (it used to
// name no option at all).
func TestTildeUserNamesTheOption(t *testing.T) {
	_, err := ParseArgs([]byte(`{"tag_schema": "~other/schema.json"}`))
	ae, ok := err.(*input.Error)
	if !ok || ae.Option != "tag_schema" {
		t.Fatalf("error %#v, want an input error on tag_schema", err)
	}
}

// A removal GitLab does not confirm fails the task (its entry has left
// the config and is pending), unless ignore_cleanup_errors; either way
// the state file keeps the removal for the next run.
func TestModuleCleanupErrors(t *testing.T) {
	sim := coretest.NewSim(t, coretest.SimOptions())
	prefix := filepath.Join(t.TempDir(), "prefix")
	if out := runModule(t, declared(sim, prefix, "a", "b")); out["failed"] == true {
		t.Fatalf("converge: %v", out)
	}
	sim.InjectFault(gitlabsim.Fault{Kind: "delete-token", Type: gitlabsim.FaultStatus, Status: 502, Times: -1})
	for _, ignore := range []bool{false, true} {
		a := declared(sim, prefix, "a")
		a["ignore_cleanup_errors"] = ignore
		a["request_timeout"] = "1s"
		a["timeout"] = "20s"
		out := runModule(t, a)
		if failed := out["failed"] == true; failed == ignore {
			t.Fatalf("ignore_cleanup_errors %v: failed %v: %v", ignore, failed, out)
		}
		var pending bool
		for _, r := range out["runners"].([]any) {
			pending = pending || r.(map[string]any)["pending"] == true
		}
		if !pending {
			t.Fatalf("ignore_cleanup_errors %v: no runner reported pending: %v", ignore, out["runners"])
		}
	}
	if len(sim.Runners()) != 2 {
		t.Fatalf("%d runners in GitLab, want b's still there", len(sim.Runners()))
	}
	sim.ClearFaults()
	if out := runModule(t, declared(sim, prefix, "a")); out["failed"] == true || len(sim.Runners()) != 1 {
		t.Fatalf("retry: %v, %d runners", out, len(sim.Runners()))
	}
}

// The info module reports an executor whose file is invalid as skipped
// (what a service start does), with its file and cause, and still
// reports the others; it stays read-only.
func TestInfoShowsSkippedExecutors(t *testing.T) {
	sim := coretest.NewSim(t, coretest.SimOptions())
	prefix := filepath.Join(t.TempDir(), "prefix")
	if out := runModule(t, declared(sim, prefix, "a")); out["failed"] == true {
		t.Fatalf("converge: %v", out)
	}
	if err := os.WriteFile(filepath.Join(prefix, "main", "x.toml"), []byte("executor = \"shell\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out := runModule(t, map[string]any{"prefix": prefix, "hostname": "node5", "_gra_module": "info"})
	sk, _ := out["skipped"].([]any)
	if out["failed"] == true || len(sk) != 1 || sk[0].(map[string]any)["name"] != "x" || sk[0].(map[string]any)["file"] != "main/x.toml" {
		t.Fatalf("info: %v", out)
	}
	if rs, _ := out["runners"].([]any); len(rs) != 1 {
		t.Fatalf("info runners %v", out["runners"])
	}
}

package module

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/input"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/redact"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/testkit/coretest"
)

func args(t *testing.T, m map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func runModule(t *testing.T, m map[string]any) map[string]any {
	t.Helper()
	res := Run(context.Background(), args(t, m), redact.New())
	var buf bytes.Buffer
	emit(&buf, res, redact.New())
	coretest.Record(t, "module-result", buf.Bytes())
	var out map[string]any
	if err := json.Unmarshal(buf.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func declared(sim *coretest.Sim, prefix string, names ...string) map[string]any {
	var execs []any
	for _, n := range names {
		execs = append(execs, map[string]any{"name": n, "url": sim.URL, "executor": "shell", "tags": []any{"t-" + n}})
	}
	return map[string]any{
		"prefix": prefix, "instance": "main", "hostname": "node5",
		"global":              map[string]any{"concurrent": 2, "session_server": map[string]any{"session_timeout": 1800}},
		"clients":             []any{map[string]any{"url": sim.URL, "personal_access_token": coretest.AdminPAT}},
		"executors":           execs,
		"_ansible_check_mode": false, "_ansible_diff": true, "_ansible_verbosity": 3, "_ansible_version": "2.14.18",
		"_ansible_module_name": "gitlab_runner_auth.runner.sync_linux_amd64", "_ansible_tmpdir": os.TempDir(),
	}
}

// Each bad option is an input error naming it ("" for arguments that are
// not options at all).
func TestParseArgs(t *testing.T) {
	cases := []struct {
		in     string
		option string
	}{
		{`{"prefix": "/p", "bogus": 1}`, "bogus"},
		{`{"prefix": "/p", "bogus": 1, "other": 2}`, ""},
		{`{"concurrency": "x"}`, "concurrency"},
		{`{"concurrency": 0}`, "concurrency"},
		{`{"refresh": "perhaps"}`, "refresh"},
		{`{"state": "latest"}`, "state"},
		{`{"global": [1]}`, "global"},
		{`{"global": {"runners": []}, "clients": [], "executors": []}`, "global.runners"},
		{`{"clients": [{"url": "u", "token": "x"}], "executors": [{"name": "a", "url": "u"}]}`, "clients[0].token"},
		{`{"clients": [{"url": "u", "runner_type": "x"}], "executors": [{"name": "a", "url": "u"}]}`, "clients[0].runner_type"},
		{`{"clients": [{"url": "u"}], "executors": [{"name": "a", "url": "u", "paused": "sometimes"}]}`, "executors[0].paused"},
		{`{"clients": [{"url": "u"}], "executors": [{"name": "a", "url": "u"}, {"name": "a", "url": "u"}]}`, "executors[1].name"},
		{`{"clients": [{"url": "u"}], "executors": []}`, "executors"},
		{`{"executors": [{"name": "a", "url": "u"}]}`, "clients"},
		{`{"clients": [{"url": "u"}]}`, "executors"},
		{`{"instance": "template.main"}`, "instance"},
		{`{"instance": "config.main.toml"}`, "instance"},
		{`[1]`, ""},
	}
	for _, c := range cases {
		_, err := ParseArgs([]byte(c.in))
		var ae *input.Error
		if !errors.As(err, &ae) || string(ae.Option) != c.option || ae.Msg == "" {
			t.Errorf("%s: got %#v, want an input error naming the option %q", c.in, err, c.option)
		}
	}
	// Ansible's own words for unknown options, which users search for.
	_, err := ParseArgs([]byte(`{"prefix": "/p", "bogus": 1}`))
	if want := "Unsupported parameters for (gitlab_runner_auth.runner.sync) module: bogus. Supported parameters include: " +
		"capture_tags, capture_timeout, clients, concurrency, executors, fleet, global, hostname, ignore_cleanup_errors, instance, lock_timeout, omit_auto_tags, prefix, refresh, " +
		"request_timeout, state, tag_schema, timeout."; err == nil || err.Error() != want {
		t.Errorf("unknown option: got %v, want %q", err, want)
	}
	a, err := ParseArgs([]byte(`{"refresh": "yes", "concurrency": "8", "_ansible_check_mode": true, "_ansible_diff": false, "_ansible_keep_remote_files": false}`))
	if err != nil || !a.Refresh || a.Concurrency != 8 || !a.CheckMode || a.Prefix != "/etc/gitlab-runner" || a.Instance != "main" {
		t.Fatalf("%+v %v", a, err)
	}
}

func TestDeclarativeConvergeIsIdempotent(t *testing.T) {
	sim := coretest.NewSim(t, coretest.SimOptions())
	prefix := filepath.Join(t.TempDir(), "prefix")
	first := runModule(t, declared(sim, prefix, "a", "b", "c"))
	if first["changed"] != true || first["failed"] == true {
		t.Fatalf("first run: %v", first)
	}
	for _, f := range []string{"config.template.main.toml", "main/a.toml", "main/b.toml", "main/c.toml", "config.main.toml"} {
		fi, err := os.Stat(filepath.Join(prefix, f))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v", f, err, fi)
		}
	}
	tpl, _ := os.ReadFile(filepath.Join(prefix, "config.template.main.toml"))
	if !strings.Contains(string(tpl), "session_timeout = 1800") {
		t.Fatalf("template:\n%s", tpl)
	}
	sim.ResetLog()
	second := runModule(t, declared(sim, prefix, "a", "b", "c"))
	if second["changed"] != false || sim.MutatingRequests() != 0 || len(sim.Requests()) != 3 {
		t.Fatalf("second run: %v, requests %v", second, sim.Counts())
	}
	if d, _ := second["diff"].([]any); len(d) != 0 {
		t.Fatalf("second run has a diff: %v", d)
	}
	// A stray file is removed and its runner deleted.
	if err := os.WriteFile(filepath.Join(prefix, "main", "stray.yaml"), []byte("url: "+sim.URL+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	third := runModule(t, declared(sim, prefix, "a", "b"))
	if third["changed"] != true || len(sim.Runners()) != 2 {
		t.Fatalf("third run: %v; runners %d", third, len(sim.Runners()))
	}
	for _, f := range []string{"main/c.toml", "main/stray.yaml"} {
		if _, err := os.Stat(filepath.Join(prefix, f)); !os.IsNotExist(err) {
			t.Errorf("%s was not removed", f)
		}
	}
	diff, _ := json.Marshal(third["diff"])
	if !strings.Contains(string(diff), "c.toml") || !strings.Contains(string(diff), `\u003credacted\u003e`) {
		t.Fatalf("diff %s", diff)
	}
}

func TestCheckModeOnAFreshHostTouchesNothing(t *testing.T) {
	sim := coretest.NewSim(t, coretest.SimOptions())
	prefix := filepath.Join(t.TempDir(), "prefix")
	in := declared(sim, prefix, "a", "b")
	in["_ansible_check_mode"] = true
	res := runModule(t, in)
	if res["changed"] != true || res["failed"] == true {
		t.Fatalf("check: %v", res)
	}
	if _, err := os.Stat(prefix); !os.IsNotExist(err) {
		t.Fatal("check mode created the prefix")
	}
	if sim.MutatingRequests() != 0 || len(sim.Runners()) != 0 {
		t.Fatalf("check mode changed GitLab: %v", sim.Counts())
	}
	diff, _ := json.Marshal(res["diff"])
	if strings.Contains(string(diff), coretest.AdminPAT) || !strings.Contains(string(diff), `personal_access_token = \"\u003credacted\u003e\"`) {
		t.Fatalf("template diff must show the token redacted: %s", diff)
	}
}

func TestStateAbsentRemovesRunnersAndConfig(t *testing.T) {
	sim := coretest.NewSim(t, coretest.SimOptions())
	prefix := filepath.Join(t.TempDir(), "prefix")
	runModule(t, declared(sim, prefix, "a", "b"))
	in := map[string]any{"prefix": prefix, "instance": "main", "hostname": "node5", "state": "absent", "_ansible_check_mode": true}
	check := runModule(t, in)
	if check["changed"] != true || len(sim.Runners()) != 2 {
		t.Fatalf("absent check: %v", check)
	}
	in["_ansible_check_mode"] = false
	res := runModule(t, in)
	if res["changed"] != true || res["failed"] == true || len(sim.Runners()) != 0 {
		t.Fatalf("absent: %v; runners %d", res, len(sim.Runners()))
	}
	if _, err := os.Stat(filepath.Join(prefix, "config.main.toml")); !os.IsNotExist(err) {
		t.Fatal("config still there")
	}
	again := runModule(t, in)
	if again["changed"] != false {
		t.Fatalf("absent twice: %v", again)
	}
}

func TestMainReadsTheArgsFile(t *testing.T) {
	sim := coretest.NewSim(t, coretest.SimOptions())
	dir := t.TempDir()
	path := filepath.Join(dir, "args")
	if err := os.WriteFile(path, args(t, declared(sim, filepath.Join(dir, "p"), "a")), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if code := Main(path, &out); code != 0 {
		t.Fatalf("exit %d: %s", code, out.String())
	}
	coretest.Record(t, "stdout", out.Bytes())
	if strings.Count(out.String(), "\n") != 1 || !json.Valid(out.Bytes()) {
		t.Fatalf("stdout must be exactly one JSON document: %q", out.String())
	}
	out.Reset()
	if code := Main(filepath.Join(dir, "missing"), &out); code != 1 || !strings.Contains(out.String(), `"failed":true`) {
		t.Fatalf("missing args file: %d %s", code, out.String())
	}
}

// An executor the play no longer declares leaves the config, gitlab-runner
// running that config takes it (the module finds it and sends SIGHUP), and
// only then is its runner deleted: no job request with a dead token.
func TestRemovedExecutorIsDeletedAfterGitLabRunnerTookTheConfig(t *testing.T) {
	sim := coretest.NewSim(t, coretest.SimOptions())
	prefix := filepath.Join(t.TempDir(), "prefix")
	if out := runModule(t, declared(sim, prefix, "a", "b")); out["failed"] == true {
		t.Fatalf("first run: %v", out)
	}
	var ids []int64
	for _, r := range sim.Runners() {
		ids = append(ids, r.ID)
	}
	fake := coretest.StartFakeRunner(t, filepath.Join(prefix, "config.main.toml"))
	fake.WaitPolled(t, 0, ids...)

	out := runModule(t, declared(sim, prefix, "a"))
	if out["failed"] == true || out["changed"] != true {
		t.Fatalf("removing b: %v", out)
	}
	if len(sim.Runners()) != 1 {
		t.Fatalf("GitLab holds %d runners, want b's deleted", len(sim.Runners()))
	}
	a := sim.Runners()[0].ID
	fake.WaitPolled(t, len(fake.Log()), a)
	if r := fake.Refused(); len(r) > 0 {
		t.Fatalf("gitlab-runner asked for jobs with the deleted runner's token (403): %q", r)
	}
	reload, _ := out["reload"].(map[string]any)
	if pids, _ := reload["pids"].([]any); len(pids) != 1 || pids[0] != float64(fake.PID) {
		t.Fatalf("result's reload %v: want gitlab-runner (pid %d) signalled", out["reload"], fake.PID)
	}
}

package module

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/engine"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/hostfs"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/input"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/redact"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/testkit/coretest"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/testkit/gitlabsim"
)

// TestFailedTaskLeavesTheHostByteIdentical: content the engine refuses never
// reaches the disk, and names cannot leave the prefix.
func TestFailedTaskLeavesTheHostByteIdentical(t *testing.T) {
	sim := coretest.NewSim(t, coretest.SimOptions())
	root := t.TempDir()
	prefix := filepath.Join(root, "prefix")
	if r := runModule(t, declared(sim, prefix, "a", "b")); r["failed"] == true {
		t.Fatalf("converge: %v", r)
	}
	before := coretest.Tree(t, root)
	bad := []func(m map[string]any) string{
		func(m map[string]any) string { // url of no client
			m["executors"] = append(m["executors"].([]any), map[string]any{"name": "c", "url": "https://elsewhere.example"})
			return "executors[2].url"
		},
		func(m map[string]any) string {
			m["executors"].([]any)[1].(map[string]any)["maximum_timeout"] = 60
			return "executors[1].maximum_timeout"
		},
		func(m map[string]any) string { m["instance"] = "x/../../victim"; return "instance" },
		func(m map[string]any) string {
			m["executors"].([]any)[0].(map[string]any)["name"] = "../../victim"
			return "executors[0].name"
		},
	}
	for i, f := range bad {
		for _, check := range []bool{false, true} {
			in := declared(sim, prefix, "a", "b")
			in["_ansible_check_mode"] = check
			want := f(in)
			res := runModule(t, in)
			msg, _ := res["msg"].(string)
			got := resultInputErrors(t, res)
			if res["failed"] != true || res["changed"] != false || len(got) != 1 || got[0].Option != want || got[0].File != "" || got[0].Key != "" {
				t.Errorf("case %d (check %v): want a failure naming the option %s (no file), unchanged; got %v", i, check, want, res)
			}
			if strings.Contains(msg, "main/") || strings.Contains(msg, ".toml") {
				t.Errorf("case %d: message names a file the module writes instead of the option: %s", i, msg)
			}
			coretest.SameTree(t, "after a failed task", before, coretest.Tree(t, root), false)
		}
	}
}

// TestAbsentLeavesNoSecretAndNothingToRegister: after state: absent the
// prefix holds no template, executor file or config, so no secret, and a
// later register-runner (same engine) fails with "template does not exist"
// and registers nothing.
func TestAbsentLeavesNoSecretAndNothingToRegister(t *testing.T) {
	sim := coretest.NewSim(t, coretest.SimOptions())
	prefix := filepath.Join(t.TempDir(), "prefix")
	runModule(t, declared(sim, prefix, "a", "b"))
	in := map[string]any{"prefix": prefix, "instance": "main", "hostname": "node5", "state": "absent",
		"_ansible_check_mode": true, "_ansible_diff": true}
	check := runModule(t, in)
	d, _ := json.Marshal(check["diff"])
	if check["changed"] != true || !strings.Contains(string(d), "config.template.main.toml") || !strings.Contains(string(d), "a.toml") {
		t.Fatalf("absent in check mode does not predict removing the files: %v", check)
	}
	in["_ansible_check_mode"] = false
	if res := runModule(t, in); res["failed"] == true || len(sim.Runners()) != 0 {
		t.Fatalf("absent: %v", res)
	}
	for _, f := range []string{"config.template.main.toml", "main", "config.main.toml", ".gitlab-runner-auth.main.json", ".gitlab-runner-auth.main.incomplete", ".gitlab-runner-auth.main.lock"} {
		if _, err := os.Lstat(filepath.Join(prefix, f)); !os.IsNotExist(err) {
			t.Errorf("%s remains after absent", f)
		}
	}
	_ = filepath.WalkDir(prefix, func(p string, de fs.DirEntry, err error) error {
		if b, err := os.ReadFile(p); err == nil && strings.Contains(string(b), coretest.AdminPAT) {
			t.Errorf("%s holds the personal access token after absent", p)
		}
		return nil
	})
	sim.ResetLog()
	err := coretest.Run(t, context.Background(), engine.Options{Prefix: prefix, Instance: "main", Hostname: "node5", Limits: engine.Limits{Concurrency: 4}}).Err
	if ie := input.As(err); ie == nil || ie.File != "config.template.main.toml" || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("register-runner after absent: %v, want the template missing", err)
	}
	if len(sim.Requests()) != 0 || len(sim.Runners()) != 0 {
		t.Fatalf("register-runner after absent talked to GitLab: %v", sim.Counts())
	}
	if again := runModule(t, in); again["changed"] != false || again["failed"] == true {
		t.Fatalf("absent twice: %v", again)
	}
}

// TestOldSecretsNeverInDiffs: a token on disk is redacted by its key, not
// by knowing its value or shape.
func TestOldSecretsNeverInDiffs(t *testing.T) {
	sim := coretest.NewSim(t, coretest.SimOptions())
	prefix := filepath.Join(t.TempDir(), "prefix")
	runModule(t, declared(sim, prefix, "a"))
	tplPath := filepath.Join(prefix, "config.template.main.toml")
	tpl, _ := os.ReadFile(tplPath)
	old := "rotated-out-secret-of-any-shape"
	edited := strings.Replace(string(tpl), "personal_access_token =", "registration_token = \""+old+"\"\n  personal_access_token =", 1)
	if err := os.WriteFile(tplPath, []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	in := declared(sim, prefix, "a")
	in["_ansible_check_mode"] = true
	res := runModule(t, in)
	d, _ := json.Marshal(res["diff"])
	if strings.Contains(string(d), old) || !strings.Contains(string(d), "registration_token") {
		t.Fatalf("the old token shows in the diff, or the diff lacks the change: %s", d)
	}
}

// TestOldMultiLineSecretsNeverInDiffs: a secret on disk written over
// several lines (a TOML multi-line string, a YAML block scalar) or as a
// NAME=value entry is redacted whole; the rest of the file shows as it is.
func TestOldMultiLineSecretsNeverInDiffs(t *testing.T) {
	sim := coretest.NewSim(t, coretest.SimOptions())
	prefix := filepath.Join(t.TempDir(), "prefix")
	runModule(t, declared(sim, prefix, "a"))
	tplPath := filepath.Join(prefix, "config.template.main.toml")
	tpl, _ := os.ReadFile(tplPath)
	edited := strings.Replace(string(tpl), "personal_access_token =", "registration_token = \"\"\"OLD-\nrotated-multi-line-secret\"\"\"\n  personal_access_token =", 1)
	if err := os.WriteFile(tplPath, []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	stray := "url: " + sim.URL + "\nexecutor: kubernetes\nkubernetes:\n  bearer_token: |\n    yaml-block-secret-line-1\n    yaml-block-secret-line-2\n" +
		"  namespace: ci\nenvironment: [DB_PASSWORD=env-secret-value, LANG=C]\n"
	if err := os.WriteFile(filepath.Join(prefix, "main", "k8s.yaml"), []byte(stray), 0o600); err != nil {
		t.Fatal(err)
	}
	in := declared(sim, prefix, "a")
	in["_ansible_check_mode"] = true
	res := runModule(t, in)
	d, _ := json.Marshal(res["diff"])
	for _, secret := range []string{"rotated-multi-line-secret", "yaml-block-secret-line", "env-secret-value", coretest.AdminPAT} {
		if strings.Contains(string(d), secret) {
			t.Fatalf("%s shows in the diff: %s", secret, d)
		}
	}
	before := map[string]string{}
	for _, e := range res["diff"].([]any) {
		m := e.(map[string]any)
		before[filepath.Base(m["before_header"].(string))] = m["before"].(string)
	}
	if !strings.Contains(before["config.template.main.toml"], "  registration_token = \"<redacted>\"\n  personal_access_token = \"<redacted>\"\n") {
		t.Errorf("template before:\n%s", before["config.template.main.toml"])
	}
	want := "url: " + sim.URL + "\nexecutor: kubernetes\nkubernetes:\n  bearer_token: \"<redacted>\"\n" +
		"  namespace: ci\nenvironment: [\"DB_PASSWORD=<redacted>\", LANG=C]\n"
	if before["k8s.yaml"] != want {
		t.Errorf("removed executor file before:\n%s\nwant\n%s", before["k8s.yaml"], want)
	}
}

// TestDeclaredSecretsNeverInDiffs: secrets given in the task's global and
// executors options (not only the clients' tokens) show as <redacted> in
// the files' diffs.
func TestDeclaredSecretsNeverInDiffs(t *testing.T) {
	sim := coretest.NewSim(t, coretest.SimOptions())
	prefix := filepath.Join(t.TempDir(), "prefix")
	in := declared(sim, prefix, "a")
	in["global"] = map[string]any{"concurrent": 2, "sentry_dsn": "https://sentry-key-1@sentry.example.com/1"}
	in["executors"] = []any{map[string]any{"name": "k8s", "url": sim.URL, "executor": "kubernetes",
		"environment": []any{"DB_PASSWORD=db-password-2", "LANG=C"},
		"kubernetes":  map[string]any{"host": "https://k8s.example.com", "bearer_token": "k8s-bearer-3"},
		"cache":       map[string]any{"s3": map[string]any{"AccessKey": "s3-access-4", "SecretKey": "s3-secret-5"}}}}
	in["_ansible_check_mode"] = true
	res := runModule(t, in)
	d, _ := json.Marshal(res["diff"])
	for _, secret := range []string{"sentry-key-1", "db-password-2", "k8s-bearer-3", "s3-access-4", "s3-secret-5", coretest.AdminPAT} {
		if strings.Contains(string(d), secret) {
			t.Fatalf("%s shows in the diff: %s", secret, d)
		}
	}
	after := map[string]string{}
	for _, e := range res["diff"].([]any) {
		m := e.(map[string]any)
		after[filepath.Base(m["after_header"].(string))] = m["after"].(string)
	}
	if !strings.Contains(after["config.template.main.toml"], "\nsentry_dsn = \"<redacted>\"\n") {
		t.Errorf("template after:\n%s", after["config.template.main.toml"])
	}
	for _, line := range []string{`environment = ["DB_PASSWORD=<redacted>", "LANG=C"]`, `  bearer_token = "<redacted>"`,
		`    AccessKey = "<redacted>"`, `    SecretKey = "<redacted>"`} {
		if !strings.Contains(after["k8s.toml"], "\n"+line+"\n") {
			t.Errorf("executor file after lacks %q:\n%s", line, after["k8s.toml"])
		}
	}
}

// TestResultsShowTagsAndGitLabSideChanges: each runner reports its tags
// and description; a settings update is its own diff entry with values.
func TestResultsShowTagsAndGitLabSideChanges(t *testing.T) {
	sim := coretest.NewSim(t, coretest.SimOptions())
	prefix := filepath.Join(t.TempDir(), "prefix")
	runModule(t, declared(sim, prefix, "a"))
	in := declared(sim, prefix, "a")
	in["executors"].([]any)[0].(map[string]any)["tags"] = []any{"t-a", "gpu"}
	in["executors"].([]any)[0].(map[string]any)["paused"] = true
	for _, check := range []bool{true, false} {
		in["_ansible_check_mode"] = check
		res := runModule(t, in)
		runners, _ := res["runners"].([]any)
		if len(runners) != 1 {
			t.Fatalf("runners: %v", res)
		}
		r := runners[0].(map[string]any)
		tags, _ := json.Marshal(r["tags"])
		if r["description"] != "node5 main a Runner" || !strings.Contains(string(tags), `"gpu"`) || r["action"] != "update" {
			t.Errorf("runner result lacks computed tags/description: %v", r)
		}
		// The GitLab side has a diff entry of its own, headed by the
		// runner's id: paused false before, true after, with the new tag.
		var gitlabSide map[string]any
		diffs, _ := res["diff"].([]any)
		for _, e := range diffs {
			if m, _ := e.(map[string]any); m != nil && strings.Contains(fmt.Sprint(m["before"]), "paused: false") {
				gitlabSide = m
			}
		}
		id := fmt.Sprintf("%.0f", r["id"])
		if after := fmt.Sprint(gitlabSide["after"]); gitlabSide == nil || !strings.Contains(fmt.Sprint(gitlabSide["before_header"]), id) ||
			!strings.Contains(after, "paused: true") || !strings.Contains(after, `"gpu"`) {
			d, _ := json.Marshal(res["diff"])
			t.Errorf("check %v: no GitLab-side diff entry for runner %s with the values: %s", check, id, d)
		}
	}
}

func TestPrefixMustBeAbsolute(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	a, err := ParseArgs([]byte(`{"prefix": "~/gr"}`))
	if err != nil || a.Prefix != filepath.Join(home, "gr") {
		t.Fatalf("~/gr: %+v %v", a, err)
	}
	for _, p := range []string{"gr", "./gr", "~other/gr", "~gr"} {
		var ae *input.Error
		if _, err := ParseArgs([]byte(`{"prefix": "` + p + `"}`)); !errors.As(err, &ae) || ae.Option != "prefix" {
			t.Errorf("prefix %q: %v, want it refused", p, err)
		}
	}
	if a, err := ParseArgs([]byte(`{"timeout": "90s", "lock_timeout": 5, "request_timeout": "2m", "capture_timeout": "3s"}`)); err != nil ||
		a.Timeout.Seconds() != 90 || a.LockTimeout.Seconds() != 5 || a.RequestTimeout.Minutes() != 2 || a.CaptureTimeout.Seconds() != 3 {
		t.Fatalf("timeouts: %+v %v", a, err)
	}
	var ae *input.Error
	if _, err := ParseArgs([]byte(`{"timeout": "soon"}`)); !errors.As(err, &ae) || ae.Option != "timeout" {
		t.Fatalf("bad timeout: %v", err)
	}
}

// TestGroupByFullPath: clients[].group is resolved to group_id through the
// API before the template is written.
func TestGroupByFullPath(t *testing.T) {
	opts := coretest.SimOptions()
	opts.Groups = []gitlabsim.Group{{ID: 77, FullPath: "ops/ci"}, {ID: 76, FullPath: "ops"}}
	sim := coretest.NewSim(t, opts)
	prefix := filepath.Join(t.TempDir(), "prefix")
	in := declared(sim, prefix, "a")
	in["clients"].([]any)[0].(map[string]any)["group"] = "ops/ci"
	in["clients"].([]any)[0].(map[string]any)["runner_type"] = "group_type"
	res := runModule(t, in)
	if res["failed"] == true {
		t.Fatalf("group by path: %v", res)
	}
	tpl, _ := os.ReadFile(filepath.Join(prefix, "config.template.main.toml"))
	if !strings.Contains(string(tpl), "group_id = 77") {
		t.Fatalf("template lacks the resolved group_id:\n%s", redact.Keys(string(tpl)))
	}
	in["clients"].([]any)[0].(map[string]any)["group"] = "ops/nope"
	res = runModule(t, in)
	if got := resultInputErrors(t, res); res["failed"] != true || len(got) != 1 || got[0].Option != "clients[0].group" {
		t.Fatalf("unknown group: %v", res)
	}
}

// TestInfoIsReadOnly: the info module reports GitLab's view and changes
// nothing, in GitLab or on disk.
func TestInfoIsReadOnly(t *testing.T) {
	sim := coretest.NewSim(t, coretest.SimOptions())
	root := t.TempDir()
	prefix := filepath.Join(root, "prefix")
	runModule(t, declared(sim, prefix, "a", "b"))
	before := coretest.Tree(t, root)
	sim.ResetLog()
	res := runModule(t, map[string]any{"prefix": prefix, "hostname": "node5", "_gra_module": "info"})
	if res["failed"] == true || res["changed"] != false {
		t.Fatalf("info: %v", res)
	}
	runners, _ := res["runners"].([]any)
	if len(runners) != 2 {
		t.Fatalf("info runners: %v", res)
	}
	r := runners[0].(map[string]any)
	if r["id"] == float64(0) || r["description"] != "node5 main a Runner" || r["planned_action"] != "keep" {
		t.Errorf("info runner: %v", r)
	}
	if m, _ := r["managers"].([]any); len(m) == 0 {
		t.Errorf("info runner lacks managers: %v", r)
	}
	if sim.MutatingRequests() != 0 {
		t.Errorf("info made mutating requests: %v", sim.Counts())
	}
	coretest.SameTree(t, "after info", before, coretest.Tree(t, root), false)
	if _, err := ParseArgs([]byte(`{"_gra_module": "info", "state": "absent"}`)); err == nil {
		t.Error("info accepted state")
	}
}

// TestTokenFilesOnTheHost: clients[].personal_access_token_file is passed
// through to the template (the token stays in its file), and a bad one is
// reported with the option's path.
func TestTokenFilesOnTheHost(t *testing.T) {
	sim := coretest.NewSim(t, coretest.SimOptions())
	root := t.TempDir()
	prefix := filepath.Join(root, "prefix")
	patFile := filepath.Join(root, "pat")
	if err := os.WriteFile(patFile, []byte(coretest.AdminPAT+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	in := declared(sim, prefix, "a")
	in["clients"] = []any{map[string]any{"url": sim.URL, "personal_access_token_file": patFile}}
	if res := runModule(t, in); res["failed"] == true || res["changed"] != true {
		t.Fatalf("token file: %v", res)
	}
	tpl, _ := os.ReadFile(filepath.Join(prefix, "config.template.main.toml"))
	if strings.Contains(string(tpl), coretest.AdminPAT) || !strings.Contains(string(tpl), patFile) {
		t.Fatal("the template does not refer to the token file, or holds the token")
	}
	before := coretest.Tree(t, root)
	in["clients"] = []any{map[string]any{"url": sim.URL, "personal_access_token_file": filepath.Join(root, "missing")}}
	res := runModule(t, in)
	if got := resultInputErrors(t, res); res["failed"] != true || len(got) != 1 || got[0].Option != "clients[0].personal_access_token_file" {
		t.Fatalf("missing token file: %v", res)
	}
	coretest.SameTree(t, "after a missing token file", before, coretest.Tree(t, root), false)
}

// TestAbsentThatFailsKeepsTheTemplate: when GitLab refuses to delete a
// runner, absent fails and keeps what is needed to run it again.
func TestAbsentThatFailsKeepsTheTemplate(t *testing.T) {
	sim := coretest.NewSim(t, coretest.SimOptions())
	prefix := filepath.Join(t.TempDir(), "prefix")
	runModule(t, declared(sim, prefix, "a"))
	sim.InjectFault(gitlabsim.Fault{Method: "DELETE", Type: gitlabsim.FaultStatus, Status: 500, Times: -1})
	in := map[string]any{"prefix": prefix, "instance": "main", "hostname": "node5", "state": "absent", "timeout": "10s"}
	res := runModule(t, in)
	if res["failed"] != true {
		t.Fatalf("absent with GitLab failing: %v", res)
	}
	for _, f := range []string{"config.template.main.toml", "main/a.toml"} {
		if _, err := os.Stat(filepath.Join(prefix, f)); err != nil {
			t.Errorf("%s was removed although the runner could not be deleted", f)
		}
	}
	sim.ClearFaults()
	if res := runModule(t, in); res["failed"] == true || len(sim.Runners()) != 0 {
		t.Fatalf("absent again: %v", res)
	}
}

// TestFailureOnAFreshHostLeavesNoPrefix: GitLab unreachable on a new host:
// the task fails and the prefix it created is gone again.
func TestFailureOnAFreshHostLeavesNoPrefix(t *testing.T) {
	root := t.TempDir()
	prefix := filepath.Join(root, "etc", "gitlab-runner")
	url := "http://127.0.0.1:1"
	in := map[string]any{"prefix": prefix, "hostname": "node5", "timeout": "5s", "request_timeout": "1s",
		"clients":   []any{map[string]any{"url": url, "personal_access_token": coretest.AdminPAT}},
		"executors": []any{map[string]any{"name": "a", "url": url}}}
	res := runModule(t, in)
	if res["failed"] != true || res["changed"] != false {
		t.Fatalf("unreachable GitLab: %v", res)
	}
	if _, err := os.Lstat(filepath.Join(root, "etc")); !os.IsNotExist(err) {
		t.Fatalf("the failed task left %v", coretest.Tree(t, root))
	}
}

// TestFailureOnAFreshHostLeavesThePrefixAsItWas: on a host whose prefix
// holds none of the files the tool generates, a task that fails without
// changing GitLab reports no change and leaves the prefix exactly as it
// was: no config, state file, system id, marker or lock of its run; a
// file that was there before (gitlab-runner's system id, an old lock)
// stays. When GitLab may have carried out a create whose answer was lost,
// only the marker remains, so that the next run looks for that runner.
func TestFailureOnAFreshHostLeavesThePrefixAsItWas(t *testing.T) {
	for _, tc := range []struct {
		name    string
		fault   gitlabsim.Fault
		pat     string
		already []string // files in the prefix before the task
		marker  bool
	}{
		{"create refused", gitlabsim.Fault{}, coretest.GroupPAT, nil, false},
		{"create refused, system id and lock there before", gitlabsim.Fault{}, coretest.GroupPAT,
			[]string{".runner_system_id", ".gitlab-runner-auth.main.lock"}, false},
		{"create answered 500: in doubt", gitlabsim.Fault{Kind: "create", Type: gitlabsim.FaultStatus, Status: 500, Times: -1},
			coretest.AdminPAT, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sim := coretest.NewSim(t, coretest.SimOptions())
			if tc.fault.Type != "" {
				sim.InjectFault(tc.fault)
			}
			root := t.TempDir()
			prefix := filepath.Join(root, "prefix")
			if err := os.Mkdir(prefix, 0o700); err != nil {
				t.Fatal(err)
			}
			for _, f := range tc.already {
				if err := os.WriteFile(filepath.Join(prefix, f), []byte("s_0123456789ab\n"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			before := coretest.Tree(t, root)
			in := declared(sim, prefix, "a")
			in["clients"].([]any)[0].(map[string]any)["personal_access_token"] = tc.pat
			in["timeout"] = "20s"
			res := runModule(t, in)
			if res["failed"] != true || res["changed"] != tc.marker {
				t.Fatalf("got failed %v, changed %v; want failed, changed %v: %v", res["failed"], res["changed"], tc.marker, res)
			}
			after := coretest.Tree(t, root)
			marker := filepath.Join(prefix, ".gitlab-runner-auth.main.incomplete")
			if _, ok := after[marker]; ok != tc.marker {
				t.Errorf("marker left: %v, want %v", ok, tc.marker)
			}
			delete(after, marker)
			coretest.SameTree(t, "after the failed task", before, after, false)
			if n := len(sim.Runners()); n != 0 && !tc.marker {
				t.Errorf("GitLab holds %d runners", n)
			}
		})
	}
}

// TestCommentedScriptAndLookAlikeSecretsNeverInDiffs: an executor file on
// the host with a commented-out multi-line key (TOML) or block (YAML), a
// secret exported by a script setting, and a key spelled with a Unicode
// look-alike; and declared executors exporting secrets in their scripts
// and environment: none shows in any diff, the generated config's
// included.
func TestCommentedScriptAndLookAlikeSecretsNeverInDiffs(t *testing.T) {
	sim := coretest.NewSim(t, coretest.SimOptions())
	prefix := filepath.Join(t.TempDir(), "prefix")
	runModule(t, declared(sim, prefix, "a"))
	files := map[string]string{
		"old.toml": "url = \"" + sim.URL + "\"\nexecutor = \"shell\"\n[cache.gcs]\n  AccessID = \"x\"\n  # PrivateKey = \"\"\"\n" +
			"  # -----BEGIN PRIVATE KEY-----\n  # commented-key-line-1\n  # commented-key-line-2\n  # -----END PRIVATE KEY-----\n  # \"\"\"\n" +
			"  # secrets = [\n  #   \"commented-array-secret\",\n  # ]\n",
		"old.yaml": "url: " + sim.URL + "\nexecutor: shell\n# password: |\n#   commented-yaml-line-1\n#   commented-yaml-line-2\n" +
			"pre_build_script: |\n  export AWS_SECRET_ACCESS_KEY=script-secret-1\n  make\nssh:\n  pa\u017f\u017fword: look-alike-secret\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(prefix, "main", name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	in := declared(sim, prefix, "a")
	in["executors"].([]any)[0].(map[string]any)["pre_build_script"] = "echo hi\nexport GH_PAT=declared-script-secret\nmake"
	in["executors"].([]any)[0].(map[string]any)["environment"] = []any{"SLACK_WEBHOOK=https://hooks.example.com/declared-hook", "JWT=declared-jwt", "LANG=C"}
	in["_ansible_check_mode"] = true
	res := runModule(t, in)
	d, _ := json.Marshal(res["diff"])
	for _, secret := range []string{"commented-key-line", "commented-array-secret", "commented-yaml-line", "script-secret-1",
		"look-alike-secret", "declared-script-secret", "declared-hook", "declared-jwt"} {
		if strings.Contains(string(d), secret) {
			t.Errorf("%s shows in the diff: %s", secret, d)
		}
	}
	var config string
	for _, e := range res["diff"].([]any) {
		m := e.(map[string]any)
		if filepath.Base(m["before_header"].(string)) == "config.main.toml" {
			config = m["after"].(string)
		}
	}
	if !strings.Contains(config, `export GH_PAT=<redacted>\nmake`) || !strings.Contains(config, `"JWT=<redacted>"`) {
		t.Errorf("the generated config's diff does not show the settings, redacted:\n%s", config)
	}
}

// TestCachedGroupIDIsVerifiedBeforeACreate: the id the state file cached
// for clients[].group is checked against GitLab (the group's full path)
// before a runner is registered in it; an id that is now another group —
// the state file edited, or the group moved — is looked up again by path,
// so the runner lands in the group the play names. A run that registers
// nothing sends no such request.
func TestCachedGroupIDIsVerifiedBeforeACreate(t *testing.T) {
	opts := coretest.SimOptions()
	opts.Groups = []gitlabsim.Group{{ID: 77, FullPath: "ops/ci"}, {ID: 78, FullPath: "team-b/ci"}}
	sim := coretest.NewSim(t, opts)
	prefix := filepath.Join(t.TempDir(), "prefix")
	in := func(names ...string) map[string]any {
		m := declared(sim, prefix, names...)
		m["clients"].([]any)[0].(map[string]any)["group"] = "ops/ci"
		m["clients"].([]any)[0].(map[string]any)["runner_type"] = "group_type"
		return m
	}
	if res := runModule(t, in("a")); res["failed"] == true {
		t.Fatalf("first run: %v", res)
	}
	statePath := filepath.Join(prefix, ".gitlab-runner-auth.main.json")
	st, _, err := hostfs.ReadState(hostfs.Layout{Prefix: prefix, Instance: "main"})
	if err != nil || len(st.Namespaces) != 1 {
		t.Fatalf("state namespaces %v, %v: want ops/ci cached", st.Namespaces, err)
	}
	var key string
	for k := range st.Namespaces {
		key = k
	}
	st.Namespaces[key] = 78 // another team's group
	if err := os.WriteFile(statePath, st.Encode(), 0o600); err != nil {
		t.Fatal(err)
	}
	sim.ResetLog()
	if res := runModule(t, in("a")); res["failed"] == true || sim.RequestCounts().Total != 1 {
		t.Fatalf("steady state: %v; GitLab saw %v, want one verify and no group lookup", res, sim.Counts())
	}
	res := runModule(t, in("a", "b"))
	if res["failed"] == true || !strings.Contains(fmt.Sprint(res["warnings"]), `"team-b/ci"`) {
		t.Fatalf("new executor b: %v; want a warning naming what id 78 is now", res)
	}
	for _, r := range sim.Runners() {
		if r.GroupID != 77 {
			t.Fatalf("runner %d (%s) registered in group %d, want ops/ci (77)", r.ID, r.Description, r.GroupID)
		}
	}
	if len(sim.Runners()) != 2 {
		t.Fatalf("GitLab holds %d runners, want a and b", len(sim.Runners()))
	}
	st, _, _ = hostfs.ReadState(hostfs.Layout{Prefix: prefix, Instance: "main"})
	if st.Namespaces[key] != 77 {
		t.Fatalf("state namespaces %v: want ops/ci's id (77) cached again", st.Namespaces)
	}
	tpl, _ := os.ReadFile(filepath.Join(prefix, "config.template.main.toml"))
	if !strings.Contains(string(tpl), "group_id = 77") {
		t.Fatalf("template lacks group_id 77:\n%s", redact.Keys(string(tpl)))
	}
}

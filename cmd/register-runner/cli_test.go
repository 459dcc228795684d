package main

// These tests cover the command itself: flags, exit codes, the text and
// JSON reports, --diff and the redaction of everything printed. What the
// engine does in each situation is tested in tests/scenarios; bad input is
// catalogued in tests/reliability.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/input"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/testkit/coretest"
)

const host = "node12"

type result struct {
	code           int
	stdout, stderr string
}

func runCLI(t *testing.T, p *coretest.Prefix, extra ...string) result {
	t.Helper()
	args := append([]string{"--prefix", p.Dir, "--service-instance", p.Instance, "--hostname", host,
		"--request-timeout", coretest.Patient.Request.String(), "--lock-timeout", coretest.Patient.Lock.String()}, extra...)
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	coretest.Record(t, "stdout", out.Bytes())
	coretest.Record(t, "stderr", errb.Bytes())
	return result{code, out.String(), errb.String()}
}

func mustExit(t *testing.T, r result, code int) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, code, r.stdout, r.stderr)
	}
}

func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}

func wantLines(t *testing.T, what, got string, want ...string) {
	t.Helper()
	if !reflect.DeepEqual(lines(got), want) {
		t.Fatalf("%s %q, want %q", what, lines(got), want)
	}
}

// hasLine reports whether some line of s begins with prefix and holds
// more after it, containing each of parts (data such as a URL, not
// wording).
func hasLine(s, prefix string, parts ...string) bool {
	for _, l := range lines(s) {
		rest, ok := strings.CutPrefix(l, prefix)
		if !ok || rest == "" {
			continue
		}
		all := true
		for _, p := range parts {
			all = all && strings.Contains(rest, p)
		}
		if all {
			return true
		}
	}
	return false
}

// reason reports whether stderr gives a reason for this runner's action,
// as "register-runner: <action> <name>: <reason>".
func reason(stderr, action, name string) bool {
	return hasLine(stderr, "register-runner: "+action+" "+name+": ")
}

// idOf is the id of the runner with this host's default description.
func idOf(t *testing.T, sim *coretest.Sim, name string) int64 {
	t.Helper()
	for _, r := range sim.Runners() {
		if r.Description == host+" main "+name+" Runner" {
			return r.ID
		}
	}
	t.Fatalf("no runner for %s in %+v", name, sim.Runners())
	return 0
}

// TestTextReportNamesEveryActionInBothTenses: one line per runner on
// stdout, "would <action>" in check mode and the past tense otherwise, with
// the runner id when there is one; the reason of every change on stderr,
// and which file was written.
func TestTextReportNamesEveryActionInBothTenses(t *testing.T) {
	sim, p := coretest.ShellHost(t, coretest.AdminPAT, "")
	p.Executor("b.toml", "url = \""+sim.URL+"\"\nexecutor = \"shell\"\n")
	wrote := "register-runner: wrote " + p.ConfigPath()

	c := runCLI(t, p, "--check")
	mustExit(t, c, 0)
	wantLines(t, "check stdout", c.stdout, "would create b", "would create shell")
	if !reason(c.stderr, "create", "b") || !reason(c.stderr, "create", "shell") || strings.Contains(c.stderr, "wrote") {
		t.Fatalf("check stderr:\n%s", c.stderr)
	}
	r := runCLI(t, p)
	mustExit(t, r, 0)
	b, shell := idOf(t, sim, "b"), idOf(t, sim, "shell")
	wantLines(t, "stdout", r.stdout, fmt.Sprintf("created b (id %d)", b), fmt.Sprintf("created shell (id %d)", shell))
	if !reason(r.stderr, "create", "b") || !reason(r.stderr, "create", "shell") || !strings.Contains(r.stderr, wrote) {
		t.Fatalf("stderr:\n%s", r.stderr)
	}

	// Nothing to do: the lines alone, and nothing on stderr.
	r = runCLI(t, p)
	mustExit(t, r, 0)
	wantLines(t, "steady stdout", r.stdout, fmt.Sprintf("kept b (id %d)", b), fmt.Sprintf("kept shell (id %d)", shell))
	if r.stderr != "" {
		t.Fatalf("a steady run printed on stderr:\n%s", r.stderr)
	}

	sim.RevokeToken(shell)
	p.Executor("b.toml", "url = \""+sim.URL+"\"\nexecutor = \"shell\"\npaused = true\n")
	c = runCLI(t, p, "--check")
	mustExit(t, c, 0)
	wantLines(t, "check stdout", c.stdout, fmt.Sprintf("would update b (id %d)", b), fmt.Sprintf("would adopt shell (id %d)", shell))
	r = runCLI(t, p)
	mustExit(t, r, 0)
	wantLines(t, "stdout", r.stdout, fmt.Sprintf("updated b (id %d)", b), fmt.Sprintf("adopted shell (id %d)", shell))
	if !reason(r.stderr, "update", "b") || !reason(r.stderr, "adopt", "shell") {
		t.Fatalf("stderr lacks the reasons:\n%s", r.stderr)
	}

	sim.DeleteRunner(b)
	c = runCLI(t, p, "--check")
	mustExit(t, c, 0)
	wantLines(t, "check stdout", c.stdout, "would replace b", fmt.Sprintf("would keep shell (id %d)", shell))
	r = runCLI(t, p)
	mustExit(t, r, 0)
	b = idOf(t, sim, "b")
	wantLines(t, "stdout", r.stdout, fmt.Sprintf("replaced b (id %d)", b), fmt.Sprintf("kept shell (id %d)", shell))

	p.Remove("main/b.toml")
	c = runCLI(t, p, "--check")
	mustExit(t, c, 0)
	wantLines(t, "check stdout", c.stdout, fmt.Sprintf("would keep shell (id %d)", shell), fmt.Sprintf("would delete b (id %d)", b))
	r = runCLI(t, p)
	mustExit(t, r, 0)
	wantLines(t, "stdout", r.stdout, fmt.Sprintf("kept shell (id %d)", shell), fmt.Sprintf("deleted b (id %d)", b))
	if !reason(r.stderr, "delete", "b") || reason(r.stderr, "keep", "shell") || !strings.Contains(r.stderr, wrote) {
		t.Fatalf("stderr:\n%s", r.stderr)
	}
}

// TestWarningsGoToStderr: warnings (here: the PAT lacks create_runner, so
// the registration token is used) are prefixed and never mixed into the
// report on stdout.
func TestWarningsGoToStderr(t *testing.T) {
	sim, p := coretest.ShellHost(t, coretest.ReadOnlyPAT, coretest.RegistrationTok)
	r := runCLI(t, p)
	mustExit(t, r, 0)
	if !hasLine(r.stderr, "register-runner: warning: ", sim.URL) {
		t.Fatalf("no warning about %s on stderr:\n%s", sim.URL, r.stderr)
	}
	if strings.Contains(r.stdout, "warning") || len(lines(r.stdout)) != 1 || !strings.HasPrefix(r.stdout, "created shell (id ") {
		t.Fatalf("stdout:\n%s", r.stdout)
	}
}

// TestExitCodes: 0 success, 1 when GitLab or the host failed the run, 2
// for invalid input; the error is on stderr, or in the JSON report.
func TestExitCodes(t *testing.T) {
	t.Run("GitLab refuses: 1", func(t *testing.T) {
		sim, p := coretest.ShellHost(t, "", coretest.RegistrationTok)
		sim.SetRegistrationDisabled(true)
		r := runCLI(t, p)
		mustExit(t, r, 1)
		wantLines(t, "stdout", r.stdout, "failed to create shell")
		if !hasLine(r.stderr, "register-runner: error: ") {
			t.Fatalf("stderr:\n%s", r.stderr)
		}
		j := runCLI(t, p, "--output", "json")
		mustExit(t, j, 1)
		var doc struct {
			Failed      bool           `json:"failed"`
			InputError  *bool          `json:"input_error"`
			InputErrors []input.Fields `json:"input_errors"`
			Msg         string         `json:"msg"`
			Runners     []struct{ Name, Action, Error string }
		}
		if err := json.Unmarshal([]byte(j.stdout), &doc); err != nil {
			t.Fatal(err)
		}
		if !doc.Failed || doc.InputError == nil || *doc.InputError || doc.InputErrors != nil || doc.Msg == "" ||
			len(doc.Runners) != 1 || doc.Runners[0].Action != "create" || doc.Runners[0].Error == "" {
			t.Fatalf("json report %+v: want the failed create, not an input error", doc)
		}
	})
	t.Run("invalid input: 2", func(t *testing.T) {
		sim, p := coretest.ShellHost(t, coretest.AdminPAT, "")
		p.Remove("config.template.main.toml")
		r := runCLI(t, p)
		mustExit(t, r, 2)
		if r.stdout != "" || !strings.HasPrefix(r.stderr, "register-runner: error: config.template.main.toml: ") {
			t.Fatalf("stdout %q\nstderr:\n%s", r.stdout, r.stderr)
		}
		j := runCLI(t, p, "--output", "json")
		mustExit(t, j, 2)
		doc := decode(t, j.stdout)
		got := inputErrors(t, j.stdout)
		if doc["failed"] != true || doc["input_error"] != true || doc["msg"] == "" ||
			len(got) != 1 || got[0].File != "config.template.main.toml" || got[0].Fix == "" {
			t.Fatalf("json report %v", doc)
		}
		if len(sim.Requests()) != 0 {
			t.Fatalf("invalid input sent %d requests", len(sim.Requests()))
		}
	})
	t.Run("success: 0", func(t *testing.T) {
		_, p := coretest.ShellHost(t, coretest.AdminPAT, "")
		j := runCLI(t, p, "--output", "json")
		mustExit(t, j, 0)
		doc := decode(t, j.stdout)
		if _, failed := doc["failed"]; failed || doc["changed"] != true || doc["config_path"] != p.ConfigPath() {
			t.Fatalf("json report %v", doc)
		}
	})
}

func decode(t *testing.T, s string) map[string]any {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal([]byte(s), &doc); err != nil {
		t.Fatalf("not one JSON object: %v\n%s", err, s)
	}
	return doc
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestDiffAndJSONOutputRedactTokens(t *testing.T) {
	sim, p := coretest.ShellHost(t, coretest.AdminPAT, "")
	p.Executor("shell.toml", "url = \""+sim.URL+"\"\nexecutor = \"shell\"\nbuilds_dir = \"/scratch/builds\"\n")
	p.Executor("docker.toml", "url = \""+sim.URL+"\"\nexecutor = \"docker\"\n")
	mustExit(t, runCLI(t, p), 0)
	p.Executor("shell.toml", "url = \""+sim.URL+"\"\nexecutor = \"shell\"\nbuilds_dir = \"/scratch/other\"\n")
	r := runCLI(t, p, "--diff", "--check")
	mustExit(t, r, 0)
	if !strings.Contains(r.stdout, `-  builds_dir = "/scratch/builds"`) || !strings.Contains(r.stdout, `+  builds_dir = "/scratch/other"`) {
		t.Fatalf("diff does not show the change:\n%s", r.stdout)
	}
	if !strings.Contains(r.stdout, "--- "+p.ConfigPath()+" (before)") || !strings.Contains(r.stdout, "+++ "+p.ConfigPath()+" (after)") {
		t.Fatalf("diff does not name the file:\n%s", r.stdout)
	}
	// (runCLI fails the test if any output holds a secret.)
	j := runCLI(t, p, "--output", "json", "--diff")
	mustExit(t, j, 0)
	var doc struct {
		Changed       bool `json:"changed"`
		ConfigChanged bool `json:"config_changed"`
		Runners       []struct {
			Name, Action string
			ID           int64
		} `json:"runners"`
		Diff struct{ Before, After string } `json:"diff"`
	}
	if err := json.Unmarshal([]byte(j.stdout), &doc); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, j.stdout)
	}
	if !doc.Changed || !doc.ConfigChanged || len(doc.Runners) != 2 || doc.Runners[0].Action != "keep" || doc.Runners[0].ID == 0 {
		t.Fatalf("json report %+v", doc)
	}
	if !strings.Contains(doc.Diff.After, `token = "<redacted>"`) || !strings.Contains(doc.Diff.Before, `token = "<redacted>"`) {
		t.Fatal("diff tokens are not redacted")
	}
	// Without --diff there is no diff in either format.
	if plain := runCLI(t, p); strings.Contains(plain.stdout, "@@") {
		t.Fatalf("a diff without --diff:\n%s", plain.stdout)
	}
	if j := runCLI(t, p, "--output", "json"); strings.Contains(j.stdout, `"diff"`) {
		t.Fatalf("a diff without --diff:\n%s", j.stdout)
	}
}

// --diff hides every secret setting of an executor on both sides of the
// config's diff, in text and JSON: the Kubernetes bearer token, the S3
// secret key, the SSH password, a secret environment variable; the rest
// of each line shows.
func TestDiffHidesEverySecretSetting(t *testing.T) {
	sim, p := coretest.ShellHost(t, coretest.AdminPAT, "")
	executor := func(bearer, buildsDir string) string {
		return "url = \"" + sim.URL + "\"\nexecutor = \"kubernetes\"\nbuilds_dir = \"" + buildsDir + "\"\n" +
			"environment = [\"DB_PASSWORD=db-password-4\", \"LANG=C\"]\n" +
			"[kubernetes]\n  host = \"https://k8s.example.com\"\n  bearer_token = \"" + bearer + "\"\n" +
			"[cache]\n  Type = \"s3\"\n  [cache.s3]\n    SecretKey = \"s3-secret-key-2\"\n    BucketName = \"runner\"\n" +
			"[ssh]\n  password = '''ssh-password-3'''\n"
	}
	p.Executor("shell.toml", executor("k8s-bearer-secret-1", "/b1"))
	mustExit(t, runCLI(t, p), 0)
	p.Executor("shell.toml", executor("k8s-bearer-secret-5", "/b2"))
	secrets := []string{"k8s-bearer-secret-1", "s3-secret-key-2", "ssh-password-3", "db-password-4", "k8s-bearer-secret-5"}
	text := runCLI(t, p, "--diff", "--check")
	mustExit(t, text, 0)
	js := runCLI(t, p, "--diff", "--check", "--output", "json")
	mustExit(t, js, 0)
	for _, out := range []string{text.stdout + text.stderr, js.stdout + js.stderr} {
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Fatalf("%s shows:\n%s", s, out)
			}
		}
	}
	for _, line := range []string{`-  builds_dir = "/b1"`, `+  builds_dir = "/b2"`, `   environment = ["DB_PASSWORD=<redacted>", "LANG=C"]`} {
		if !contains(lines(text.stdout), line) {
			t.Errorf("the diff lacks %q:\n%s", line, text.stdout)
		}
	}
	var doc struct {
		Diff struct{ Before, After string } `json:"diff"`
	}
	if err := json.Unmarshal([]byte(js.stdout), &doc); err != nil {
		t.Fatal(err)
	}
	for _, side := range []string{doc.Diff.Before, doc.Diff.After} {
		if !strings.Contains(side, "\n  environment = [\"DB_PASSWORD=<redacted>\", \"LANG=C\"]\n  [runners.kubernetes]\n"+
			"    host = \"https://k8s.example.com\"\n    bearer_token = \"<redacted>\"\n  [runners.cache]\n    Type = \"s3\"\n"+
			"    [runners.cache.s3]\n      SecretKey = \"<redacted>\"\n      BucketName = \"runner\"\n  [runners.ssh]\n    password = \"<redacted>\"\n") {
			t.Errorf("JSON diff:\n%s", side)
		}
	}
}

// inputErrors decodes the JSON report's input_errors.
func inputErrors(t *testing.T, stdout string) []input.Fields {
	t.Helper()
	var doc struct {
		InputErrors []input.Fields `json:"input_errors"`
	}
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
		t.Fatalf("not one JSON object: %v\n%s", err, stdout)
	}
	return doc.InputErrors
}

// TestJSONReportGivesInputErrorsAsFields: with --output json each input
// error comes as its parts, options named as flags, so scripts need not
// parse the message; a failure that is not bad input has none.
func TestJSONReportGivesInputErrorsAsFields(t *testing.T) {
	sim, p := coretest.ShellHost(t, coretest.AdminPAT, "")
	p.Executor("x.toml", "executor = \"shell\"\n")
	j := runCLI(t, p, "--output", "json", "--strict")
	mustExit(t, j, 2)
	got := inputErrors(t, j.stdout)
	if len(got) != 1 || got[0].File != "main/x.toml" || got[0].Key != "url" || got[0].Option != "" || got[0].Fix == "" || got[0].Message == "" {
		t.Fatalf("input_errors %+v, want main/x.toml key url with a fix", got)
	}

	p.Remove("main/x.toml")
	p.Executor("y.toml", "url = \""+sim.URL+"\"\nexecutor = \"shell\"\nbuilds_dir = \"/b\"\n  a = [1,\n")
	got = inputErrors(t, runCLI(t, p, "--output", "json", "--strict").stdout)
	if len(got) != 1 || got[0].File != "main/y.toml" || got[0].Line != 4 || got[0].Column == 0 || got[0].Key != "a" {
		t.Fatalf("input_errors %+v, want main/y.toml line 4, key a", got)
	}

	p.Remove("main/y.toml")
	capture := filepath.Join(t.TempDir(), "capture")
	if err := os.WriteFile(capture, []byte("#!/bin/sh\nsleep 5\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(capture, 0o755); err != nil { // whatever the umask
		t.Fatal(err)
	}
	got = inputErrors(t, runCLI(t, p, "--output", "json", "--strict", "--capture-tags", capture, "--capture-timeout", "100ms").stdout)
	want := input.Fields{Option: "--capture-tags", File: capture, FixOption: "--capture-timeout"}
	if len(got) != 1 || got[0].Option != want.Option || got[0].File != want.File || got[0].FixOption != want.FixOption ||
		!strings.HasSuffix(got[0].Fix, " --capture-timeout") {
		t.Fatalf("input_errors %+v, want the capture program, and a fix naming --capture-timeout", got)
	}

	refusing, p2 := coretest.ShellHost(t, "", coretest.RegistrationTok)
	refusing.SetRegistrationDisabled(true)
	r := runCLI(t, p2, "--output", "json")
	mustExit(t, r, 1)
	if doc := decode(t, r.stdout); doc["input_error"] != false || doc["input_errors"] != nil {
		t.Fatalf("a run GitLab failed reports input errors: %v", doc)
	}
}

// The JSON report is redacted as text before it is printed; a URL whose
// query is redacted inside a message must leave it JSON.
func TestJSONReportStaysJSONWhenRedacted(t *testing.T) {
	_, p := coretest.ShellHost(t, coretest.AdminPAT, "")
	p.Executor("x.toml", "url = \"https://gitlab.example.org/?private_token=glpat-notAToken12345\"\n")
	j := runCLI(t, p, "--output", "json", "--strict")
	mustExit(t, j, 2)
	if got := inputErrors(t, j.stdout); len(got) != 1 || got[0].File != "main/x.toml" || got[0].Key != "url" {
		t.Fatalf("input_errors %+v, want main/x.toml key url", got)
	}
}

// --runner-pid signals only a gitlab-runner process: given any other (a
// sleep, a shell wrapping gitlab-runner, a pid reused since), it says so
// and sends nothing; to those, SIGHUP is death. The runner removed is
// still deleted (no gitlab-runner runs this config).
func TestRunnerPIDMustBeGitLabRunner(t *testing.T) {
	sim, p := coretest.ShellHost(t, coretest.AdminPAT, "")
	p.Executor("docker.toml", "url = \""+sim.URL+"\"\nexecutor = \"docker\"\n")
	mustExit(t, runCLI(t, p), 0)
	p.Remove("main/docker.toml")
	sleep := exec.Command("sleep", "600")
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- sleep.Wait() }()
	t.Cleanup(func() { _ = sleep.Process.Kill(); <-exited })

	r := runCLI(t, p, "--runner-pid", strconv.Itoa(sleep.Process.Pid), "--output", "json")
	mustExit(t, r, 0)
	var doc struct {
		Reload struct {
			PIDs    []int `json:"pids"`
			Refused struct {
				PID int    `json:"pid"`
				Exe string `json:"exe"`
			} `json:"refused"`
		} `json:"reload"`
		Warnings []string `json:"warnings"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatalf("not one JSON object: %v\n%s", err, r.stdout)
	}
	if doc.Reload.Refused.PID != sleep.Process.Pid || filepath.Base(doc.Reload.Refused.Exe) != "sleep" || len(doc.Reload.PIDs) != 0 {
		t.Fatalf("reload %+v: want pid %d (sleep) refused, nothing signalled", doc.Reload, sleep.Process.Pid)
	}
	if len(doc.Warnings) != 1 || !strings.Contains(doc.Warnings[0], "--runner-pid") {
		t.Fatalf("warnings %q: want one naming --runner-pid", doc.Warnings)
	}
	select {
	case err := <-exited:
		t.Fatalf("the process given as --runner-pid was signalled: %v", err)
	default:
	}
	if len(sim.Runners()) != 1 {
		t.Fatalf("GitLab holds %d runners, want the removed executor's deleted", len(sim.Runners()))
	}
}

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/coretest"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/gitlabsim"
)

const host = "node12"

type result struct {
	code           int
	stdout, stderr string
}

func runCLI(t *testing.T, p *coretest.Prefix, extra ...string) result {
	t.Helper()
	args := append([]string{"--prefix", p.Dir, "--service-instance", p.Instance, "--hostname", host,
		"--request-timeout", "5s", "--lock-timeout", "5s"}, extra...)
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	coretest.Record(t, "stdout", out.Bytes())
	coretest.Record(t, "stderr", errb.Bytes())
	return result{code, out.String(), errb.String()}
}

// standard lays out three executors (TOML and YAML) against one simulator.
func standard(t *testing.T) (*coretest.Sim, *coretest.Prefix) {
	t.Helper()
	sim := coretest.NewSim(t, coretest.SimOptions())
	p := coretest.NewPrefix(t, "main")
	p.Template("concurrent = 4\ncheck_interval = 0\n\n[session_server]\n  session_timeout = 1800\n",
		coretest.ClientConfig{URL: sim.URL, PAT: coretest.AdminPAT})
	p.Executor("shell.toml", "url = \""+sim.URL+"\"\nexecutor = \"shell\"\ntags = [\"fast\"]\nbuilds_dir = \"/scratch/builds\"\n[cache]\n  Type = \"s3\"\n")
	p.Executor("docker.yaml", "url: "+sim.URL+"\nexecutor: docker\nrun_untagged: false\ndocker:\n  image: alpine:3\n  privileged: false\n")
	p.Executor("gpu.yml", "url: "+sim.URL+"/\nexecutor: custom\ndescription: GPU nodes\nenv_tags: [GRA_TEST_PARTITION, GRA_TEST_UNSET]\ncustom:\n  run_exec: /opt/run.sh\n")
	t.Setenv("GRA_TEST_PARTITION", "pbatch")
	return sim, p
}

// shellHost lays out one shell executor against a fresh simulator, with
// the given personal access and registration tokens ("" for none).
func shellHost(t *testing.T, pat, registration string) (*coretest.Sim, *coretest.Prefix) {
	t.Helper()
	sim := coretest.NewSim(t, coretest.SimOptions())
	p := coretest.NewPrefix(t, "main")
	p.Template("", coretest.ClientConfig{URL: sim.URL, PAT: pat, RegistrationToken: registration})
	p.Executor("shell.toml", "url = \""+sim.URL+"\"\n")
	return sim, p
}

type fileState struct {
	data  []byte
	mtime time.Time
	exist bool
}

func snapshot(t *testing.T, path string) fileState {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		return fileState{}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return fileState{data: b, mtime: fi.ModTime(), exist: true}
}

// checkRun runs --check and proves it changed nothing: no mutating request,
// no file written.
func checkRun(t *testing.T, sim *coretest.Sim, p *coretest.Prefix, extra ...string) result {
	t.Helper()
	before := snapshot(t, p.ConfigPath())
	entries, _ := os.ReadDir(p.Dir)
	sim.ResetLog()
	r := runCLI(t, p, append([]string{"--check"}, extra...)...)
	if n := sim.MutatingRequests(); n != 0 {
		t.Fatalf("--check made %d mutating requests: %+v", n, sim.Requests())
	}
	after := snapshot(t, p.ConfigPath())
	if before.exist != after.exist || !bytes.Equal(before.data, after.data) || !before.mtime.Equal(after.mtime) {
		t.Fatalf("--check touched %s", p.ConfigPath())
	}
	entries2, _ := os.ReadDir(p.Dir)
	if len(entries) != len(entries2) {
		t.Fatalf("--check created files: %v -> %v", names(entries), names(entries2))
	}
	return r
}

func names(es []os.DirEntry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
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

type liveRunner struct {
	Name            string    `toml:"name"`
	URL             string    `toml:"url"`
	ID              int64     `toml:"id"`
	Token           string    `toml:"token"`
	TokenObtainedAt time.Time `toml:"token_obtained_at"`
	TokenExpiresAt  time.Time `toml:"token_expires_at"`
	Executor        string    `toml:"executor"`
}

func parseConfig(t *testing.T, p *coretest.Prefix) (map[string]any, []liveRunner) {
	t.Helper()
	var raw map[string]any
	if _, err := toml.Decode(p.Config(), &raw); err != nil {
		t.Fatalf("config does not parse: %v\n%s", err, p.Config())
	}
	var typed struct {
		Runners []liveRunner `toml:"runners"`
	}
	if _, err := toml.Decode(p.Config(), &typed); err != nil {
		t.Fatal(err)
	}
	return raw, typed.Runners
}

func byName(rs []liveRunner) map[string]liveRunner {
	m := map[string]liveRunner{}
	for _, r := range rs {
		m[r.Name] = r
	}
	return m
}

var stdDesc = map[string]string{"docker": "node12 main docker Runner", "gpu": "GPU nodes", "shell": "node12 main shell Runner"}

// ids maps executor names of the standard layout to their runner ids.
func ids(sim *coretest.Sim) map[string]int64 {
	out := map[string]int64{}
	for _, r := range sim.Runners() {
		for n, d := range stdDesc {
			if r.Description == d {
				out[n] = r.ID
			}
		}
	}
	return out
}

// expect renders "verb name (id N)" lines; a verb ending in "!" has no id.
func expect(id map[string]int64, pairs ...string) []string {
	var out []string
	for i := 0; i+1 < len(pairs); i += 2 {
		verb, name := pairs[i], pairs[i+1]
		if strings.HasSuffix(verb, "!") {
			out = append(out, strings.TrimSuffix(verb, "!")+" "+name)
			continue
		}
		out = append(out, fmt.Sprintf("%s %s (id %d)", verb, name, id[name]))
	}
	return out
}

func TestFirstRunCreatesEveryExecutor(t *testing.T) {
	sim, p := standard(t)
	c := checkRun(t, sim, p)
	mustExit(t, c, 0)
	if want := []string{"would create docker", "would create gpu", "would create shell"}; !reflect.DeepEqual(lines(c.stdout), want) {
		t.Fatalf("check plan %q, want %q", lines(c.stdout), want)
	}

	r := runCLI(t, p)
	mustExit(t, r, 0)
	if want := expect(ids(sim), "created", "docker", "created", "gpu", "created", "shell"); !reflect.DeepEqual(lines(r.stdout), want) {
		t.Fatalf("stdout %q, want %q", lines(r.stdout), want)
	}
	runners := sim.Runners()
	if len(runners) != 3 {
		t.Fatalf("%d runners in GitLab, want 3", len(runners))
	}
	want := map[string][]string{
		"node12 main docker Runner": {"docker", "main", "node", "node12", "x86_64"},
		"GPU nodes":                 {"custom", "main", "node", "node12", "pbatch", "x86_64"},
		"node12 main shell Runner":  {"fast", "main", "node", "node12", "shell", "x86_64"},
	}
	for _, rr := range runners {
		tags, ok := want[rr.Description]
		if !ok {
			t.Fatalf("unexpected description %q", rr.Description)
		}
		got := append([]string(nil), rr.TagList...)
		sort.Strings(got)
		if !reflect.DeepEqual(got, tags) {
			t.Errorf("%s: tags %v, want %v", rr.Description, got, tags)
		}
		if rr.RunUntagged {
			t.Errorf("%s: run_untagged is true", rr.Description)
		}
		if rr.Legacy || rr.RunnerType != "instance_type" {
			t.Errorf("%s: created through %v/%s, want the runner creation workflow", rr.Description, rr.Legacy, rr.RunnerType)
		}
	}

	raw, live := parseConfig(t, p)
	topKeys := keysOf(raw)
	if want := []string{"check_interval", "concurrent", "runners", "session_server"}; !reflect.DeepEqual(topKeys, want) {
		t.Fatalf("top-level keys %v, want %v", topKeys, want)
	}
	wantKeys := map[string][]string{
		"node12 main docker Runner": {"docker", "executor", "id", "name", "token", "token_expires_at", "token_obtained_at", "url"},
		"GPU nodes":                 {"custom", "executor", "id", "name", "token", "token_expires_at", "token_obtained_at", "url"},
		"node12 main shell Runner":  {"builds_dir", "cache", "executor", "id", "name", "token", "token_expires_at", "token_obtained_at", "url"},
	}
	for _, rr := range raw["runners"].([]map[string]any) {
		name := rr["name"].(string)
		if got := keysOf(rr); !reflect.DeepEqual(got, wantKeys[name]) {
			t.Errorf("runner %s has keys %v, want %v", name, got, wantKeys[name])
		}
	}
	// gitlab-runner's own keys come first, in its order.
	for _, block := range strings.Split(p.Config(), "[[runners]]")[1:] {
		var order []string
		for _, l := range lines(block)[:7] {
			order = append(order, strings.TrimSpace(strings.SplitN(l, "=", 2)[0]))
		}
		if want := []string{"name", "url", "id", "token", "token_obtained_at", "token_expires_at", "executor"}; !reflect.DeepEqual(order, want) {
			t.Fatalf("runner keys start %v, want %v", order, want)
		}
	}
	if !strings.Contains(p.Config(), "token_expires_at = 0001-01-01T00:00:00Z") {
		t.Error("a token that does not expire must be written as 0001-01-01T00:00:00Z")
	}
	for _, lr := range live {
		if id, ok := sim.VerifyToken(lr.Token); !ok || id != lr.ID {
			t.Errorf("token of %s does not verify as runner %d", lr.Name, lr.ID)
		}
	}
	fi, _ := os.Stat(p.ConfigPath())
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("config mode %o, want 600", fi.Mode().Perm())
	}
}

func keysOf(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestSecondRunKeepsWithOneVerifyPerExecutor(t *testing.T) {
	sim, p := standard(t)
	mustExit(t, runCLI(t, p), 0)
	before := snapshot(t, p.ConfigPath())
	time.Sleep(20 * time.Millisecond)

	c := checkRun(t, sim, p)
	if want := expect(ids(sim), "would keep", "docker", "would keep", "gpu", "would keep", "shell"); !reflect.DeepEqual(lines(c.stdout), want) {
		t.Fatalf("check plan %q, want %q", lines(c.stdout), want)
	}

	sim.ResetLog()
	r := runCLI(t, p)
	mustExit(t, r, 0)
	if want := expect(ids(sim), "kept", "docker", "kept", "gpu", "kept", "shell"); !reflect.DeepEqual(lines(r.stdout), want) {
		t.Fatalf("stdout %q, want %q", lines(r.stdout), want)
	}
	reqs := sim.Requests()
	if len(reqs) != 3 {
		t.Fatalf("%d requests, want exactly 3 verifies: %+v", len(reqs), reqs)
	}
	for _, e := range reqs {
		if e.Kind() != "verify" || e.Mutating || strings.HasPrefix(e.Auth, "pat") {
			t.Errorf("unexpected request %s %s (auth %s)", e.Method, e.Path, e.Auth)
		}
		if e.SystemID != "s_0123456789ab" {
			t.Errorf("verify sent system_id %q, want the host's s_0123456789ab", e.SystemID)
		}
	}
	after := snapshot(t, p.ConfigPath())
	if !bytes.Equal(before.data, after.data) || !before.mtime.Equal(after.mtime) {
		t.Fatal("the config was rewritten although nothing changed")
	}
	for _, rr := range sim.Runners() {
		if len(rr.Managers) != 1 {
			t.Errorf("runner %d has managers %v, want only this host's system id", rr.ID, rr.Managers)
		}
	}
}

func TestSameExecutorTypeGetsDistinctRunners(t *testing.T) {
	sim, p := shellHost(t, coretest.AdminPAT, "")
	p.Executor("shell-big.toml", "url = \""+sim.URL+"\"\nexecutor = \"shell\"\nlimit = 4\n")
	c := checkRun(t, sim, p)
	if want := []string{"would create shell", "would create shell-big"}; !reflect.DeepEqual(lines(c.stdout), want) {
		t.Fatalf("check plan %q, want %q", lines(c.stdout), want)
	}
	mustExit(t, runCLI(t, p), 0)
	rs := sim.Runners()
	if len(rs) != 2 || rs[0].Description == rs[1].Description {
		t.Fatalf("want two distinct runners, got %+v", rs)
	}
	_, live := parseConfig(t, p)
	if len(live) != 2 || live[0].Token == live[1].Token || live[0].ID == live[1].ID {
		t.Fatalf("want two config entries with their own tokens, got %+v", len(live))
	}
	descs := map[string]bool{rs[0].Description: true, rs[1].Description: true}
	// The stem equals the executor type: the original tool's description.
	if !descs["node12 main shell Runner"] || !descs["node12 main shell-big Runner"] {
		t.Fatalf("descriptions %v", descs)
	}
}

func TestRemovedExecutorIsDeleted(t *testing.T) {
	sim, p := standard(t)
	mustExit(t, runCLI(t, p), 0)
	_, before := parseConfig(t, p)
	id := ids(sim)
	p.Remove("main/docker.yaml")

	c := checkRun(t, sim, p)
	if want := expect(id, "would keep", "gpu", "would keep", "shell", "would delete", "docker"); !reflect.DeepEqual(lines(c.stdout), want) {
		t.Fatalf("check plan %q, want %q", lines(c.stdout), want)
	}
	r := runCLI(t, p)
	mustExit(t, r, 0)
	if want := expect(id, "kept", "gpu", "kept", "shell", "deleted", "docker"); !reflect.DeepEqual(lines(r.stdout), want) {
		t.Fatalf("stdout %q, want %q", lines(r.stdout), want)
	}
	if _, ok := sim.Runner(id["docker"]); ok {
		t.Fatal("the docker runner still exists")
	}
	_, after := parseConfig(t, p)
	if len(after) != 2 {
		t.Fatalf("config has %d runners, want 2", len(after))
	}
	b := byName(before)
	for _, lr := range after {
		if b[lr.Name].Token != lr.Token || b[lr.Name].ID != lr.ID {
			t.Errorf("%s changed", lr.Name)
		}
		if _, ok := sim.Runner(lr.ID); !ok {
			t.Errorf("runner %d was removed", lr.ID)
		}
	}
}

func TestRevokedTokenIsHealedByAdopt(t *testing.T) {
	for _, kind := range []string{"revoked", "expired"} {
		t.Run(kind, func(t *testing.T) {
			sim, p := standard(t)
			mustExit(t, runCLI(t, p), 0)
			_, before := parseConfig(t, p)
			id := ids(sim)
			if kind == "revoked" {
				sim.RevokeToken(id["shell"])
			} else {
				sim.ExpireToken(id["shell"])
			}
			c := checkRun(t, sim, p)
			if want := expect(id, "would keep", "docker", "would keep", "gpu", "would adopt", "shell"); !reflect.DeepEqual(lines(c.stdout), want) {
				t.Fatalf("check plan %q, want %q", lines(c.stdout), want)
			}
			sim.ResetLog()
			r := runCLI(t, p)
			mustExit(t, r, 0)
			if want := expect(id, "kept", "docker", "kept", "gpu", "adopted", "shell"); !reflect.DeepEqual(lines(r.stdout), want) {
				t.Fatalf("stdout %q, want %q", lines(r.stdout), want)
			}
			if len(sim.Runners()) != 3 {
				t.Fatalf("%d runners, want 3", len(sim.Runners()))
			}
			_, after := parseConfig(t, p)
			b := byName(before)
			for _, lr := range after {
				if lr.ID != b[lr.Name].ID {
					t.Errorf("%s: id %d, want %d", lr.Name, lr.ID, b[lr.Name].ID)
				}
				if id, ok := sim.VerifyToken(lr.Token); !ok || id != lr.ID {
					t.Errorf("%s: token does not verify", lr.Name)
				}
				if lr.ID != id["shell"] && lr.Token != b[lr.Name].Token {
					t.Errorf("%s: token changed though it was fine", lr.Name)
				}
			}
			counts := sim.Counts()
			if counts["reset"] != 1 || counts["create"] != 0 || counts["delete-id"] != 0 || counts["delete-token"] != 0 {
				t.Errorf("requests %v: want one reset and nothing else mutating", counts)
			}
		})
	}
}

func TestRunnerDeletedInGitLabIsReplaced(t *testing.T) {
	sim, p := standard(t)
	mustExit(t, runCLI(t, p), 0)
	_, before := parseConfig(t, p)
	id := ids(sim)
	sim.DeleteRunner(id["docker"])
	c := checkRun(t, sim, p)
	if want := expect(id, "would replace!", "docker", "would keep", "gpu", "would keep", "shell"); !reflect.DeepEqual(lines(c.stdout), want) {
		t.Fatalf("check plan %q, want %q", lines(c.stdout), want)
	}
	r := runCLI(t, p)
	mustExit(t, r, 0)
	newID := ids(sim)["docker"]
	if newID == id["docker"] || !strings.Contains(r.stdout, fmt.Sprintf("replaced docker (id %d)", newID)) {
		t.Fatalf("stdout %q", r.stdout)
	}
	_, after := parseConfig(t, p)
	b := byName(before)
	for _, lr := range after {
		if lr.Name != "node12 main docker Runner" && (lr.Token != b[lr.Name].Token || lr.ID != b[lr.Name].ID) {
			t.Errorf("%s changed", lr.Name)
		}
	}
	if len(sim.Runners()) != 3 {
		t.Fatalf("%d runners, want 3", len(sim.Runners()))
	}
}

func TestLostConfigIsRecoveredByAdoptingEveryRunner(t *testing.T) {
	sim, p := standard(t)
	mustExit(t, runCLI(t, p), 0)
	known := map[int64]bool{}
	for _, r := range sim.Runners() {
		known[r.ID] = true
	}
	if err := os.Remove(p.ConfigPath()); err != nil {
		t.Fatal(err)
	}
	// The state file may be lost with it.
	_ = os.Remove(filepath.Join(p.Dir, ".gitlab-runner-auth.main.json"))

	c := checkRun(t, sim, p)
	if want := expect(ids(sim), "would adopt", "docker", "would adopt", "gpu", "would adopt", "shell"); !reflect.DeepEqual(lines(c.stdout), want) {
		t.Fatalf("check plan %q, want %q", lines(c.stdout), want)
	}
	r := runCLI(t, p)
	mustExit(t, r, 0)
	if want := expect(ids(sim), "adopted", "docker", "adopted", "gpu", "adopted", "shell"); !reflect.DeepEqual(lines(r.stdout), want) {
		t.Fatalf("stdout %q, want %q", lines(r.stdout), want)
	}
	rs := sim.Runners()
	if len(rs) != 3 {
		t.Fatalf("%d runners after recovery, want 3 (no duplicates)", len(rs))
	}
	for _, rr := range rs {
		if !known[rr.ID] {
			t.Errorf("new runner %d created", rr.ID)
		}
	}
	_, live := parseConfig(t, p)
	for _, lr := range live {
		if _, ok := sim.VerifyToken(lr.Token); !ok {
			t.Errorf("%s: token does not verify", lr.Name)
		}
	}
	// And the run after that is a plain steady state again.
	sim.ResetLog()
	mustExit(t, runCLI(t, p), 0)
	if sim.MutatingRequests() != 0 || len(sim.Requests()) != 3 {
		t.Fatalf("after recovery: %v", sim.Counts())
	}
}

func TestTwoGitLabsEachGetTheirExecutors(t *testing.T) {
	a := coretest.NewSim(t, coretest.SimOptions())
	b := coretest.NewSim(t, coretest.SimOptions())
	p := coretest.NewPrefix(t, "main")
	p.Template("concurrent = 2", coretest.ClientConfig{URL: a.URL, PAT: coretest.AdminPAT},
		coretest.ClientConfig{URL: b.URL + "/", PAT: coretest.AdminPAT})
	p.Executor("one.toml", "url = \""+a.URL+"\"\nexecutor = \"shell\"\n")
	p.Executor("two.toml", "url = \""+b.URL+"\"\nexecutor = \"shell\"\n")
	p.Executor("three.toml", "url = \""+strings.Replace(b.URL, "127.0.0.1", "127.0.0.1", 1)+"/\"\nexecutor = \"docker\"\n")
	b.ResetLog()
	c := checkRun(t, a, p)
	mustExit(t, c, 0)
	if want := []string{"would create one", "would create three", "would create two"}; !reflect.DeepEqual(lines(c.stdout), want) {
		t.Fatalf("check plan %q, want %q", lines(c.stdout), want)
	}
	if b.MutatingRequests() != 0 || len(b.Runners()) != 0 {
		t.Fatal("--check changed the second GitLab")
	}
	mustExit(t, runCLI(t, p), 0)
	if n := len(a.Runners()); n != 1 || a.Runners()[0].Description != "node12 main one Runner" {
		t.Fatalf("GitLab A has %+v", a.Runners())
	}
	if n := len(b.Runners()); n != 2 {
		t.Fatalf("GitLab B has %d runners, want 2", n)
	}
	_, live := parseConfig(t, p)
	for _, lr := range live {
		s := a
		if lr.Name != "node12 main one Runner" {
			s = b
		}
		if _, ok := s.VerifyToken(lr.Token); !ok {
			t.Errorf("%s: token does not verify on its own GitLab", lr.Name)
		}
	}
}

func TestLegacyRegistrationToken(t *testing.T) {
	sim, p := shellHost(t, "", coretest.RegistrationTok)
	c := checkRun(t, sim, p)
	if strings.TrimSpace(c.stdout) != "would create shell" {
		t.Fatalf("check: %q", c.stdout)
	}
	r := runCLI(t, p)
	mustExit(t, r, 0)
	rs := sim.Runners()
	if len(rs) != 1 || !rs[0].Legacy || rs[0].RunUntagged {
		t.Fatalf("want one legacy runner with run_untagged=false, got %+v", rs)
	}
	// Second run: keep, no registration.
	sim.ResetLog()
	mustExit(t, runCLI(t, p), 0)
	if sim.MutatingRequests() != 0 {
		t.Fatalf("steady state made mutating requests: %v", sim.Counts())
	}

	t.Run("fallback when the PAT lacks create_runner", func(t *testing.T) {
		sim, p := shellHost(t, coretest.ReadOnlyPAT, coretest.RegistrationTok)
		r := runCLI(t, p)
		mustExit(t, r, 0)
		if rs := sim.Runners(); len(rs) != 1 || !rs[0].Legacy {
			t.Fatalf("want the legacy fallback, got %+v", rs)
		}
		if !strings.Contains(r.stderr, "lacks the create_runner scope") {
			t.Errorf("no warning about the scope: %s", r.stderr)
		}
	})

	t.Run("410 Gone asks for a PAT", func(t *testing.T) {
		sim, p := shellHost(t, "", coretest.RegistrationTok)
		sim.SetRegistrationDisabled(true)
		c := checkRun(t, sim, p)
		mustExit(t, c, 0)
		r := runCLI(t, p)
		mustExit(t, r, 1)
		if !strings.Contains(r.stderr, "410") || !strings.Contains(r.stderr, "personal_access_token with the create_runner scope") {
			t.Fatalf("error does not say to use a PAT with create_runner:\n%s", r.stderr)
		}
		if len(sim.Runners()) != 0 {
			t.Fatal("a runner was created")
		}
	})
}

func TestRotatedTokenInLiveConfigIsKept(t *testing.T) {
	sim, p := standard(t)
	mustExit(t, runCLI(t, p), 0)
	// gitlab-runner rotates the shell runner's token and rewrites the file.
	_, live := parseConfig(t, p)
	shellID := ids(sim)["shell"]
	var old string
	for _, lr := range live {
		if lr.ID == shellID {
			old = lr.Token
		}
	}
	tok, _, ok := sim.RotateToken(shellID)
	if !ok {
		t.Fatal("rotate failed")
	}
	cfg := strings.Replace(p.Config(), old, tok, 1)
	cfg = strings.Replace(cfg, "token_obtained_at = ", "token_obtained_at = 2031-01-01T00:00:00Z\n  #", 1)
	if err := os.WriteFile(p.ConfigPath(), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	sim.ResetLog()
	r := runCLI(t, p)
	mustExit(t, r, 0)
	if !strings.Contains(r.stdout, fmt.Sprintf("kept shell (id %d)", shellID)) {
		t.Fatalf("stdout %q", r.stdout)
	}
	if sim.MutatingRequests() != 0 {
		t.Fatalf("mutating requests after a rotation: %v", sim.Counts())
	}
	_, after := parseConfig(t, p)
	for _, lr := range after {
		if lr.ID == shellID && lr.Token != tok {
			t.Fatal("the rotated token was overwritten")
		}
	}
}

func TestForeignRunnersAreNeverTouched(t *testing.T) {
	sim, p := standard(t)
	other := sim.AddRunner(gitlabsim.Runner{Description: "node13 main shell Runner", TagList: []string{"node13", "main", "shell"}})
	lookalike := sim.AddRunner(gitlabsim.Runner{Description: "hand-made runner", TagList: []string{"node12", "main"}})
	otherInstance := sim.AddRunner(gitlabsim.Runner{Description: "node12 gpu shell Runner", TagList: []string{"node12", "gpu"}})
	mustExit(t, runCLI(t, p), 0)
	// Lose the config: recovery lists this host's runners and must not
	// adopt or delete anybody else's.
	if err := os.Remove(p.ConfigPath()); err != nil {
		t.Fatal(err)
	}
	p.Remove("main/docker.yaml")
	mustExit(t, runCLI(t, p), 0)
	for _, id := range []int64{other, lookalike, otherInstance} {
		if _, ok := sim.Runner(id); !ok {
			t.Errorf("foreign runner %d was deleted", id)
		}
	}
	// The declared ones are there once; the undeclared docker one is gone.
	descs := map[string]int{}
	for _, r := range sim.Runners() {
		descs[r.Description]++
	}
	if descs["node12 main docker Runner"] != 0 || descs["node12 main shell Runner"] != 1 || descs["GPU nodes"] != 1 {
		t.Fatalf("runners %v", descs)
	}
}

func TestBadInputExitsTwoAndWritesNothing(t *testing.T) {
	cases := []struct {
		name  string
		setup func(t *testing.T, p *coretest.Prefix, url string)
		want  []string
	}{
		{"prefix readable by others", func(t *testing.T, p *coretest.Prefix, url string) { chmod(t, p.Dir, 0o755) },
			[]string{"prefix directory", "chmod 700"}},
		{"executor folder readable by group", func(t *testing.T, p *coretest.Prefix, url string) { chmod(t, filepath.Join(p.Dir, "main"), 0o750) },
			[]string{"executor folder", "chmod 700", "/main"}},
		{"template readable by others", func(t *testing.T, p *coretest.Prefix, url string) {
			chmod(t, filepath.Join(p.Dir, "config.template.main.toml"), 0o644)
		}, []string{"config.template.main.toml", "chmod 600"}},
		{"token file readable by others", func(t *testing.T, p *coretest.Prefix, url string) {
			f := p.Write("pat", coretest.AdminPAT+"\n")
			chmod(t, f, 0o640)
			p.Template("", coretest.ClientConfig{URL: url, Extra: "personal_access_token_file = \"pat\"\n"})
		}, []string{"personal_access_token_file", "pat", "chmod 600"}},
		{"missing template", func(t *testing.T, p *coretest.Prefix, url string) { p.Remove("config.template.main.toml") },
			[]string{"config.template.main.toml", "does not exist"}},
		{"url matching no client", func(t *testing.T, p *coretest.Prefix, url string) {
			p.Executor("shell.toml", "url = \"https://gitlab.example.org\"\n")
		}, []string{"main/shell.toml", "key url", "matches no client_configs entry", "known: http://127.0.0.1"}},
		{"placeholder registration token", func(t *testing.T, p *coretest.Prefix, url string) {
			p.Template("", coretest.ClientConfig{URL: url, RegistrationToken: "{registration_token}"})
		}, []string{"client_configs[0].registration_token", "placeholder {registration_token}"}},
		{"placeholder PAT", func(t *testing.T, p *coretest.Prefix, url string) {
			p.Template("", coretest.ClientConfig{URL: url, PAT: "<your-token>"})
		}, []string{"client_configs[0].personal_access_token", "placeholder"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sim, p := shellHost(t, coretest.AdminPAT, "")
			mustExit(t, runCLI(t, p), 0)
			before := snapshot(t, p.ConfigPath())
			tc.setup(t, p, sim.URL)
			sim.ResetLog()
			r := runCLI(t, p)
			mustExit(t, r, 2)
			for _, w := range tc.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("message lacks %q:\n%s", w, r.stderr)
				}
			}
			if len(sim.Requests()) != 0 {
				t.Errorf("bad input still sent %d requests", len(sim.Requests()))
			}
			after := snapshot(t, p.ConfigPath())
			if !bytes.Equal(before.data, after.data) || !before.mtime.Equal(after.mtime) {
				t.Error("config changed")
			}
		})
	}
}

func chmod(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func TestDiffAndJSONOutputRedactTokens(t *testing.T) {
	sim, p := standard(t)
	mustExit(t, runCLI(t, p), 0)
	p.Executor("shell.toml", "url = \""+sim.URL+"\"\nexecutor = \"shell\"\ntags = [\"fast\"]\nbuilds_dir = \"/scratch/other\"\n")
	r := runCLI(t, p, "--diff", "--check")
	mustExit(t, r, 0)
	if !strings.Contains(r.stdout, `-  builds_dir = "/scratch/builds"`) || !strings.Contains(r.stdout, `+  builds_dir = "/scratch/other"`) {
		t.Fatalf("diff does not show the change:\n%s", r.stdout)
	}
	sim.ResetLog()
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
	if !doc.Changed || !doc.ConfigChanged || len(doc.Runners) != 3 || doc.Runners[0].Action != "keep" {
		t.Fatalf("json report %+v", doc)
	}
	if !strings.Contains(doc.Diff.After, `token = "<redacted>"`) || !strings.Contains(doc.Diff.Before, `token = "<redacted>"`) {
		t.Fatal("diff tokens are not redacted")
	}
	// Only the executor's local settings changed: nothing to do in GitLab.
	if sim.MutatingRequests() != 0 {
		t.Fatalf("a local-only change sent mutating requests: %v", sim.Counts())
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{"--no-such-flag"}, {"--output", "yaml"}, {"--concurrency", "0"}, {"stray", "args"}} {
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != 2 {
			t.Errorf("%v: exit %d, want 2 (stderr %s)", args, code, errb.String())
		}
	}
	var out, errb bytes.Buffer
	if code := run([]string{"--help"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "--service-instance") {
		t.Errorf("--help: %d %s", code, out.String())
	}
	out.Reset()
	if code := run([]string{"--version"}, &out, &errb); code != 0 || !strings.HasPrefix(out.String(), "register-runner ") {
		t.Errorf("--version: %d %s", code, out.String())
	}
}

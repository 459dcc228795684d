package ansible

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/testkit/coretest"
)

// syncTask declares shell (and more executors as raw YAML flow mappings).
func syncTask(prefix, url, patFile string, instance string, extraExecutors ...string) string {
	execs := "{name: shell, url: " + url + "}"
	for _, e := range extraExecutors {
		execs += ", " + e
	}
	return fmt.Sprintf(`- name: sync
  gitlab_runner_auth.runner.sync:
    prefix: %s
    instance: %s
    hostname: node1
    clients:
      - url: %s
        personal_access_token: "{{ lookup('file', '%s') }}"
    executors: [%s]
`, prefix, instance, url, patFile, execs)
}

func simRunners(t *testing.T, url string) []map[string]any {
	t.Helper()
	resp, err := http.Get(url + "/-/sim/runners")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out []map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

func simMutating(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url + "/-/sim/counts")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var c struct {
		Mutating int `json:"mutating"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&c)
	return c.Mutating
}

func simResetLog(t *testing.T, url string) {
	t.Helper()
	resp, err := http.Post(url+"/-/sim/reset-log", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

// TestFailedTaskLeavesTheHostByteIdentical: through ansible-playbook, a
// task that the engine refuses (an executor whose url matches no client,
// maximum_timeout below GitLab's minimum, an instance that would leave the
// prefix) fails without changing one byte on the host, in check mode or
// not, and names the option at fault.
func TestFailedTaskLeavesTheHostByteIdentical(t *testing.T) {
	needSetup(t)
	root := t.TempDir()
	eph := filepath.Join(root, "eph")
	url, patFile := startSim(t, eph)
	host := filepath.Join(root, "host")
	prefix := filepath.Join(host, "etc", "gitlab-runner")
	victim := filepath.Join(host, "victim")
	if err := os.MkdirAll(victim, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(victim, "config.template.x.toml"), []byte("root-only = \"do-not-read-me\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if res := runPlay(t, eph, nil, nil, syncTask(prefix, url, patFile, "main")); res[0]["failed"] == true {
		t.Fatalf("converge: %v", res[0])
	}
	before := coretest.Tree(t, host)
	bad := []struct{ task, want string }{
		{syncTask(prefix, url, patFile, "main", "{name: docker, url: 'https://elsewhere.example'}"), "executors[1].url"},
		{syncTask(prefix, url, patFile, "main", "{name: docker, url: "+url+", maximum_timeout: 60}"), "executors[1].maximum_timeout"},
		{syncTask(prefix, url, patFile, "x/../../victim/x"), "instance"},
	}
	var tasks []string
	for _, b := range bad {
		tasks = append(tasks, b.task)
	}
	for _, mode := range [][]string{nil, {"--check", "--diff"}} {
		res := runPlay(t, eph, nil, mode, tasks...)
		for i, b := range bad {
			msg, _ := res[i]["msg"].(string)
			if res[i]["failed"] != true || res[i]["changed"] != false || !strings.Contains(msg, b.want) {
				t.Errorf("%v case %d: want failed, unchanged, naming %s; got %v", mode, i, b.want, res[i])
			}
			if d, _ := json.Marshal(res[i]["diff"]); strings.Contains(string(d), "do-not-read-me") {
				t.Errorf("%v case %d: the diff shows a file outside the prefix", mode, i)
			}
		}
		coretest.SameTree(t, fmt.Sprintf("after failed tasks %v", mode), before, coretest.Tree(t, host), false)
	}
}

// TestAbsentLasts: after state: absent, GitLab has no runner of the host,
// no secret is left under the prefix, and register-runner (systemd's
// ExecStartPre) fails with exit code 2 and registers nothing.
func TestAbsentLasts(t *testing.T) {
	needSetup(t)
	root := t.TempDir()
	eph := filepath.Join(root, "eph")
	url, patFile := startSim(t, eph)
	prefix := filepath.Join(root, "prefix")
	runPlay(t, eph, nil, nil, syncTask(prefix, url, patFile, "main", "{name: docker, url: "+url+"}"))
	if n := len(simRunners(t, url)); n != 2 {
		t.Fatalf("converge: %d runners", n)
	}
	absent := fmt.Sprintf("- name: absent\n  gitlab_runner_auth.runner.sync:\n    prefix: %s\n    hostname: node1\n    state: absent\n", prefix)
	check := runPlay(t, eph, nil, []string{"--check", "--diff"}, absent)[0]
	d, _ := json.Marshal(check["diff"])
	if check["changed"] != true || !strings.Contains(string(d), "config.template.main.toml") || len(simRunners(t, url)) != 2 {
		t.Fatalf("absent in check mode: %v", check)
	}
	res := runPlay(t, eph, nil, nil, absent, absent)
	if res[0]["changed"] != true || res[0]["failed"] == true || res[1]["changed"] != false {
		t.Fatalf("absent, twice: %v", res)
	}
	if n := len(simRunners(t, url)); n != 0 {
		t.Fatalf("%d runners left in GitLab", n)
	}
	pat, _ := os.ReadFile(patFile)
	_ = filepath.WalkDir(prefix, func(p string, de fs.DirEntry, err error) error {
		if b, err := os.ReadFile(p); err == nil && strings.Contains(string(b), strings.TrimSpace(string(pat))) {
			t.Errorf("%s still holds the personal access token", p)
		}
		if de != nil && !de.IsDir() && (strings.HasSuffix(p, ".toml") || strings.Contains(p, ".json")) {
			t.Errorf("%s remains after absent", p)
		}
		return nil
	})
	// The input error is at the template, which absent removed.
	rr := exec.Command(env.rrBin, "--prefix", prefix, "--service-instance", "main", "--hostname", "node1", "--output", "json")
	var stderr bytes.Buffer
	rr.Stderr = &stderr
	out, err := rr.Output()
	record(t, "register-runner after absent", append(out, stderr.Bytes()...))
	var report struct {
		InputErrors []struct {
			File string `json:"file"`
		} `json:"input_errors"`
	}
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || json.Unmarshal(out, &report) != nil ||
		len(report.InputErrors) != 1 || report.InputErrors[0].File != "config.template.main.toml" {
		t.Fatalf("register-runner after absent: %v, want exit 2 and an input error at config.template.main.toml\n%s%s", err, out, stderr.Bytes())
	}
	if n := len(simRunners(t, url)); n != 0 {
		t.Fatalf("register-runner after absent registered %d runners", n)
	}
}

// TestRotatedSecretNotInDiff: after credentials are rotated, --check --diff
// shows the template's token lines redacted by key: neither the old
// registration token (of no known shape) nor the new one appears.
func TestRotatedSecretNotInDiff(t *testing.T) {
	needSetup(t)
	root := t.TempDir()
	eph := filepath.Join(root, "eph")
	url, patFile := startSim(t, eph)
	prefix := filepath.Join(root, "prefix")
	oldTok := filepath.Join(eph, "secrets", "old-registration")
	newTok := filepath.Join(eph, "secrets", "new-registration")
	_ = os.WriteFile(oldTok, []byte(fmt.Sprintf("oldreg%d\n", time.Now().UnixNano())), 0o600)
	_ = os.WriteFile(newTok, []byte(fmt.Sprintf("newreg%d\n", time.Now().UnixNano())), 0o600)
	task := func(tokFile string) string {
		return strings.Replace(syncTask(prefix, url, patFile, "main"), "    executors:",
			"        registration_token: \"{{ lookup('file', '"+tokFile+"') }}\"\n    executors:", 1)
	}
	if r := runPlay(t, eph, nil, nil, task(oldTok))[0]; r["failed"] == true {
		t.Fatalf("converge: %v", r)
	}
	r := runPlay(t, eph, nil, []string{"--check", "--diff"}, task(newTok))[0]
	d, _ := json.Marshal(r["diff"])
	if r["changed"] != true || !strings.Contains(string(d), "registration_token") {
		t.Fatalf("the rotation does not show in the diff: %v", r)
	}
	// ansiblePlaybook has already checked the whole output for both tokens.
}

// TestInfoModuleIsReadOnly: the info module reports GitLab's view of the
// host's runners and changes nothing, in GitLab or on the host.
func TestInfoModuleIsReadOnly(t *testing.T) {
	needSetup(t)
	root := t.TempDir()
	eph := filepath.Join(root, "eph")
	url, patFile := startSim(t, eph)
	prefix := filepath.Join(root, "prefix")
	runPlay(t, eph, nil, nil, syncTask(prefix, url, patFile, "main", "{name: docker, url: "+url+", paused: true}"))
	before := coretest.Tree(t, prefix)
	simResetLog(t, url)
	info := fmt.Sprintf("- name: info\n  gitlab_runner_auth.runner.info:\n    prefix: %s\n    hostname: node1\n", prefix)
	for _, mode := range [][]string{nil, {"--check"}} {
		r := runPlay(t, eph, nil, mode, info)[0]
		runners, _ := r["runners"].([]any)
		if r["changed"] != false || r["failed"] == true || len(runners) != 2 || r["would_change"] != false {
			t.Fatalf("info %v: %v", mode, r)
		}
		docker := runners[0].(map[string]any)
		if docker["name"] != "docker" || docker["paused"] != true || docker["id"] == float64(0) ||
			docker["description"] != "node1 main docker Runner" || docker["status"] == nil {
			t.Errorf("info %v: runner %v", mode, docker)
		}
		if m, _ := docker["managers"].([]any); len(m) != 1 {
			t.Errorf("info %v: managers %v", mode, docker["managers"])
		}
	}
	if n := simMutating(t, url); n != 0 {
		t.Errorf("info made %d mutating requests", n)
	}
	coretest.SameTree(t, "after info", before, coretest.Tree(t, prefix), false)
}

// simPost sends a control request to the simulator.
func simPost(t *testing.T, url, path, body string) {
	t.Helper()
	resp, err := http.Post(url+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		t.Fatalf("POST %s: %s", path, resp.Status)
	}
}

// TestPruneModuleThroughAnsible: the clean-up, delegated to the
// controller, says in check mode with --diff what it would delete (the
// fleet's runner idle for eight days, never another team's) and deletes
// nothing, then deletes exactly that; the token given inline in
// the task reaches no output (ansiblePlaybook checks the -vvv log).
func TestPruneModuleThroughAnsible(t *testing.T) {
	needSetup(t)
	root := t.TempDir()
	eph := filepath.Join(root, "eph")
	url, patFile := startSim(t, eph)
	prefix := filepath.Join(root, "prefix")
	// The history starts eight days ago and ends at the wall clock: the
	// clean-up compares GitLab's clock with the controller's.
	simPost(t, url, "/-/sim/clock", `{"rewind": "192h"}`)
	sync := strings.Replace(syncTask(prefix, url, patFile, "main"), "    hostname: node1\n", "    hostname: node1\n    fleet: ci\n", 1)
	runPlay(t, eph, nil, nil, sync)
	// A host of the fleet since decommissioned, and another team's runner.
	simPost(t, url, "/-/sim/runners", `{"description": "node9 main shell Runner", "tag_list": ["main"],
		"maintenance_note": "[gitlab-runner-auth] fleet=ci host=node9 instance=main"}`)
	simPost(t, url, "/-/sim/runners", `{"description": "team-x builder", "tag_list": ["main"]}`)
	simPost(t, url, "/-/sim/clock", `{"advance": "192h"}`)
	task := fmt.Sprintf(`- name: prune
  gitlab_runner_auth.runner.prune:
    url: %s
    personal_access_token: "{{ lookup('file', '%s') }}"
    fleet: ci
    tags: [main]
    seen_file: %s
    keep: "{{ r0.runners | map(attribute='id') | list }}"
  run_once: true
  delegate_to: localhost
`, url, patFile, filepath.Join(eph, "prune-first-seen.json"))
	res := runPlay(t, eph, nil, []string{"--check", "--diff"}, sync, task)
	chk := res[1]
	d, _ := json.Marshal(chk["diff"])
	if chk["changed"] != true || chk["failed"] == true || fmt.Sprint(chk["would_delete"]) != "[2]" ||
		!strings.Contains(string(d), "node9 main shell Runner") || strings.Contains(string(d), "team-x") {
		t.Fatalf("check mode: %v", chk)
	}
	if n := len(simRunners(t, url)); n != 3 {
		t.Fatalf("check mode left %d runners, want 3", n)
	}
	res = runPlay(t, eph, nil, nil, sync, task)
	if res[1]["changed"] != true || res[1]["deleted"] != float64(1) {
		t.Fatalf("prune: %v", res[1])
	}
	var descs []string
	for _, r := range simRunners(t, url) {
		descs = append(descs, r["description"].(string))
	}
	if strings.Join(descs, ",") != "node1 main shell Runner,team-x builder" {
		t.Fatalf("runners left %v", descs)
	}
}

package ansible

import (
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

	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/coretest"
)

// playIn runs tasks on localhost like adhoc, with eph as the scenario's
// ephemeral folder (so every output is checked for the secrets under
// eph/secrets) and extra ansible-playbook arguments (--check, --diff).
func playIn(t *testing.T, eph string, extra []string, tasks ...string) []map[string]any {
	t.Helper()
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("- hosts: instance\n  gather_facts: false\n  tasks:\n")
	for i, task := range tasks {
		b.WriteString(indent(task, "    "))
		b.WriteString("      register: r" + itoa(i) + "\n      ignore_errors: true\n")
	}
	b.WriteString("    - name: results\n      ansible.builtin.copy:\n        dest: " + dir + "/results.json\n        mode: '0600'\n        content: \"{{ [")
	for i := range tasks {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("r" + itoa(i))
	}
	b.WriteString("] | to_json }}\"\n      check_mode: false\n      diff: false\n")
	play := filepath.Join(dir, "play.yml")
	inventory := filepath.Join(dir, "inventory.yml")
	_ = os.WriteFile(play, []byte(b.String()), 0o600)
	_ = os.WriteFile(inventory, []byte("all:\n  hosts:\n    instance:\n      ansible_connection: local\n      gitlab_runner_auth_cache_dir: "+filepath.Join(dir, "cache")+"\n"), 0o600)
	r := ansiblePlaybook(t, playbookEnv(dir, eph, inventory), eph, "play", append([]string{"-i", inventory, play}, extra...)...)
	if r.err != nil {
		t.Fatalf("ansible-playbook: %v\n%s", r.err, tail(r.out))
	}
	data, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	coretest.Record(t, "results", data)
	var res []map[string]any
	if err := json.Unmarshal(data, &res); err != nil {
		t.Fatal(err)
	}
	return res
}

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

// tree is every entry under dir with its mode and bytes.
func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return nil
		}
		v := fi.Mode().String()
		if fi.Mode().IsRegular() {
			b, _ := os.ReadFile(p)
			v += "\x00" + string(b)
		}
		out[p] = v
		return nil
	})
	return out
}

func sameTree(t *testing.T, what string, a, b map[string]string) {
	t.Helper()
	for k, v := range a {
		if b[k] != v {
			t.Errorf("%s: %s changed or vanished", what, k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			t.Errorf("%s: %s appeared", what, k)
		}
	}
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
// task that core refuses (an executor whose url matches no client,
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
	if res := playIn(t, eph, nil, syncTask(prefix, url, patFile, "main")); res[0]["failed"] == true {
		t.Fatalf("converge: %v", res[0])
	}
	before := tree(t, host)
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
		res := playIn(t, eph, mode, tasks...)
		for i, b := range bad {
			msg, _ := res[i]["msg"].(string)
			if res[i]["failed"] != true || res[i]["changed"] != false || !strings.Contains(msg, b.want) {
				t.Errorf("%v case %d: want failed, unchanged, naming %s; got %v", mode, i, b.want, res[i])
			}
			if d, _ := json.Marshal(res[i]["diff"]); strings.Contains(string(d), "do-not-read-me") {
				t.Errorf("%v case %d: the diff shows a file outside the prefix", mode, i)
			}
		}
		sameTree(t, fmt.Sprintf("after failed tasks %v", mode), before, tree(t, host))
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
	playIn(t, eph, nil, syncTask(prefix, url, patFile, "main", "{name: docker, url: "+url+"}"))
	if n := len(simRunners(t, url)); n != 2 {
		t.Fatalf("converge: %d runners", n)
	}
	absent := fmt.Sprintf("- name: absent\n  gitlab_runner_auth.runner.sync:\n    prefix: %s\n    hostname: node1\n    state: absent\n", prefix)
	check := playIn(t, eph, []string{"--check", "--diff"}, absent)[0]
	d, _ := json.Marshal(check["diff"])
	if check["changed"] != true || !strings.Contains(string(d), "config.template.main.toml") || len(simRunners(t, url)) != 2 {
		t.Fatalf("absent in check mode: %v", check)
	}
	res := playIn(t, eph, nil, absent, absent)
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
	rr := exec.Command(env.rrBin, "--prefix", prefix, "--service-instance", "main", "--hostname", "node1", "--timeout", "20s")
	out, err := rr.CombinedOutput()
	coretest.Record(t, "register-runner after absent", out)
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), "template does not exist") {
		t.Fatalf("register-runner after absent: %v\n%s", err, out)
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
	if r := playIn(t, eph, nil, task(oldTok))[0]; r["failed"] == true {
		t.Fatalf("converge: %v", r)
	}
	r := playIn(t, eph, []string{"--check", "--diff"}, task(newTok))[0]
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
	playIn(t, eph, nil, syncTask(prefix, url, patFile, "main", "{name: docker, url: "+url+", paused: true}"))
	before := tree(t, prefix)
	simResetLog(t, url)
	info := fmt.Sprintf("- name: info\n  gitlab_runner_auth.runner.info:\n    prefix: %s\n    hostname: node1\n", prefix)
	for _, mode := range [][]string{nil, {"--check"}} {
		r := playIn(t, eph, mode, info)[0]
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
	sameTree(t, "after info", before, tree(t, prefix))
}

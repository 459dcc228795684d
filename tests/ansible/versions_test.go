package ansible

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// toolchainEnv is what tests/ansible/toolchain VERSION changes in the
// environment (PATH first of all), as KEY=VALUE lines to append to one.
func toolchainEnv(t *testing.T, version string) []string {
	t.Helper()
	cmd := exec.Command("sh", "-c", `eval "$(tests/ansible/toolchain "$1")" && env -0`, "sh", version)
	cmd.Dir = env.root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ansible-core %s: %v\n%s", version, err, stderr.String())
	}
	var changed []string
	for _, kv := range strings.Split(string(out), "\x00") {
		if k, v, ok := strings.Cut(kv, "="); ok && os.Getenv(k) != v {
			changed = append(changed, kv)
		}
	}
	return changed
}

// ansibleOwn are the fields of a registered result that Ansible itself
// adds or words per version (2.19 adds exception to every failure);
// everything else comes from the module, or from the action plugin's check
// of the options (whose msg is Ansible's validator's, worded per version:
// see optionErrors).
var ansibleOwn = map[string]bool{"invocation": true, "deprecations": true, "exception": true}

// optionErrors are the tasks of TestResultsAgreeAcrossAnsibleVersions that
// fail the controller's check of the options, and the option each msg
// names: the wording is the running ansible-core's own.
var optionErrors = map[int]string{5: "hostnme", 6: "concurrency"}

func withoutAnsibleFields(results []map[string]any) []map[string]any {
	out := make([]map[string]any, len(results))
	for i, r := range results {
		out[i] = map[string]any{}
		for k, v := range r {
			if !ansibleOwn[k] && !strings.HasPrefix(k, "_ansible") {
				out[i][k] = v
			}
		}
	}
	return out
}

// TestResultsAgreeAcrossAnsibleVersions runs one play under each
// ansible-core version in GRA_ANSIBLE_VERSIONS (make's ANSIBLE_VERSIONS;
// default 2.14, 2.17 and 2.19), with the tools tests/ansible/toolchain selects,
// each against a fresh simulator at the same address and on a host folder
// at the same path: create, keep, a check-mode diff, update, delete, option
// errors, absent (one request at a time, so that GitLab numbers the runners
// in the same order). The JSON results of every task must be identical but for
// the fields Ansible adds itself.
func TestResultsAgreeAcrossAnsibleVersions(t *testing.T) {
	needSetup(t)
	versions := strings.Fields(os.Getenv("GRA_ANSIBLE_VERSIONS"))
	if len(versions) == 0 {
		versions = []string{"2.14", "2.17", "2.19"}
	}
	if len(versions) < 2 {
		t.Fatalf("GRA_ANSIBLE_VERSIONS=%q: name at least two ansible-core versions to compare", versions)
	}
	root := t.TempDir()
	eph := filepath.Join(root, "eph")
	prefix := filepath.Join(root, "host", "etc-gitlab-runner")
	addr := "127.0.0.1:0"
	var first []map[string]any
	for i, version := range versions {
		_ = os.RemoveAll(filepath.Join(root, "host"))
		url, patFile, stop := startSimAt(t, eph, addr)
		addr = strings.TrimPrefix(url, "http://")
		execs := func(gpu string) string {
			return fmt.Sprintf(`[{name: shell, url: %q, tags: bash}, {name: docker, url: %q, docker: {image: "alpine:3.20"}}%s]`, url, url, gpu)
		}
		gpu := fmt.Sprintf(`, {name: gpu, url: %q, executor: custom, description: GPU partition, custom: {run_exec: /opt/run.sh}}`, url)
		task := func(name, executors, extra string) string {
			return fmt.Sprintf(`- name: %s
  gitlab_runner_auth.runner.sync:
    prefix: %s
    hostname: node1
    concurrency: 1
    global: {concurrent: 4}
    clients: [{url: %q, personal_access_token_file: %s}]
    executors: %s
%s`, name, prefix, url, patFile, executors, extra)
		}
		absent := fmt.Sprintf("- name: absent\n  gitlab_runner_auth.runner.sync:\n    prefix: %s\n    hostname: node1\n    concurrency: 1\n    state: absent\n", prefix)
		res := runPlay(t, eph, toolchainEnv(t, version), nil,
			task("create", execs(gpu), ""),
			task("keep", execs(gpu), ""),
			task("predict an update", execs(strings.Replace(gpu, "custom,", "custom, paused: true, tags: [a100],", 1)), "  check_mode: true\n  diff: true\n"),
			task("update", execs(strings.Replace(gpu, "custom,", "custom, paused: true, tags: [a100],", 1)), ""),
			task("delete", execs(""), ""),
			"- name: misspelt\n  gitlab_runner_auth.runner.sync:\n    prefix: "+prefix+"\n    hostnme: node1\n",
			"- name: wrong type\n  gitlab_runner_auth.runner.sync:\n    prefix: "+prefix+"\n    concurrency: many\n",
			absent+"  check_mode: true\n",
			absent)
		stop()
		got := withoutAnsibleFields(res)
		for j, option := range optionErrors {
			if msg, _ := got[j]["msg"].(string); !strings.Contains(msg, option) {
				t.Errorf("task %d under ansible-core %s: msg %q does not name the option %s", j, version, msg, option)
			}
			delete(got[j], "msg")
		}
		if i == 0 {
			first = got
			continue
		}
		for j := range got {
			if !reflect.DeepEqual(first[j], got[j]) {
				a, _ := json.MarshalIndent(first[j], "", "  ")
				b, _ := json.MarshalIndent(got[j], "", "  ")
				t.Errorf("task %d: ansible-core %s and %s differ:\n%s\n--- %s:\n%s", j, versions[0], version, a, version, b)
			}
		}
	}
	// The play itself did what it says (the other tests check the details).
	for j, want := range []string{"create", "keep", "update", "update", "delete"} {
		rs, _ := first[j]["runners"].([]any)
		found := false
		for _, r := range rs {
			if m, _ := r.(map[string]any); m["action"] == want {
				found = true
			}
		}
		if !found || first[j]["failed"] == true {
			t.Errorf("task %d: no %s: %v", j, want, first[j])
		}
	}
	for j := range optionErrors {
		if first[j]["failed"] != true {
			t.Errorf("task %d did not fail: %v", j, first[j])
		}
	}
}

package ansible

import (
	"path/filepath"
	"strings"
	"testing"
)

// actions lists a result's runners' actions.
func actions(r map[string]any) []string {
	var out []string
	rs, _ := r["runners"].([]any)
	for _, x := range rs {
		if m, ok := x.(map[string]any); ok {
			out = append(out, m["action"].(string))
		}
	}
	return out
}

// TestFailureAfterTheRunSaysWhatChanged injects a failure after the module
// ran and registered two runners: the action plugin raising while it
// handles the result, Ansible unable to parse the launcher's output (junk
// before it; the output cut in half) and the connection dropping while the
// temporary folder is removed. The first three fail the task, which still
// reports what the module did (changed, the runners) or, when the result
// is lost, that the module ran and may have changed GitLab and the host;
// the last is a warning, as Ansible warns of its own temporary files.
// Never a plain failure. A second, normal run then keeps both runners: the
// first one had really created them.
func TestFailureAfterTheRunSaysWhatChanged(t *testing.T) {
	needSetup(t)
	for _, tc := range []struct {
		name, fault, action, connection string
		failed, runners                 bool
		output                          string
	}{
		{name: "the action plugin raises", action: "sync_failing_after_run", failed: true, runners: true},
		{name: "junk before the output", fault: "garble", connection: "counting_local", failed: true, runners: true},
		{name: "the output cut in half", fault: "truncate", connection: "counting_local", failed: true},
		{name: "the connection drops in the clean-up", fault: "cleanup", connection: "counting_local", runners: true,
			output: "injected: the connection dropped while removing the temporary folder"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			eph := filepath.Join(dir, "eph")
			url, patFile := startSim(t, eph)
			prefix := filepath.Join(dir, "prefix")
			task := syncTask(prefix, url, patFile, "main", "{name: docker, url: "+url+", docker: {image: alpine}}")
			faulty := task
			if tc.action != "" {
				faulty = strings.Replace(faulty, "gitlab_runner_auth.runner.sync:", tc.action+":", 1)
			}
			if tc.connection != "" {
				faulty += "  vars:\n    ansible_connection: " + tc.connection + "\n"
			}
			testdata := filepath.Join(env.root, "tests", "ansible", "testdata")
			res, out := runPlayOut(t, eph, []string{"GRA_FAULT=" + tc.fault,
				"ANSIBLE_CONNECTION_PLUGINS=" + filepath.Join(testdata, "connection_plugins"),
				"ANSIBLE_ACTION_PLUGINS=" + filepath.Join(testdata, "action_plugins")}, nil, faulty, task)
			r := res[0]
			msg, _ := r["msg"].(string)
			t.Logf("result: failed %v, changed %v, runners %v, msg %q, warnings %v", r["failed"], r["changed"], actions(r), msg, r["warnings"])
			if r["changed"] != true || (r["failed"] == true) != tc.failed {
				t.Errorf("changed %v, failed %v; want changed, failed %v", r["changed"], r["failed"], tc.failed)
			}
			if got := strings.Join(actions(r), ","); tc.runners && got != "create,create" {
				t.Errorf("runners' actions %q, want create,create", got)
			}
			// A lost result (changed, as above) names the module that shows
			// the instance as it is now.
			if tc.failed && !tc.runners && !strings.Contains(msg, "gitlab_runner_auth.runner.info") {
				t.Errorf("a lost result: msg %q does not name gitlab_runner_auth.runner.info", msg)
			}
			// The connection's own error reaches the output, the task not
			// failing for it. (Ansible before 2.19 wraps warnings at the
			// terminal's width.)
			if tc.output != "" && !strings.Contains(strings.Join(strings.Fields(out), " "), tc.output) {
				t.Errorf("output lacks %q:\n%s", tc.output, tail(out))
			}
			if got := strings.Join(actions(res[1]), ","); got != "keep,keep" || res[1]["changed"] != false {
				t.Errorf("the run after: actions %q, changed %v; want both runners kept", got, res[1]["changed"])
			}
		})
	}
}

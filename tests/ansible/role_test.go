package ansible

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// roleCase applies the service role, writing files only
// (gitlab_runner_auth_systemd_reload false), with vars over a base that puts
// everything under dir.
type roleCase struct {
	name string
	vars map[string]any
	// variable is the one the role must name when it refuses the case ("":
	// the case must pass).
	variable string
}

// roleOutcome is what the play saw of one case: whether the role passed and
// every failure message.
type roleOutcome struct {
	Passed   bool     `json:"passed"`
	Messages []string `json:"messages"`
}

// applyRole runs every case in one play, each in a block whose rescue keeps
// the failure messages, and returns the outcomes by case name. Each case has
// its own folder, dirs[name], with an empty systemd folder in it.
func applyRole(t *testing.T, cases []roleCase) (map[string]roleOutcome, map[string]string) {
	t.Helper()
	root := t.TempDir()
	dirs := map[string]string{}
	var tasks []any
	for i, c := range cases {
		dir := filepath.Join(root, "case"+itoa(i))
		if err := os.MkdirAll(filepath.Join(dir, "systemd"), 0o755); err != nil {
			t.Fatal(err)
		}
		dirs[c.name] = dir
		vars := map[string]any{
			"gitlab_runner_auth_prefix":          filepath.Join(dir, "etc"),
			"gitlab_runner_auth_bin":             filepath.Join(dir, "bin", "register-runner"),
			"gitlab_runner_auth_systemd_dir":     filepath.Join(dir, "systemd"),
			"gitlab_runner_auth_install_unit":    true,
			"gitlab_runner_auth_systemd_reload":  false,
			"gitlab_runner_auth_resync_interval": "1h",
		}
		for k, v := range c.vars {
			vars[k] = v
		}
		record := func(outcome string) map[string]any {
			return map[string]any{"name": "record " + c.name, "ansible.builtin.set_fact": map[string]any{
				"gra_outcomes": "{{ gra_outcomes | default({}) | combine({" + jsonString(c.name) + ": " + outcome + "}) }}"}}
		}
		tasks = append(tasks, map[string]any{
			"name": "case " + c.name,
			"block": []any{
				map[string]any{"name": "apply the role", "ansible.builtin.include_role": map[string]any{"name": "gitlab_runner_auth.runner.service"}, "vars": vars},
				record("{'passed': true, 'messages': []}"),
			},
			"rescue": []any{
				record("{'passed': false, 'messages': [ansible_failed_result.msg | default('')] + " +
					"(ansible_failed_result.results | default([]) | selectattr('failed', 'defined') | selectattr('failed') | map(attribute='msg') | list)}"),
			},
		})
	}
	results := filepath.Join(root, "outcomes.json")
	tasks = append(tasks, map[string]any{"name": "write the outcomes", "ansible.builtin.copy": map[string]any{
		"dest": results, "mode": "0600", "content": "{{ gra_outcomes | to_json }}"}})
	play := []any{map[string]any{"hosts": "instance", "gather_facts": false, "tasks": tasks}}
	playFile := filepath.Join(root, "play.yml")
	b, _ := json.MarshalIndent(play, "", "  ")
	if err := os.WriteFile(playFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	inventory := filepath.Join(root, "inventory.yml")
	if err := os.WriteFile(inventory, []byte("all:\n  hosts:\n    instance:\n      ansible_connection: local\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := ansiblePlaybook(t, playbookEnv(root), root, "role", "-i", inventory, playFile)
	if r.err != nil {
		t.Fatalf("ansible-playbook: %v\n%s", r.err, tail(r.out))
	}
	var out map[string]roleOutcome
	if err := json.Unmarshal(mustRead(t, results), &out); err != nil {
		t.Fatal(err)
	}
	return out, dirs
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// TestRoleRefusesUnitInjection: a value that would add lines to a unit file
// (a newline in a path, a time span, an argument, a user) or that is not
// what the setting takes fails the role before it writes anything, and the
// failure names the variable. The first case shows the same base passes.
func TestRoleRefusesUnitInjection(t *testing.T) {
	needSetup(t)
	evil := "\nExecStartPost=/usr/local/bin/evil"
	cases := []roleCase{
		{name: "base"},
		{name: "working directory with a newline", vars: map[string]any{"gitlab_runner_auth_runner_working_directory": "/home/gitlab-runner" + evil}, variable: "gitlab_runner_auth_runner_working_directory"},
		{name: "re-sync interval with a newline", vars: map[string]any{"gitlab_runner_auth_resync_interval": "1h\nOnCalendar=minutely"}, variable: "gitlab_runner_auth_resync_interval"},
		{name: "re-sync interval ending in a newline", vars: map[string]any{"gitlab_runner_auth_resync_interval": "1h\n"}, variable: "gitlab_runner_auth_resync_interval"},
		{name: "random delay with a newline", vars: map[string]any{"gitlab_runner_auth_resync_random_delay": "5min" + evil}, variable: "gitlab_runner_auth_resync_random_delay"},
		{name: "prefix with a newline", vars: map[string]any{"gitlab_runner_auth_prefix": "/etc/gitlab-runner" + evil}, variable: "gitlab_runner_auth_prefix"},
		{name: "relative prefix", vars: map[string]any{"gitlab_runner_auth_prefix": "etc/gitlab-runner"}, variable: "gitlab_runner_auth_prefix"},
		{name: "register-runner path with a space", vars: map[string]any{"gitlab_runner_auth_bin": "/usr/local/bin/register runner"}, variable: "gitlab_runner_auth_bin"},
		{name: "gitlab-runner path with a quote", vars: map[string]any{"gitlab_runner_auth_runner_bin": `/usr/bin/gitlab-runner"`}, variable: "gitlab_runner_auth_runner_bin"},
		{name: "gitlab-runner path ending in a backslash", vars: map[string]any{"gitlab_runner_auth_runner_bin": `/usr/bin/gitlab-runner\`}, variable: "gitlab_runner_auth_runner_bin"},
		{name: "systemd folder with a newline", vars: map[string]any{"gitlab_runner_auth_systemd_dir": "/etc/systemd/system\n"}, variable: "gitlab_runner_auth_systemd_dir"},
		{name: "user with a newline", vars: map[string]any{"gitlab_runner_auth_runner_user": "gitlab-runner\nUser=root"}, variable: "gitlab_runner_auth_runner_user"},
		{name: "register-runner option with a newline", vars: map[string]any{"gitlab_runner_auth_extra_args": []any{"--hostname", "a" + evil}}, variable: "gitlab_runner_auth_extra_args"},
		{name: "gitlab-runner option with a carriage return", vars: map[string]any{"gitlab_runner_auth_runner_args": []any{"--listen-address", "127.0.0.1:9252\r"}}, variable: "gitlab_runner_auth_runner_args"},
		{name: "options as one string", vars: map[string]any{"gitlab_runner_auth_runner_args": "--listen-address 127.0.0.1:9252"}, variable: "gitlab_runner_auth_runner_args"},
		{name: "start timeout with a newline", vars: map[string]any{"gitlab_runner_auth_timeout_start_sec": "330" + evil}, variable: "gitlab_runner_auth_timeout_start_sec"},
		{name: "negative stop timeout", vars: map[string]any{"gitlab_runner_auth_timeout_stop_sec": -1}, variable: "gitlab_runner_auth_timeout_stop_sec"},
		{name: "instance with a newline", vars: map[string]any{"gitlab_runner_auth_instance": "main\n"}, variable: "gitlab_runner_auth_instance"},
		{name: "unit with a newline", vars: map[string]any{"gitlab_runner_auth_unit": "gitlab-runner@main.service\nExecStartPost=/evil"}, variable: "gitlab_runner_auth_unit"},
		{name: "no such tag family", vars: map[string]any{"gitlab_runner_auth_omit_auto_tags": []any{"digitless"}}, variable: "gitlab_runner_auth_omit_auto_tags"},
	}
	outcomes, dirs := applyRole(t, cases)
	for _, c := range cases {
		o, ok := outcomes[c.name]
		if !ok {
			t.Errorf("%s: no outcome recorded", c.name)
			continue
		}
		if c.variable == "" {
			if !o.Passed {
				t.Errorf("%s: the role failed: %v", c.name, o.Messages)
			}
			continue
		}
		if o.Passed {
			t.Errorf("%s: the role passed, want it to refuse %s", c.name, c.variable)
			continue
		}
		named := false
		for _, m := range o.Messages {
			named = named || strings.Contains(m, c.variable)
		}
		if !named {
			t.Errorf("%s: the failure does not name %s: %q", c.name, c.variable, o.Messages)
		}
		// Nothing written: the case's folder holds only the empty systemd
		// folder the test made.
		var written []string
		_ = filepath.Walk(dirs[c.name], func(p string, fi os.FileInfo, err error) error {
			if err == nil && p != dirs[c.name] && p != filepath.Join(dirs[c.name], "systemd") {
				written = append(written, strings.TrimPrefix(p, dirs[c.name]))
			}
			return nil
		})
		if len(written) > 0 {
			t.Errorf("%s: the refused role wrote %v", c.name, written)
		}
	}
	// The base case wrote a drop-in whose every line is a directive, a
	// section or a comment: no value broke a line.
	dropin := string(mustRead(t, filepath.Join(dirs["base"], "systemd", "gitlab-runner@main.service.d", "10-register-runner.conf")))
	line := regexp.MustCompile(`^(#.*|\[(Unit|Service)\]|[A-Za-z]+=.*|)$`)
	for _, l := range strings.Split(dropin, "\n") {
		if !line.MatchString(l) {
			t.Errorf("drop-in line %q is neither a directive, a section nor a comment", l)
		}
	}
}

// TestRoleWritesGracefulStopAndExactCommands: the template unit and the
// drop-in stop gitlab-runner with SIGQUIT (KillMode=mixed: gitlab-runner
// alone) within TimeoutStopSec; arguments with quotes, spaces, backslashes,
// "%" and "$" are written so that systemd passes them on unchanged
// (e2e's quoting scenario runs the same rules under systemd).
func TestRoleWritesGracefulStopAndExactCommands(t *testing.T) {
	needSetup(t)
	cases := []roleCase{
		{name: "defaults"},
		{name: "tricky options", vars: map[string]any{
			"gitlab_runner_auth_extra_args":       []any{"--hostname", `it's a "b" 50% $HOME \ ;`},
			"gitlab_runner_auth_runner_args":      []any{"--listen-address", "127.0.0.1:9252", ""},
			"gitlab_runner_auth_timeout_stop_sec": 0,
		}},
		{name: "omitted tags", vars: map[string]any{"gitlab_runner_auth_omit_auto_tags": []any{"digitless_hostname", "architecture"}}},
	}
	outcomes, dirs := applyRole(t, cases)
	for _, c := range cases {
		if !outcomes[c.name].Passed {
			t.Fatalf("%s: %v", c.name, outcomes[c.name].Messages)
		}
	}
	directives := func(path string) map[string][]string {
		out := map[string][]string{}
		for _, l := range strings.Split(string(mustRead(t, path)), "\n") {
			if k, v, ok := strings.Cut(l, "="); ok && !strings.HasPrefix(l, "#") {
				out[k] = append(out[k], v)
			}
		}
		return out
	}
	unit := directives(filepath.Join(dirs["defaults"], "systemd", "gitlab-runner@.service"))
	dropin := directives(filepath.Join(dirs["defaults"], "systemd", "gitlab-runner@main.service.d", "10-register-runner.conf"))
	for name, d := range map[string]map[string][]string{"template unit": unit, "drop-in": dropin} {
		if strings.Join(d["KillSignal"], ",") != "SIGQUIT" || strings.Join(d["KillMode"], ",") != "mixed" || strings.Join(d["TimeoutStopSec"], ",") != "7200" {
			t.Errorf("%s: KillSignal %v, KillMode %v, TimeoutStopSec %v; want SIGQUIT, mixed, 7200", name, d["KillSignal"], d["KillMode"], d["TimeoutStopSec"])
		}
	}
	tricky := directives(filepath.Join(dirs["tricky options"], "systemd", "gitlab-runner@main.service.d", "10-register-runner.conf"))
	prefix := filepath.Join(dirs["tricky options"], "etc")
	wantPre := filepath.Join(dirs["tricky options"], "bin", "register-runner") + " --prefix " + prefix +
		` --service-instance main --hostname "it's a \"b\" 50%% $$HOME \\ ;"`
	if got := tricky["ExecStartPre"]; len(got) != 1 || got[0] != wantPre {
		t.Errorf("ExecStartPre = %q, want %q", got, wantPre)
	}
	wantStart := "/usr/bin/gitlab-runner run --working-directory /home/gitlab-runner --config " + prefix +
		`/config.main.toml --service gitlab-runner@main --user gitlab-runner --listen-address 127.0.0.1:9252 ""`
	if got := tricky["ExecStart"]; len(got) != 2 || got[0] != "" || got[1] != wantStart {
		t.Errorf("ExecStart = %q, want a reset, then %q", got, wantStart)
	}
	omitted := directives(filepath.Join(dirs["omitted tags"], "systemd", "gitlab-runner@main.service.d", "10-register-runner.conf"))
	wantPre = filepath.Join(dirs["omitted tags"], "bin", "register-runner") + " --prefix " + filepath.Join(dirs["omitted tags"], "etc") +
		" --service-instance main --omit-auto-tags digitless_hostname,architecture"
	if got := omitted["ExecStartPre"]; len(got) != 1 || got[0] != wantPre {
		t.Errorf("gitlab_runner_auth_omit_auto_tags: ExecStartPre = %q, want %q", got, wantPre)
	}
	if got := strings.Join(tricky["TimeoutStopSec"], ","); got != "infinity" {
		t.Errorf("TimeoutStopSec with gitlab_runner_auth_timeout_stop_sec 0: %q, want infinity", got)
	}
}

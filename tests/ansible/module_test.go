package ansible

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// adhoc writes a one-play playbook running tasks on localhost and returns
// the JSON results of the tasks registered as r0, r1, ...
func adhoc(t *testing.T, extraEnv []string, tasks ...string) []map[string]any {
	t.Helper()
	return runPlay(t, "", extraEnv, nil, tasks...)
}

// runPlay runs tasks on localhost, registered as r0, r1, ... and written
// to a results file by a last task that runs even in check mode. eph is the
// scenario's ephemeral folder, whose secrets every output is checked for
// ("" for a folder of its own); extraArgs go to ansible-playbook (--check,
// --diff).
func runPlay(t *testing.T, eph string, extraEnv, extraArgs []string, tasks ...string) []map[string]any {
	t.Helper()
	res, _ := runPlayOut(t, eph, extraEnv, extraArgs, tasks...)
	return res
}

// runPlayOut is runPlay that also returns ansible-playbook's output.
func runPlayOut(t *testing.T, eph string, extraEnv, extraArgs []string, tasks ...string) ([]map[string]any, string) {
	t.Helper()
	dir := t.TempDir()
	if eph == "" {
		eph = dir
	}
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
	if err := os.WriteFile(play, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(inventory, []byte("all:\n  hosts:\n    instance:\n      ansible_connection: local\n      gitlab_runner_auth_cache_dir: "+filepath.Join(dir, "module-cache")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	envv := append(playbookEnv(eph), extraEnv...)
	r := ansiblePlaybook(t, envv, eph, "play", append([]string{"-i", inventory, play}, extraArgs...)...)
	if r.err != nil {
		t.Fatalf("ansible-playbook: %v\n%s", r.err, tail(r.out))
	}
	data, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	recordAs(t, "results", versionOf(envv), data)
	var res []map[string]any
	if err := json.Unmarshal(data, &res); err != nil {
		t.Fatal(err)
	}
	return res, r.out
}

func indent(s, pre string) string {
	var out []string
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		out = append(out, pre+l)
	}
	return strings.Join(out, "\n") + "\n"
}

func itoa(i int) string { return strconv.Itoa(i) }

// TestOptionErrorsNameTheOption: the action plugin checks the task's
// options against the module's documentation on the controller, with
// Ansible's own validator and wording, before anything reaches the host
// (counted by the counting_local connection); what only the module can
// check (clients and executors go together) fails on the host. Nothing is
// written either way. Parsing on the host is tested in internal/module/.
func TestOptionErrorsNameTheOption(t *testing.T) {
	needSetup(t)
	dir := t.TempDir()
	prefix := filepath.Join(dir, "p")
	base := "  gitlab_runner_auth.runner.sync:\n    prefix: " + prefix + "\n    hostname: node1\n"
	ok := "    clients: [{url: 'https://gl'}]\n"
	// names are what a failure must name (the option at fault, the value
	// or type given, what is allowed), not how it words it; one case keeps
	// Ansible's own sentence for an unknown option, which users search for.
	// option is the input_errors option of a failure the module reports.
	cases := []struct {
		task   string
		names  []string
		golden string
		option string
		onHost bool
	}{
		{task: base + "    clients: {url: x}\n    executors: []\n", names: []string{"clients", "dict", "list"}},
		{task: base + "    clients: [{personal_access_token: x}]\n    executors: [{name: a, url: x}]\n", names: []string{"url", "clients"}},
		{task: base + "    clients: [{url: x, personal_acess_token: y}]\n    executors: [{name: a, url: x}]\n",
			names:  []string{"clients.personal_acess_token", "personal_access_token"},
			golden: "Unsupported parameters for (gitlab_runner_auth.runner.sync) module: clients.personal_acess_token."},
		{task: base + "    hostnme: x\n", names: []string{"gitlab_runner_auth.runner.sync", "hostnme", "hostname"}},
		{task: base + ok + "    executors: [{name: a, url: 'https://gl', access_level: everyone}]\n",
			names: []string{"access_level", "not_protected", "ref_protected", "everyone", "executors"}},
		{task: base + "    clients: [{url: 'https://gl', runner_type: group}]\n    executors: [{name: a, url: 'https://gl'}]\n",
			names: []string{"runner_type", "instance_type", "group_type", "project_type", "clients"}},
		{task: base + ok + "    executors: [{name: a, url: 'https://gl', maximum_timeout: long}]\n",
			names: []string{"maximum_timeout", "executors", "int"}},
		{task: base + "    concurrency: many\n", names: []string{"concurrency", "int"}},
		{task: base + "    state: gone\n", names: []string{"state", "present", "absent", "gone"}},
		{task: "  gitlab_runner_auth.runner.info:\n    prefix: " + prefix + "\n    state: absent\n",
			names: []string{"gitlab_runner_auth.runner.info", "state"}},
		{task: base + "    executors: [{name: a, url: 'https://gl'}]\n", names: []string{"clients"}, option: "clients", onHost: true},
	}
	var b strings.Builder
	b.WriteString("- hosts: instance\n  gather_facts: false\n  tasks:\n")
	for i, c := range cases {
		b.WriteString(indent("- name: bad "+itoa(i)+"\n"+c.task, "    "))
		b.WriteString("      register: r" + itoa(i) + "\n      ignore_errors: true\n")
		// What reached the host so far (the counting connection's log).
		b.WriteString("    - name: count " + itoa(i) + "\n      ansible.builtin.command: cat " + filepath.Join(dir, "counts.tsv") +
			"\n      delegate_to: localhost\n      register: c" + itoa(i) + "\n      changed_when: false\n      failed_when: false\n")
	}
	b.WriteString("    - name: results\n      ansible.builtin.copy:\n        dest: " + dir + "/results.json\n        mode: '0600'\n        content: \"{{ [")
	for i := range cases {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("[r" + itoa(i) + ", c" + itoa(i) + ".stdout_lines | length]")
	}
	b.WriteString("] | to_json }}\"\n      delegate_to: localhost\n")
	play := filepath.Join(dir, "play.yml")
	inventory := filepath.Join(dir, "inventory.yml")
	if err := os.WriteFile(play, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	inv := "all:\n  hosts:\n    instance:\n      ansible_connection: counting_local\n      gitlab_runner_auth_cache_dir: " + filepath.Join(dir, "cache") + "\n"
	if err := os.WriteFile(inventory, []byte(inv), 0o600); err != nil {
		t.Fatal(err)
	}
	envv := append(playbookEnv(dir),
		"ANSIBLE_CONNECTION_PLUGINS="+filepath.Join(env.root, "tests", "ansible", "testdata", "connection_plugins"),
		"GRA_COUNT_FILE="+filepath.Join(dir, "counts.tsv"))
	if r := ansiblePlaybook(t, envv, dir, "option errors", "-i", inventory, play); r.err != nil {
		t.Fatalf("ansible-playbook: %v\n%s", r.err, tail(r.out))
	}
	data, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var res [][2]any
	if err := json.Unmarshal(data, &res); err != nil {
		t.Fatal(err)
	}
	sent := 0.0
	for i, c := range cases {
		r, _ := res[i][0].(map[string]any)
		msg, _ := r["msg"].(string)
		if failed, _ := r["failed"].(bool); !failed {
			t.Errorf("case %d did not fail: %v", i, r)
			continue
		}
		for _, w := range c.names {
			if !strings.Contains(msg, w) {
				t.Errorf("case %d: message %q does not name %q", i, msg, w)
			}
		}
		if c.golden != "" && !strings.Contains(msg, c.golden) {
			t.Errorf("case %d: message %q, want Ansible's own %q", i, msg, c.golden)
		}
		if c.option != "" {
			ies, _ := r["input_errors"].([]any)
			if first, _ := append(ies, nil)[0].(map[string]any); len(ies) != 1 || first["option"] != c.option {
				t.Errorf("case %d: input_errors %v, want one at the option %s", i, r["input_errors"], c.option)
			}
		}
		count, _ := res[i][1].(float64)
		if !c.onHost && count != sent {
			t.Errorf("case %d (%s) reached the host: %v transfers or commands", i, msg, count-sent)
		}
		if c.onHost && count == sent {
			t.Errorf("case %d never reached the host", i)
		}
		sent = count
	}
	if _, err := os.Stat(prefix); !os.IsNotExist(err) {
		t.Error("a failed option check wrote files")
	}
}

func TestUnsupportedPlatformFailsClearly(t *testing.T) {
	needSetup(t)
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "uname"), []byte("#!/bin/sh\necho Darwin arm64\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	res := adhoc(t, []string{"PATH=" + bin + ":" + os.Getenv("PATH")},
		"- name: sync on macOS\n  gitlab_runner_auth.runner.sync:\n    prefix: /nonexistent\n    hostname: node1\n")
	msg, _ := res[0]["msg"].(string)
	// It names the platforms it runs on and the host's.
	for _, name := range []string{"Linux", "amd64", "arm64", "ppc64le", "darwin arm64"} {
		if failed, _ := res[0]["failed"].(bool); !failed || !strings.Contains(msg, name) {
			t.Fatalf("result %v: want a failure naming %s", res[0], name)
		}
	}
}

func TestCollectionPackageAndDocs(t *testing.T) {
	needSetup(t)
	fi, err := os.Stat(env.tarball)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() >= 20<<20 {
		t.Fatalf("collection tarball is %d bytes, must stay under 20 MB", fi.Size())
	}
	f, _ := os.Open(env.tarball)
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	have := map[string]bool{}
	var manifest []byte
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		have[h.Name] = true
		if h.Name == "MANIFEST.json" {
			manifest, _ = io.ReadAll(tr)
		}
	}
	for _, want := range []string{"files/sync_linux_amd64", "files/sync_linux_arm64", "files/sync_linux_ppc64le",
		"plugins/modules/sync.py", "plugins/action/sync.py", "plugins/modules/info.py", "plugins/action/info.py", "plugins/modules/prune.py", "plugins/action/prune.py", "plugins/plugin_utils/hostplatform.py", "plugins/plugin_utils/staging.py", "plugins/modules/sync",
		"plugins/filter/goarch.py", "meta/runtime.yml", "roles/service/tasks/main.yml",
		"LICENSE", "CHANGELOG.md", "changelogs/changelog.yaml"} {
		if !have[want] {
			t.Errorf("tarball lacks %s", want)
		}
	}
	for name := range have {
		// The per-platform builds are run by the action plugin, never called
		// as modules of their own; plugins/modules/sync is the host side of
		// the documented modules (the launcher the action plugins run).
		if strings.HasPrefix(name, "plugins/modules/") && !strings.HasSuffix(name, "/") && name != "plugins/modules/sync.py" && name != "plugins/modules/info.py" && name != "plugins/modules/prune.py" && name != "plugins/modules/sync" {
			t.Errorf("tarball holds %s: plugins/modules/ must hold only the documented sync, info and prune modules and the launcher", name)
		}
	}
	var meta struct {
		CollectionInfo struct {
			Tags          []string `json:"tags"`
			Documentation string   `json:"documentation"`
			Homepage      string   `json:"homepage"`
			License       []string `json:"license"`
		} `json:"collection_info"`
	}
	if err := json.Unmarshal(manifest, &meta); err != nil {
		t.Fatalf("MANIFEST.json: %v", err)
	}
	galaxyTags := map[string]bool{"application": true, "cloud": true, "database": true, "infrastructure": true,
		"linux": true, "monitoring": true, "networking": true, "security": true, "storage": true, "tools": true, "windows": true}
	ci := meta.CollectionInfo
	for _, tag := range ci.Tags {
		if !galaxyTags[tag] {
			t.Errorf("galaxy.yml tag %q is not one of Galaxy's tags", tag)
		}
	}
	if len(ci.Tags) == 0 || ci.Documentation == "" || ci.Homepage == "" || len(ci.License) == 0 {
		t.Errorf("galaxy.yml lacks tags, documentation, homepage or license: %+v", ci)
	}
	if lic, _ := os.ReadFile(filepath.Join(env.root, "LICENSE")); string(lic) != string(mustRead(t, filepath.Join(env.root, "collection", "LICENSE"))) {
		t.Error("collection/LICENSE differs from the repository's LICENSE")
	}
	// requires_ansible states the oldest version make test tests
	// (ANSIBLE_VERSIONS), with no upper bound, as Ansible's collection
	// guidance asks: no tested version may print "does not support".
	versions := regexp.MustCompile(`(?m)^ANSIBLE_VERSIONS \?= (.*)$`).FindStringSubmatch(string(mustRead(t, filepath.Join(env.root, "Makefile"))))
	if versions == nil {
		t.Fatal("Makefile sets no ANSIBLE_VERSIONS")
	}
	tested := strings.Fields(versions[1])
	want := fmt.Sprintf(`requires_ansible: ">=%s.0"`, tested[0])
	if rt := string(mustRead(t, filepath.Join(env.root, "collection", "meta", "runtime.yml"))); !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(want) + `$`).MatchString(rt) {
		t.Errorf("meta/runtime.yml does not state the oldest version make test tests (%s): want %s in\n%s", tested, want, rt)
	}
	doc := exec.Command("ansible-doc", "gitlab_runner_auth.runner.sync")
	doc.Env = append(os.Environ(), "ANSIBLE_COLLECTIONS_PATH="+env.collections, "ANSIBLE_NOCOLOR=1")
	out, err := doc.CombinedOutput()
	if err != nil {
		t.Fatalf("ansible-doc: %v\n%s", err, out)
	}
	for _, opt := range []string{"prefix", "instance", "state", "global", "clients", "executors", "tag_schema",
		"capture_tags", "refresh", "hostname", "concurrency", "personal_access_token", "registration_token",
		"EXAMPLES", "RETURN VALUES", "runners"} {
		if !strings.Contains(string(out), opt) {
			t.Errorf("ansible-doc output lacks %q", opt)
		}
	}
	// Every version renders the modules' markup: the docs use only what
	// 2.14's ansible-doc knows (C(), I(), M(), ...), none of the semantic
	// markup of 2.15 and later (O(), V(), RV(), E(), P()) it would print raw.
	for _, module := range []string{"sync", "info", "prune"} {
		doc := exec.Command("ansible-doc", "gitlab_runner_auth.runner."+module)
		doc.Env = append(os.Environ(), "ANSIBLE_COLLECTIONS_PATH="+env.collections, "ANSIBLE_NOCOLOR=1")
		out, err := doc.CombinedOutput()
		if raw := regexp.MustCompile(`\b(O|V|RV|E|P)\([^)]*\)`).FindAllString(string(out), -1); err != nil || len(raw) > 0 {
			t.Errorf("ansible-doc gitlab_runner_auth.runner.%s (ansible-core %s): %v, raw markup %q", module, env.version, err, raw)
		}
	}
	list := exec.Command("ansible-doc", "-l", "gitlab_runner_auth.runner")
	list.Env = doc.Env
	out, err = list.CombinedOutput()
	if err != nil || strings.Contains(string(out), "WARNING") || !strings.Contains(string(out), "gitlab_runner_auth.runner.sync ") ||
		strings.Contains(string(out), "sync_linux") {
		t.Fatalf("ansible-doc -l: %v\n%s", err, out)
	}
	// It lists exactly the modules the collection documents (what
	// docs/reference/modules.md says it lists, tests/docs checks), each
	// with the start of its own short_description (cut to the width).
	var listed, documented []string
	short := regexp.MustCompile(`(?m)^short_description: (.+)$`)
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.Fields(l); len(f) > 0 && strings.HasPrefix(f[0], "gitlab_runner_auth.runner.") {
			name := strings.TrimPrefix(f[0], "gitlab_runner_auth.runner.")
			listed = append(listed, name)
			shown := strings.TrimSuffix(strings.TrimSpace(strings.TrimPrefix(l, f[0])), "...")
			doc, _ := os.ReadFile(filepath.Join(env.root, "collection", "plugins", "modules", name+".py"))
			if m := short.FindSubmatch(doc); m == nil || len(shown) < 10 || !strings.HasPrefix(string(m[1]), shown) {
				t.Errorf("ansible-doc -l shows %s as %q, not its short_description", f[0], shown)
			}
		}
	}
	docs, err := filepath.Glob(filepath.Join(env.root, "collection", "plugins", "modules", "*.py"))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range docs {
		if n := strings.TrimSuffix(filepath.Base(d), ".py"); n != "__init__" {
			documented = append(documented, n)
		}
	}
	sort.Strings(listed)
	sort.Strings(documented)
	if strings.Join(listed, " ") != strings.Join(documented, " ") || len(listed) == 0 {
		t.Errorf("ansible-doc -l lists the modules %v; the collection documents %v\n%s", listed, documented, out)
	}
	filter := exec.Command("ansible-doc", "-t", "filter", "gitlab_runner_auth.runner.goarch")
	filter.Env = doc.Env
	if out, err := filter.CombinedOutput(); err != nil || !strings.Contains(string(out), "ppc64le") {
		t.Fatalf("ansible-doc -t filter: %v\n%s", err, out)
	}
	if !have["plugins/filter/systemd_command.py"] {
		t.Error("tarball lacks plugins/filter/systemd_command.py")
	}
	filter = exec.Command("ansible-doc", "-t", "filter", "gitlab_runner_auth.runner.systemd_command")
	filter.Env = doc.Env
	if out, err := filter.CombinedOutput(); err != nil || !strings.Contains(string(out), "control character") {
		t.Fatalf("ansible-doc -t filter gitlab_runner_auth.runner.systemd_command: %v\n%s", err, out)
	}
	role := exec.Command("ansible-doc", "-t", "role", "gitlab_runner_auth.runner.service")
	role.Env = doc.Env
	if out, err := role.CombinedOutput(); err != nil || !strings.Contains(string(out), "gitlab_runner_auth_prefix") {
		t.Fatalf("ansible-doc -t role: %v\n%s", err, out)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestGoarchFilter: the collection's one platform table, as the role sees it.
func TestGoarchFilter(t *testing.T) {
	needSetup(t)
	res := adhoc(t, nil,
		"- name: machines\n  ansible.builtin.debug:\n    msg: \"{{ ['x86_64', 'AARCH64', 'arm64', 'ppc64le', 's390x', 'i686'] | map('gitlab_runner_auth.runner.goarch') | join(',') }}\"\n",
		"- name: systems\n  ansible.builtin.debug:\n    msg: \"{{ 'x86_64' | gitlab_runner_auth.runner.goarch('Linux') }},{{ 'arm64' | gitlab_runner_auth.runner.goarch('Darwin') }}\"\n")
	if got, _ := res[0]["msg"].(string); got != "amd64,arm64,arm64,ppc64le,," {
		t.Errorf("machines: got %q", got)
	}
	if got, _ := res[1]["msg"].(string); got != "amd64," {
		t.Errorf("systems: got %q", got)
	}
}

// TestSystemdCommandFilter: arguments become one systemd command line
// (plain words as they are, others double-quoted with C escapes, % and $
// doubled); a control character, which would end the unit file's line, or
// anything but a list of strings fails. e2e's "command lines" scenario has
// systemd read such a line back.
func TestSystemdCommandFilter(t *testing.T) {
	needSetup(t)
	res := adhoc(t, nil,
		"- name: words\n  ansible.builtin.debug:\n    msg: \"{{ ['/usr/bin/gitlab-runner', 'run', '--listen-address', '127.0.0.1:9252', '50%', '%i', 'a@b+c=d,e/f.g-h_i:j'] | gitlab_runner_auth.runner.systemd_command }}\"\n",
		"- name: quoted\n  ansible.builtin.debug:\n    msg: \"{{ ['/bin/echo', \\\"it's\\\", 'a b', '$HOME', 'x\\\\y', 'q\\\"r', ';', ''] | gitlab_runner_auth.runner.systemd_command }}\"\n",
		"- name: newline\n  ansible.builtin.debug:\n    msg: \"{{ ['/bin/echo', 'a\\nExecStartPost=/evil'] | gitlab_runner_auth.runner.systemd_command }}\"\n",
		"- name: a string\n  ansible.builtin.debug:\n    msg: \"{{ '/bin/echo a' | gitlab_runner_auth.runner.systemd_command }}\"\n")
	if got, _ := res[0]["msg"].(string); got != "/usr/bin/gitlab-runner run --listen-address 127.0.0.1:9252 50%% %%i a@b+c=d,e/f.g-h_i:j" {
		t.Errorf("plain words: got %q", got)
	}
	if got, want := res[1]["msg"].(string), `/bin/echo "it's" "a b" "$$HOME" "x\\y" "q\"r" ";" ""`; got != want {
		t.Errorf("quoted words: got %q, want %q", got, want)
	}
	// The failures name the filter and what is at fault: the argument
	// holding the newline (the second, 1), the type given instead of a
	// list.
	for i, what := range map[int]*regexp.Regexp{2: regexp.MustCompile(`\bargument 1\b`), 3: regexp.MustCompile(`\bstr\b`)} {
		msg, _ := res[i]["msg"].(string)
		if failed, _ := res[i]["failed"].(bool); !failed || !strings.Contains(msg, "systemd_command") || !what.MatchString(msg) {
			t.Errorf("task %d: failed %v, msg %q; want a failure naming systemd_command and %s", i, res[i]["failed"], msg, what)
		}
	}
}

// TestBuildsAreNotModules: the per-platform builds run only through the
// action plugin; a play naming one as a module does not load.
func TestBuildsAreNotModules(t *testing.T) {
	needSetup(t)
	dir := t.TempDir()
	play := filepath.Join(dir, "play.yml")
	if err := os.WriteFile(play, []byte("- hosts: localhost\n  gather_facts: false\n  tasks:\n    - name: a build as a module\n      gitlab_runner_auth.runner.sync_linux_amd64:\n        prefix: /nonexistent\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ansible-playbook", "--syntax-check", play)
	cmd.Env = append(os.Environ(), "ANSIBLE_COLLECTIONS_PATH="+env.collections, "ANSIBLE_NOCOLOR=1", "ANSIBLE_LOCALHOST_WARNING=0")
	out, err := cmd.CombinedOutput()
	// Exit 4: the play does not parse; the output names the build.
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 4 || !strings.Contains(string(out), "'gitlab_runner_auth.runner.sync_linux_amd64'") {
		t.Fatalf("a play calling sync_linux_amd64 loaded: %v\n%s", err, out)
	}
}

// TestReadmeFleetPlayIsAPlay: the README's fleet play (between its
// <!-- fleet-play --> markers) is a playbook ansible-playbook accepts with
// the installed collection: its tasks parse and its modules resolve.
// tests/docs checks its options and role; Molecule's fleet scenario runs
// its clean-up.
func TestReadmeFleetPlayIsAPlay(t *testing.T) {
	needSetup(t)
	readme := string(mustRead(t, filepath.Join(env.root, "README.md")))
	_, play, ok := strings.Cut(readme, "<!-- fleet-play -->\n```yaml\n")
	play, _, ok2 := strings.Cut(play, "```\n<!-- /fleet-play -->")
	if !ok || !ok2 {
		t.Fatal("README.md lacks its fleet play between <!-- fleet-play --> markers")
	}
	dir := t.TempDir()
	pb, inv := filepath.Join(dir, "fleet.yml"), filepath.Join(dir, "hosts")
	if err := os.WriteFile(pb, []byte(play), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(inv, []byte("[gitlab_runners]\nnode1\nnode2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ansible-playbook", "-i", inv, "--list-tasks", pb)
	cmd.Env = append(os.Environ(), "ANSIBLE_COLLECTIONS_PATH="+env.collections, "ANSIBLE_NOCOLOR=1")
	out, err := cmd.CombinedOutput()
	if err != nil || strings.Contains(string(out), "WARNING") {
		t.Fatalf("ansible-playbook --list-tasks on the README's fleet play: %v\n%s", err, out)
	}
	for _, task := range []string{"Declare and register this host's executors", "Delete the fleet's runners no host owns any more"} {
		if !strings.Contains(string(out), task) {
			t.Errorf("the README's fleet play lacks the task %q:\n%s", task, out)
		}
	}
}

// TestPluginMessagesCarryNoSecret: the messages the action plugin makes
// itself never show a token the task was given, even when Ansible's
// validator quotes a value (the token given to the wrong option too, which
// 2.19 also quotes in type errors), for sync and prune alike. Every output
// of the play is checked for the token as well (ansiblePlaybook).
func TestPluginMessagesCarryNoSecret(t *testing.T) {
	needSetup(t)
	eph := t.TempDir()
	if err := os.MkdirAll(filepath.Join(eph, "secrets"), 0o700); err != nil {
		t.Fatal(err)
	}
	pat := "glpat-plugin-message-" + strconv.FormatInt(int64(os.Getpid()), 10)
	if err := os.WriteFile(filepath.Join(eph, "secrets", "pat"), []byte(pat), 0o600); err != nil {
		t.Fatal(err)
	}
	client := "    clients: [{url: 'https://gl', personal_access_token: " + pat + "}]\n"
	res := runPlay(t, eph, nil, nil,
		"- name: token as the state\n  gitlab_runner_auth.runner.sync:\n    prefix: /nonexistent\n    state: "+pat+"\n"+client,
		"- name: token as the concurrency\n  gitlab_runner_auth.runner.sync:\n    prefix: /nonexistent\n    concurrency: "+pat+"\n"+client,
		"- name: token given as a list, and as the state\n  gitlab_runner_auth.runner.sync:\n    prefix: /nonexistent\n    state: "+pat+"\n    clients: [{url: 'https://gl', personal_access_token: ["+pat+"]}]\n",
		"- name: prune, token as the state\n  gitlab_runner_auth.runner.prune:\n    url: https://gl\n    personal_access_token: "+pat+"\n    state: "+pat+"\n",
		"- name: prune, token as the maximum\n  gitlab_runner_auth.runner.prune:\n    url: https://gl\n    personal_access_token: "+pat+"\n    max_delete: "+pat+"\n")
	for i, r := range res {
		b, _ := json.Marshal(r)
		if r["failed"] != true {
			t.Errorf("task %d did not fail: %s", i, b)
		}
		if strings.Contains(string(b), pat) {
			t.Errorf("task %d: the result shows the token: %s", i, b)
		}
	}
}

// TestCacheFolderIsChecked: a cache folder the launcher could not read
// safely out of the arguments file (relative, a quote) fails the task,
// naming the variable.
func TestCacheFolderIsChecked(t *testing.T) {
	needSetup(t)
	var tasks []string
	for _, dir := range []string{"relative/cache", `/tmp/a"b`} {
		tasks = append(tasks, "- name: cache folder "+dir+"\n  gitlab_runner_auth.runner.info:\n    prefix: /nonexistent\n    hostname: node1\n  vars:\n    gitlab_runner_auth_cache_dir: '"+dir+"'\n")
	}
	for i, r := range adhoc(t, nil, tasks...) {
		msg, _ := r["msg"].(string)
		if r["failed"] != true || !strings.Contains(msg, "gitlab_runner_auth_cache_dir") {
			t.Errorf("task %d: %v, want a failure naming gitlab_runner_auth_cache_dir", i, r)
		}
	}
}

package redact

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// pythonRedact runs the action plugin's copy of redaction by key
// (collection/plugins/plugin_utils/redact.py) on the controller's Python.
const pythonRedact = `
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location('gra_redact', sys.argv[1])
m = importlib.util.module_from_spec(spec)
spec.loader.exec_module(m)
req = json.load(sys.stdin)
fns = {'toml': m.redact_toml, 'yaml': m.redact_yaml, 'keys': m.redact_keys}
json.dump({
    'texts': [fns[c['format']](c['text']) for c in req['texts']],
    'keys': [m.is_secret_key(n) for n in req['names']],
    'names': [m.is_secret_name(n) for n in req['names']],
    'diff': m.scrub_diff(req['diff']),
}, sys.stdout)
`

type pyText struct {
	Format string `json:"format"`
	Text   string `json:"text"`
}

// The action plugin redacts by key as this package does (it is the
// controller's second line of defence): the same output for every golden
// file and every shape of value, the same secret names, and its diffs
// redacted by each file's format.
func TestActionPluginRedactsAsThisPackage(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not found: the action plugin's copy cannot be compared")
	}
	_, file, _, _ := runtime.Caller(0)
	module := filepath.Join(filepath.Dir(file), "..", "..", "collection", "plugins", "plugin_utils", "redact.py")

	var texts []pyText
	var want []string
	add := func(format, text string, redact func(string) string) {
		texts = append(texts, pyText{format, text})
		want = append(want, redact(text))
	}
	for name, g := range goldens(t) {
		switch filepath.Ext(name) {
		case ".toml":
			add("toml", g[0], TOML)
		case ".yaml":
			add("yaml", g[0], YAML)
		default:
			add("keys", g[0], Keys)
		}
	}
	ins, _, _ := tomlShapes()
	for _, in := range ins {
		add("toml", in, TOML)
		add("keys", in, Keys)
	}
	for _, tc := range yamlShapes {
		add("yaml", tc.in, YAML)
		add("keys", tc.in, Keys)
	}
	for _, in := range []string{"", Hidden, "token = \"<redacted>\"\n", "a: [\n", "x = " + strings.Repeat("[", 40) + strings.Repeat("]", 40) + "\n"} {
		add("toml", in, TOML)
		add("yaml", in, YAML)
		add("keys", in, Keys)
	}

	var names []string
	for _, s := range RunnerSecrets {
		names = append(names, s.Key, strings.ToLower(s.Key))
	}
	names = append(names, NotSecret...)
	names = append(names, "DB_PASSWORD", "AWS_ACCESS_KEY_ID", "GPG_KEY", "DOCKER_AUTH_CONFIG", "PWD", "LANG", "DB_PASSWORD_FILE",
		"ServerSideEncryptionKeyID", "HTTPSProxyPassword", "amazonec2-secret-key", "--password", "ünicode_token")

	golden := goldens(t)
	diff := []map[string]string{
		{"before_header": "/p/config.main.toml", "after_header": "/p/config.main.toml", "before": golden["runner-config.toml"][0], "after": ""},
		{"before_header": "/p/main/k8s.yaml", "after_header": "/p/main/k8s.yaml (removed)", "before": golden["executor.yaml"][0], "after": ""},
		{"before_header": "GitLab runner a (id 1)", "after_header": "GitLab runner a (id 1)", "before": golden["settings.txt"][0], "after": "paused: true\n"},
	}

	req, _ := json.Marshal(map[string]any{"texts": texts, "names": names, "diff": diff})
	cmd := exec.Command(py, "-c", pythonRedact, module)
	cmd.Stdin = bytes.NewReader(req)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", py, err, stderr.String())
	}
	var got struct {
		Texts []string            `json:"texts"`
		Keys  []bool              `json:"keys"`
		Names []bool              `json:"names"`
		Diff  []map[string]string `json:"diff"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for i, tc := range texts {
		if got.Texts[i] != want[i] {
			t.Errorf("%s %q:\nPython gives\n%s\nGo gives\n%s", tc.Format, tc.Text, got.Texts[i], want[i])
		}
	}
	for i, n := range names {
		if got.Keys[i] != IsSecretKey(n) || got.Names[i] != IsSecretName(n) {
			t.Errorf("%s: Python says key %v name %v, Go %v %v", n, got.Keys[i], got.Names[i], IsSecretKey(n), IsSecretName(n))
		}
	}
	wantDiff := []string{File("config.main.toml", diff[0]["before"]), File("k8s.yaml", diff[1]["before"]), Keys(diff[2]["before"])}
	for i, w := range wantDiff {
		if got.Diff[i]["before"] != w || got.Diff[i]["before_header"] != diff[i]["before_header"] {
			t.Errorf("diff %d: Python gives\n%v\nwant before\n%s", i, got.Diff[i], w)
		}
	}
}

package reliability

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/engine"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/input"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/plan"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/testkit/coretest"
)

type badInput struct {
	name  string
	setup func(t *testing.T, w *world) []string // returns extra CLI flags
	want  want
}

// want is the input error a case must give, read from the fields of
// --output json (input_errors), never from its wording: the option (as a
// flag), file, line, key and fix_option exactly, and whether it says what
// to do. Every error the run reports must match (a capture program fails
// once per executor).
type want struct {
	option string
	// file: "$PREFIX" is the prefix, "$ARG" the value given to option.
	file      string
	line      int
	key       string
	fix       bool
	fixOption string
	// golden, when set, is the first line of stderr without the
	// "register-runner: error: " prefix, word for word (with $PREFIX and
	// $ARG): the wording users see, kept for a few cases.
	golden string
}

// tpl is the template, as errors name it.
const tpl = "config.template.main.toml"

func script(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "capture")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	chmod(t, path, 0o755) // whatever the umask: a program others may write is refused
	return path
}

func exec1(w *world, extra string) string { return executorFile(w.sim.URL, "x", extra) }

func template(w *world, client string) string {
	return "concurrent = 2\n\n[[client_configs]]\nurl = \"" + w.sim.URL + "\"\n" + client
}

var badInputs = []badInput{
	{"malformed TOML executor", func(t *testing.T, w *world) []string {
		w.p.Executor("x.toml", "url = \n")
		return nil
	}, want{file: "main/x.toml", line: 1, key: "url"}},
	{"malformed YAML executor", func(t *testing.T, w *world) []string {
		w.p.Executor("x.yaml", "url: [unclosed\n")
		return nil
	}, want{file: "main/x.yaml", line: 1}},
	{"YAML that is not a mapping", func(t *testing.T, w *world) []string {
		w.p.Executor("x.yml", "- a\n- b\n")
		return nil
	}, want{file: "main/x.yml", line: 1}},
	{"malformed template", func(t *testing.T, w *world) []string {
		w.p.Write("config.template.main.toml", "concurrent = = 2\n")
		return nil
	}, want{file: tpl, line: 1, key: "concurrent"}},
	{"tags is a string", func(t *testing.T, w *world) []string {
		w.p.Executor("x.toml", exec1(w, "tags = \"gpu\"\n"))
		return nil
	}, want{file: "main/x.toml", key: "tags", fix: true}},
	{"run_untagged is a string", func(t *testing.T, w *world) []string {
		w.p.Executor("x.toml", exec1(w, "run_untagged = \"yes\"\n"))
		return nil
	}, want{file: "main/x.toml", key: "run_untagged"}},
	{"maximum_timeout is a string", func(t *testing.T, w *world) []string {
		w.p.Executor("x.toml", exec1(w, "maximum_timeout = \"1h\"\n"))
		return nil
	}, want{file: "main/x.toml", key: "maximum_timeout"}},
	{"maximum_timeout below GitLab's minimum", func(t *testing.T, w *world) []string {
		w.p.Executor("x.toml", exec1(w, "maximum_timeout = 60\n"))
		return nil
	}, want{file: "main/x.toml", key: "maximum_timeout"}},
	{"unknown access_level", func(t *testing.T, w *world) []string {
		w.p.Executor("x.toml", exec1(w, "access_level = \"everyone\"\n"))
		return nil
	}, want{file: "main/x.toml", key: "access_level"}},
	{"group runner without group_id", func(t *testing.T, w *world) []string {
		w.p.Executor("x.toml", exec1(w, "runner_type = \"group_type\"\n"))
		return nil
	}, want{file: "main/x.toml", key: "group_id", fix: true}},
	{"group_id is a string", func(t *testing.T, w *world) []string {
		w.p.Executor("x.toml", exec1(w, "runner_type = \"group_type\"\ngroup_id = \"ops\"\n"))
		return nil
	}, want{file: "main/x.toml", key: "group_id"}},
	{"env_tags is not a list", func(t *testing.T, w *world) []string {
		w.p.Executor("x.toml", exec1(w, "env_tags = \"CLUSTER\"\n"))
		return nil
	}, want{file: "main/x.toml", key: "env_tags", fix: true}},
	{"tag with a comma", func(t *testing.T, w *world) []string {
		w.p.Executor("x.toml", exec1(w, "tags = [\"a,b\"]\n"))
		return nil
	}, want{file: "main/x.toml", key: "tags", fix: true}},
	{"missing url", func(t *testing.T, w *world) []string {
		w.p.Executor("x.toml", "executor = \"shell\"\n")
		return nil
	}, want{file: "main/x.toml", key: "url", fix: true,
		golden: `main/x.toml: key url: missing; add url = "<GitLab URL from client_configs>" to select the GitLab this executor registers with`}},
	{"url matching no client", func(t *testing.T, w *world) []string {
		w.p.Executor("x.toml", "url = \"https://gitlab.example.org\"\n")
		return nil
	}, want{file: "main/x.toml", key: "url", fix: true}},
	// The URL rules (gitlab.NormalizeURL) still word their fix into the
	// message: no fix field for them yet.
	{"url that is not http", func(t *testing.T, w *world) []string {
		w.p.Executor("x.toml", "url = \"gitlab.example.org\"\n")
		return nil
	}, want{file: "main/x.toml", key: "url"}},
	{"executor type missing", func(t *testing.T, w *world) []string {
		w.p.Executor("x.toml", "url = \""+w.sim.URL+"\"\n")
		return nil
	}, want{file: "main/x.toml", key: "executor", fix: true}},
	{"token in an executor file", func(t *testing.T, w *world) []string {
		w.p.Executor("x.toml", exec1(w, "token = \"glrt-abc\"\n"))
		return nil
	}, want{file: "main/x.toml", key: "token", fix: true}},
	{"YAML null value", func(t *testing.T, w *world) []string {
		w.p.Executor("x.yaml", "url: "+w.sim.URL+"\nexecutor: shell\nbuilds_dir:\n")
		return nil
	}, want{file: "main/x.yaml", line: 3, key: "builds_dir", fix: true}},
	{"same name twice", func(t *testing.T, w *world) []string {
		w.p.Executor("a.yaml", "url: "+w.sim.URL+"\nexecutor: shell\n")
		return nil
	}, want{file: "main/a.yaml", fix: true}},
	{"bad file name", func(t *testing.T, w *world) []string {
		w.p.Executor("bad name.toml", exec1(w, ""))
		return nil
	}, want{file: "main/bad name.toml", fix: true}},
	{"duplicate description", func(t *testing.T, w *world) []string {
		w.p.Executor("x.toml", exec1(w, "description = \"shared\"\n"))
		w.p.Executor("y.toml", executorFile(w.sim.URL, "y", "description = \"shared\"\n"))
		return nil
	}, want{file: "main/y.toml", key: "description", fix: true}},
	{"empty executor folder", func(t *testing.T, w *world) []string {
		for _, n := range []string{"a", "b", "c", "d", "e"} {
			w.p.Remove("main/" + n + ".toml")
		}
		return nil
	}, want{file: "main", fix: true, fixOption: "--unregister"}},
	{"missing executor folder", func(t *testing.T, w *world) []string {
		if err := os.RemoveAll(filepath.Join(w.p.Dir, "main")); err != nil {
			t.Fatal(err)
		}
		return nil
	}, want{file: "main", fix: true}},
	{"missing template", func(t *testing.T, w *world) []string {
		w.p.Remove("config.template.main.toml")
		return nil
	}, want{file: tpl, fix: true}},
	{"template without client_configs", func(t *testing.T, w *world) []string {
		w.p.Write("config.template.main.toml", "concurrent = 2\n")
		return nil
	}, want{file: tpl, key: "client_configs", fix: true}},
	{"template with runners", func(t *testing.T, w *world) []string {
		w.p.Write("config.template.main.toml", template(w, "personal_access_token = \""+coretest.AdminPAT+"\"\n")+"\n[[runners]]\nname = \"hand\"\n")
		return nil
	}, want{file: tpl, key: "runners", fix: true}},
	{"misspelt client key", func(t *testing.T, w *world) []string {
		w.p.Write("config.template.main.toml", template(w, "personal_acess_token = \""+coretest.AdminPAT+"\"\n"))
		return nil
	}, want{file: tpl, key: "client_configs[0].personal_acess_token", fix: true}},
	{"client without any token", func(t *testing.T, w *world) []string {
		w.p.Write("config.template.main.toml", template(w, ""))
		return nil
	}, want{file: tpl, key: "client_configs[0].url", fix: true}},
	{"token given twice", func(t *testing.T, w *world) []string {
		w.p.Write("pat", coretest.AdminPAT)
		w.p.Write("config.template.main.toml", template(w, "personal_access_token = \""+coretest.AdminPAT+"\"\npersonal_access_token_file = \"pat\"\n"))
		return nil
	}, want{file: tpl, key: "client_configs[0].personal_access_token", fix: true}},
	{"TLS verification cannot be switched off", func(t *testing.T, w *world) []string {
		w.p.Write("config.template.main.toml", template(w, "personal_access_token = \""+coretest.AdminPAT+"\"\ntls_skip_verify = true\n"))
		return nil
	}, want{file: tpl, key: "client_configs[0].tls_skip_verify", fix: true}},
	{"placeholder registration token", func(t *testing.T, w *world) []string {
		w.p.Write("config.template.main.toml", template(w, "registration_token = \"{registration_token}\"\n"))
		return nil
	}, want{file: tpl, key: "client_configs[0].registration_token", fix: true}},
	{"placeholder PAT", func(t *testing.T, w *world) []string {
		w.p.Write("config.template.main.toml", template(w, "personal_access_token = \"{{ gitlab_pat }}\"\n"))
		return nil
	}, want{file: tpl, key: "client_configs[0].personal_access_token", fix: true}},
	{"placeholder PAT in angle brackets", func(t *testing.T, w *world) []string {
		w.p.Write("config.template.main.toml", template(w, "personal_access_token = \"<your-token>\"\n"))
		return nil
	}, want{file: tpl, key: "client_configs[0].personal_access_token", fix: true}},
	{"placeholder in a token file", func(t *testing.T, w *world) []string {
		w.p.Write("pat", "<personal access token>\n")
		w.p.Write("config.template.main.toml", template(w, "personal_access_token_file = \"pat\"\n"))
		return nil
	}, want{file: tpl, key: "client_configs[0].personal_access_token_file", fix: true}},
	{"empty token file", func(t *testing.T, w *world) []string {
		w.p.Write("pat", "\n")
		w.p.Write("config.template.main.toml", template(w, "personal_access_token_file = \"pat\"\n"))
		return nil
	}, want{file: tpl, key: "client_configs[0].personal_access_token_file", fix: true}},
	{"token file readable by group", func(t *testing.T, w *world) []string {
		f := w.p.Write("pat", coretest.AdminPAT+"\n")
		chmod(t, f, 0o640)
		w.p.Write("config.template.main.toml", template(w, "personal_access_token_file = \"pat\"\n"))
		return nil
	}, want{file: tpl, key: "client_configs[0].personal_access_token_file", fix: true}},
	{"prefix readable by everyone", func(t *testing.T, w *world) []string {
		chmod(t, w.p.Dir, 0o755)
		return nil
	}, want{file: "$PREFIX", fix: true}},
	{"executor folder open to group", func(t *testing.T, w *world) []string {
		chmod(t, filepath.Join(w.p.Dir, "main"), 0o770)
		return nil
	}, want{file: "main", fix: true}},
	{"template readable by others", func(t *testing.T, w *world) []string {
		chmod(t, filepath.Join(w.p.Dir, "config.template.main.toml"), 0o604)
		return nil
	}, want{file: tpl, fix: true}},
	{"unreadable executor file", func(t *testing.T, w *world) []string {
		if err := os.Symlink(filepath.Join(w.p.Dir, "nowhere.toml"), filepath.Join(w.p.Dir, "main", "x.toml")); err != nil {
			t.Fatal(err)
		}
		return nil
	}, want{file: "main/x.toml"}},
	{"executor file linked from outside the prefix", func(t *testing.T, w *world) []string {
		outside := filepath.Join(t.TempDir(), "evil.toml")
		if err := os.WriteFile(outside, []byte(exec1(w, "")), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(outside, filepath.Join(w.p.Dir, "main", "x.toml")); err != nil {
			t.Fatal(err)
		}
		return nil
	}, want{file: "main/x.toml", fix: true}},
	{"huge executor file", func(t *testing.T, w *world) []string {
		w.p.Executor("x.toml", exec1(w, "# "+strings.Repeat("x", 2<<20)+"\n"))
		return nil
	}, want{file: "main/x.toml"}},
	{"non-UTF-8 bytes", func(t *testing.T, w *world) []string {
		w.p.Executor("x.toml", exec1(w, "shell = \"b\xe4sh\"\n"))
		return nil
	}, want{file: "main/x.toml", line: 4, fix: true}},
	{"NUL byte", func(t *testing.T, w *world) []string {
		w.p.Executor("x.toml", exec1(w, "shell = \"bash\"\x00\n"))
		return nil
	}, want{file: "main/x.toml"}},
	{"instance equal to the host name", func(t *testing.T, w *world) []string {
		return []string{"--hostname", "main7"}
	}, want{option: "--service-instance", fix: true}},
	// Instance template.main, laid out in full, would write its config
	// over main's template.
	{"instance whose config is another instance's template", func(t *testing.T, w *world) []string {
		tplData, err := os.ReadFile(filepath.Join(w.p.Dir, tpl))
		if err != nil {
			t.Fatal(err)
		}
		w.p.Write("config.template.template.main.toml", string(tplData))
		w.p.Write("template.main/a.toml", exec1(w, ""))
		return []string{"--service-instance", "template.main"}
	}, want{option: "--service-instance", fix: true}},
	{"instance whose executor folder is another instance's config", func(t *testing.T, w *world) []string {
		return []string{"--service-instance", "config.main.toml"}
	}, want{option: "--service-instance", fix: true}},
	{"tag schema that is not JSON", func(t *testing.T, w *world) []string {
		return []string{"--tag-schema", w.p.Write("schema.json", "{not json")}
	}, want{option: "--tag-schema", file: "$ARG"}},
	{"tag schema that is not a schema", func(t *testing.T, w *world) []string {
		return []string{"--tag-schema", w.p.Write("schema.json", `{"type": 12}`)}
	}, want{option: "--tag-schema", file: "$ARG"}},
	{"tags violating the schema", func(t *testing.T, w *world) []string {
		return []string{"--tag-schema", w.p.Write("schema.json", `{"properties": {"instance": {"enum": ["gpu"]}}}`)}
	}, want{option: "--tag-schema", file: "$ARG",
		golden: "--tag-schema $ARG: executor a (main/a.toml): tag properties violate the schema: property /instance: enum: main does not equal any of: [gpu]"}},
	{"capture program that fails", func(t *testing.T, w *world) []string {
		return []string{"--capture-tags", script(t, "echo 'no inventory' >&2; exit 3")}
	}, want{option: "--capture-tags", file: "$ARG"}},
	{"capture program that hangs", func(t *testing.T, w *world) []string {
		return []string{"--capture-tags", script(t, "sleep 30"), "--capture-timeout", "300ms"}
	}, want{option: "--capture-tags", file: "$ARG", fix: true, fixOption: "--capture-timeout",
		golden: "--capture-tags $ARG: did not finish within 300ms for executor a; make it faster or raise --capture-timeout"}},
	{"capture program printing non-JSON", func(t *testing.T, w *world) []string {
		return []string{"--capture-tags", script(t, "echo hello")}
	}, want{option: "--capture-tags", file: "$ARG"}},
	// Whoever may change the capture program or the tag schema decides
	// what the run sends to GitLab.
	{"capture program writable by group", func(t *testing.T, w *world) []string {
		p := script(t, `echo '{"site": "x"}'`)
		chmod(t, p, 0o775)
		return []string{"--capture-tags", p}
	}, want{option: "--capture-tags", file: "$ARG", fix: true}},
	{"capture program that does not exist", func(t *testing.T, w *world) []string {
		return []string{"--capture-tags", filepath.Join(t.TempDir(), "missing")}
	}, want{option: "--capture-tags", file: "$ARG", fix: true}},
	{"tag schema writable by others", func(t *testing.T, w *world) []string {
		p := w.p.Write("schema.json", `{"type": "object"}`)
		chmod(t, p, 0o646)
		return []string{"--tag-schema", p}
	}, want{option: "--tag-schema", file: "$ARG", fix: true}},
	{"capture program printing numbers", func(t *testing.T, w *world) []string {
		return []string{"--capture-tags", script(t, `echo '{"cores": 64}'`)}
	}, want{option: "--capture-tags", file: "$ARG"}},
	{"corrupted live config", func(t *testing.T, w *world) []string {
		w.p.Write("config.main.toml", "[[runners]\nname = \n")
		return nil
	}, want{file: "config.main.toml", line: 2, key: "name", fix: true}},
	// gitlab-runner matches config.toml keys regardless of case: a key the
	// tool writes, in any case, would stand next to the tool's own value.
	{"Token in another case", func(t *testing.T, w *world) []string {
		w.p.Executor("x.toml", exec1(w, "Token = \"glrt-abc\"\n"))
		return nil
	}, want{file: "main/x.toml", key: "Token", fix: true}},
	{"URL in another case", func(t *testing.T, w *world) []string {
		w.p.Executor("x.toml", exec1(w, "URL = \"https://evil.example.org\"\n"))
		return nil
	}, want{file: "main/x.toml", key: "URL", fix: true}},
	{"ID in another case", func(t *testing.T, w *world) []string {
		w.p.Executor("x.toml", exec1(w, "ID = 7\n"))
		return nil
	}, want{file: "main/x.toml", key: "ID", fix: true}},
	{"Name in another case", func(t *testing.T, w *world) []string {
		w.p.Executor("x.toml", exec1(w, "Name = \"other\"\n"))
		return nil
	}, want{file: "main/x.toml", key: "Name", fix: true}},
	// tls-ca-file is written from the client's tls_ca_file: a second one
	// would make gitlab-runner trust another CA than the tool does.
	{"tls-ca-file in an executor file", func(t *testing.T, w *world) []string {
		w.p.Executor("x.toml", exec1(w, "tls-ca-file = \"/tmp/evil-ca.pem\"\n"))
		return nil
	}, want{file: "main/x.toml", key: "tls-ca-file", fix: true}},
	{"TLS-CA-FILE in another case", func(t *testing.T, w *world) []string {
		w.p.Executor("x.toml", exec1(w, "TLS-CA-FILE = \"/tmp/evil-ca.pem\"\n"))
		return nil
	}, want{file: "main/x.toml", key: "TLS-CA-FILE", fix: true}},
	{"Tls_Ca_File in an executor file", func(t *testing.T, w *world) []string {
		w.p.Executor("x.yaml", "url: "+w.sim.URL+"\nexecutor: shell\nTls_Ca_File: /tmp/evil-ca.pem\n")
		return nil
	}, want{file: "main/x.yaml", key: "Tls_Ca_File", fix: true}},
	{"Token_Expires_At in another case", func(t *testing.T, w *world) []string {
		w.p.Executor("x.yaml", "url: "+w.sim.URL+"\nexecutor: shell\nToken_Expires_At: 2099-01-01T00:00:00Z\n")
		return nil
	}, want{file: "main/x.yaml", key: "Token_Expires_At", fix: true}},
	{"token with a Kelvin sign", func(t *testing.T, w *world) []string {
		w.p.Executor("x.toml", exec1(w, "\"to\u212aen\" = \"glrt-abc\"\n"))
		return nil
	}, want{file: "main/x.toml", key: "to\u212aen", fix: true}},
	{"Executor in another case", func(t *testing.T, w *world) []string {
		w.p.Executor("x.toml", exec1(w, "Executor = \"docker\"\n"))
		return nil
	}, want{file: "main/x.toml", key: "Executor", fix: true}},
	{"GitLab-only key in another case", func(t *testing.T, w *world) []string {
		w.p.Executor("x.toml", exec1(w, "Tags = [\"gpu\"]\n"))
		return nil
	}, want{file: "main/x.toml", key: "Tags", fix: true}},
	{"template with Runners", func(t *testing.T, w *world) []string {
		w.p.Write("config.template.main.toml", template(w, "personal_access_token = \""+coretest.AdminPAT+"\"\n")+"\n[[Runners]]\nname = \"hand\"\n")
		return nil
	}, want{file: tpl, key: "Runners", fix: true}},
	{"template with Client_Configs", func(t *testing.T, w *world) []string {
		w.p.Write("config.template.main.toml", template(w, "personal_access_token = \""+coretest.AdminPAT+"\"\n")+"\n[[Client_Configs]]\nurl = \"https://evil.example.org\"\n")
		return nil
	}, want{file: tpl, key: "Client_Configs", fix: true}},
	// Parse errors and rejected URLs never quote a secret (every case is
	// also checked for "SECRET" in its output).
	{"unquoted token in the template", func(t *testing.T, w *world) []string {
		w.p.Write("config.template.main.toml", template(w, "personal_access_token = SECRETunquoted0123456789\n"))
		return nil
	}, want{file: tpl, line: 5, key: "personal_access_token"}},
	{"unquoted token in the live config", func(t *testing.T, w *world) []string {
		cfg := strings.Replace(w.p.Config(), "token = \"", "token = SECRETunquoted", 1)
		w.p.Write("config.main.toml", cfg)
		return nil
	}, want{file: "config.main.toml", line: 10, key: "token", fix: true}},
	{"YAML value that is not what its tag says", func(t *testing.T, w *world) []string {
		w.p.Executor("x.yaml", "url: "+w.sim.URL+"\nexecutor: shell\nsecret_number: !!int 12SECRETvalue34\n")
		return nil
	}, want{file: "main/x.yaml", line: 3, key: "secret_number", fix: true}},
	{"malformed url with a password and a query", func(t *testing.T, w *world) []string {
		w.p.Executor("x.toml", "url = \"https://user:SECRETpassword1@gitlab example.org/?private_token=SECRETquery123\"\n")
		return nil
	}, want{file: "main/x.toml", key: "url"}},
	{"url with a password", func(t *testing.T, w *world) []string {
		w.p.Write("config.template.main.toml", strings.Replace(template(w, "personal_access_token = \""+coretest.AdminPAT+"\"\n"), "http://", "http://root:SECRETpassword1@", 1))
		return nil
	}, want{file: tpl, key: "client_configs[0].url"}},
	{"url with a private_token query", func(t *testing.T, w *world) []string {
		w.p.Executor("x.toml", "url = \"https://gitlab.example.org/?private_token=SECRETquery123\"\n")
		return nil
	}, want{file: "main/x.toml", key: "url"}},
	{"url matching no client, with a password", func(t *testing.T, w *world) []string {
		w.p.Executor("x.toml", "url = \"https://u:SECRETpassword1@gitlab.example.org\"\n")
		return nil
	}, want{file: "main/x.toml", key: "url"}},
}

func chmod(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// jsonReport is what --output json says of a run.
type jsonReport struct {
	Failed      bool                  `json:"failed"`
	Msg         string                `json:"msg"`
	InputError  bool                  `json:"input_error"`
	InputErrors []input.Fields        `json:"input_errors"`
	Warnings    []string              `json:"warnings"`
	Runners     []engine.RunnerResult `json:"runners"`
}

// action is what the run did to the runner of the executor name ("" when
// the report has none).
func (r jsonReport) action(name string) plan.Action {
	for _, x := range r.Runners {
		if x.Name == name {
			return x.Action
		}
	}
	return ""
}

// readReport decodes the --output json document of a run.
func readReport(t *testing.T, stdout string) jsonReport {
	t.Helper()
	var r jsonReport
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatalf("not one JSON object (%v):\n%.2000s", err, stdout)
	}
	return r
}

// check fails unless every input error matches the case's want, with
// $PREFIX and $ARG replaced.
func (wt want) check(t *testing.T, got []input.Fields, prefix string, extra []string) {
	t.Helper()
	expand := func(s string) string {
		s = strings.ReplaceAll(s, "$PREFIX", prefix)
		for i := 0; i+1 < len(extra); i++ {
			if extra[i] == wt.option {
				s = strings.ReplaceAll(s, "$ARG", extra[i+1])
			}
		}
		return s
	}
	if len(got) == 0 {
		t.Fatal("no input_errors in the JSON report")
	}
	for _, g := range got {
		if g.Option != wt.option || g.File != expand(wt.file) || g.Line != wt.line || g.Key != wt.key ||
			g.FixOption != wt.fixOption || (g.Fix != "") != wt.fix || g.Message == "" {
			t.Errorf("input error %+v\nwant option %q, file %q, line %d, key %q, fix_option %q, a fix: %v",
				g, wt.option, expand(wt.file), wt.line, wt.key, wt.fixOption, wt.fix)
		}
	}
}

// TestBadInputCatalogue breaks the input in many ways after a good run: each
// must (with --strict) exit 2 naming the option, file, line and key at fault, and the fix
// where there is one, as fields; send nothing to GitLab; quote no secret;
// and leave the previous config byte-identical. A few cases also keep the
// message users read, word for word.
func TestBadInputCatalogue(t *testing.T) {
	if len(badInputs) < 30 {
		t.Fatalf("the catalogue has %d cases, want at least 30", len(badInputs))
	}
	for _, tc := range badInputs {
		t.Run(tc.name, func(t *testing.T) {
			w := baseline(t)
			// A good run first: this is the config that must survive.
			if code, _, stderr := runBinary(t, nil, w.cliArgs()...); code != 0 {
				t.Fatalf("good run failed: %s", stderr)
			}
			before, _ := os.ReadFile(w.p.ConfigPath())
			beforeInfo, _ := os.Stat(w.p.ConfigPath())
			extra := tc.setup(t, w)
			if strings.Contains(tc.name, "live config") {
				before, _ = os.ReadFile(w.p.ConfigPath())
				beforeInfo, _ = os.Stat(w.p.ConfigPath())
			}
			w.sim.ResetLog()
			// --strict: all or nothing (without it, an executor whose file
			// is bad is skipped and the others served: see
			// TestOneBadExecutorNeverTakesTheOthersOffline).
			code, stdout, stderr := runBinary(t, nil, w.cliArgs(append(extra, "--output", "json", "--strict")...)...)
			if code != 2 {
				t.Fatalf("exit %d, want 2\nstdout: %s\nstderr: %s", code, stdout, stderr)
			}
			var r jsonReport
			if err := json.Unmarshal([]byte(stdout), &r); err != nil || !r.Failed || !r.InputError {
				t.Fatalf("JSON report %s (%v): want failed, input_error", stdout, err)
			}
			tc.want.check(t, r.InputErrors, w.p.Dir, extra)
			if strings.Contains(stdout+stderr, "SECRET") {
				t.Errorf("the report quotes a secret from the input:\n%s\n%s", stdout, stderr)
			}
			if tc.want.golden != "" {
				golden := strings.NewReplacer("$PREFIX", w.p.Dir, "$ARG", flagValue(extra, tc.want.option)).Replace(tc.want.golden)
				_, _, text := runBinary(t, nil, w.cliArgs(append(extra, "--strict")...)...)
				if first, _, _ := strings.Cut(text, "\n"); first != "register-runner: error: "+golden {
					t.Errorf("stderr begins\n%s\nwant\nregister-runner: error: %s", first, golden)
				}
			}
			if n := len(w.sim.Requests()); n != 0 {
				t.Errorf("bad input still sent %d requests to GitLab", n)
			}
			after, _ := os.ReadFile(w.p.ConfigPath())
			afterInfo, _ := os.Stat(w.p.ConfigPath())
			if !bytes.Equal(before, after) || !beforeInfo.ModTime().Equal(afterInfo.ModTime()) {
				t.Error("the previous config was changed")
			}
		})
	}
	reportf(t, "bad input catalogue: %d CLI cases + %d module cases, each exit 2 / failed naming the option, file, line and key, config untouched", len(badInputs), len(moduleBadInputs))
}

// flagValue is the value given to flag in args ("" when absent).
func flagValue(args []string, flag string) string {
	for i := 0; i+1 < len(args); i++ {
		if args[i] == flag {
			return args[i+1]
		}
	}
	return ""
}

// moduleBadInputs are declarations the module must refuse before it writes
// any file or sends any request. Option parsing itself is tested in
// internal/module/module_test.go, and how messages reach the user in tests/ansible;
// no case is repeated there.
var moduleBadInputs = []struct {
	name string
	args func(w *world) map[string]any
	want want
}{
	{"executor without a name", func(w *world) map[string]any {
		return declare(w, map[string]any{"url": w.sim.URL, "executor": "shell"})
	}, want{option: "executors[0].name"}},
	{"executor without a url", func(w *world) map[string]any {
		return declare(w, map[string]any{"name": "x", "executor": "shell"})
	}, want{option: "executors[0].url"}},
	{"executor name leaving the folder", func(w *world) map[string]any {
		return declare(w, map[string]any{"name": "../../evil", "url": w.sim.URL, "executor": "shell"})
	}, want{option: "executors[0].name"}},
	{"null value in an executor", func(w *world) map[string]any {
		return declare(w, map[string]any{"name": "a", "url": w.sim.URL, "executor": "shell", "builds_dir": nil})
	}, want{option: "executors[0].builds_dir", fix: true}},
	{"tls-ca-file in an executor, in another case", func(w *world) map[string]any {
		return declare(w, map[string]any{"name": "a", "url": w.sim.URL, "executor": "shell", "TLS-CA-FILE": "/tmp/evil-ca.pem"})
	}, want{option: "executors[0].TLS-CA-FILE", fix: true}},
	// Its config would be main's template, written over.
	{"instance whose config is another instance's template", func(w *world) map[string]any {
		args := declare(w, map[string]any{"name": "a", "url": w.sim.URL, "executor": "shell"})
		args["instance"] = "template.main"
		return args
	}, want{option: "instance"}},
}

// declare gives the module one client (the simulator) and these executors.
func declare(w *world, executors ...map[string]any) map[string]any {
	var list []any
	for _, e := range executors {
		list = append(list, e)
	}
	return map[string]any{
		"clients":   []any{map[string]any{"url": w.sim.URL, "personal_access_token": coretest.AdminPAT}},
		"executors": list,
	}
}

// TestModuleBadInput runs the binary as Ansible does (one arguments file)
// on a host that synced fine: every bad declaration fails naming its
// option (input_errors), no file anywhere around the prefix is written or
// removed, and nothing is sent to GitLab.
func TestModuleBadInput(t *testing.T) {
	for _, tc := range moduleBadInputs {
		t.Run(tc.name, func(t *testing.T) {
			w := baseline(t)
			if code, _, stderr := runBinary(t, nil, w.cliArgs()...); code != 0 {
				t.Fatalf("good run failed: %s", stderr)
			}
			// The prefix's parent, so that a file written next to it counts.
			around := filepath.Dir(w.p.Dir)
			before := coretest.Tree(t, around)
			args := map[string]any{"prefix": w.p.Dir, "instance": "main", "hostname": hostname, "_ansible_check_mode": false}
			for k, v := range tc.args(w) {
				args[k] = v
			}
			b, _ := json.Marshal(args)
			path := filepath.Join(t.TempDir(), "args")
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			w.sim.ResetLog()
			code, stdout, _ := runBinary(t, nil, path)
			var r jsonReport
			if err := json.Unmarshal([]byte(stdout), &r); err != nil {
				t.Fatalf("not one JSON object: %q", stdout)
			}
			if code == 0 || !r.Failed {
				t.Fatalf("did not fail: %s", stdout)
			}
			tc.want.check(t, r.InputErrors, w.p.Dir, nil)
			if n := len(w.sim.Requests()); n != 0 {
				t.Errorf("bad input still sent %d requests to GitLab", n)
			}
			coretest.SameTree(t, "bad input", before, coretest.Tree(t, around), true)
		})
	}
}

package reliability

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/coretest"
)

type badInput struct {
	name  string
	setup func(t *testing.T, w *world) []string // returns extra CLI flags
	// want: the message must name the file, the key and the fix.
	want []string
}

func script(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "capture")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
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
	}, []string{"main/x.toml", "line 1"}},
	{"malformed YAML executor", func(t *testing.T, w *world) []string {
		w.p.Executor("x.yaml", "url: [unclosed\n")
		return nil
	}, []string{"main/x.yaml", "line"}},
	{"YAML that is not a mapping", func(t *testing.T, w *world) []string {
		w.p.Executor("x.yml", "- a\n- b\n")
		return nil
	}, []string{"main/x.yml", "must be a mapping"}},
	{"malformed template", func(t *testing.T, w *world) []string {
		w.p.Write("config.template.main.toml", "concurrent = = 2\n")
		return nil
	}, []string{"config.template.main.toml", "line 1"}},
	{"tags is a string", func(t *testing.T, w *world) []string {
		w.p.Executor("x.toml", exec1(w, "tags = \"gpu\"\n"))
		return nil
	}, []string{"main/x.toml", "key tags", "list of strings", `tags = ["a", "b"]`}},
	{"run_untagged is a string", func(t *testing.T, w *world) []string {
		w.p.Executor("x.toml", exec1(w, "run_untagged = \"yes\"\n"))
		return nil
	}, []string{"main/x.toml", "key run_untagged", "true or false"}},
	{"maximum_timeout is a string", func(t *testing.T, w *world) []string {
		w.p.Executor("x.toml", exec1(w, "maximum_timeout = \"1h\"\n"))
		return nil
	}, []string{"main/x.toml", "key maximum_timeout", "integer"}},
	{"maximum_timeout below GitLab's minimum", func(t *testing.T, w *world) []string {
		w.p.Executor("x.toml", exec1(w, "maximum_timeout = 60\n"))
		return nil
	}, []string{"main/x.toml", "key maximum_timeout", "minimum of 600"}},
	{"unknown access_level", func(t *testing.T, w *world) []string {
		w.p.Executor("x.toml", exec1(w, "access_level = \"everyone\"\n"))
		return nil
	}, []string{"main/x.toml", "key access_level", "not_protected, ref_protected"}},
	{"group runner without group_id", func(t *testing.T, w *world) []string {
		w.p.Executor("x.toml", exec1(w, "runner_type = \"group_type\"\n"))
		return nil
	}, []string{"main/x.toml", "key group_id", "group_id = <numeric id"}},
	{"group_id is a string", func(t *testing.T, w *world) []string {
		w.p.Executor("x.toml", exec1(w, "runner_type = \"group_type\"\ngroup_id = \"ops\"\n"))
		return nil
	}, []string{"main/x.toml", "key group_id", "integer"}},
	{"env_tags is not a list", func(t *testing.T, w *world) []string {
		w.p.Executor("x.toml", exec1(w, "env_tags = \"CLUSTER\"\n"))
		return nil
	}, []string{"main/x.toml", "key env_tags", "list of strings"}},
	{"tag with a comma", func(t *testing.T, w *world) []string {
		w.p.Executor("x.toml", exec1(w, "tags = [\"a,b\"]\n"))
		return nil
	}, []string{"main/x.toml", "key tags", "separate items"}},
	{"missing url", func(t *testing.T, w *world) []string {
		w.p.Executor("x.toml", "executor = \"shell\"\n")
		return nil
	}, []string{"main/x.toml", "key url", "missing", "add url ="}},
	{"url matching no client", func(t *testing.T, w *world) []string {
		w.p.Executor("x.toml", "url = \"https://gitlab.example.org\"\n")
		return nil
	}, []string{"main/x.toml", "key url", "is the url of no client", "known: http://127.0.0.1"}},
	{"url that is not http", func(t *testing.T, w *world) []string {
		w.p.Executor("x.toml", "url = \"gitlab.example.org\"\n")
		return nil
	}, []string{"main/x.toml", "key url", "not an http(s) URL", "https://gitlab.example.com"}},
	{"executor type missing", func(t *testing.T, w *world) []string {
		w.p.Executor("x.toml", "url = \""+w.sim.URL+"\"\n")
		return nil
	}, []string{"main/x.toml", "key executor", `executor = "shell"`}},
	{"token in an executor file", func(t *testing.T, w *world) []string {
		w.p.Executor("x.toml", exec1(w, "token = \"glrt-abc\"\n"))
		return nil
	}, []string{"main/x.toml", "key token", "must not be set", "remove it"}},
	{"YAML null value", func(t *testing.T, w *world) []string {
		w.p.Executor("x.yaml", "url: "+w.sim.URL+"\nexecutor: shell\nbuilds_dir:\n")
		return nil
	}, []string{"main/x.yaml", "builds_dir", "give a value or remove the key"}},
	{"same name twice", func(t *testing.T, w *world) []string {
		w.p.Executor("a.yaml", "url: "+w.sim.URL+"\nexecutor: shell\n")
		return nil
	}, []string{"main/a.yaml", "also defined by main/a.toml", "keep one"}},
	{"bad file name", func(t *testing.T, w *world) []string {
		w.p.Executor("bad name.toml", exec1(w, ""))
		return nil
	}, []string{"main/bad name.toml", "not a valid executor name", "rename"}},
	{"duplicate description", func(t *testing.T, w *world) []string {
		w.p.Executor("x.toml", exec1(w, "description = \"shared\"\n"))
		w.p.Executor("y.toml", executorFile(w.sim.URL, "y", "description = \"shared\"\n"))
		return nil
	}, []string{"main/y.toml", "key description", "make them unique"}},
	{"empty executor folder", func(t *testing.T, w *world) []string {
		for _, n := range []string{"a", "b", "c", "d", "e"} {
			w.p.Remove("main/" + n + ".toml")
		}
		return nil
	}, []string{"main: no executor files", "--unregister"}},
	{"missing executor folder", func(t *testing.T, w *world) []string {
		if err := os.RemoveAll(filepath.Join(w.p.Dir, "main")); err != nil {
			t.Fatal(err)
		}
		return nil
	}, []string{"/main", "does not exist", "mkdir -m 700"}},
	{"missing template", func(t *testing.T, w *world) []string {
		w.p.Remove("config.template.main.toml")
		return nil
	}, []string{"config.template.main.toml", "does not exist", "[[client_configs]]"}},
	{"template without client_configs", func(t *testing.T, w *world) []string {
		w.p.Write("config.template.main.toml", "concurrent = 2\n")
		return nil
	}, []string{"config.template.main.toml", "key client_configs: is missing", "add a [[client_configs]]"}},
	{"template with runners", func(t *testing.T, w *world) []string {
		w.p.Write("config.template.main.toml", template(w, "personal_access_token = \""+coretest.AdminPAT+"\"\n")+"\n[[runners]]\nname = \"hand\"\n")
		return nil
	}, []string{"config.template.main.toml", "key runners", "declare each executor as a file"}},
	{"misspelt client key", func(t *testing.T, w *world) []string {
		w.p.Write("config.template.main.toml", template(w, "personal_acess_token = \""+coretest.AdminPAT+"\"\n"))
		return nil
	}, []string{"config.template.main.toml", "client_configs[0].personal_acess_token", "unknown key", "use one of"}},
	{"client without any token", func(t *testing.T, w *world) []string {
		w.p.Write("config.template.main.toml", template(w, ""))
		return nil
	}, []string{"config.template.main.toml", "client_configs[0]", "neither personal_access_token nor registration_token", "add a personal_access_token"}},
	{"token given twice", func(t *testing.T, w *world) []string {
		w.p.Write("pat", coretest.AdminPAT)
		w.p.Write("config.template.main.toml", template(w, "personal_access_token = \""+coretest.AdminPAT+"\"\npersonal_access_token_file = \"pat\"\n"))
		return nil
	}, []string{"config.template.main.toml", "client_configs[0].personal_access_token", "not both"}},
	{"TLS verification cannot be switched off", func(t *testing.T, w *world) []string {
		w.p.Write("config.template.main.toml", template(w, "personal_access_token = \""+coretest.AdminPAT+"\"\ntls_skip_verify = true\n"))
		return nil
	}, []string{"config.template.main.toml", "client_configs[0].tls_skip_verify", "unknown key", "tls_ca_file"}},
	{"placeholder registration token", func(t *testing.T, w *world) []string {
		w.p.Write("config.template.main.toml", template(w, "registration_token = \"{registration_token}\"\n"))
		return nil
	}, []string{"config.template.main.toml", "client_configs[0].registration_token", "placeholder {registration_token}", "put the real token"}},
	{"placeholder PAT", func(t *testing.T, w *world) []string {
		w.p.Write("config.template.main.toml", template(w, "personal_access_token = \"{{ gitlab_pat }}\"\n"))
		return nil
	}, []string{"config.template.main.toml", "client_configs[0].personal_access_token", "placeholder", "put the real token"}},
	{"placeholder PAT in angle brackets", func(t *testing.T, w *world) []string {
		w.p.Write("config.template.main.toml", template(w, "personal_access_token = \"<your-token>\"\n"))
		return nil
	}, []string{"config.template.main.toml", "client_configs[0].personal_access_token", "placeholder", "put the real token"}},
	{"placeholder in a token file", func(t *testing.T, w *world) []string {
		w.p.Write("pat", "<personal access token>\n")
		w.p.Write("config.template.main.toml", template(w, "personal_access_token_file = \"pat\"\n"))
		return nil
	}, []string{"/pat", "placeholder", "write the real token"}},
	{"empty token file", func(t *testing.T, w *world) []string {
		w.p.Write("pat", "\n")
		w.p.Write("config.template.main.toml", template(w, "personal_access_token_file = \"pat\"\n"))
		return nil
	}, []string{"/pat", "key client_configs[0].personal_access_token_file", "file is empty", "write the token"}},
	{"token file readable by group", func(t *testing.T, w *world) []string {
		f := w.p.Write("pat", coretest.AdminPAT+"\n")
		chmod(t, f, 0o640)
		w.p.Write("config.template.main.toml", template(w, "personal_access_token_file = \"pat\"\n"))
		return nil
	}, []string{"/pat", "personal_access_token_file", "chmod 600"}},
	{"prefix readable by everyone", func(t *testing.T, w *world) []string {
		chmod(t, w.p.Dir, 0o755)
		return nil
	}, []string{w0dir, "prefix directory", "chmod 700"}},
	{"executor folder open to group", func(t *testing.T, w *world) []string {
		chmod(t, filepath.Join(w.p.Dir, "main"), 0o770)
		return nil
	}, []string{"/main", "executor folder", "chmod 700"}},
	{"template readable by others", func(t *testing.T, w *world) []string {
		chmod(t, filepath.Join(w.p.Dir, "config.template.main.toml"), 0o604)
		return nil
	}, []string{"config.template.main.toml", "template", "chmod 600"}},
	{"unreadable executor file", func(t *testing.T, w *world) []string {
		if err := os.Symlink(filepath.Join(w.p.Dir, "nowhere.toml"), filepath.Join(w.p.Dir, "main", "x.toml")); err != nil {
			t.Fatal(err)
		}
		return nil
	}, []string{"main/x.toml", "cannot be read"}},
	{"executor file linked from outside the prefix", func(t *testing.T, w *world) []string {
		outside := filepath.Join(t.TempDir(), "evil.toml")
		if err := os.WriteFile(outside, []byte(exec1(w, "")), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(outside, filepath.Join(w.p.Dir, "main", "x.toml")); err != nil {
			t.Fatal(err)
		}
		return nil
	}, []string{"main/x.toml", "outside the prefix", "copy the file into the prefix"}},
	{"huge executor file", func(t *testing.T, w *world) []string {
		w.p.Executor("x.toml", exec1(w, "# "+strings.Repeat("x", 2<<20)+"\n"))
		return nil
	}, []string{"main/x.toml", "larger than 1048576 bytes"}},
	{"non-UTF-8 bytes", func(t *testing.T, w *world) []string {
		w.p.Executor("x.toml", exec1(w, "shell = \"b\xe4sh\"\n"))
		return nil
	}, []string{"main/x.toml", "line 4", "not valid UTF-8", "save the file as UTF-8"}},
	{"NUL byte", func(t *testing.T, w *world) []string {
		w.p.Executor("x.toml", exec1(w, "shell = \"bash\"\x00\n"))
		return nil
	}, []string{"main/x.toml", "NUL"}},
	{"instance equal to the host name", func(t *testing.T, w *world) []string {
		return []string{"--hostname", "main7"}
	}, []string{"--service-instance", "equals the host name", "choose another instance name"}},
	{"tag schema that is not JSON", func(t *testing.T, w *world) []string {
		return []string{"--tag-schema", w.p.Write("schema.json", "{not json")}
	}, []string{"schema.json", "not valid JSON"}},
	{"tag schema that is not a schema", func(t *testing.T, w *world) []string {
		return []string{"--tag-schema", w.p.Write("schema.json", `{"type": 12}`)}
	}, []string{"schema.json", "not a valid JSON Schema"}},
	{"tags violating the schema", func(t *testing.T, w *world) []string {
		return []string{"--tag-schema", w.p.Write("schema.json", `{"properties": {"architecture": {"enum": ["s390x"]}}}`)}
	}, []string{"schema.json", "executor a", "property /architecture", "s390x"}},
	{"capture program that fails", func(t *testing.T, w *world) []string {
		return []string{"--capture-tags", script(t, "echo 'no inventory' >&2; exit 3")}
	}, []string{"--capture-tags", "failed for executor", "exit status 3", "no inventory"}},
	{"capture program that hangs", func(t *testing.T, w *world) []string {
		return []string{"--capture-tags", script(t, "sleep 30"), "--capture-timeout", "300ms"}
	}, []string{"--capture-tags", "did not finish within 300ms", "--capture-timeout"}},
	{"capture program printing non-JSON", func(t *testing.T, w *world) []string {
		return []string{"--capture-tags", script(t, "echo hello")}
	}, []string{"--capture-tags", "must print a JSON object", "hello"}},
	{"capture program printing numbers", func(t *testing.T, w *world) []string {
		return []string{"--capture-tags", script(t, `echo '{"cores": 64}'`)}
	}, []string{"--capture-tags", `property "cores"`, "string or a list of strings"}},
	{"corrupted live config", func(t *testing.T, w *world) []string {
		w.p.Write("config.main.toml", "[[runners]\nname = \n")
		return nil
	}, []string{"config.main.toml", "line 2", "move it away to have every runner adopted again"}},
	// gitlab-runner matches config.toml keys regardless of case: a key the
	// tool writes, in any case, would stand next to the tool's own value.
	{"Token in another case", func(t *testing.T, w *world) []string {
		w.p.Executor("x.toml", exec1(w, "Token = \"glrt-abc\"\n"))
		return nil
	}, []string{"main/x.toml", "key Token", "must not be set", "regardless of case"}},
	{"URL in another case", func(t *testing.T, w *world) []string {
		w.p.Executor("x.toml", exec1(w, "URL = \"https://evil.example.org\"\n"))
		return nil
	}, []string{"main/x.toml", "key URL", "regardless of case", "url"}},
	{"ID in another case", func(t *testing.T, w *world) []string {
		w.p.Executor("x.toml", exec1(w, "ID = 7\n"))
		return nil
	}, []string{"main/x.toml", "key ID", "must not be set"}},
	{"Name in another case", func(t *testing.T, w *world) []string {
		w.p.Executor("x.toml", exec1(w, "Name = \"other\"\n"))
		return nil
	}, []string{"main/x.toml", "key Name", "must not be set"}},
	{"Token_Expires_At in another case", func(t *testing.T, w *world) []string {
		w.p.Executor("x.yaml", "url: "+w.sim.URL+"\nexecutor: shell\nToken_Expires_At: 2099-01-01T00:00:00Z\n")
		return nil
	}, []string{"main/x.yaml", "key Token_Expires_At", "must not be set"}},
	{"token with a Kelvin sign", func(t *testing.T, w *world) []string {
		w.p.Executor("x.toml", exec1(w, "\"to\u212aen\" = \"glrt-abc\"\n"))
		return nil
	}, []string{"main/x.toml", "must not be set", "regardless of case"}},
	{"Executor in another case", func(t *testing.T, w *world) []string {
		w.p.Executor("x.toml", exec1(w, "Executor = \"docker\"\n"))
		return nil
	}, []string{"main/x.toml", "key Executor", "regardless of case", "executor"}},
	{"GitLab-only key in another case", func(t *testing.T, w *world) []string {
		w.p.Executor("x.toml", exec1(w, "Tags = [\"gpu\"]\n"))
		return nil
	}, []string{"main/x.toml", "key Tags", "regardless of case", "tags"}},
	{"template with Runners", func(t *testing.T, w *world) []string {
		w.p.Write("config.template.main.toml", template(w, "personal_access_token = \""+coretest.AdminPAT+"\"\n")+"\n[[Runners]]\nname = \"hand\"\n")
		return nil
	}, []string{"config.template.main.toml", "key Runners", "declare each executor as a file"}},
	{"template with Client_Configs", func(t *testing.T, w *world) []string {
		w.p.Write("config.template.main.toml", template(w, "personal_access_token = \""+coretest.AdminPAT+"\"\n")+"\n[[Client_Configs]]\nurl = \"https://evil.example.org\"\n")
		return nil
	}, []string{"config.template.main.toml", "key Client_Configs", "regardless of case", "client_configs"}},
	// Parse errors and rejected URLs never quote a secret (every case is
	// also checked for "SECRET" in its output).
	{"unquoted token in the template", func(t *testing.T, w *world) []string {
		w.p.Write("config.template.main.toml", template(w, "personal_access_token = SECRETunquoted0123456789\n"))
		return nil
	}, []string{"config.template.main.toml", "line 5", "key personal_access_token"}},
	{"unquoted token in the live config", func(t *testing.T, w *world) []string {
		cfg := strings.Replace(w.p.Config(), "token = \"", "token = SECRETunquoted", 1)
		w.p.Write("config.main.toml", cfg)
		return nil
	}, []string{"config.main.toml", "key token", "move it away"}},
	{"YAML value that is not what its tag says", func(t *testing.T, w *world) []string {
		w.p.Executor("x.yaml", "url: "+w.sim.URL+"\nexecutor: shell\nsecret_number: !!int 12SECRETvalue34\n")
		return nil
	}, []string{"main/x.yaml", "line 3", "secret_number"}},
	{"malformed url with a password and a query", func(t *testing.T, w *world) []string {
		w.p.Executor("x.toml", "url = \"https://user:SECRETpassword1@gitlab example.org/?private_token=SECRETquery123\"\n")
		return nil
	}, []string{"main/x.toml", "key url", "not an http(s) URL"}},
	{"url with a password", func(t *testing.T, w *world) []string {
		w.p.Write("config.template.main.toml", strings.Replace(template(w, "personal_access_token = \""+coretest.AdminPAT+"\"\n"), "http://", "http://root:SECRETpassword1@", 1))
		return nil
	}, []string{"config.template.main.toml", "client_configs[0].url", "must not contain credentials"}},
	{"url with a private_token query", func(t *testing.T, w *world) []string {
		w.p.Executor("x.toml", "url = \"https://gitlab.example.org/?private_token=SECRETquery123\"\n")
		return nil
	}, []string{"main/x.toml", "key url", "query"}},
	{"url matching no client, with a password", func(t *testing.T, w *world) []string {
		w.p.Executor("x.toml", "url = \"https://u:SECRETpassword1@gitlab.example.org\"\n")
		return nil
	}, []string{"main/x.toml", "key url"}},
}

// w0dir is matched against the prefix path, which every message names.
const w0dir = "etc-gitlab-runner"

func chmod(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// TestBadInputCatalogue breaks the input in many ways after a good run: each
// must exit 2 with a message naming the file, the key and the fix, send
// nothing to GitLab, and leave the previous config byte-identical.
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
			code, stdout, stderr := runBinary(t, nil, w.cliArgs(extra...)...)
			if code != 2 {
				t.Fatalf("exit %d, want 2\nstdout: %s\nstderr: %s", code, stdout, stderr)
			}
			for _, want := range tc.want {
				if !strings.Contains(stderr, want) {
					t.Errorf("message lacks %q:\n%s", want, stderr)
				}
			}
			if strings.Contains(stdout+stderr, "SECRET") {
				t.Errorf("the message quotes a secret from the input:\n%s", stderr)
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
	reportf(t, "bad input catalogue: %d CLI cases + %d module cases, each exit 2 / failed with file, key and fix, config untouched", len(badInputs), len(moduleBadInputs))
}

// moduleBadInputs are declarations the module must refuse before it writes
// any file or sends any request. Option parsing itself is tested in
// module/module_test.go, and how messages reach the user in tests/ansible;
// no case is repeated there.
var moduleBadInputs = []struct {
	name string
	args func(w *world) map[string]any
	want []string
}{
	{"executor without a name", func(w *world) map[string]any {
		return declare(w, map[string]any{"url": w.sim.URL, "executor": "shell"})
	}, []string{"executors[0].name is required"}},
	{"executor without a url", func(w *world) map[string]any {
		return declare(w, map[string]any{"name": "x", "executor": "shell"})
	}, []string{"executors[0].url is required"}},
	{"executor name leaving the folder", func(w *world) map[string]any {
		return declare(w, map[string]any{"name": "../../evil", "url": w.sim.URL, "executor": "shell"})
	}, []string{`name "../../evil" must be a plain file name`}},
	{"null value in an executor", func(w *world) map[string]any {
		return declare(w, map[string]any{"name": "a", "url": w.sim.URL, "executor": "shell", "builds_dir": nil})
	}, []string{"builds_dir", "null values cannot be written"}},
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
// on a host that synced fine: every bad declaration fails with a message
// naming it, and no file anywhere around the prefix is written or removed,
// and nothing is sent to GitLab.
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
			var res map[string]any
			if err := json.Unmarshal([]byte(stdout), &res); err != nil {
				t.Fatalf("not one JSON object: %q", stdout)
			}
			msg, _ := res["msg"].(string)
			if code == 0 || res["failed"] != true {
				t.Errorf("did not fail: %s", stdout)
			}
			for _, want := range tc.want {
				if !strings.Contains(msg, want) {
					t.Errorf("message %q lacks %q", msg, want)
				}
			}
			if n := len(w.sim.Requests()); n != 0 {
				t.Errorf("bad input still sent %d requests to GitLab", n)
			}
			coretest.SameTree(t, "bad input", before, coretest.Tree(t, around), true)
		})
	}
}

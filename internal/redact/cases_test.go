package redact

import (
	"strings"
	"testing"
)

// Texts with nothing to redact, or already redacted, or too odd to read,
// come out as they went in, whichever way they are read.
func TestTextsWithNothingToRedactStay(t *testing.T) {
	for _, in := range []string{
		"", Hidden, "token = \"<redacted>\"\n", "a: [\n",
		"x = " + strings.Repeat("[", 40) + strings.Repeat("]", 40) + "\n",
	} {
		for format, redact := range map[string]func(string) string{"TOML": TOML, "YAML": YAML, "Keys": Keys} {
			if got := redact(in); got != in {
				t.Errorf("%s(%q) = %q", format, in, got)
			}
		}
	}
}

// Keys reads a text as its format and redacts it as that format's own
// function does: every shape of value of TOML and of YAML.
func TestKeysRedactsAsTheTextsFormat(t *testing.T) {
	ins, _, _ := tomlShapes()
	for _, in := range ins {
		if got, want := Keys(in), TOML(in); got != want {
			t.Errorf("%q: Keys gives\n%s\nTOML gives\n%s", in, got, want)
		}
	}
	for _, tc := range yamlShapes {
		if got := Keys(tc.in); got != tc.want {
			t.Errorf("%q: Keys gives\n%s\nwant\n%s", tc.in, got, tc.want)
		}
	}
}

// A diff redacts each file by its name (.toml as TOML, .yaml and .yml as
// YAML, in any case), and text that names no file whatever its format.
func TestFileRedactsByName(t *testing.T) {
	g := goldens(t)
	for _, tc := range []struct{ name, golden string }{
		{"/p/config.main.toml", "runner-config.toml"},
		{"/p/main/k8s.yaml", "executor.yaml"},
		{"/p/main/k8s.YML", "executor.yaml"},
		{"/p/main/odd.toml", "odd-syntax.toml"},
	} {
		in := g[tc.golden]
		if got := File(tc.name, in[0]); got != in[1] {
			t.Errorf("File(%s, %s) gives\n%s\nwant\n%s", tc.name, tc.golden, got, in[1])
		}
	}
	if in := g["settings.txt"]; Keys(in[0]) != in[1] {
		t.Errorf("settings redacted to\n%s", Keys(in[0]))
	}
}

// Which names hold secrets, as settings (IsSecretKey) and as environment
// names (IsSecretName, which adds the word KEY).
func TestSecretKeysAndNames(t *testing.T) {
	for _, tc := range []struct {
		name     string
		key, env bool
	}{
		{"token", true, true}, {"AccessKey", true, true}, {"accesskey", true, true}, {"SecretKey", true, true},
		{"SessionToken", true, true}, {"PrivateKey", true, true}, {"AccountKey", true, true},
		{"bearer_token", true, true}, {"password", true, true}, {"sentry_dsn", true, true},
		{"personal_access_token", true, true}, {"registration_token", true, true},
		{"environment", false, false}, {"MachineOptions", false, false},
		{"tls-key-file", false, false}, {"key_file", false, false}, {"cert_file", false, false},
		{"identity_file", false, false}, {"key_path", false, false}, {"CredentialsFile", false, false},
		{"personal_access_token_file", false, false}, {"registration_token_file", false, false},
		{"token_obtained_at", false, false}, {"token_expires_at", false, false},
		{"image_pull_secrets", false, false}, {"pause_pod_image_pull_secrets", false, false},
		{"AccessID", false, false}, {"AccountName", false, false},
		{"ServerSideEncryptionKeyID", false, true}, {"key", false, true}, {"topology_key", false, true},
		{"DB_PASSWORD", true, true}, {"AWS_ACCESS_KEY_ID", true, true}, {"GPG_KEY", false, true},
		{"DOCKER_AUTH_CONFIG", true, true}, {"PWD", true, true}, {"LANG", false, false},
		{"DB_PASSWORD_FILE", false, false}, {"HTTPSProxyPassword", true, true},
		{"amazonec2-secret-key", true, true}, {"--password", true, true}, {"ünicode_token", true, true},
	} {
		if IsSecretKey(tc.name) != tc.key || IsSecretName(tc.name) != tc.env {
			t.Errorf("%s: secret key %v, secret name %v; want %v, %v", tc.name, IsSecretKey(tc.name), IsSecretName(tc.name), tc.key, tc.env)
		}
	}
}

// A YAML key may hold blanks: in text read line by line (YAML that does
// not parse, comments) the whole key is the name, not its last word.
func TestKeysWithBlanksReadLineByLine(t *testing.T) {
	for _, in := range []string{
		"db password: SECRET-1\nbroken: %\n",
		"- ci token of x: SECRET-1\nbroken: %\n",
		"executor = \"shell\"\n# token of ci: SECRET-1\n",
		"0:0TOKEN 0: SECRET-1\npass: %\n",
	} {
		for _, got := range []string{Keys(in), File("x.toml", in), File("x.yaml", in)} {
			if strings.Contains(got, "SECRET-") || got == Hidden {
				t.Errorf("%q redacted to %q", in, got)
			}
		}
	}
	if in := "note: see: the token\nbroken: %\n"; Keys(in) != in {
		t.Errorf("%q redacted to %q", in, Keys(in))
	}
}

package redact

import (
	"strings"
	"testing"
)

// tomlShapes are texts with a secret value of every shape TOML has, and
// the text around it.
func tomlShapes() (in []string, before, after string) {
	before, after = "first = 1\n", "   # note\nlast = 2\n"
	for _, v := range []string{
		`"SECRET-a"`, `'SECRET-a'`, `"SEC\"RET-a \\ \u00e9"`, `"SECRET-a # not a comment ]"`,
		"\"\"\"SECRET-a\nline 2\"\"\"", "'''\nSECRET-a\n'''", "\"\"\"SECRET-a \\\n  continued\"\"\"",
		"\"\"\"\"SECRET-a\"\"\"\"\"", "'''SECRET-a'' '''", `12345678`, `1979-05-27T07:32:00Z`, `1979-05-27 07:32:00`,
		`["SECRET-a", 'SECRET-b']`, "[\n  \"SECRET-a\", # c\n  '''SECRET-b\n'''\n]",
	} {
		for _, key := range []string{"password", "bearer_token", `"SecretKey"`, "cache.s3.SecretKey"} {
			in = append(in, before+key+" = "+v+after)
		}
	}
	return in, before, after
}

// yamlShapes are YAML texts with secret values of every shape, and their
// redaction.
var yamlShapes = []struct{ in, want string }{
	{"a: 1\npassword: SECRET-a\nb: 2\n", "a: 1\npassword: \"<redacted>\"\nb: 2\n"},
	{"a: 1\npassword: SECRET-a\n  more SECRET-b\n\n  and more # c\nb: 2\n", "a: 1\npassword: \"<redacted>\" # c\nb: 2\n"},
	{"password:\n  SECRET-a\nb: 2\n", "password:\n  \"<redacted>\"\nb: 2\n"},
	{"password: \"SECRET-a\n  \\\"SECRET-b\"\nb: 2\n", "password: \"<redacted>\"\nb: 2\n"},
	{"password: 'SECRET-a\n\n  ''SECRET-b'''\nb: 2\n", "password: \"<redacted>\"\nb: 2\n"},
	{"password: |-\n  SECRET-a\n\n    SECRET-b\n\nb: 2\n", "password: \"<redacted>\"\n\nb: 2\n"},
	{"password: |2  # c\n   SECRET-a\nb: 2\n", "password: \"<redacted>\"\nb: 2\n"},
	{"password: >+\n  SECRET-a\n  # not a comment\nb: 2\n", "password: \"<redacted>\"\nb: 2\n"},
	{"password: !!str &x SECRET-a\nb: *x\n", "password: !!str &x \"<redacted>\"\nb: *x\n"},
	{"runners:\n- name: a\n  ssh:\n    password: |\n      SECRET-a\n  url: x\n", "runners:\n- name: a\n  ssh:\n    password: \"<redacted>\"\n  url: x\n"},
	{"- - password: SECRET-a\n    b: 2\n", "- - password: \"<redacted>\"\n    b: 2\n"},
	{"x: {password: SECRET-a,\n  b: [DB_PASSWORD=SECRET-b, c]}\n", "x: {password: \"<redacted>\",\n  b: [\"DB_PASSWORD=<redacted>\", c]}\n"},
	{"tokens:\n- SECRET-a\n- |\n  SECRET-b\n- c: SECRET-not\n", "tokens:\n- \"<redacted>\"\n- \"<redacted>\"\n- c: SECRET-not\n"},
	{"a: 1\n---\npassword: SECRET-a\n...\n---\ntoken: 'SECRET-b'\n", "a: 1\n---\npassword: \"<redacted>\"\n...\n---\ntoken: \"<redacted>\"\n"},
	{"? password\n: SECRET-a\n", "? password\n: \"<redacted>\"\n"},
	{"\"pass\\x77ord\": SECRET-a\n", "\"pass\\x77ord\": \"<redacted>\"\n"},
	{"ü: ä\npassword: \"SECRET-ä\"\n", "ü: ä\npassword: \"<redacted>\"\n"},
	{"defaults: &d\n  user: ci\n  password: SECRET-a\nssh:\n  <<: *d\n  host: h\n", "defaults: &d\n  user: ci\n  password: \"<redacted>\"\nssh:\n  <<: *d\n  host: h\n"},
	// An alias used as a key is the key it stands for.
	{"a: &k password\n*k : SECRET-a\nb: 2\n", "a: &k password\n*k : \"<redacted>\"\nb: 2\n"},
	{"x: {a: &k bearer_token, *k : SECRET-a, b: 2}\n", "x: {a: &k bearer_token, *k : \"<redacted>\", b: 2}\n"},
	{"&k password: shown\nssh:\n  *k : |\n    SECRET-a\n  user: ci\n", "&k password: \"<redacted>\"\nssh:\n  *k : \"<redacted>\"\n  user: ci\n"},
}

// Each shape a secret value can take in TOML or YAML is redacted exactly:
// the secret is gone, the text is not hidden whole, and the text around
// it is left as it was.
func TestEveryShapeOfValue(t *testing.T) {
	ins, before, after := tomlShapes()
	for _, in := range ins {
		got := TOML(in)
		if strings.Contains(got, "SECRET-") || strings.Contains(got, "12345678") || strings.Contains(got, "07:32") || got == Hidden {
			t.Errorf("%s: got\n%s", in, got)
			continue
		}
		head := in[:len(before)+strings.Index(in[len(before):], " = ")+3]
		if !strings.HasPrefix(got, head) || !strings.HasSuffix(got, after) {
			t.Errorf("%s: the text around the value changed:\n%s", in, got)
		}
	}
	for _, tc := range yamlShapes {
		if got := YAML(tc.in); got != tc.want {
			t.Errorf("%q: got\n%s\nwant\n%s", tc.in, got, tc.want)
		}
	}
}

// A text nested deeper than gitlab-runner's settings ever are is not
// decoded (the TOML library would take minutes), only redacted line by
// line.
func TestDeepTextIsRedactedByLine(t *testing.T) {
	in := "token = \"SECRET-a\"\nx = " + strings.Repeat("{b=", 20000) + "1" + strings.Repeat("}", 20000) + "\n"
	if got := TOML(in); strings.Contains(got, "SECRET-") || !strings.HasPrefix(got, "token = \"<redacted>\"\nx = {b={b=") {
		t.Errorf("got %.80s", got)
	}
}

package redact

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
	"gopkg.in/yaml.v3"
)

// A generated secret: its text, and the markers in it that must not be
// found in what is shown (one per line of a multi-line secret).
type genSecret struct {
	value   string
	markers []string
	// shape reports a secret recognised by its shape alone, under any
	// key and in any text.
	shape bool
}

// secretShapes generate the secrets a runner's files hold.
var secretShapes = []struct {
	name string
	gen  func(g *gen) genSecret
}{
	{"glpat", func(g *gen) genSecret {
		m := g.marker()
		return genSecret{"glpat-" + m + g.alnum(6), []string{m}, true}
	}},
	{"glrt", func(g *gen) genSecret { m := g.marker(); return genSecret{"glrt-" + m + g.alnum(8), []string{m}, true} }},
	{"glrt-t1", func(g *gen) genSecret {
		m := g.marker()
		return genSecret{"glrt-t1_" + m + g.alnum(8), []string{m}, true}
	}},
	{"t1", func(g *gen) genSecret { m := g.marker(); return genSecret{"t1_" + m + g.alnum(10), []string{m}, true} }},
	{"routable", func(g *gen) genSecret {
		m := g.marker()
		return genSecret{"glrt-t2_" + m + "." + g.alnum(2) + "." + g.alnum(9), []string{m}, true}
	}},
	{"s3-key-id", func(g *gen) genSecret {
		m := strings.ToUpper(g.alnum(16))
		return genSecret{"AKIA" + m, []string{m}, true}
	}},
	{"s3-secret", func(g *gen) genSecret {
		m := g.marker()
		return genSecret{m + g.b64(20) + "/+" + g.b64(6), []string{m}, false}
	}},
	{"bearer", func(g *gen) genSecret {
		m := g.marker()
		return genSecret{"Bearer " + m + ".eyJ" + g.b64(12), []string{m}, true}
	}},
	{"base64", func(g *gen) genSecret {
		m := g.marker()
		return genSecret{g.b64(8) + m + g.b64(30) + "==", []string{m}, false}
	}},
	{"base64-lines", func(g *gen) genSecret {
		var lines, ms []string
		for range 3 {
			m := g.marker()
			ms = append(ms, m)
			lines = append(lines, m+g.b64(40))
		}
		return genSecret{strings.Join(lines, "\n") + "==", ms, false}
	}},
	{"pem", func(g *gen) genSecret {
		label := []string{"RSA PRIVATE KEY", "PRIVATE KEY", "OPENSSH PRIVATE KEY", "EC PRIVATE KEY"}[g.r.IntN(4)]
		lines := []string{"-----BEGIN " + label + "-----"}
		var ms []string
		for range 3 {
			m := g.marker()
			ms = append(ms, m)
			lines = append(lines, "MII"+m+g.b64(40))
		}
		lines = append(lines, "-----END "+label+"-----")
		return genSecret{strings.Join(lines, "\n"), ms, true}
	}},
	{"url-userinfo", func(g *gen) genSecret {
		m := g.marker()
		return genSecret{"https://ci:" + m + "@gitlab.example.com/x", []string{m}, true}
	}},
	{"webhook", func(g *gen) genSecret {
		m := g.marker()
		return genSecret{"https://hooks.slack.com/services/T0" + g.alnum(4) + "/B0" + g.alnum(4) + "/" + m, []string{m}, true}
	}},
	{"quotes-escapes-unicode", func(g *gen) genSecret {
		m1, m2 := g.marker(), g.marker()
		odd := []string{`"`, `'`, `\`, `\"`, `''`, "é", "✓", "ü", "\t", "#", ": ", " = ", "$", "`"}
		return genSecret{m1 + odd[g.r.IntN(len(odd))] + odd[g.r.IntN(len(odd))] + m2, []string{m1, m2}, false}
	}},
	{"passphrase", func(g *gen) genSecret {
		m := g.marker()
		return genSecret{"correct horse " + m + " staple", []string{m}, false}
	}},
}

type gen struct{ r *rand.Rand }

func (g *gen) pick(set string, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = set[g.r.IntN(len(set))]
	}
	return string(b)
}
func (g *gen) alnum(n int) string {
	return g.pick("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", n)
}
func (g *gen) b64(n int) string {
	return g.pick("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/", n)
}

// marker is a word no text around a secret holds.
func (g *gen) marker() string { return "Mk" + g.pick("abcdefghijklmnopqrstuvwxyz0123456789", 12) }

// Encoders: each gives the secret written for a position, or false when
// that form cannot hold it.
func tomlBasic(v string) string { return tomlQuote(v) }
func tomlQuote(v string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range v {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\t':
			b.WriteString(`\t`)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
func tomlLiteral(v string) (string, bool) {
	return "'" + v + "'", !strings.ContainsAny(v, "'\n\t")
}
func tomlMultiBasic(v string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\t", `\t`)
	return "\"\"\"\n" + r.Replace(v) + "\n\"\"\""
}
func tomlMultiLiteral(v string) (string, bool) {
	return "'''\n" + v + "\n'''", !strings.Contains(v, "'''") && !strings.Contains(v, "\t") && !strings.HasSuffix(v, "'")
}
func yamlDouble(v string) string {
	b, _ := json.Marshal(v)
	return string(b)
}
func yamlSingle(v string) (string, bool) {
	return "'" + strings.ReplaceAll(v, "'", "''") + "'", !strings.ContainsAny(v, "\n\t")
}
func yamlBlock(v, indent string) (string, bool) {
	lines := strings.Split(v, "\n")
	for _, l := range lines {
		if l == "" || l[0] == ' ' || strings.ContainsAny(l, "\t") || strings.HasSuffix(l, " ") {
			return "", false
		}
	}
	return "|-\n" + indent + strings.Join(lines, "\n"+indent), true
}
func shellQuote(v string) string {
	if !strings.ContainsAny(v, "'") {
		return "'" + v + "'"
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "$", `\$`, "`", "\\`").Replace(v) + `"`
}
func commented(prefix, v string) string {
	return prefix + strings.ReplaceAll(v, "\n", "\n"+prefix)
}

// A position puts a secret in a file: the file's name (its format), the
// lines holding the secret, and whether the file's parser must read it
// (a commented position need not).
type position struct {
	name, file string
	// lines gives the text for a secret; false when the position cannot
	// hold it.
	lines func(s genSecret) (string, bool)
	// any: the position is under no secret name; only secrets recognised
	// by their shape are put there.
	any bool
}

var positions = []position{
	// TOML
	{"toml key", "x.toml", func(s genSecret) (string, bool) { return "password = " + tomlBasic(s.value), true }, false},
	{"toml literal", "x.toml", func(s genSecret) (string, bool) { v, ok := tomlLiteral(s.value); return "token = " + v, ok }, false},
	{"toml dotted key", "x.toml", func(s genSecret) (string, bool) { return "cache.s3.SecretKey = " + tomlBasic(s.value), true }, false},
	{"toml folded key", "x.toml", func(s genSecret) (string, bool) { return "\"pa\u017f\u017fword\" = " + tomlBasic(s.value), true }, false},
	{"toml inline table", "x.toml", func(s genSecret) (string, bool) {
		return "ssh = { user = \"ci\", password = " + tomlBasic(s.value) + ", port = 22 }", true
	}, false},
	{"toml array", "x.toml", func(s genSecret) (string, bool) { return "tokens = [\"other-x\", " + tomlBasic(s.value) + "]", true }, false},
	{"toml multi-line basic", "x.toml", func(s genSecret) (string, bool) { return "PrivateKey = " + tomlMultiBasic(s.value), true }, false},
	{"toml multi-line literal", "x.toml", func(s genSecret) (string, bool) {
		v, ok := tomlMultiLiteral(s.value)
		return "AccountKey = " + v, ok
	}, false},
	{"toml environment", "x.toml", func(s genSecret) (string, bool) {
		return "environment = [\"PLAIN=x\", " + tomlBasic("GH_PAT="+s.value) + ", " + tomlBasic("DOCKER_CREDS="+s.value) + "]", true
	}, false},
	{"toml script", "x.toml", func(s genSecret) (string, bool) {
		return "pre_build_script = " + tomlBasic("echo hi\nexport AWS_SECRET_ACCESS_KEY="+shellQuote(s.value)+"\nmake"), true
	}, false},
	{"toml script literal", "x.toml", func(s genSecret) (string, bool) {
		v, ok := tomlMultiLiteral("echo hi\nexport GH_TOKEN=" + shellQuote(s.value) + " && JWT=" + shellQuote(s.value) + " make")
		return "post_build_script = " + v, ok
	}, false},
	{"toml any key", "x.toml", func(s genSecret) (string, bool) { return "description = " + tomlBasic(s.value), true }, true},
	{"toml commented", "x.toml", func(s genSecret) (string, bool) { return "# password = " + tomlBasic(s.value), true }, false},
	{"toml commented block", "x.toml", func(s genSecret) (string, bool) {
		return "# PrivateKey = \"\"\"\n" + commented("# ", s.value) + "\n# \"\"\"", !strings.Contains(s.value, `"""`)
	}, false},
	{"toml commented literal block", "x.toml", func(s genSecret) (string, bool) {
		return "  #SecretKey = '''" + commented("  #", s.value) + "'''", !strings.Contains(s.value, "'")
	}, false},
	{"toml commented array", "x.toml", func(s genSecret) (string, bool) {
		return "# secrets = [\n#   " + tomlBasic(s.value) + ",\n#   " + tomlBasic(s.value) + "\n# ]", true
	}, false},
	{"toml commented environment", "x.toml", func(s genSecret) (string, bool) {
		return "# environment = [" + tomlBasic("BEARER="+s.value) + ", \"PLAIN=x\"]", true
	}, false},
	{"toml commented script", "x.toml", func(s genSecret) (string, bool) {
		return "# pre_get_sources_script = " + tomlBasic("export COOKIE="+shellQuote(s.value)), true
	}, false},
	// YAML
	{"yaml double-quoted", "x.yaml", func(s genSecret) (string, bool) { return "password: " + yamlDouble(s.value), true }, false},
	{"yaml single-quoted", "x.yaml", func(s genSecret) (string, bool) { v, ok := yamlSingle(s.value); return "secret: " + v, ok }, false},
	{"yaml plain", "x.yaml", func(s genSecret) (string, bool) { return "bearer_token: " + s.value, yamlPlainOK(s.value) }, false},
	{"yaml literal block", "x.yaml", func(s genSecret) (string, bool) { v, ok := yamlBlock(s.value, "  "); return "PrivateKey: " + v, ok }, false},
	{"yaml folded block", "x.yaml", func(s genSecret) (string, bool) {
		v, ok := yamlBlock(s.value, "    ")
		return "ssh:\n  password: >" + strings.TrimPrefix(v, "|") + "\n  user: ci", ok
	}, false},
	{"yaml folded key", "x.yaml", func(s genSecret) (string, bool) { return "Account\u212Aey: " + yamlDouble(s.value), true }, false},
	{"yaml flow mapping", "x.yaml", func(s genSecret) (string, bool) {
		return "ssh: {user: ci, password: " + yamlDouble(s.value) + ", port: 22}", true
	}, false},
	{"yaml flow list", "x.yaml", func(s genSecret) (string, bool) { return "tokens: [other-x, " + yamlDouble(s.value) + "]", true }, false},
	{"yaml block list", "x.yaml", func(s genSecret) (string, bool) { return "tokens:\n  - other-x\n  - " + yamlDouble(s.value), true }, false},
	{"yaml nested", "x.yaml", func(s genSecret) (string, bool) {
		v, ok := yamlBlock(s.value, "      ")
		return "runners:\n- name: a\n  ssh:\n    user: ci\n    password: " + v + "\n  url: https://gitlab.example.com", ok
	}, false},
	{"yaml anchor", "x.yaml", func(s genSecret) (string, bool) {
		return "defaults: &d " + yamlDouble(s.value) + "\nssh:\n  password: *d", true
	}, false},
	{"yaml merge", "x.yaml", func(s genSecret) (string, bool) {
		return "base: &b\n  password: " + yamlDouble(s.value) + "\nssh:\n  <<: *b\n  port: 22", true
	}, false},
	{"yaml alias key", "x.yaml", func(s genSecret) (string, bool) {
		return "k: &k registration_token\n*k : " + yamlDouble(s.value), true
	}, false},
	{"yaml environment", "x.yaml", func(s genSecret) (string, bool) {
		return "environment:\n  - PLAIN=x\n  - " + yamlDouble("JWT="+s.value) + "\n  - " + yamlDouble("SLACK_WEBHOOK="+s.value), true
	}, false},
	{"yaml script block", "x.yaml", func(s genSecret) (string, bool) {
		v, ok := yamlBlock("echo hi\nexport GH_PAT="+shellQuote(s.value)+"\nmake", "  ")
		return "pre_build_script: " + v, ok
	}, false},
	{"yaml script quoted", "x.yaml", func(s genSecret) (string, bool) {
		return "post_get_sources_script: " + yamlDouble("export DOCKER_CREDS="+shellQuote(s.value)+"; make"), true
	}, false},
	{"yaml any key", "x.yaml", func(s genSecret) (string, bool) { return "description: " + yamlDouble(s.value), true }, true},
	{"yaml commented", "x.yaml", func(s genSecret) (string, bool) { return "# password: " + yamlDouble(s.value), true }, false},
	{"yaml commented block", "x.yaml", func(s genSecret) (string, bool) {
		return "# password: |\n" + commented("#   ", s.value), true
	}, false},
	{"yaml commented list", "x.yaml", func(s genSecret) (string, bool) {
		return "#tokens:\n#- " + yamlDouble(s.value) + "\n#- " + yamlDouble(s.value), true
	}, false},
	// JSON, read whatever its format
	{"json", "x.json", func(s genSecret) (string, bool) {
		return `{"runners": [{"token": ` + yamlDouble(s.value) + `, "id": 7}]}`, true
	}, false},
}

func yamlPlainOK(v string) bool {
	var got map[string]any
	if yaml.Unmarshal([]byte("k: "+v+"\n"), &got) != nil {
		return false
	}
	return got["k"] == v
}

// The neighbours of every secret, shown as they are.
var neighbours = map[string][2]string{
	"x.toml": {"executor = \"shell\"\nshell = \"bash\"\n", "builds_dir = \"/builds/%s\"\n# shell = \"sh\"\n"},
	"x.yaml": {"executor: shell\nshell: bash\n", "builds_dir: /builds/%s\n# shell: sh\n"},
}

// Every shape of secret, in every position it can take in a runner's
// files, is gone from what redaction shows, and the settings around it
// are shown as they were: the text is not hidden whole, and redacting it
// again changes nothing.
func TestGeneratedSecretsNeverShown(t *testing.T) {
	g := &gen{rand.New(rand.NewPCG(25, 2026))}
	ran := map[string]int{}
	for _, shape := range secretShapes {
		for _, pos := range positions {
			for variant := range 4 {
				sec := shape.gen(g)
				if pos.any && !sec.shape {
					continue
				}
				lines, ok := pos.lines(sec)
				if !ok {
					continue
				}
				keep := g.marker()
				var text string
				if nb, found := neighbours[pos.file]; found {
					text = nb[0] + lines + "\n" + fmt.Sprintf(nb[1], keep)
				} else {
					text = lines + "\n"
				}
				if !strings.Contains(pos.name, "commented") {
					mustParse(t, pos.file, text)
				}
				ran[pos.name]++
				label := fmt.Sprintf("%s in %s (%d)", shape.name, pos.name, variant)
				redactors := map[string]func(string) string{"File": func(s string) string { return File(pos.file, s) }, "Keys": Keys}
				for how, redact := range redactors {
					got := redact(text)
					for _, m := range sec.markers {
						if strings.Contains(got, m) {
							t.Errorf("%s, %s: the secret is shown:\n%s\nfrom\n%s", label, how, got, text)
							break
						}
					}
					if got == Hidden {
						t.Errorf("%s, %s: hidden whole:\n%s", label, how, text)
						continue
					}
					if nb, found := neighbours[pos.file]; found {
						after := fmt.Sprintf(nb[1], keep)
						if !strings.HasPrefix(got, nb[0]) || !strings.HasSuffix(got, after) {
							t.Errorf("%s, %s: the settings around it changed:\n%s", label, how, got)
						}
					}
					if again := redact(got); again != got {
						t.Errorf("%s, %s: redacting again changes it:\n%s\nto\n%s", label, how, got, again)
					}
				}
				if sec.shape {
					// Recognised by shape in any text: an error message, JSON.
					var r *Redactor
					msg := "GitLab said: " + sec.value + " (" + keep + ")"
					js, _ := json.Marshal(map[string]string{"msg": msg})
					for _, got := range []string{r.Redact(msg), r.Redact(string(js))} {
						for _, m := range sec.markers {
							if strings.Contains(got, m) || !strings.Contains(got, keep) {
								t.Errorf("%s: in text, redacted to %q", shape.name, got)
								break
							}
						}
					}
				}
			}
		}
	}
	t.Logf("secrets per position: %v", ran)
	for _, pos := range positions {
		if ran[pos.name] < 8 {
			t.Errorf("position %s held only %d secrets: the generator does not exercise it", pos.name, ran[pos.name])
		}
	}
}

// mustParse fails the test when a generated text is not what its format
// reads: the generator, not redaction, would be at fault.
func mustParse(t *testing.T, file, text string) {
	t.Helper()
	var err error
	if strings.HasSuffix(file, ".toml") {
		var m map[string]any
		_, err = toml.Decode(text, &m)
	} else {
		var m any
		err = yaml.Unmarshal([]byte(text), &m)
	}
	if err != nil {
		t.Fatalf("generated %s does not parse (%v):\n%s", file, err, text)
	}
}

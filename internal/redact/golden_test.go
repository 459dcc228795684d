package redact

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/table"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/keys")

// redactByName redacts a golden input as its name says: .toml as TOML,
// .yaml as YAML, anything else whatever its format (Keys).
func redactByName(name, text string) string {
	switch filepath.Ext(name) {
	case ".toml":
		return TOML(text)
	case ".yaml":
		return YAML(text)
	}
	return Keys(text)
}

// goldens are the inputs of testdata/keys with their expected outputs
// (NAME.want).
func goldens(t *testing.T) map[string][2]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "keys", "*"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][2]string{}
	for _, f := range files {
		if strings.HasSuffix(f, ".want") {
			continue
		}
		in, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := os.ReadFile(f + ".want")
		out[filepath.Base(f)] = [2]string{string(in), string(want)}
	}
	if len(out) == 0 {
		t.Fatal("no golden files")
	}
	return out
}

// Every value under a secret key, and every secret NAME=value entry, is
// redacted whatever its shape — multi-line strings, block scalars, values
// reached through an alias — and nothing else changes. Every secret of
// the inputs holds "SECRET-".
func TestRedactByKeyGolden(t *testing.T) {
	for name, g := range goldens(t) {
		got := redactByName(name, g[0])
		if *update {
			if err := os.WriteFile(filepath.Join("testdata", "keys", name+".want"), []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if strings.Contains(got, "SECRET-") {
			t.Errorf("%s: a secret is left:\n%s", name, got)
		}
		if got != g[1] {
			t.Errorf("%s: got\n%s\nwant\n%s", name, got, g[1])
		}
		if again := redactByName(name, got); again != got {
			t.Errorf("%s: redacting again changes it:\n%s", name, again)
		}
	}
}

// Table, which masks a config rendered for a diff, follows the rule TOML
// applies to text: masking the table and redacting its text agree.
func TestTableAgreesWithText(t *testing.T) {
	compared := map[string]bool{}
	for name, g := range goldens(t) {
		if filepath.Ext(name) != ".toml" {
			continue
		}
		tb, err := table.ParseTOML([]byte(g[0]))
		if err != nil {
			continue // not TOML, or not a config gitlab-runner reads
		}
		compared[name] = true
		text := string(table.EncodeTOML(tb))
		masked, redacted := string(table.EncodeTOML(Table(tb))), TOML(text)
		if masked != redacted {
			t.Errorf("%s: Table gives\n%s\nTOML gives\n%s", name, masked, redacted)
		}
		if strings.Contains(masked, "SECRET-") {
			t.Errorf("%s: Table leaves a secret:\n%s", name, masked)
		}
	}
	// The rendered config with secrets of every kind, scripts included.
	for _, name := range []string{"runner-config.toml", "scripts.toml", "odd-syntax.toml"} {
		if !compared[name] {
			t.Errorf("%s was not compared", name)
		}
	}
}

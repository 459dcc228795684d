package redact

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzRedactByKey: whatever the text, redaction by key does not panic,
// and what it gives, read as TOML or YAML, holds no unredacted secret.
func FuzzRedactByKey(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "keys", "*"))
	for _, file := range files {
		if b, err := os.ReadFile(file); err == nil {
			f.Add(string(b))
		}
	}
	f.Fuzz(func(t *testing.T, text string) {
		keys := Keys(text)
		for _, out := range []string{TOML(text), keys} {
			if m, _, ok := decodeTOML(out); ok && hasSecrets(m) {
				t.Fatalf("secret left in\n%s\nfrom\n%s", out, text)
			}
		}
		for _, out := range []string{YAML(text), keys} {
			if isTOML(out) {
				continue // Keys read it as TOML
			}
			if docs, err := yamlDocs(out); err == nil {
				if left, ok := yamlSecrets(docs); ok && len(left) > 0 {
					t.Fatalf("secret left in\n%s\nfrom\n%s", out, text)
				}
			}
		}
	})
}

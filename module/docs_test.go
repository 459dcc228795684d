package module

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// Each module's documented options (its DOCUMENTATION, which the action
// plugin also turns into the argument spec checked on the controller) are
// exactly the options the binary accepts.
func TestDocumentedOptionsAreTheBinarys(t *testing.T) {
	for module, options := range map[string][]string{"sync": topLevel, "info": infoOptions, "prune": pruneOptions} {
		b, err := os.ReadFile(filepath.Join("..", "collection", "plugins", "modules", module+".py"))
		if err != nil {
			t.Fatal(err)
		}
		_, doc, ok := strings.Cut(string(b), "DOCUMENTATION = r'''")
		doc, _, ok2 := strings.Cut(doc, "'''")
		if !ok || !ok2 {
			t.Fatalf("%s.py: no DOCUMENTATION", module)
		}
		var d struct {
			Options map[string]any `yaml:"options"`
		}
		if err := yaml.Unmarshal([]byte(doc), &d); err != nil {
			t.Fatalf("%s.py DOCUMENTATION: %v", module, err)
		}
		var documented []string
		for k := range d.Options {
			documented = append(documented, k)
		}
		sort.Strings(documented)
		if got, want := strings.Join(documented, " "), strings.Join(sortedCopy(options), " "); got != want {
			t.Errorf("%s: documented options\n  %s\nthe binary accepts\n  %s", module, got, want)
		}
	}
}

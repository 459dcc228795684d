package module

import (
	"os"
	"path/filepath"
	"regexp"
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
		b, err := os.ReadFile(filepath.Join("..", "..", "collection", "plugins", "modules", module+".py"))
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

// moduleSection returns the section of docs/reference/modules.md about a
// module (## `gitlab_runner_auth.runner.NAME`).
func moduleSection(t *testing.T, module string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "reference", "modules.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range strings.Split(string(b), "\n## ") {
		if strings.HasPrefix(s, "`gitlab_runner_auth.runner."+module+"`\n") {
			return s
		}
	}
	t.Fatalf("docs/reference/modules.md has no section ## `gitlab_runner_auth.runner.%s`", module)
	return ""
}

// The module reference's option tables are exactly the options each module
// accepts (the first cell of each row names one or more), and the info
// module's section names each of its options but the timeouts, which it
// names together.
func TestReferenceTablesAreTheOptions(t *testing.T) {
	name := regexp.MustCompile("`([a-z_]+)`")
	for module, options := range map[string][]string{"sync": topLevel, "prune": pruneOptions} {
		var documented []string
		for _, l := range strings.Split(moduleSection(t, module), "\n") {
			if !strings.HasPrefix(l, "| `") {
				continue
			}
			first := strings.SplitN(l, " | ", 2)[0]
			for _, m := range name.FindAllStringSubmatch(first, -1) {
				documented = append(documented, m[1])
			}
		}
		sort.Strings(documented)
		if got, want := strings.Join(documented, " "), strings.Join(sortedCopy(options), " "); got != want {
			t.Errorf("docs/reference/modules.md, %s: the option table lists\n  %s\nthe module accepts\n  %s", module, got, want)
		}
	}
	info := moduleSection(t, "info")
	for _, o := range infoOptions {
		if !strings.Contains(info, "`"+o+"`") && !(strings.HasSuffix(o, "timeout") && strings.Contains(info, "the timeouts")) {
			t.Errorf("docs/reference/modules.md, info: option %s is not named", o)
		}
	}
}

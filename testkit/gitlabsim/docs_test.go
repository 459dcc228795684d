package gitlabsim

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The documentation names the releases the simulator has a profile for,
// oldest first, as they are: the columns of docs/simulator.md's table of
// behaviours that differ, and the supported releases docs/design.md lists.
func TestDocsNameTheProfiles(t *testing.T) {
	var versions []string
	for _, p := range profiles {
		versions = append(versions, p.Version)
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join("..", "..", "docs", name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	header := "| Behaviour | " + strings.Join(versions, " | ") + " | Source |"
	if sim := read("simulator.md"); !strings.Contains(sim, "\n"+header+"\n") {
		t.Errorf("docs/simulator.md's table of version profiles lacks the header\n  %s", header)
	}
	list := "the releases the simulator has a profile for (" + strings.Join(versions, ", ") + ";"
	if design := strings.Join(strings.Fields(read("design.md")), " "); !strings.Contains(design, list) {
		t.Errorf("docs/design.md does not list the supported releases as %q", list)
	}
}

// docs/simulator.md shows the key sets TestEntityKeySets checks, as they
// are in keysets_test.go.
func TestDocsShowTheKeySets(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "simulator.md"))
	if err != nil {
		t.Fatal(err)
	}
	if table := keySetsTable(); !strings.Contains(string(b), "\n"+table+"\n") {
		t.Errorf("docs/simulator.md lacks the key-set table of keysets_test.go; it must read\n\n%s", table)
	}
}

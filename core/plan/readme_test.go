package plan

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var updateReadme = flag.Bool("update-readme", false, "rewrite the README's tables from the code")

// readmeTables renders the tables as the README shows them.
func readmeTables() map[string]string {
	var d, o, l strings.Builder
	d.WriteString("| row | when | action | what is sent |\n| --- | --- | --- | --- |\n")
	for _, r := range Table {
		a := "—"
		if r.Then != "" {
			a = "`" + string(r.Then) + "`"
		}
		fmt.Fprintf(&d, "| %s | %s | %s | %s |\n", r.Name, r.When, a, r.Does)
	}
	o.WriteString("| row | when | claim |\n| --- | --- | --- |\n")
	for _, r := range OwnershipTable {
		fmt.Fprintf(&o, "| %s | %s | %s |\n", r.Name, r.When, r.Claim)
	}
	l.WriteString("| row | when | taken for |\n| --- | --- | --- |\n")
	for _, r := range LineageTable {
		k := map[Kinship]string{SameHost: "the same host", Renamed: "renamed", Cloned: "a clone"}[r.Then]
		fmt.Fprintf(&l, "| %s | %s | %s |\n", r.Name, r.When, k)
	}
	var pr strings.Builder
	pr.WriteString("| row | when | action |\n| --- | --- | --- |\n")
	for _, r := range PruneTable {
		a := "keep"
		if r.Delete {
			a = "**delete**"
		}
		fmt.Fprintf(&pr, "| %s | %s | %s |\n", r.Name, r.When, a)
	}
	return map[string]string{"decision": d.String(), "ownership": o.String(), "lineage": l.String(), "prune": pr.String()}
}

// The README shows the decision, ownership, lineage and clean-up tables exactly as
// the code has them (go test ./core/plan -update-readme rewrites them).
func TestReadmeTablesMatchTheCode(t *testing.T) {
	path := filepath.Join("..", "..", "README.md")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for name, want := range readmeTables() {
		open, end := "<!-- table:"+name+" -->\n", "<!-- /table:"+name+" -->"
		i, j := strings.Index(s, open), strings.Index(s, end)
		if i < 0 || j < i {
			t.Fatalf("README lacks the %s table's markers %q ... %q", name, strings.TrimSpace(open), end)
		}
		got := s[i+len(open) : j]
		if got != want {
			if *updateReadme {
				s = s[:i+len(open)] + want + s[j:]
				continue
			}
			t.Errorf("README's %s table differs from the code (go test ./core/plan -update-readme):\n--- README\n%s--- code\n%s", name, got, want)
		}
	}
	if *updateReadme {
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

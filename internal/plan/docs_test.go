package plan

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var updateDocs = flag.Bool("update-docs", false, "rewrite the documentation's generated tables from the code")

// docsTables renders the tables as the documentation shows them.
func docsTables() map[string]string {
	rows := func(table []Row) string {
		var b strings.Builder
		b.WriteString("| row | when | action | what is sent |\n| --- | --- | --- | --- |\n")
		for _, r := range table {
			a := "—"
			if r.Then != "" {
				a = "`" + string(r.Then) + "`"
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", r.Name, r.When, a, r.Does)
		}
		return b.String()
	}
	var o, l strings.Builder
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
	return map[string]string{"decision": rows(Table), "held": rows(HeldTable), "pending": rows(PendingTable),
		"ownership": o.String(), "lineage": l.String(), "prune": pr.String()}
}

// docPages are the pages a generated table may live on: README.md and
// every Markdown file under docs/.
func docPages(t *testing.T) []string {
	t.Helper()
	root := filepath.Join("..", "..")
	pages := []string{filepath.Join(root, "README.md")}
	err := filepath.WalkDir(filepath.Join(root, "docs"), func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".md") {
			pages = append(pages, path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return pages
}

// The documentation shows the decision, ownership and lineage tables
// (docs/design.md) and the clean-up's (docs/operating.md) exactly as the
// code has them: each table's markers are on exactly one page, wherever
// it is moved (go test ./internal/plan -update-docs rewrites the tables).
func TestDocsTablesMatchTheCode(t *testing.T) {
	pages := docPages(t)
	text := map[string]string{}
	for _, p := range pages {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		text[p] = string(b)
	}
	changed := map[string]bool{}
	for name, want := range docsTables() {
		open, end := "<!-- table:"+name+" -->\n", "<!-- /table:"+name+" -->"
		var on []string
		for _, p := range pages {
			if strings.Contains(text[p], open) || strings.Contains(text[p], end) {
				on = append(on, p)
			}
		}
		if len(on) != 1 {
			t.Errorf("the %s table's markers %q ... %q are on %d pages %v; want exactly one (README.md or docs/)", name, strings.TrimSpace(open), end, len(on), on)
			continue
		}
		p, s := on[0], text[on[0]]
		i, j := strings.Index(s, open), strings.Index(s, end)
		if i < 0 || j < i || strings.Count(s, open) != 1 || strings.Count(s, end) != 1 {
			t.Errorf("%s: the %s table needs one %q and, after it, one %q", p, name, strings.TrimSpace(open), end)
			continue
		}
		if got := s[i+len(open) : j]; got != want {
			if *updateDocs {
				text[p], changed[p] = s[:i+len(open)]+want+s[j:], true
				continue
			}
			t.Errorf("%s: the %s table differs from the code (go test ./internal/plan -update-docs):\n--- %s\n%s--- code\n%s", p, name, p, got, want)
		}
	}
	for p := range changed {
		if err := os.WriteFile(p, []byte(text[p]), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// helpFlags runs the command's --help, as a user would, and returns its
// long flags with the defaults the help shows ("" when it shows none).
func helpFlags(t *testing.T, args ...string) map[string]string {
	t.Helper()
	var out, errb bytes.Buffer
	if code := run(append(args, "--help"), &out, &errb); code != exitOK {
		t.Fatalf("%v --help: exit %d\n%s", args, code, errb.String())
	}
	flags := map[string]string{}
	line := regexp.MustCompile(`(?m)^\s+(?:-[a-z], )?--([a-z-]+)(.*)$`)
	def := regexp.MustCompile(`\(default (.*)\)$`)
	for _, m := range line.FindAllStringSubmatch(out.String(), -1) {
		d := ""
		if dm := def.FindStringSubmatch(m[2]); dm != nil {
			d = dm[1]
			if u, err := strconv.Unquote(d); err == nil {
				d = u
			}
		}
		flags[m[1]] = d
	}
	if len(flags) < 10 {
		t.Fatalf("%v --help lists only %d flags:\n%s", args, len(flags), out.String())
	}
	return flags
}

// cliSections returns docs/reference/cli.md's sections for register-runner
// and for register-runner prune.
func cliSections(t *testing.T) (sync, prune string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "reference", "cli.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range strings.Split(string(b), "\n## ") {
		switch {
		case strings.HasPrefix(s, "`register-runner prune`"):
			prune = s
		case strings.HasPrefix(s, "`register-runner`"):
			sync = s
		}
	}
	if sync == "" || prune == "" {
		t.Fatal("docs/reference/cli.md lacks its ## `register-runner` or ## `register-runner prune` section")
	}
	return sync, prune
}

var docFlag = regexp.MustCompile(`--([a-z][a-z-]*)`)

// sameDefault compares a default as the table writes it with the help's:
// equal text, or the same duration (60s and 1m0s).
func sameDefault(doc, help string) bool {
	if doc == help {
		return true
	}
	a, err1 := time.ParseDuration(doc)
	b, err2 := time.ParseDuration(help)
	return err1 == nil && err2 == nil && a == b
}

// The reference's option tables are the commands' flags: every flag the
// help lists is in its section, every flag a table row names exists, and a
// default a row gives is the flag's.
func TestReferenceListsEveryFlag(t *testing.T) {
	syncDoc, pruneDoc := cliSections(t)
	for _, c := range []struct {
		name  string
		args  []string
		doc   string
		flags map[string]string
	}{
		{"register-runner", nil, syncDoc, helpFlags(t)},
		{"register-runner prune", []string{"prune"}, pruneDoc, helpFlags(t, "prune")},
	} {
		for f := range c.flags {
			if !strings.Contains(c.doc, "--"+f) {
				t.Errorf("docs/reference/cli.md, %s: --%s is not documented", c.name, f)
			}
		}
		rows := 0
		for _, l := range strings.Split(c.doc, "\n") {
			if !strings.HasPrefix(l, "| `-") {
				continue
			}
			rows++
			cells := strings.Split(l, " | ")
			named := docFlag.FindAllStringSubmatch(cells[0], -1)
			for _, m := range named {
				if _, ok := c.flags[m[1]]; !ok {
					t.Errorf("docs/reference/cli.md, %s: the table names --%s, which the command does not have", c.name, m[1])
				}
			}
			if len(named) != 1 || len(cells) < 3 {
				continue
			}
			doc := strings.TrimSpace(cells[1])
			if !strings.HasPrefix(doc, "`") || strings.Count(doc, "`") != 2 {
				continue
			}
			doc = strings.Trim(doc, "`")
			if help := c.flags[named[0][1]]; !sameDefault(doc, help) {
				t.Errorf("docs/reference/cli.md, %s: --%s defaults to %q in the table, %q in the command", c.name, named[0][1], doc, help)
			}
		}
		if rows < 10 {
			t.Errorf("docs/reference/cli.md, %s: only %d option rows found", c.name, rows)
		}
	}
}

// Every register-runner command line the pages show (code blocks, the
// unit's ExecStartPre, inline code) uses only flags the command has.
func TestDocumentedCommandLinesUseRealFlags(t *testing.T) {
	syncFlags, pruneFlags := helpFlags(t), helpFlags(t, "prune")
	root := filepath.Join("..", "..")
	pages := []string{filepath.Join(root, "README.md"), filepath.Join(root, "collection", "README.md")}
	_ = filepath.WalkDir(filepath.Join(root, "docs"), func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".md") {
			pages = append(pages, p)
		}
		return err
	})
	command := regexp.MustCompile("register-runner( prune)?((?: [^\n`]*)?)")
	checked := 0
	for _, p := range pages {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		// Shell continuation lines are one command.
		text := strings.ReplaceAll(string(b), "\\\n", " ")
		for _, m := range command.FindAllStringSubmatch(text, -1) {
			flags := syncFlags
			if m[1] != "" {
				flags = pruneFlags
			}
			for _, f := range docFlag.FindAllStringSubmatch(m[2], -1) {
				checked++
				if _, ok := flags[f[1]]; !ok {
					t.Errorf("%s: register-runner%s --%s: no such flag (in %q)", p, m[1], f[1], strings.TrimSpace(m[0]))
				}
			}
		}
	}
	if checked < 25 {
		t.Errorf("only %d flags of documented command lines checked: is the pattern still right?", checked)
	}
}

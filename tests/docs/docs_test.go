// Package docs checks the documentation against itself and the code: every
// relative link and anchor resolves, the README stays short, every page says
// whom it is for and is on the README's map, every make target named exists,
// and the documented plays use only the modules, options and role variables
// the collection has.
package docs

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

const root = "../.."

// pages are README.md, every Markdown file under docs/ and the collection's
// README, relative to the repository's root.
func pages(t *testing.T) []string {
	t.Helper()
	out := []string{"README.md", "collection/README.md"}
	err := filepath.WalkDir(filepath.Join(root, "docs"), func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".md") {
			rel, _ := filepath.Rel(root, path)
			out = append(out, filepath.ToSlash(rel))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// docsPages are the pages under docs/.
func docsPages(t *testing.T) []string {
	var out []string
	for _, p := range pages(t) {
		if strings.HasPrefix(p, "docs/") {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		t.Fatal("no page under docs/")
	}
	return out
}

func read(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(rel)))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// block is a fenced code block: its language and text.
type block struct {
	lang, text string
	line       int
}

// split separates a Markdown text into its prose (code blocks blanked, so
// line numbers stay) and its fenced code blocks.
func split(s string) (prose string, blocks []block) {
	var p []string
	var cur *block
	for i, l := range strings.Split(s, "\n") {
		trimmed := strings.TrimLeft(l, " ")
		if strings.HasPrefix(trimmed, "```") {
			if cur == nil {
				cur = &block{lang: strings.TrimSpace(strings.TrimPrefix(trimmed, "```")), line: i + 1}
			} else {
				blocks = append(blocks, *cur)
				cur = nil
			}
			p = append(p, "")
			continue
		}
		if cur != nil {
			cur.text += l + "\n"
			p = append(p, "")
			continue
		}
		p = append(p, l)
	}
	return strings.Join(p, "\n"), blocks
}

var (
	inlineCode = regexp.MustCompile("`[^`\n]*`")
	link       = regexp.MustCompile(`\[[^\]]*\]\(([^)\s]+)\)`)
	heading    = regexp.MustCompile(`(?m)^#{1,6} +(.+?) *$`)
)

// slug is the anchor GitHub gives a heading: lower case, punctuation but
// hyphens and underscores dropped, spaces to hyphens.
func slug(h string) string {
	h = strings.ToLower(strings.TrimSpace(h))
	var b strings.Builder
	for _, r := range h {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r > 127 && r != '—' && r != '→' && r != '’':
			b.WriteRune(r)
		}
	}
	return b.String()
}

// anchors lists the anchors of a page's headings, duplicates numbered as
// GitHub numbers them.
func anchors(s string) map[string]bool {
	prose, _ := split(s)
	out := map[string]bool{}
	seen := map[string]int{}
	for _, m := range heading.FindAllStringSubmatch(prose, -1) {
		a := slug(m[1])
		if n := seen[a]; n > 0 {
			out[fmt.Sprintf("%s-%d", a, n)] = true
		} else {
			out[a] = true
		}
		seen[a]++
	}
	return out
}

// links lists a page's link targets in its prose, not in code.
func links(s string) []string {
	prose, _ := split(s)
	prose = inlineCode.ReplaceAllString(prose, "")
	var out []string
	for _, m := range link.FindAllStringSubmatch(prose, -1) {
		out = append(out, m[1])
	}
	return out
}

// Every relative link of the README and docs/ leads to a file that exists,
// and its #anchor to a heading of that page. The collection's README is
// what Galaxy shows, without the repository around it: its links must be
// absolute.
func TestLinksResolve(t *testing.T) {
	checked := 0
	for _, p := range pages(t) {
		for _, target := range links(read(t, p)) {
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			if p == "collection/README.md" {
				t.Errorf("%s: relative link %s: Galaxy shows this page without the repository; use an absolute URL", p, target)
				continue
			}
			file, anchor, _ := strings.Cut(target, "#")
			dest := p
			if file != "" {
				dest = filepath.ToSlash(filepath.Clean(filepath.Join(filepath.Dir(p), file)))
			}
			if strings.HasPrefix(dest, "..") {
				t.Errorf("%s: link %s leaves the repository", p, target)
				continue
			}
			fi, err := os.Stat(filepath.Join(root, filepath.FromSlash(dest)))
			if err != nil {
				t.Errorf("%s: link %s: %s does not exist", p, target, dest)
				continue
			}
			checked++
			if anchor == "" {
				continue
			}
			if fi.IsDir() || !strings.HasSuffix(dest, ".md") {
				t.Errorf("%s: link %s: an anchor into %s, which is no Markdown page", p, target, dest)
				continue
			}
			if !anchors(read(t, dest))[anchor] {
				t.Errorf("%s: link %s: %s has no heading with the anchor #%s", p, target, dest, anchor)
			}
		}
	}
	if checked < 50 {
		t.Errorf("only %d relative links checked: is the link pattern still right?", checked)
	}
}

// The slug function agrees with GitHub's anchors for the kinds of heading
// the pages have.
func TestSlug(t *testing.T) {
	for h, want := range map[string]string{
		"A 5-minute tour": "a-5-minute-tour",
		"The personal access token: scopes on real GitLab":               "the-personal-access-token-scopes-on-real-gitlab",
		"`make e2e`: a real systemd host":                                "make-e2e-a-real-systemd-host",
		"The template: `config.template.{instance}.toml`":                "the-template-configtemplateinstancetoml",
		"Identity: (GitLab URL, id)":                                     "identity-gitlab-url-id",
		"Ownership: GitLab's runner managers, and this host's own files": "ownership-gitlabs-runner-managers-and-this-hosts-own-files",
		"`gitlab_runner_auth.runner.sync`":                               "gitlab_runner_authrunnersync",
	} {
		if got := slug(h); got != want {
			t.Errorf("slug(%q) = %q, want %q", h, got, want)
		}
	}
}

// The README is a door, not the house: what the tool is, the two set-up
// commands, the tour and the map.
func TestReadmeIsShort(t *testing.T) {
	if n := strings.Count(read(t, "README.md"), "\n"); n > 200 {
		t.Errorf("README.md has %d lines; keep it at 200 or fewer and move the rest into docs/", n)
	}
}

// The README's set-up commands are exactly make demo and make test.
func TestReadmeSetUpIsMakeDemoAndMakeTest(t *testing.T) {
	s := read(t, "README.md")
	_, after, ok := strings.Cut(s, "\n## Set up\n")
	if !ok {
		t.Fatal("README.md has no \"## Set up\" section")
	}
	_, blocks := split(after)
	if len(blocks) == 0 {
		t.Fatal("README.md's set-up section has no code block")
	}
	var cmds []string
	for _, l := range strings.Split(strings.TrimSpace(blocks[0].text), "\n") {
		cmd, _, _ := strings.Cut(l, "#")
		cmds = append(cmds, strings.TrimSpace(cmd))
	}
	if strings.Join(cmds, "; ") != "make demo; make test" {
		t.Errorf("README.md's set-up commands are %q, want make demo and make test", cmds)
	}
}

// Every page under docs/ starts, after its title, with whom it is for, and
// the README's map links it.
func TestEveryPageSaysWhomItIsForAndIsOnTheMap(t *testing.T) {
	readme := read(t, "README.md")
	_, mapSection, _ := strings.Cut(readme, "\n## Documentation\n")
	onMap := map[string]bool{}
	for _, l := range links(mapSection) {
		onMap[strings.SplitN(l, "#", 2)[0]] = true
	}
	for _, p := range docsPages(t) {
		s := read(t, p)
		title, rest, _ := strings.Cut(s, "\n")
		first := strings.TrimSpace(strings.SplitN(strings.TrimLeft(rest, "\n"), "\n\n", 2)[0])
		if !strings.HasPrefix(title, "# ") || !strings.HasPrefix(first, "For ") {
			t.Errorf("%s: start with a title and a paragraph \"For <its readers>: ...\"; it starts %q / %q", p, title, first)
		}
		if !onMap[p] {
			t.Errorf("%s is not on the README's map (## Documentation)", p)
		}
	}
}

// makeTargets are the Makefile's phony targets and its pattern rules
// (sanity-%: sanity-2.17).
func makeTargets(t *testing.T) (phony map[string]bool, patterns []string) {
	mk := read(t, "Makefile")
	m := regexp.MustCompile(`(?m)^\.PHONY:(.*)$`).FindStringSubmatch(mk)
	if m == nil {
		t.Fatal("Makefile has no .PHONY line")
	}
	phony = map[string]bool{}
	for _, n := range strings.Fields(m[1]) {
		phony[n] = true
	}
	for _, p := range regexp.MustCompile(`(?m)^([a-z-]+)-%:`).FindAllStringSubmatch(mk, -1) {
		patterns = append(patterns, p[1]+"-")
	}
	return phony, patterns
}

var makeCall = regexp.MustCompile(`(?m)(?:^|[ \t;&(` + "`" + `])make((?:[ \t]+[A-Za-z0-9_.%=-]+)+)`)

// Every make target the pages name (in code: `make x`, or a command line)
// exists, and testing.md's table of targets lists every phony target.
func TestMakeTargetsExist(t *testing.T) {
	phony, patterns := makeTargets(t)
	exists := func(n string) bool {
		if phony[n] {
			return true
		}
		for _, p := range patterns {
			if strings.HasPrefix(n, p) && len(n) > len(p) {
				return true
			}
		}
		return false
	}
	named := 0
	for _, p := range pages(t) {
		prose, blocks := split(read(t, p))
		code := strings.Join(inlineCode.FindAllString(prose, -1), "\n")
		for _, b := range blocks {
			if b.lang == "sh" {
				code += "\n" + b.text
			}
		}
		for _, m := range makeCall.FindAllStringSubmatch(code, -1) {
			for _, w := range strings.Fields(m[1]) {
				if strings.Contains(w, "=") {
					continue
				}
				named++
				if !exists(w) {
					t.Errorf("%s: make %s: the Makefile has no such target", p, w)
				}
			}
		}
	}
	if named < 20 {
		t.Errorf("only %d make targets named in the pages: is the pattern still right?", named)
	}
	s := read(t, "docs/testing.md")
	_, table, ok := strings.Cut(s, "<!-- make-targets -->")
	table, _, ok2 := strings.Cut(table, "<!-- /make-targets -->")
	if !ok || !ok2 {
		t.Fatal("docs/testing.md lacks the <!-- make-targets --> table")
	}
	listed := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `make ([a-z0-9-]+)`").FindAllStringSubmatch(table, -1) {
		listed[m[1]] = true
	}
	for n := range phony {
		if n != "all" && n != "FORCE" && !listed[n] {
			t.Errorf("docs/testing.md's table of make targets lacks make %s", n)
		}
	}
	for n := range listed {
		if !phony[n] {
			t.Errorf("docs/testing.md's table of make targets lists make %s, which the Makefile does not have", n)
		}
	}
}

// The documented ansible-core versions are the Makefile's: a page that
// quotes ANSIBLE_VERSIONS quotes it as the Makefile has it, and the README's
// make test names each version.
func TestAnsibleVersionsAreTheMakefiles(t *testing.T) {
	m := regexp.MustCompile(`(?m)^ANSIBLE_VERSIONS \?= (.*)$`).FindStringSubmatch(read(t, "Makefile"))
	if m == nil {
		t.Fatal("Makefile sets no ANSIBLE_VERSIONS")
	}
	want := "ANSIBLE_VERSIONS ?= " + strings.TrimSpace(m[1])
	quoted := 0
	for _, p := range pages(t) {
		for _, q := range regexp.MustCompile(`ANSIBLE_VERSIONS \?= [0-9. ]*[0-9]`).FindAllString(read(t, p), -1) {
			quoted++
			if q != want {
				t.Errorf("%s quotes %q; the Makefile has %q", p, q, want)
			}
		}
	}
	if quoted == 0 {
		t.Error("no page quotes the Makefile's ANSIBLE_VERSIONS")
	}
	readme := read(t, "README.md")
	line := regexp.MustCompile(`(?m)^make test .*$`).FindString(readme)
	for _, v := range strings.Fields(m[1]) {
		if !regexp.MustCompile(`\b` + regexp.QuoteMeta(v) + `\b`).MatchString(line) {
			t.Errorf("README.md's make test line %q does not name ansible-core %s, which make test tests", line, v)
		}
	}
}

// collectionModules are the modules the collection ships (the
// documentation files in plugins/modules/), sorted.
func collectionModules(t *testing.T) []string {
	entries, err := os.ReadDir(filepath.Join(root, "collection", "plugins", "modules"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if n, ok := strings.CutSuffix(e.Name(), ".py"); ok && n != "__init__" {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	if len(out) == 0 {
		t.Fatal("no module in collection/plugins/modules")
	}
	return out
}

var numbers = []string{"no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"}

// The pages name every module the collection ships: what ansible-doc -l
// lists (docs/reference/modules.md says so between <!-- modules -->
// markers, with their number), a section of the module reference for each,
// and a bullet of the collection's README (what Galaxy shows) for each.
func TestEveryModuleIsDocumented(t *testing.T) {
	mods := collectionModules(t)
	ref := read(t, "docs/reference/modules.md")
	_, stmt, ok := strings.Cut(ref, "<!-- modules -->")
	stmt, _, ok2 := strings.Cut(stmt, "<!-- /modules -->")
	if !ok || !ok2 {
		t.Fatal("docs/reference/modules.md lacks the <!-- modules --> statement of what ansible-doc -l lists")
	}
	stmt = strings.Join(strings.Fields(stmt), " ")
	var named []string
	for _, m := range regexp.MustCompile("`([a-z_]+)`").FindAllStringSubmatch(stmt, -1) {
		named = append(named, m[1])
	}
	sort.Strings(named)
	if strings.Join(named, " ") != strings.Join(mods, " ") {
		t.Errorf("docs/reference/modules.md says ansible-doc -l lists %v; the collection has %v", named, mods)
	}
	if len(mods) < len(numbers) && !strings.Contains(stmt, " "+numbers[len(mods)]+" modules") {
		t.Errorf("docs/reference/modules.md: %q does not say %s modules", stmt, numbers[len(mods)])
	}
	galaxy := read(t, "collection/README.md")
	for _, m := range mods {
		fq := "gitlab_runner_auth.runner." + m
		if !strings.Contains(ref, "\n## `"+fq+"`\n") {
			t.Errorf("docs/reference/modules.md has no section ## `%s`", fq)
		}
		if !strings.Contains(galaxy, "* `"+fq+"` — module") {
			t.Errorf("collection/README.md (what Galaxy shows) has no bullet for the module %s", fq)
		}
	}
}

// documentedOptions reads a module's options from its DOCUMENTATION, the one
// source of its argument spec.
func documentedOptions(t *testing.T, module string) map[string]bool {
	s := read(t, "collection/plugins/modules/"+module+".py")
	_, doc, ok := strings.Cut(s, "DOCUMENTATION = r'''")
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
	out := map[string]bool{}
	for k := range d.Options {
		out[k] = true
	}
	return out
}

// roleVariables reads the service role's variables from its argument spec.
func roleVariables(t *testing.T) map[string]bool {
	var spec struct {
		ArgumentSpecs map[string]struct {
			Options map[string]any `yaml:"options"`
		} `yaml:"argument_specs"`
	}
	if err := yaml.Unmarshal([]byte(read(t, "collection/roles/service/meta/argument_specs.yml")), &spec); err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for k := range spec.ArgumentSpecs["main"].Options {
		out[k] = true
	}
	if len(out) == 0 {
		t.Fatal("the service role's argument spec has no options")
	}
	return out
}

// The module reference names every variable of the service role.
func TestEveryRoleVariableIsDocumented(t *testing.T) {
	ref := read(t, "docs/reference/modules.md")
	for v := range roleVariables(t) {
		if !strings.Contains(ref, "`"+v+"`") {
			t.Errorf("docs/reference/modules.md does not describe the service role's variable %s", v)
		}
	}
}

// tasks finds, in a parsed YAML document, every mapping that is a task
// (it has a key naming an action), plays' tasks and roles included.
func tasks(n any, out *[]map[string]any) {
	switch v := n.(type) {
	case []any:
		for _, e := range v {
			tasks(e, out)
		}
	case map[string]any:
		*out = append(*out, v)
		for _, k := range []string{"tasks", "pre_tasks", "post_tasks", "roles", "block", "rescue", "always", "handlers"} {
			if sub, ok := v[k]; ok {
				tasks(sub, out)
			}
		}
	}
}

// Every play and task the pages show in YAML uses only modules and a role
// the collection has, with options they document, and role variables its
// argument spec has: a documented play cannot drift from the collection.
func TestDocumentedPlaysUseTheCollectionsOptions(t *testing.T) {
	mods := map[string]map[string]bool{}
	for _, m := range collectionModules(t) {
		mods["gitlab_runner_auth.runner."+m] = documentedOptions(t, m)
	}
	vars := roleVariables(t)
	checked := 0
	for _, p := range pages(t) {
		_, blocks := split(read(t, p))
		for _, b := range blocks {
			if b.lang != "yaml" {
				continue
			}
			var doc any
			if err := yaml.Unmarshal([]byte(b.text), &doc); err != nil {
				t.Errorf("%s:%d: a YAML block that does not parse: %v", p, b.line, err)
				continue
			}
			var ts []map[string]any
			tasks(doc, &ts)
			for _, task := range ts {
				for key, val := range task {
					if opts, ok := mods[key]; ok {
						checked++
						args, _ := val.(map[string]any)
						for o := range args {
							if !opts[o] {
								t.Errorf("%s:%d: %s has no option %q", p, b.line, key, o)
							}
						}
					} else if strings.HasPrefix(key, "gitlab_runner_auth.runner.") {
						t.Errorf("%s:%d: the collection has no module %s", p, b.line, key)
					}
				}
				role := ""
				if r, ok := task["role"].(string); ok {
					role = r
				}
				if ir, ok := task["ansible.builtin.include_role"].(map[string]any); ok {
					role, _ = ir["name"].(string)
				}
				if strings.HasPrefix(role, "gitlab_runner_auth.runner.") {
					checked++
					if role != "gitlab_runner_auth.runner.service" {
						t.Errorf("%s:%d: the collection has no role %s", p, b.line, role)
					}
					vs, _ := task["vars"].(map[string]any)
					for v := range vs {
						if !vars[v] {
							t.Errorf("%s:%d: the service role has no variable %q", p, b.line, v)
						}
					}
				}
			}
		}
	}
	if checked < 10 {
		t.Errorf("only %d uses of the collection checked in the pages' YAML: is the walk still right?", checked)
	}
}

// pruneTask finds the prune task of a YAML text.
func pruneTask(t *testing.T, where, text string) map[string]any {
	t.Helper()
	var doc any
	if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	var ts []map[string]any
	tasks(doc, &ts)
	for _, task := range ts {
		if args, ok := task["gitlab_runner_auth.runner.prune"].(map[string]any); ok {
			return args
		}
	}
	t.Fatalf("%s: no prune task", where)
	return nil
}

// The README's fleet play is complete (the service role, sync registered as
// sync with the inventory's short host names, prune), and the clean-up it
// and the other pages show computes keep, hosts_expected and hosts_reported
// exactly as the Molecule scenario fleet does, which runs it for real (its
// inventory group is all).
func TestFleetPlayIsTheOneMoleculeRuns(t *testing.T) {
	readme := read(t, "README.md")
	_, play, ok := strings.Cut(readme, "<!-- fleet-play -->")
	play, _, ok2 := strings.Cut(play, "<!-- /fleet-play -->")
	if !ok || !ok2 {
		t.Fatal("README.md lacks the <!-- fleet-play --> markers around its fleet play")
	}
	_, blocks := split(play)
	if len(blocks) != 1 || blocks[0].lang != "yaml" {
		t.Fatal("README.md's fleet play is not one yaml block")
	}
	var doc any
	if err := yaml.Unmarshal([]byte(blocks[0].text), &doc); err != nil {
		t.Fatal(err)
	}
	var ts []map[string]any
	tasks(doc, &ts)
	var sync map[string]any
	var role bool
	for _, task := range ts {
		if args, ok := task["gitlab_runner_auth.runner.sync"].(map[string]any); ok && task["register"] == "sync" {
			sync = args
		}
		if ir, ok := task["ansible.builtin.include_role"].(map[string]any); ok && ir["name"] == "gitlab_runner_auth.runner.service" {
			role = true
		}
	}
	if sync == nil || sync["hostname"] != "{{ inventory_hostname_short }}" {
		t.Errorf("README.md's fleet play needs a sync task registered as sync with hostname: \"{{ inventory_hostname_short }}\"; got %v", sync)
	}
	if !role {
		t.Error("README.md's fleet play does not include the role gitlab_runner_auth.runner.service")
	}
	molecule := pruneTask(t, "molecule/fleet/converge.yml", read(t, "molecule/fleet/converge.yml"))
	norm := func(v any) string {
		s := strings.Join(strings.Fields(fmt.Sprint(v)), " ")
		return regexp.MustCompile(`groups\['[a-z_]+'\]`).ReplaceAllString(s, "groups[GROUP]")
	}
	shown := 0
	for _, p := range pages(t) {
		_, blocks := split(read(t, p))
		for _, b := range blocks {
			if b.lang != "yaml" || !strings.Contains(b.text, "gitlab_runner_auth.runner.prune:") {
				continue
			}
			shown++
			args := pruneTask(t, fmt.Sprintf("%s:%d", p, b.line), b.text)
			for _, k := range []string{"keep", "hosts_expected", "hosts_reported"} {
				if norm(args[k]) != norm(molecule[k]) {
					t.Errorf("%s:%d: prune's %s is\n  %s\nMolecule's fleet scenario runs\n  %s", p, b.line, k, norm(args[k]), norm(molecule[k]))
				}
			}
		}
	}
	if shown < 2 {
		t.Errorf("the clean-up is shown %d times; want the README's play and more", shown)
	}
}

// Every tarball name the pages show carries the collection's version
// (galaxy.yml).
func TestTarballNamesCarryTheVersion(t *testing.T) {
	m := regexp.MustCompile(`(?m)^version: *"?([0-9.]+)"?`).FindStringSubmatch(read(t, "collection/galaxy.yml"))
	if m == nil {
		t.Fatal("collection/galaxy.yml has no version")
	}
	want := "gitlab_runner_auth-runner-" + m[1] + ".tar.gz"
	named := 0
	for _, p := range pages(t) {
		for _, n := range regexp.MustCompile(`gitlab_runner_auth-runner-[0-9][0-9.]*\.tar\.gz`).FindAllString(read(t, p), -1) {
			named++
			if n != want {
				t.Errorf("%s names %s; the collection builds %s", p, n, want)
			}
		}
	}
	if named == 0 {
		t.Error("no page names the collection's tarball")
	}
}

package ansible

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

type changelogEntry struct {
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
}

// TestChangelogIsRendered checks that CHANGELOG.md says what
// changelogs/changelog.yaml (the source, antsibull-changelog's format) says:
// every release, newest first, every change and every new module, plugin
// and role. The version galaxy.yml gives the collection is released, and,
// as antsibull-changelog's release does with keep_fragments: false, the
// fragments a release took are gone from changelogs/fragments/.
func TestChangelogIsRendered(t *testing.T) {
	root, _ := filepath.Abs(filepath.Join("..", "..", "collection"))
	var src struct {
		Releases map[string]struct {
			Changes map[string]any              `yaml:"changes"`
			Modules []changelogEntry            `yaml:"modules"`
			Plugins map[string][]changelogEntry `yaml:"plugins"`
			Objects map[string][]changelogEntry `yaml:"objects"`
			Date    string                      `yaml:"release_date"`
			// The fragments the release took (antsibull-changelog records them).
			Fragments []string `yaml:"fragments"`
		} `yaml:"releases"`
	}
	raw, err := os.ReadFile(filepath.Join(root, "changelogs", "changelog.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, &src); err != nil {
		t.Fatalf("changelog.yaml: %v", err)
	}
	md, err := os.ReadFile(filepath.Join(root, "CHANGELOG.md"))
	if err != nil {
		t.Fatal(err)
	}
	space := regexp.MustCompile(`\s+`)
	flat := func(s string) string { return space.ReplaceAllString(strings.TrimSpace(s), " ") }
	// CHANGELOG.md as read: Markdown's backslash escapes undone.
	text := flat(regexp.MustCompile(`\\(.)`).ReplaceAllString(string(md), "$1"))
	// An entry as antsibull-changelog renders its reStructuredText into
	// Markdown: ``literal`` becomes <code>literal</code> (the entries use no
	// other markup).
	literal := regexp.MustCompile("``(.+?)``")
	want := func(s string) {
		t.Helper()
		if r := flat(literal.ReplaceAllString(s, "<code>$1</code>")); !strings.Contains(text, r) {
			t.Errorf("CHANGELOG.md lacks %q", r)
		}
	}
	if len(src.Releases) == 0 {
		t.Fatal("changelog.yaml has no release")
	}
	// What antsibull-changelog's lint checks of the format (the sanity test
	// "changelog" runs it, where it is installed): sections declared in
	// config.yaml, semantic versions, ISO dates, named entries.
	var cfg struct {
		Sections       [][]string `yaml:"sections"`
		PreludeSection string     `yaml:"prelude_section_name"`
		TrivialSection string     `yaml:"trivial_section_name"`
		Title          string     `yaml:"title"`
		KeepFragments  bool       `yaml:"keep_fragments"`
		NotesDir       string     `yaml:"notesdir"`
	}
	if err := yaml.Unmarshal(mustRead(t, filepath.Join(root, "changelogs", "config.yaml")), &cfg); err != nil {
		t.Fatalf("config.yaml: %v", err)
	}
	sections := map[string]bool{cfg.PreludeSection: true, cfg.TrivialSection: true}
	for _, sec := range cfg.Sections {
		sections[sec[0]] = true
	}
	semver := regexp.MustCompile(`^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$`)
	isoDate := regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)
	for version, rel := range src.Releases {
		if !semver.MatchString(version) || !isoDate.MatchString(rel.Date) {
			t.Errorf("release %q (date %q): want a semantic version and a YYYY-MM-DD date", version, rel.Date)
		}
		for section := range rel.Changes {
			if !sections[section] {
				t.Errorf("release %s: section %s is not declared in changelogs/config.yaml", version, section)
			}
		}
	}
	var galaxy struct {
		Version string `yaml:"version"`
	}
	if err := yaml.Unmarshal(mustRead(t, filepath.Join(root, "galaxy.yml")), &galaxy); err != nil {
		t.Fatalf("galaxy.yml: %v", err)
	}
	if _, ok := src.Releases[galaxy.Version]; !ok {
		t.Errorf("changelog.yaml has no release %s, the version galaxy.yml gives the collection: release its fragments "+
			"(antsibull-changelog release) and render CHANGELOG.md", galaxy.Version)
	}
	if !cfg.KeepFragments {
		for version, rel := range src.Releases {
			for _, f := range rel.Fragments {
				if _, err := os.Stat(filepath.Join(root, "changelogs", cfg.NotesDir, f)); err == nil {
					t.Errorf("changelogs/%s/%s was released in %s but is still there (config.yaml: keep_fragments: false)",
						cfg.NotesDir, f, version)
				}
			}
		}
	}
	want("# " + cfg.Title + " Release Notes")
	// Newest first, as antsibull-changelog renders them.
	var versions []string
	for version := range src.Releases {
		versions = append(versions, version)
	}
	sort.Slice(versions, func(i, j int) bool { return semverLess(versions[j], versions[i]) })
	last := -1
	for _, version := range versions {
		at := strings.Index(string(md), "\n## v"+strings.ReplaceAll(version, ".", "\\.")+"\n")
		if at < 0 {
			continue // reported below
		}
		if at < last {
			t.Errorf("CHANGELOG.md: v%s comes after an older release; want the newest first", version)
		}
		last = at
	}
	for version, rel := range src.Releases {
		want("## v" + version)
		if rel.Date == "" {
			t.Errorf("release %s has no release_date", version)
		}
		for section, v := range rel.Changes {
			switch v := v.(type) {
			case string:
				want(v)
			case []any:
				for _, e := range v {
					s, _ := e.(string)
					want("* " + s)
				}
			default:
				t.Errorf("release %s section %s: unexpected %T", version, section, v)
			}
		}
		var objects []changelogEntry
		objects = append(objects, rel.Modules...)
		for _, es := range rel.Plugins {
			objects = append(objects, es...)
		}
		for _, es := range rel.Objects {
			objects = append(objects, es...)
		}
		for _, e := range objects {
			want("* gitlab_runner_auth.runner." + e.Name + " - " + e.Description)
		}
	}
}

// semverLess orders two versions major.minor.patch (a pre-release tag is
// ignored: the changelog has none).
func semverLess(a, b string) bool {
	pa, pb := strings.SplitN(a, "-", 2)[0], strings.SplitN(b, "-", 2)[0]
	fa, fb := strings.Split(pa, "."), strings.Split(pb, ".")
	for i := 0; i < len(fa) && i < len(fb); i++ {
		x, _ := strconv.Atoi(fa[i])
		y, _ := strconv.Atoi(fb[i])
		if x != y {
			return x < y
		}
	}
	return len(fa) < len(fb)
}

// TestSanityAndLintRunInCI: make test (what .ci/run runs) runs the
// collection's sanity tests, ansible-lint, the playbook-level tests and the
// integration targets under ansible-core 2.14, 2.17 and 2.19, and Molecule
// under 2.17 and 2.19; CI installs their tools. Each version from 2.14 to
// 2.19 has a sanity ignore file whose every line gives its reason.
func TestSanityAndLintRunInCI(t *testing.T) {
	root, _ := filepath.Abs(filepath.Join("..", ".."))
	mk := string(mustRead(t, filepath.Join(root, "Makefile")))
	rule := func(target string) string {
		m := regexp.MustCompile(`(?m)^`+regexp.QuoteMeta(target)+`:(.*)$`).FindAllStringSubmatch(mk, -1)
		var deps []string
		for _, x := range m {
			deps = append(deps, x[1])
		}
		return " " + strings.Join(deps, " ") + " "
	}
	for _, want := range []string{"lint", "sanity", "ansible-tests", "ansible-versions", "molecule", "integration"} {
		if deps := rule("test"); !strings.Contains(deps, " "+want+" ") {
			t.Errorf("make test does not depend on %s:%s", want, deps)
		}
	}
	if deps := rule("lint"); !strings.Contains(deps, " lint-ansible ") {
		t.Errorf("make lint does not run lint-ansible:%s", deps)
	}
	for _, want := range []string{"ansible-test sanity", "ansible-test integration", "ansible-lint --profile production",
		"molecule --base-config .config/molecule/config.yml test --all", "SANITY_SKIP ?= changelog\n"} {
		if !strings.Contains(mk, want) {
			t.Errorf("Makefile lacks %q", want)
		}
	}
	for v, want := range map[string]string{"ANSIBLE_VERSIONS": "2.14 2.17 2.19", "MOLECULE_ANSIBLE": "2.17 2.19"} {
		if !regexp.MustCompile(`(?m)^` + v + ` \?= ` + regexp.QuoteMeta(want) + `$`).MatchString(mk) {
			t.Errorf("Makefile does not set %s ?= %s", v, want)
		}
	}
	for minor := 14; minor <= 19; minor++ {
		name := fmt.Sprintf("ignore-2.%d.txt", minor)
		for i, line := range strings.Split(strings.TrimSpace(string(mustRead(t, filepath.Join(root, "collection", "tests", "sanity", name)))), "\n") {
			if _, reason, ok := strings.Cut(line, " # "); !ok || strings.TrimSpace(reason) == "" {
				t.Errorf("%s:%d gives no reason: %q", name, i+1, line)
			}
		}
	}
	ci := string(mustRead(t, filepath.Join(root, ".ci", "run")))
	for _, want := range []string{"make test", "ansible-lint", "yamllint", "ansible-core", "modern-ansible setup", "for v in 2.14 2.17 2.19;",
		"pylint", "python3-pycodestyle", "python3-voluptuous"} {
		if !strings.Contains(ci, want) {
			t.Errorf(".ci/run lacks %q", want)
		}
	}
}

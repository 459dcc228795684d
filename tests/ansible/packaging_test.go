package ansible

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
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
// every release, every change and every new module, plugin and role.
func TestChangelogIsRendered(t *testing.T) {
	root, _ := filepath.Abs(filepath.Join("..", "..", "collection"))
	var src struct {
		Releases map[string]struct {
			Changes map[string]any              `yaml:"changes"`
			Modules []changelogEntry            `yaml:"modules"`
			Plugins map[string][]changelogEntry `yaml:"plugins"`
			Objects map[string][]changelogEntry `yaml:"objects"`
			Date    string                      `yaml:"release_date"`
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
	text := flat(strings.ReplaceAll(string(md), `\`, ""))
	want := func(s string) {
		t.Helper()
		if !strings.Contains(text, flat(s)) {
			t.Errorf("CHANGELOG.md lacks %q", flat(s))
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

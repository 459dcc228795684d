package ansible

import (
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
// collection's offline ansible-test sanity tests and ansible-lint's
// production profile; CI installs their tools.
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
	if deps := rule("test"); !strings.Contains(deps, " lint ") || !strings.Contains(deps, " sanity ") {
		t.Errorf("make test does not depend on lint and sanity:%s", deps)
	}
	if deps := rule("lint"); !strings.Contains(deps, " lint-ansible ") {
		t.Errorf("make lint does not run lint-ansible:%s", deps)
	}
	for _, want := range []string{"ansible-test sanity --python 3.11", "ansible-lint --profile production collection molecule"} {
		if !strings.Contains(mk, want) {
			t.Errorf("Makefile lacks %q", want)
		}
	}
	ci := string(mustRead(t, filepath.Join(root, ".ci", "run")))
	for _, want := range []string{"make test", "ansible-lint", "yamllint", "ansible-core"} {
		if !strings.Contains(ci, want) {
			t.Errorf(".ci/run lacks %q", want)
		}
	}
}

package ansible

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/coretest"
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

// TestSanityAndLint runs the collection's offline ansible-test sanity tests
// and ansible-lint's production profile (make sanity, make lint-ansible),
// and checks that CI runs them.
func TestSanityAndLint(t *testing.T) {
	needSetup(t)
	for _, tool := range []string{"ansible-test", "ansible-lint", "yamllint"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: apt-get install -y ansible-core ansible-lint yamllint", tool)
		}
	}
	out, err := run(env.root, "make", "sanity", "lint-ansible")
	coretest.Record(t, "make sanity lint-ansible", []byte(out))
	if err != nil {
		t.Fatalf("make sanity lint-ansible: %v\n%s", err, tail(out))
	}
	ci := string(mustRead(t, filepath.Join(env.root, ".ci", "run")))
	for _, want := range []string{"make lint sanity", "ansible-lint", "yamllint"} {
		if !strings.Contains(ci, want) {
			t.Errorf(".ci/run lacks %q", want)
		}
	}
}

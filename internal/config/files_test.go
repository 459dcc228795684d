package config

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/hostfs"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/input"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/redact"
)

// An input error names a file inside the prefix relative to it, as every
// other does (main/x.toml, config.template.main.toml): scripts reading
// the file field need not know which error gave which form.
func TestInputErrorsNameFilesRelativeToThePrefix(t *testing.T) {
	tpl := "[[client_configs]]\nurl = \"https://gl\"\npersonal_access_token = \"x\"\n"
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, prefix string)
		file  string
	}{
		{"template missing", func(t *testing.T, p string) { rm(t, p, "config.template.main.toml") }, "config.template.main.toml"},
		{"template open to others", func(t *testing.T, p string) { chmod(t, p, "config.template.main.toml", 0o604) }, "config.template.main.toml"},
		{"executor folder missing", func(t *testing.T, p string) { rm(t, p, "main/shell.toml"); rm(t, p, "main") }, "main"},
		{"executor folder open to group", func(t *testing.T, p string) { chmod(t, p, "main", 0o770) }, "main"},
		{"no executor files", func(t *testing.T, p string) { rm(t, p, "main/shell.toml") }, "main"},
		{"prefix open to others (not inside itself)", func(t *testing.T, p string) { chmod(t, p, "", 0o755) }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prefix := t.TempDir()
			chmod(t, prefix, "", 0o700)
			write(t, prefix, "config.template.main.toml", tpl)
			write(t, prefix, "main/shell.toml", "url = \"https://gl\"\n")
			tc.setup(t, prefix)
			_, err := Load(context.Background(), LoadOptions{Layout: hostfs.Layout{Prefix: prefix, Instance: "main"}, Hostname: "node1", Secrets: redact.New()})
			ie := input.As(err)
			want := tc.file
			if want == "" {
				want = prefix
			}
			if ie == nil || ie.File != want {
				t.Fatalf("got %#v, want an input error naming the file %q", err, want)
			}
		})
	}
}

func write(t *testing.T, prefix, rel, data string) {
	t.Helper()
	p := filepath.Join(prefix, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

func rm(t *testing.T, prefix, rel string) {
	t.Helper()
	if err := os.Remove(filepath.Join(prefix, rel)); err != nil {
		t.Fatal(err)
	}
}

func chmod(t *testing.T, prefix, rel string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(filepath.Join(prefix, rel), mode); err != nil {
		t.Fatal(err)
	}
}

package module

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/engine"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/hostfs"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/input"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/prune"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/redact"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/testkit/coretest"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/testkit/gitlabsim"
)

// A group or project given by path is looked up with the client's token
// and CA: the token file is read as every token file is (regular, owner
// only, capped, never waiting on a FIFO) and the lookup trusts
// tls_ca_file, for the sync module and for prune alike.

// tlsGroupGitLab serves GitLab over HTTPS with its own CA and the group
// ops/ci (id 77) and writes the PAT into an owner-only file.
func tlsGroupGitLab(t *testing.T) (sim *coretest.Sim, ca, patFile string) {
	t.Helper()
	opts := coretest.SimOptions()
	opts.Groups = []gitlabsim.Group{{ID: 77, FullPath: "ops/ci"}, {ID: 76, FullPath: "ops"}}
	sim, ca = coretest.NewTLSSim(t, opts)
	patFile = filepath.Join(t.TempDir(), "pat")
	if err := os.WriteFile(patFile, []byte(coretest.AdminPAT+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return sim, ca, patFile
}

func groupTask(sim *coretest.Sim, prefix, ca, patFile string) map[string]any {
	in := declared(sim, prefix, "a")
	in["clients"] = []any{map[string]any{"url": sim.URL, "personal_access_token_file": patFile, "tls_ca_file": ca,
		"group": "ops/ci", "runner_type": "group_type"}}
	return in
}

func TestGroupLookupUsesTheTokenFileAndTheCA(t *testing.T) {
	sim, ca, patFile := tlsGroupGitLab(t)
	prefix := filepath.Join(t.TempDir(), "prefix")
	if res := runModule(t, groupTask(sim, prefix, ca, patFile)); res["failed"] == true {
		t.Fatalf("group by path over TLS with tls_ca_file: %v", res)
	}
	tpl, _ := os.ReadFile(filepath.Join(prefix, "config.template.main.toml"))
	if !strings.Contains(string(tpl), "group_id = 77") {
		t.Fatal("the template lacks the group's id")
	}
	in := map[string]any{"_gra_module": "prune", "url": sim.URL, "personal_access_token_file": patFile, "tls_ca_file": ca,
		"group": "ops/ci", "tags": []any{"main"}, "_ansible_check_mode": true}
	if res := runModule(t, in); res["failed"] == true {
		t.Fatalf("prune in a group by path over TLS with tls_ca_file: %v", res)
	}
}

// TestGroupLookupTokenFileIsGuarded: a token file that is a FIFO, larger
// than any token, readable by others or owned by another user stops the
// task with a typed input error at the option, within its deadline, and
// nothing is sent to GitLab.
func TestGroupLookupTokenFileIsGuarded(t *testing.T) {
	sim, ca, _ := tlsGroupGitLab(t)
	cases := []struct {
		name string
		make func(t *testing.T, path string)
		is   error // the cause; nil: a mode refused (with a fix)
		root bool
	}{
		{"FIFO", func(t *testing.T, p string) { must(t, syscall.Mkfifo(p, 0o600)) }, hostfs.ErrNotRegular, false},
		{"3 GiB sparse file", func(t *testing.T, p string) {
			must(t, os.WriteFile(p, []byte(coretest.AdminPAT+"\n"), 0o600))
			must(t, os.Truncate(p, 3<<30))
		}, hostfs.ErrTooLarge, false},
		{"readable by group", func(t *testing.T, p string) {
			must(t, os.WriteFile(p, []byte(coretest.AdminPAT+"\n"), 0o600))
			must(t, os.Chmod(p, 0o640))
		}, nil, false},
		{"owned by another user", func(t *testing.T, p string) {
			must(t, os.WriteFile(p, []byte(coretest.AdminPAT+"\n"), 0o600))
			must(t, os.Chown(p, nobody, nobody))
		}, hostfs.ErrForeignOwner, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.root {
				requireRoot(t)
			}
			patFile := filepath.Join(t.TempDir(), "pat")
			tc.make(t, patFile)
			sim.ResetLog()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute) // a hang guard
			defer cancel()

			a, err := ParseArgs(args(t, groupTask(sim, filepath.Join(t.TempDir(), "prefix"), ca, patFile)))
			if err != nil {
				t.Fatal(err)
			}
			_, err = engine.Run(ctx, a.options(redact.New()))
			checkTokenFileErr(t, "sync", err, "clients[0].group", tc.is)

			pa, err := ParsePruneArgs(map[string]any{"url": sim.URL, "personal_access_token_file": patFile, "tls_ca_file": ca,
				"group": "ops/ci", "tags": []any{"main"}, "_ansible_check_mode": true})
			if err != nil {
				t.Fatal(err)
			}
			_, err = prune.Run(ctx, pa.Options)
			checkTokenFileErr(t, "prune", err, "personal_access_token_file", tc.is)
			if ctx.Err() != nil {
				t.Fatal("the token file held the task until its deadline")
			}
			if n := len(sim.Requests()); n != 0 {
				t.Errorf("%d requests sent with a token file that was refused", n)
			}
		})
	}
}

func checkTokenFileErr(t *testing.T, what string, err error, option string, is error) {
	t.Helper()
	ie := input.As(err)
	if ie == nil || string(ie.Option) != option || (is != nil && !errors.Is(err, is)) || (is == nil && ie.Fix == "") {
		t.Errorf("%s: got %#v, want an input error at %s (cause %v)", what, err, option, is)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

package module

import (
	"context"
	"encoding/json"
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
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/redact"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/testkit/coretest"
)

// What a task reads of the host for its diff ("before") goes through the
// same guards as every read: the prefix and executor folder are checked
// first, each file's owner next, and only a regular file is read, capped.

// rootLike is what a file of root's holds, as an attacker would link it
// into a folder they own: it must never reach a result.
const rootLike = "root:$6$never-in-a-result$:19000:0:99999:7:::\n"

const nobody = 65534

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: files owned by another user cannot be made otherwise")
	}
}

// coreRun runs the task's engine call directly, for its typed error.
func coreRun(t *testing.T, in map[string]any) (*engine.Result, error) {
	t.Helper()
	a, err := ParseArgs(args(t, in))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute) // a hang guard
	defer cancel()
	return engine.Run(ctx, a.options(redact.New()))
}

func diffOf(t *testing.T, res map[string]any) string {
	t.Helper()
	d, err := json.Marshal(res["diff"])
	if err != nil {
		t.Fatal(err)
	}
	return string(d)
}

// TestNothingIsReadFromAFolderAnotherUserOwns: an executor folder owned by
// another user may hold anything of root's (a hard link, say); the task
// refuses it, in check mode and for state: absent too, before reading any
// file in it.
func TestNothingIsReadFromAFolderAnotherUserOwns(t *testing.T) {
	requireRoot(t)
	sim := coretest.NewSim(t, coretest.SimOptions())
	prefix := filepath.Join(t.TempDir(), "prefix")
	if r := runModule(t, declared(sim, prefix, "a")); r["failed"] == true {
		t.Fatalf("converge: %v", r)
	}
	folder := filepath.Join(prefix, "main")
	if err := os.WriteFile(filepath.Join(folder, "b.toml"), []byte(rootLike), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(folder, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		check  bool
		absent bool
	}{{true, false}, {false, false}, {true, true}} {
		check := tc.check
		in := declared(sim, prefix, "a")
		if tc.absent {
			in = map[string]any{"prefix": prefix, "instance": "main", "hostname": "node5", "state": "absent", "_ansible_diff": true}
		}
		in["_ansible_check_mode"] = check
		res, err := coreRun(t, in)
		if ie := input.As(err); ie == nil || ie.File != "main" || !errors.Is(err, hostfs.ErrForeignOwner) {
			t.Fatalf("check %v, absent %v: got %v, want the executor folder refused: owned by another user", check, tc.absent, err)
		}
		if res != nil && len(res.Files) != 0 {
			t.Errorf("check %v: the result shows files of a folder it refused: %+v", check, res.Files)
		}
		if out := runModule(t, in); out["failed"] != true || strings.Contains(diffOf(t, out)+out["msg"].(string), "never-in-a-result") {
			t.Errorf("check %v: the task did not fail, or shows what the folder holds: %v", check, out)
		}
	}
}

// TestDiffDoesNotReadAFileAnotherUserOwns: in a trusted folder, a file
// owned by another user is not read for the diff; the task replaces it.
func TestDiffDoesNotReadAFileAnotherUserOwns(t *testing.T) {
	requireRoot(t)
	sim := coretest.NewSim(t, coretest.SimOptions())
	prefix := filepath.Join(t.TempDir(), "prefix")
	if r := runModule(t, declared(sim, prefix, "a")); r["failed"] == true {
		t.Fatalf("converge: %v", r)
	}
	for _, name := range []string{"a.toml", "b.toml"} { // declared, and not
		path := filepath.Join(prefix, "main", name)
		if err := os.WriteFile(path, []byte(rootLike), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(path, nobody, nobody); err != nil {
			t.Fatal(err)
		}
	}
	in := declared(sim, prefix, "a")
	in["_ansible_check_mode"] = true
	res, err := coreRun(t, in)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Files) != 2 {
		t.Fatalf("files %+v, want a.toml replaced and b.toml removed", res.Files)
	}
	for _, f := range res.Files {
		if strings.Contains(f.Before, "never-in-a-result") {
			t.Errorf("%s: the diff read a file another user owns:\n%s", f.Path, f.Before)
		}
	}
	in["_ansible_check_mode"] = false
	if out := runModule(t, in); out["failed"] == true || out["changed"] != true || strings.Contains(diffOf(t, out), "never-in-a-result") {
		t.Fatalf("the task: %v", out)
	}
	if _, err := os.Lstat(filepath.Join(prefix, "main", "b.toml")); !os.IsNotExist(err) {
		t.Errorf("the undeclared file another user owns is still there")
	}
}

// TestOddFilesInTheExecutorFolderAreNotRead: a FIFO (opening it would
// wait for a writer) and a 2 GiB sparse file are never read whole: the
// diff says they were not read, and the task, which would have to keep
// their contents to put them back, fails naming each, typed, within its
// deadline, leaving the host as it was.
func TestOddFilesInTheExecutorFolderAreNotRead(t *testing.T) {
	sim := coretest.NewSim(t, coretest.SimOptions())
	root := t.TempDir()
	prefix := filepath.Join(root, "prefix")
	if r := runModule(t, declared(sim, prefix, "a")); r["failed"] == true {
		t.Fatalf("converge: %v", r)
	}
	for _, tc := range []struct {
		name string
		make func(path string) error
		want error
	}{
		{"fifo.toml", func(p string) error { return syscall.Mkfifo(p, 0o600) }, hostfs.ErrNotRegular},
		{"sparse.toml", func(p string) error {
			if err := os.WriteFile(p, []byte("never-in-a-result = 1\n"), 0o600); err != nil {
				return err
			}
			return os.Truncate(p, 2<<30)
		}, hostfs.ErrTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The tree is taken without the odd file: reading it is what
			// the task must not do.
			before := coretest.Tree(t, root)
			path := filepath.Join(prefix, "main", tc.name)
			if err := tc.make(path); err != nil {
				t.Fatal(err)
			}
			defer os.Remove(path)
			odd, err := os.Lstat(path)
			if err != nil {
				t.Fatal(err)
			}

			in := declared(sim, prefix, "a")
			in["_ansible_check_mode"] = true
			res, err := coreRun(t, in)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Files) != 1 || res.Files[0].Path != path || !res.Files[0].Removed || strings.Contains(res.Files[0].Before, "never-in-a-result") {
				t.Fatalf("check mode: files %+v, want %s to be removed, not read", res.Files, tc.name)
			}

			in["_ansible_check_mode"] = false
			_, err = coreRun(t, in)
			if ie := input.As(err); ie == nil || !strings.HasSuffix(ie.File, tc.name) || !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want an input error at %s: %v", err, tc.name, tc.want)
			}
			if now, err := os.Lstat(path); err != nil || now.Mode() != odd.Mode() || now.Size() != odd.Size() {
				t.Fatalf("the failed task changed %s", tc.name)
			}
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			coretest.SameTree(t, "after the failed task", before, coretest.Tree(t, root), false)
		})
	}
}

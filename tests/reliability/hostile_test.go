package reliability

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/coretest"
)

// Hostile input, as an attacker would try it against a root run: files
// owned by someone else, links and FIFOs where regular files belong.

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: files owned by another user cannot be made otherwise")
	}
}

func chown(t *testing.T, path string, uid int) {
	t.Helper()
	if err := os.Lchown(path, uid, uid); err != nil {
		t.Fatal(err)
	}
}

// TestFilesOwnedByAnotherUserAreRefused: a root run trusts only files
// owned by root or by the user running it. Someone who owns the prefix (or
// a token file) could otherwise point a root run at root's secrets and at
// a GitLab of their own.
func TestFilesOwnedByAnotherUserAreRefused(t *testing.T) {
	requireRoot(t)
	const nobody = 65534
	cases := []struct {
		name  string
		setup func(t *testing.T, w *world) string // returns the path that must be named
	}{
		{"prefix", func(t *testing.T, w *world) string { chown(t, w.p.Dir, nobody); return w.p.Dir }},
		{"executor folder", func(t *testing.T, w *world) string {
			p := filepath.Join(w.p.Dir, "main")
			chown(t, p, nobody)
			return p
		}},
		{"template", func(t *testing.T, w *world) string {
			p := filepath.Join(w.p.Dir, "config.template.main.toml")
			chown(t, p, nobody)
			return p
		}},
		{"executor file", func(t *testing.T, w *world) string {
			p := filepath.Join(w.p.Dir, "main", "a.toml")
			chown(t, p, nobody)
			return "main/a.toml"
		}},
		{"token file outside the prefix", func(t *testing.T, w *world) string {
			p := filepath.Join(t.TempDir(), "pat")
			if err := os.WriteFile(p, []byte(coretest.AdminPAT+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			chown(t, p, nobody)
			w.p.Write("config.template.main.toml", template(w, fmt.Sprintf("personal_access_token_file = %q\n", p)))
			return p
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := baseline(t)
			path := tc.setup(t, w)
			code, _, stderr := runBinary(t, nil, w.cliArgs()...)
			if code != 2 {
				t.Fatalf("exit %d, want 2:\n%s", code, stderr)
			}
			for _, want := range []string{path, "owned by uid 65534", "chown root"} {
				if !strings.Contains(stderr, want) {
					t.Errorf("message lacks %q:\n%s", want, stderr)
				}
			}
			if n := len(w.sim.Requests()); n != 0 {
				t.Errorf("sent %d requests with untrusted input", n)
			}
		})
	}
}

// TestSymlinkedLockIsNotFollowed: a link at the lock's path must not make
// the run create (or truncate) the file it points to.
func TestSymlinkedLockIsNotFollowed(t *testing.T) {
	w := baseline(t)
	target := filepath.Join(t.TempDir(), "created-by-root")
	lock := filepath.Join(w.p.Dir, ".gitlab-runner-auth.main.lock")
	_ = os.Remove(lock) // left by the baseline's run
	if err := os.Symlink(target, lock); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runBinary(t, nil, w.cliArgs()...)
	if _, err := os.Lstat(target); err == nil {
		t.Fatalf("the run created the file the lock links to (exit %d)", code)
	}
	if code == 0 || !strings.Contains(stderr, lock) || !strings.Contains(stderr, "symbolic link") {
		t.Fatalf("exit %d, want a failure naming the linked lock:\n%s", code, stderr)
	}
}

// TestNonRegularFilesAreRefused: a FIFO (or device) where the live config,
// the state file or the system id belongs is refused at once; it never
// hangs the run past its bound.
func TestNonRegularFilesAreRefused(t *testing.T) {
	for _, name := range []string{"config.main.toml", ".gitlab-runner-auth.main.json", ".runner_system_id"} {
		t.Run(name, func(t *testing.T) {
			w := baseline(t)
			path := filepath.Join(w.p.Dir, name)
			_ = os.Remove(path)
			if err := syscall.Mkfifo(path, 0o600); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			code, stderr := runBounded(t, 15*time.Second, w.cliArgs("--timeout", "5s")...)
			el := time.Since(start)
			if el > 10*time.Second {
				t.Fatalf("a FIFO at %s held the run for %s (timeout 5s)", name, el)
			}
			if code != 2 || !strings.Contains(stderr, name) || !strings.Contains(stderr, "not a regular file") {
				t.Fatalf("exit %d after %s, want 2 naming %s as not a regular file:\n%s", code, el, name, stderr)
			}
		})
	}
}

// runBounded runs the binary and kills it after limit; the exit code is -1
// when it had to be killed.
func runBounded(t *testing.T, limit time.Duration, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	coretest.Record(t, "output", []byte(out.String()))
	if ctx.Err() != nil {
		return -1, out.String()
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), out.String()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, out.String()
}

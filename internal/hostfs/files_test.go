package hostfs

import (
	"context"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/input"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/redact"
)

// The live config and the lock are named relative to the prefix in input
// errors, as the template and executor files are.
func TestInputErrorsNameInstanceFilesRelativeToThePrefix(t *testing.T) {
	l := Layout{Prefix: t.TempDir(), Instance: "main"}
	if err := os.WriteFile(l.ConfigPath(), []byte("[[runners]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := ReadLiveConfig(l, redact.New())
	if ie := input.As(err); ie == nil || ie.File != "config.main.toml" || ie.Line == 0 || ie.Fix == "" {
		t.Errorf("corrupt config: got %#v, want config.main.toml, a line, with a fix", err)
	}

	if err := os.Remove(l.ConfigPath()); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(l.ConfigPath(), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = ReadLiveConfig(l, redact.New())
	if ie := input.As(err); ie == nil || ie.File != "config.main.toml" || ie.Err != ErrNotRegular {
		t.Errorf("FIFO config: got %#v, want config.main.toml, not a regular file", err)
	}
	if err := os.Symlink(l.ConfigPath(), l.StatePath()); err != nil {
		t.Fatal(err)
	}
	_, _, err = ReadState(l)
	if ie := input.As(err); ie == nil || ie.File != ".gitlab-runner-auth.main.json" {
		t.Errorf("FIFO state file: got %#v, want .gitlab-runner-auth.main.json", err)
	}

	if err := os.Symlink(l.ConfigPath(), l.LockPath()); err != nil {
		t.Fatal(err)
	}
	_, err = Lock(context.Background(), l, time.Second)
	if ie := input.As(err); ie == nil || ie.File != ".gitlab-runner-auth.main.lock" || ie.Fix == "" {
		t.Errorf("linked lock: got %#v, want .gitlab-runner-auth.main.lock with a fix", err)
	}
}

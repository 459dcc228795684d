package hostfs

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// A reservation takes its space at once (a full disk fails before
// anything else happens), and the content written later lands in it
// whole, replacing the file atomically.
func TestReservation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.main.toml")
	if err := os.WriteFile(path, []byte("old\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	before := free(t, dir)
	r, err := Reserve(path, 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	if taken := before - free(t, dir); taken < 60<<20 {
		t.Fatalf("%d bytes taken from the file system, want 64 MiB reserved", taken)
	}
	wrote, err := r.Update([]byte("new\n"), nil)
	if err != nil || !wrote {
		t.Fatalf("update: %v %v", wrote, err)
	}
	b, _ := os.ReadFile(path)
	fi, _ := os.Stat(path)
	if string(b) != "new\n" || fi.Mode().Perm() != 0o600 {
		t.Fatalf("file %q mode %v", b, fi.Mode())
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("left behind: %v", entries)
	}
	// Used once; a second update writes as usual.
	if _, err := r.Update([]byte("again\n"), nil); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "again\n" {
		t.Fatalf("second update: %q", b)
	}
}

// Without the space, Reserve fails with ENOSPC and leaves nothing.
func TestReservationWithoutSpace(t *testing.T) {
	dir := t.TempDir()
	n := free(t, dir)
	_, err := Reserve(filepath.Join(dir, "config.main.toml"), n+1<<30)
	if !errors.Is(err, syscall.ENOSPC) && !errors.Is(err, syscall.EFBIG) {
		t.Fatalf("reserving more than the %d free bytes: %v, want ENOSPC", n, err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("left behind: %v", entries)
	}
}

func free(t *testing.T, dir string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * st.Bsize
}

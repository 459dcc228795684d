package hostfs

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/gofrs/flock"
)

// TestLockRemovedWhileHeldIsTakenAtItsPath: a run that removes the lock
// file does so holding it; a run that was waiting then holds the file at
// the lock's path, so a third run waits for it rather than taking a new
// file beside it.
func TestLockRemovedWhileHeldIsTakenAtItsPath(t *testing.T) {
	l := Layout{Prefix: t.TempDir(), Instance: "main"}
	a, err := Lock(context.Background(), l, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *flock.Flock, 1)
	go func() {
		b, err := Lock(context.Background(), l, 10*time.Second)
		if err != nil {
			t.Error(err)
		}
		got <- b
	}()
	time.Sleep(100 * time.Millisecond) // b waits on the file a holds
	if err := os.Remove(l.LockPath()); err != nil {
		t.Fatal(err)
	}
	_ = a.Close()
	b := <-got
	if b == nil {
		t.FailNow()
	}
	defer b.Close()
	held, err := b.Stat()
	now, err2 := os.Lstat(l.LockPath())
	if err != nil || err2 != nil || !os.SameFile(held, now) {
		t.Fatalf("the waiting run holds a file that is not at the lock's path (%v, %v)", err, err2)
	}
	var busy *BusyError
	if _, err := Lock(context.Background(), l, 200*time.Millisecond); !errors.As(err, &busy) {
		t.Fatalf("a third run got %v, want to find the lock busy", err)
	}
}

// TestRemoveLockLeavesAHeldLock: the lock file is removed only by a run
// that holds it; while another run holds it, it stays (and that run's
// lock still excludes a third).
func TestRemoveLockLeavesAHeldLock(t *testing.T) {
	l := Layout{Prefix: t.TempDir(), Instance: "main"}
	a, err := Lock(context.Background(), l, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var busy *BusyError
	if err := RemoveLock(context.Background(), l, 200*time.Millisecond); !errors.As(err, &busy) {
		t.Fatalf("RemoveLock while another run holds the lock: %v, want it busy", err)
	}
	if _, err := os.Lstat(l.LockPath()); err != nil {
		t.Fatalf("the held lock file was removed: %v", err)
	}
	if _, err := Lock(context.Background(), l, 200*time.Millisecond); !errors.As(err, &busy) {
		t.Fatalf("a third run got %v, want to find the lock busy", err)
	}
	_ = a.Close()
	if err := RemoveLock(context.Background(), l, time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(l.LockPath()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("lock file after RemoveLock: %v", err)
	}
}

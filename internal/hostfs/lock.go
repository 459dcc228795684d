package hostfs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/gofrs/flock"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/input"
)

// BusyError says another run held the instance's lock for longer than
// the run would wait.
type BusyError struct {
	Instance string
	Path     string
	Waited   time.Duration
}

func (e *BusyError) Error() string {
	return fmt.Sprintf("another run for instance %q holds the lock %s; gave up after %s", e.Instance, e.Path, e.Waited)
}

// Lock takes the instance's advisory lock, waiting at most timeout; the
// caller unlocks it.
func Lock(ctx context.Context, l Layout, timeout time.Duration) (*flock.Flock, error) {
	lctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		// O_NOFOLLOW: a link planted at the lock's path must not make a root
		// run create or open the file it points to; O_NONBLOCK: a FIFO there
		// must not hang the run.
		fl := flock.New(l.LockPath(), flock.SetPermissions(0o600),
			flock.SetFlag(os.O_CREATE|os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC))
		ok, err := fl.TryLockContext(lctx, 50*time.Millisecond)
		if errors.Is(err, syscall.ELOOP) {
			return nil, input.Errorf(l.Rel(l.LockPath()), "", "the lock file is a symbolic link").
				WithFix("the tool creates it itself, so remove the link (rm %s)", l.LockPath())
		}
		if err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
			return nil, fmt.Errorf("lock %s: %w", l.LockPath(), err)
		}
		if !ok {
			return nil, &BusyError{Instance: l.Instance, Path: l.LockPath(), Waited: timeout}
		}
		// The file locked must still be the one at the path: a run that
		// removes the lock file does so holding it, and a run that waited
		// on the removed file takes the lock again, on the file now at the
		// path.
		held, herr := fl.Stat()
		now, nerr := os.Lstat(l.LockPath())
		if herr == nil && nerr == nil && os.SameFile(held, now) {
			return fl, nil
		}
		_ = fl.Close()
	}
}

// RemoveLock removes the instance's lock file, holding it (state: absent
// leaves nothing of the instance behind). A run that was waiting on the
// removed file then finds it is no longer the file at the path and takes
// the lock again on a new one (Lock), so two runs never hold the lock at
// once. When another run holds the lock for longer than timeout, the file
// stays: it is that run's (BusyError).
func RemoveLock(ctx context.Context, l Layout, timeout time.Duration) error {
	fl, err := Lock(ctx, l, timeout)
	if err != nil {
		return err
	}
	defer fl.Close()
	if err := os.Remove(l.LockPath()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing the lock %s: %w", l.LockPath(), err)
	}
	return nil
}

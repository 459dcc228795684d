package hostfs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"

	"github.com/google/renameio/v2"
)

// Reservation is the replacement of a file whose disk space is taken
// before a run makes any change in GitLab: once reserved, writing the new
// content (up to the size reserved) cannot fail for want of space, so a
// run never creates a runner whose token it then cannot keep.
type Reservation struct {
	path string
	pf   *renameio.PendingFile
	size int64
}

// Reserve allocates size bytes for a later replacement of path, in a
// temporary file next to it (same file system). It fails, changing
// nothing, when the space is not there.
func Reserve(path string, size int64) (*Reservation, error) {
	pf, err := renameio.NewPendingFile(path, renameio.WithStaticPermissions(0o600))
	if err != nil {
		return nil, fmt.Errorf("reserving space for %s: %w", path, err)
	}
	if err := allocate(pf.File, size); err != nil {
		_ = pf.Cleanup()
		return nil, fmt.Errorf("reserving %d bytes for %s: %w", size, path, err)
	}
	return &Reservation{path: path, pf: pf, size: size}, nil
}

// allocate takes size bytes of disk for f: fallocate, or zeros written
// where the file system has no fallocate.
func allocate(f *os.File, size int64) error {
	err := syscall.Fallocate(int(f.Fd()), 0, 0, size)
	if err == nil || !(errors.Is(err, syscall.EOPNOTSUPP) || errors.Is(err, syscall.ENOSYS)) {
		return err
	}
	zeros := make([]byte, 64<<10)
	for left := size; left > 0; {
		n := min(left, int64(len(zeros)))
		if _, err := f.Write(zeros[:n]); err != nil {
			return err
		}
		left -= n
	}
	return f.Sync()
}

// Update replaces the file with data, as the package's Update does (not
// at all when the file is still the one read and already holds data),
// in the space reserved; data larger than the reservation is written as
// WriteAtomic writes. A Reservation is used once.
func (r *Reservation) Update(data []byte, was *Snapshot) (bool, error) {
	if r.pf == nil { // used or released: an ordinary write
		return Update(r.path, data, was)
	}
	if was != nil && bytes.Equal(was.Data, data) && was.Info.Mode().Perm() == 0o600 && was.Unchanged(r.path) {
		r.Release()
		return false, nil
	}
	if int64(len(data)) > r.size {
		r.Release()
		return WriteAtomic(r.path, data)
	}
	pf := r.pf
	r.pf = nil
	defer pf.Cleanup()
	if _, err := pf.Seek(0, io.SeekStart); err != nil {
		return false, err
	}
	if _, err := pf.Write(data); err != nil {
		return false, err
	}
	if err := pf.Truncate(int64(len(data))); err != nil {
		return false, err
	}
	if err := pf.CloseAtomicallyReplace(); err != nil {
		return false, err
	}
	if d, err := os.Open(filepath.Dir(r.path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return true, nil
}

// Release gives the space back (a reservation not used).
func (r *Reservation) Release() {
	if r != nil && r.pf != nil {
		_ = r.pf.Cleanup()
		r.pf = nil
	}
}

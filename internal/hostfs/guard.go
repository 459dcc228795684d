// Package hostfs owns the files of an instance on the host: where they
// are (Layout), which may be trusted (owner and mode checks, capped reads
// that never block), how they are replaced (atomically), the live config
// and the state file, the rendered config, the system id and the lock.
package hostfs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"unicode/utf8"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/input"
	"github.com/google/renameio/v2"
)

// MaxFileSize bounds every file the tool reads from the prefix, except
// the files it writes itself.
const MaxFileSize = 1 << 20

// MaxConfigSize bounds the config and state files the tool writes (and
// gitlab-runner rewrites): room for thousands of runners.
const MaxConfigSize = 16 << 20

// CheckPrivate refuses a path that group or other can access, or that is
// owned by someone other than root or the user running the tool: whoever
// owns a file can change what it says (and, for a folder, what it holds),
// so a root run must not take its secrets or its GitLab from them. name
// is how errors call path (relative to the prefix when inside it).
func CheckPrivate(path, name, what string) error {
	fi, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return &input.Error{File: name, Msg: what + " does not exist", Err: fs.ErrNotExist}
		}
		return input.Errorf(name, "", "%s cannot be read: %v", what, UnwrapPathErr(err))
	}
	return checkPrivateInfo(fi, path, name, what)
}

// checkPrivateInfo checks mode and owner; name is how messages call path.
func checkPrivateInfo(fi fs.FileInfo, path, name, what string) error {
	if err := checkOwner(fi, path, name, what); err != nil {
		return err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		mode := "600"
		if fi.IsDir() {
			mode = "700"
		}
		return input.Errorf(name, "", "%s is accessible by group or other (mode %04o); secrets live here", what, fi.Mode().Perm()).
			WithFix("fix it with: chmod %s %s", mode, path)
	}
	return nil
}

// checkOwner refuses a file owned by anyone but root or the user running
// the tool.
func checkOwner(fi fs.FileInfo, path, name, what string) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	if st.Uid == 0 {
		return nil
	}
	me := os.Geteuid()
	if int(st.Uid) == me {
		return nil
	}
	owner := fmt.Sprintf("uid %d", st.Uid)
	if u, err := user.LookupId(strconv.FormatUint(uint64(st.Uid), 10)); err == nil {
		owner += " (" + u.Username + ")"
	}
	fix := "chown root " + path
	if me != 0 {
		fix = fmt.Sprintf("chown %d %s", me, path)
		if u, err := user.LookupId(strconv.Itoa(me)); err == nil {
			fix = "chown " + u.Username + " " + path
		}
	}
	ie := input.Errorf(name, "", "%s is owned by %s, not by root or the user running this tool; whoever owns it could change what this run trusts", what, owner).
		WithFix("fix it with: %s", fix)
	ie.Err = ErrForeignOwner
	return ie
}

// ErrForeignOwner: a file or folder the run would trust is owned by
// someone other than root or the user running the tool.
var ErrForeignOwner = errors.New("owned by another user")

// UnwrapPathErr drops the path from an *fs.PathError (messages name the file themselves).
func UnwrapPathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// ReadSmall reads a file of at most MaxFileSize bytes (see ReadCapped).
func ReadSmall(path, name string) ([]byte, error) {
	data, _, err := ReadCapped(path, name, MaxFileSize)
	return data, err
}

// ReadTrusted reads a file the run trusts (template, executor file, token
// file): a regular file owned by root or the user running the tool and,
// when private is set, accessible by its owner only. The checks are made
// on the file opened, so a file swapped after them is not read.
func ReadTrusted(path, name, what string, private bool) ([]byte, error) {
	f, fi, err := openRegular(path, name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &input.Error{File: name, Msg: what + " does not exist", Err: fs.ErrNotExist}
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	check := checkOwner
	if private {
		check = checkPrivateInfo
	}
	if err := check(fi, path, name, what); err != nil {
		return nil, err
	}
	return readAllCapped(f, name, MaxFileSize)
}

// CheckProtected refuses a file the run executes or trusts although it
// holds no secret (the capture program, the tag schema): anything but a
// regular file, a file owned by someone other than root or the user
// running the tool, or one group or other may write. Whoever may change
// it decides what the run sends to GitLab. A link is followed: the file
// checked is the one that runs.
func CheckProtected(path, name, what string) error {
	fi, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return &input.Error{File: name, Msg: what + " does not exist", Err: fs.ErrNotExist}
		}
		return input.Errorf(name, "", "%s cannot be read: %v", what, UnwrapPathErr(err))
	}
	if !fi.Mode().IsRegular() {
		return &input.Error{File: name, Err: ErrNotRegular,
			Msg: fmt.Sprintf("%s is not a regular file (%s)", what, kindOf(fi.Mode())), Fix: "give a regular file"}
	}
	return checkProtectedInfo(fi, path, name, what)
}

// ReadProtected reads a file checked as CheckProtected does (the checks
// made on the file opened), capped at MaxFileSize, never waiting on a FIFO.
func ReadProtected(path, name, what string) ([]byte, error) {
	f, fi, err := openRegular(path, name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if err := checkProtectedInfo(fi, path, name, what); err != nil {
		return nil, err
	}
	return readAllCapped(f, name, MaxFileSize)
}

// checkProtectedInfo checks the owner, and that neither group nor other
// may write.
func checkProtectedInfo(fi fs.FileInfo, path, name, what string) error {
	if err := checkOwner(fi, path, name, what); err != nil {
		return err
	}
	if fi.Mode().Perm()&0o022 != 0 {
		ie := input.Errorf(name, "", "%s is writable by group or other (mode %04o); whoever may change it decides what this run sends to GitLab", what, fi.Mode().Perm()).
			WithFix("fix it with: chmod go-w %s", path)
		ie.Err = ErrWritable
		return ie
	}
	return nil
}

// ErrWritable: a file the run executes or trusts may be written by group
// or other.
var ErrWritable = errors.New("writable by group or other")

// ReadCapped reads a regular file of at most limit bytes. It never blocks
// on a FIFO or device: the file is opened without waiting and refused
// unless it is a regular file, so no read outlasts the run's bound.
func ReadCapped(path, name string, limit int64) ([]byte, fs.FileInfo, error) {
	f, fi, err := openRegular(path, name)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	data, err := readAllCapped(f, name, limit)
	return data, fi, err
}

// openRegular opens path for reading with O_NONBLOCK (opening a FIFO
// would otherwise wait for a writer) and refuses anything but a regular file.
func openRegular(path, name string) (*os.File, fs.FileInfo, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil, &input.Error{File: name, Msg: "file does not exist", Err: fs.ErrNotExist}
		}
		return nil, nil, input.Errorf(name, "", "cannot be read: %v", UnwrapPathErr(err))
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, input.Errorf(name, "", "cannot be read: %v", UnwrapPathErr(err))
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, nil, &input.Error{File: name, Err: ErrNotRegular,
			Msg: fmt.Sprintf("is not a regular file (%s)", kindOf(fi.Mode())), Fix: "replace it with a regular file"}
	}
	return f, fi, nil
}

// ErrNotRegular: a FIFO, device, socket or folder where a file belongs.
var ErrNotRegular = errors.New("not a regular file")

func kindOf(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a folder"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a device"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	}
	return "not a plain file"
}

func readAllCapped(f *os.File, name string, limit int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, input.Errorf(name, "", "cannot be read: %v", UnwrapPathErr(err))
	}
	if int64(len(data)) > limit {
		ie := input.Errorf(name, "", "file is larger than %d bytes; this is not a gitlab-runner settings file", limit)
		ie.Err = ErrTooLarge
		return nil, ie
	}
	return data, nil
}

// ErrTooLarge: a file is larger than the tool reads (MaxFileSize, or
// MaxConfigSize for the files it writes); only that much plus one byte
// was read.
var ErrTooLarge = errors.New("file too large")

// CheckInstanceDirs checks the prefix and the instance's executor folder,
// each when it exists, as CheckPrivate does: nothing in a folder another
// user owns or may write is read, not even for a diff (they could have
// linked any file of root's there).
func CheckInstanceDirs(l Layout) error {
	for _, d := range []struct{ path, name, what string }{
		{l.Prefix, l.Prefix, "prefix directory"},
		{l.ExecutorDir(), l.Rel(l.ExecutorDir()), "executor folder"},
	} {
		if err := CheckPrivate(d.path, d.name, d.what); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// CheckText refuses data that is not UTF-8 text.
func CheckText(name string, data []byte) error {
	if !utf8.Valid(data) {
		line := 1 + bytes.Count(data[:firstInvalid(data)], []byte("\n"))
		return &input.Error{File: name, Line: line, Msg: "not valid UTF-8", Fix: "save the file as UTF-8"}
	}
	if bytes.IndexByte(data, 0) >= 0 {
		return input.Errorf(name, "", "contains NUL bytes; this is not a text file")
	}
	return nil
}

func firstInvalid(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return len(b)
}

// Snapshot is a file as read: its bytes and what stat said of it.
type Snapshot struct {
	Data []byte
	Info fs.FileInfo
}

// Unchanged reports whether the file at path is still the one read: the
// same file (device and inode), size, modification time and mode.
func (s *Snapshot) Unchanged(path string) bool {
	if s == nil || s.Info == nil {
		return false
	}
	fi, err := os.Lstat(path)
	return err == nil && os.SameFile(fi, s.Info) && fi.Size() == s.Info.Size() &&
		fi.ModTime().Equal(s.Info.ModTime()) && fi.Mode() == s.Info.Mode()
}

// Update replaces path with data (as WriteAtomic) unless the file is
// still the one was read and already holds data: then nothing is read
// again and nothing written. It reports whether it wrote.
func Update(path string, data []byte, was *Snapshot) (bool, error) {
	if was != nil && bytes.Equal(was.Data, data) && was.Info.Mode().Perm() == 0o600 && was.Unchanged(path) {
		return false, nil
	}
	return WriteAtomic(path, data)
}

// WriteAtomic replaces path with data (temp file in the same folder,
// fsync, rename, fsync of the folder), mode 0600, unless it already holds
// exactly data. It reports whether it wrote.
func WriteAtomic(path string, data []byte) (bool, error) {
	if old, fi, err := ReadCapped(path, path, int64(len(data))); err == nil && bytes.Equal(old, data) && fi.Mode().Perm() == 0o600 {
		return false, nil
	}
	pf, err := renameio.NewPendingFile(path, renameio.WithStaticPermissions(0o600))
	if err != nil {
		return false, err
	}
	defer pf.Cleanup()
	if _, err := pf.Write(data); err != nil {
		return false, err
	}
	if err := pf.CloseAtomicallyReplace(); err != nil {
		return false, err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return true, nil
}

package core

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
// so a root run must not take its secrets or its GitLab from them.
func CheckPrivate(path, what string) error {
	fi, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return &InputError{Where: path, Msg: what + " does not exist", Err: fs.ErrNotExist}
		}
		return inputErr(path, "%s cannot be read: %v", what, unwrapPathErr(err))
	}
	return checkPrivateInfo(fi, path, path, what)
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
		return inputErr(name, "%s is accessible by group or other (mode %04o); secrets live here, so fix it with: chmod %s %s",
			what, fi.Mode().Perm(), mode, path)
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
	me := os.Geteuid()
	if st.Uid == 0 || int(st.Uid) == me {
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
	return inputErr(name, "%s is owned by %s, not by root or the user running this tool; whoever owns it could change what this run trusts, so fix it with: %s",
		what, owner, fix)
}

func unwrapPathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// readSmall reads a file of at most MaxFileSize bytes (see readCapped).
func readSmall(path, name string) ([]byte, error) {
	data, _, err := readCapped(path, name, MaxFileSize)
	return data, err
}

// readTrusted reads a file the run trusts (template, executor file, token
// file): a regular file owned by root or the user running the tool and,
// when private is set, accessible by its owner only. The checks are made
// on the file opened, so a file swapped after them is not read.
func readTrusted(path, name, what string, private bool) ([]byte, error) {
	f, fi, err := openRegular(path, name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &InputError{Where: name, Msg: what + " does not exist", Err: fs.ErrNotExist}
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

// readCapped reads a regular file of at most limit bytes. It never blocks
// on a FIFO or device: the file is opened without waiting and refused
// unless it is a regular file, so no read outlasts the run's bound.
func readCapped(path, name string, limit int64) ([]byte, fs.FileInfo, error) {
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
			return nil, nil, &InputError{Where: name, Msg: "file does not exist", Err: fs.ErrNotExist}
		}
		return nil, nil, inputErr(name, "cannot be read: %v", unwrapPathErr(err))
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, inputErr(name, "cannot be read: %v", unwrapPathErr(err))
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, nil, &InputError{Where: name, Err: errNotRegular,
			Msg: fmt.Sprintf("is not a regular file (%s); replace it with a regular file", kindOf(fi.Mode()))}
	}
	return f, fi, nil
}

// errNotRegular: a FIFO, device, socket or folder where a file belongs.
var errNotRegular = errors.New("not a regular file")

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
	}
	return "not a plain file"
}

func readAllCapped(f *os.File, name string, limit int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, inputErr(name, "cannot be read: %v", unwrapPathErr(err))
	}
	if int64(len(data)) > limit {
		return nil, inputErr(name, "file is larger than %d bytes; this is not a gitlab-runner settings file", limit)
	}
	return data, nil
}

func checkText(name string, data []byte) error {
	if !utf8.Valid(data) {
		line := 1 + bytes.Count(data[:firstInvalid(data)], []byte("\n"))
		return inputErr(name, "line %d: not valid UTF-8; save the file as UTF-8", line)
	}
	if bytes.IndexByte(data, 0) >= 0 {
		return inputErr(name, "contains NUL bytes; this is not a text file")
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

// WriteFileAtomic replaces path with data (temp file in the same folder,
// fsync, rename, fsync of the folder), mode 0600, unless it already holds
// exactly data. It reports whether it wrote.
func WriteFileAtomic(path string, data []byte) (bool, error) {
	if old, fi, err := readCapped(path, path, int64(len(data))); err == nil && bytes.Equal(old, data) && fi.Mode().Perm() == 0o600 {
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

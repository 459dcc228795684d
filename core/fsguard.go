package core

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"unicode/utf8"

	"github.com/google/renameio/v2"
)

// MaxFileSize bounds every file the tool reads from the prefix.
const MaxFileSize = 1 << 20

// CheckPrivate refuses a path that group or other can access.
func CheckPrivate(path, what string) error {
	fi, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return &InputError{Where: path, Msg: what + " does not exist", Err: fs.ErrNotExist}
		}
		return inputErr(path, "%s cannot be read: %v", what, unwrapPathErr(err))
	}
	if fi.Mode().Perm()&0o077 != 0 {
		mode := "600"
		if fi.IsDir() {
			mode = "700"
		}
		return inputErr(path, "%s is accessible by group or other (mode %04o); secrets live here, so fix it with: chmod %s %s",
			what, fi.Mode().Perm(), mode, path)
	}
	return nil
}

func unwrapPathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// readSmall reads a file of at most MaxFileSize bytes that must be UTF-8.
func readSmall(path, name string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, &InputError{Where: name, Msg: "file does not exist", Err: fs.ErrNotExist}
		}
		return nil, inputErr(name, "cannot be read: %v", unwrapPathErr(err))
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, inputErr(name, "cannot be read: %v", unwrapPathErr(err))
	}
	if len(data) > MaxFileSize {
		return nil, inputErr(name, "file is larger than %d bytes; this is not a gitlab-runner settings file", MaxFileSize)
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
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		if fi, err := os.Stat(path); err == nil && fi.Mode().Perm() == 0o600 {
			return false, nil
		}
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

package hostfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/input"
)

// Journal writes files of an instance and remembers what each held
// before, so that a task that fails puts every file back as it was, byte
// for byte, and removes the folders it created.
type Journal struct {
	// Created are the folders it made, outermost first.
	Created []string
	files   []saved
}

type saved struct {
	path    string
	existed bool
	data    []byte
	mode    os.FileMode
}

// MakeDirs creates the missing folders down to dir, mode 0700.
func (j *Journal) MakeDirs(dir string) error {
	var missing []string
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Lstat(d); !errors.Is(err, os.ErrNotExist) || d == filepath.Dir(d) {
			break
		}
		missing = append(missing, d)
	}
	for i := len(missing) - 1; i >= 0; i-- {
		if err := os.Mkdir(missing[i], 0o700); err != nil {
			return fmt.Errorf("creating %s: %w", missing[i], err)
		}
		j.Created = append(j.Created, missing[i])
		// Mkdir applies the umask: make sure.
		if err := os.Chmod(missing[i], 0o700); err != nil {
			return err
		}
	}
	return nil
}

// Write replaces path with data (or removes it when data is nil),
// keeping its previous bytes and mode. A link or anything but a regular
// file there is refused: it is never followed.
func (j *Journal) Write(path string, data []byte) error {
	sv := saved{path: path}
	if fi, err := os.Lstat(path); err == nil {
		if !fi.Mode().IsRegular() {
			return &input.Error{File: path, Err: ErrNotRegular,
				Msg: fmt.Sprintf("is not a regular file (%s); it is never followed or replaced", kindOf(fi.Mode())), Fix: "remove it by hand"}
		}
		if sv.data, _, err = ReadCapped(path, path, MaxConfigSize); err != nil {
			return fmt.Errorf("reading %s: %w", path, err)
		}
		sv.existed, sv.mode = true, fi.Mode().Perm()
	}
	j.files = append(j.files, sv)
	if data == nil {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("removing %s: %w", path, err)
		}
		return nil
	}
	if _, err := WriteAtomic(path, data); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// Restore puts back the previous bytes and modes of every file written,
// in reverse order, and removes the folders it created (when empty).
func (j *Journal) Restore() error {
	var errs []error
	for i := len(j.files) - 1; i >= 0; i-- {
		s := j.files[i]
		if !s.existed {
			if err := os.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
			continue
		}
		if _, err := WriteAtomic(s.path, s.data); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := os.Chmod(s.path, s.mode); err != nil {
			errs = append(errs, err)
		}
	}
	for i := len(j.Created) - 1; i >= 0; i-- {
		_ = os.Remove(j.Created[i])
	}
	return errors.Join(errs...)
}

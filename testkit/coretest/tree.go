package coretest

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TreeEntry is one entry below a folder: its mode, its bytes (regular
// files) and its modification time.
type TreeEntry struct {
	Mode  fs.FileMode
	Data  string
	MTime time.Time
}

// Tree records every entry below dir, links not followed; a dir that does
// not exist gives an empty tree.
func Tree(t testing.TB, dir string) map[string]TreeEntry {
	t.Helper()
	out := map[string]TreeEntry{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == dir && errors.Is(err, fs.ErrNotExist) {
				return fs.SkipDir
			}
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		e := TreeEntry{Mode: fi.Mode(), MTime: fi.ModTime()}
		if fi.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			e.Data = string(b)
		}
		out[p] = e
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// SameTree reports every entry that appeared, vanished or changed (mode or
// bytes, and the modification time when withMTime) between a and b.
func SameTree(t testing.TB, what string, a, b map[string]TreeEntry, withMTime bool) {
	t.Helper()
	for p, x := range a {
		y, ok := b[p]
		switch {
		case !ok:
			t.Errorf("%s: %s vanished", what, p)
		case x.Mode != y.Mode || x.Data != y.Data || (withMTime && !x.MTime.Equal(y.MTime)):
			t.Errorf("%s: %s changed", what, p)
		}
	}
	for p := range b {
		if _, ok := a[p]; !ok {
			t.Errorf("%s: %s appeared", what, p)
		}
	}
}

package input

import (
	"errors"
	"fmt"
	"io/fs"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func flag(o Option) string { return "--" + string(o) }

// The rendered text is "where: what; fix", with the option named by the
// front end; the fields carry the same parts one by one.
func TestRenderAndFields(t *testing.T) {
	for _, tc := range []struct {
		e      *Error
		text   string
		fields Fields
	}{
		{&Error{File: "main/x.toml", Key: "url", Msg: "missing", Fix: "add url = ..."},
			"main/x.toml: key url: missing; add url = ...",
			Fields{File: "main/x.toml", Key: "url", Message: "missing", Fix: "add url = ..."}},
		{&Error{File: "main/x.toml", Line: 1, Column: 7, Key: "url", Msg: "expected value"},
			"main/x.toml: line 1, column 7: key url: expected value",
			Fields{File: "main/x.toml", Line: 1, Column: 7, Key: "url", Message: "expected value"}},
		{&Error{File: "main/x.toml", Line: 4, Msg: "not valid UTF-8", Fix: "save the file as UTF-8"},
			"main/x.toml: line 4: not valid UTF-8; save the file as UTF-8",
			Fields{File: "main/x.toml", Line: 4, Message: "not valid UTF-8", Fix: "save the file as UTF-8"}},
		{&Error{Option: CaptureTags, File: "/bin/capture", Msg: "did not finish", Fix: "make it faster or raise", FixOption: CaptureTimeout},
			"--capture_tags /bin/capture: did not finish; make it faster or raise --capture_timeout",
			Fields{Option: "--capture_tags", File: "/bin/capture", Message: "did not finish", Fix: "make it faster or raise --capture_timeout", FixOption: "--capture_timeout"}},
		{&Error{Msg: "bad"}, "bad", Fields{Message: "bad"}},
	} {
		if got := tc.e.Render(flag); got != tc.text {
			t.Errorf("Render = %q, want %q", got, tc.text)
		}
		if d := cmp.Diff(tc.fields, tc.e.Fields(flag)); d != "" {
			t.Errorf("Fields (-want +got):\n%s", d)
		}
	}
}

// At places an error from reading a file in that file; an error that
// names its own key keeps it, and the cause stays testable.
func TestAt(t *testing.T) {
	parse := &Error{Line: 3, Key: "builds_dir", Msg: "empty", Fix: "give a value"}
	got := At("main/x.yaml", "", parse)
	want := &Error{File: "main/x.yaml", Line: 3, Key: "builds_dir", Msg: "empty", Fix: "give a value"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("At (-want +got):\n%s", d)
	}
	if parse.File != "" {
		t.Error("At changed the error it was given")
	}
	if got := At("main/x.toml", "tags", &Error{Msg: "must be a list"}); got.Key != "tags" || got.File != "main/x.toml" {
		t.Errorf("At gave %+v, want the key tags in main/x.toml", got)
	}
	plain := fmt.Errorf("reading: %w", fs.ErrNotExist)
	if got := At("t.toml", "", plain); got.Msg != plain.Error() || !errors.Is(got, fs.ErrNotExist) {
		t.Errorf("At gave %+v for a plain error", got)
	}
}

// All finds every Error in joined and wrapped errors, in order.
func TestAll(t *testing.T) {
	a, b := &Error{Msg: "a"}, &Error{Msg: "b"}
	err := errors.Join(fmt.Errorf("x: %w", a), errors.New("runtime"), b)
	if got := All(err); len(got) != 2 || got[0] != a || got[1] != b {
		t.Fatalf("All = %v", got)
	}
	if All(errors.New("runtime")) != nil || All(nil) != nil {
		t.Fatal("All found input errors where there are none")
	}
}

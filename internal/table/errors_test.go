package table

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/input"
)

// Parse and read errors are input errors that say where (line, column,
// key) and whether there is a fix, as fields; the caller names the file.
// What the fields say, not the wording of the message, is checked.
func TestErrorsSayWhereAndHowToFix(t *testing.T) {
	list := New()
	list.Set("tags", "gpu")
	_, listErr := list.GetStringList("tags")
	for _, tc := range []struct {
		name string
		err  error
		// want is where the error is (Line, Column, Key); fix, whether it
		// says what to do.
		want input.Error
		fix  bool
	}{
		{"TOML syntax", errOf(ParseTOML([]byte("a = 1\nurl = \n"))), input.Error{Line: 2, Column: 7, Key: "url"}, false},
		{"YAML syntax", errOf(ParseYAML([]byte("url: [unclosed\n"))), input.Error{Line: 1}, false},
		{"YAML null", errOf(ParseYAML([]byte("a: 1\ndocker:\n  image:\n"))), input.Error{Line: 3, Key: "docker.image"}, true},
		{"YAML key twice", errOf(ParseYAML([]byte("a: 1\na: 2\n"))), input.Error{Line: 2, Key: "a"}, false},
		{"nesting", CheckTOMLNesting([]byte("\nx = " + strings.Repeat("[", MaxNesting+1))), input.Error{Line: 2}, false},
		{"not a list", listErr, input.Error{}, true},
		{"null declared value", errOf(FromPlain(map[string]any{"builds_dir": nil}, "executors[0]")), input.Error{Key: "executors[0].builds_dir"}, true},
	} {
		ie := input.As(tc.err)
		if ie == nil {
			t.Errorf("%s: %v is not an input error", tc.name, tc.err)
			continue
		}
		got := *ie
		if got.Msg == "" || (got.Fix != "") != tc.fix {
			t.Errorf("%s: %#v: want a message, and a fix: %v", tc.name, got, tc.fix)
		}
		got.Msg, got.Fix = "", ""
		if d := cmp.Diff(tc.want, got); d != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, d)
		}
	}
}

func errOf(_ *Table, err error) error { return err }

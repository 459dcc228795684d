package table

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/input"
)

// Parse and read errors are input errors that say where (line, column,
// key) and how to fix it as fields; the caller names the file.
func TestErrorsSayWhereAndHowToFix(t *testing.T) {
	list := New()
	list.Set("tags", "gpu")
	_, listErr := list.GetStringList("tags")
	for _, tc := range []struct {
		name string
		err  error
		want input.Error
	}{
		{"TOML syntax", errOf(ParseTOML([]byte("a = 1\nurl = \n"))),
			input.Error{Line: 2, Column: 7, Key: "url", Msg: "expected value but found '\\n' instead"}},
		{"YAML syntax", errOf(ParseYAML([]byte("url: [unclosed\n"))),
			input.Error{Line: 1, Msg: "did not find expected ',' or ']'"}},
		{"YAML null", errOf(ParseYAML([]byte("a: 1\ndocker:\n  image:\n"))),
			input.Error{Line: 3, Key: "docker.image", Msg: "empty (null) values cannot be written to config.toml", Fix: "give a value or remove the key"}},
		{"YAML key twice", errOf(ParseYAML([]byte("a: 1\na: 2\n"))),
			input.Error{Line: 2, Key: "a", Msg: "appears twice"}},
		{"nesting", CheckTOMLNesting([]byte("\nx = " + strings.Repeat("[", MaxNesting+1))),
			input.Error{Line: 2, Msg: "keys, arrays and tables are nested more than 32 levels deep; gitlab-runner's settings never are"}},
		{"not a list", listErr,
			input.Error{Msg: "must be a list of strings, not a string", Fix: `write it as a list, e.g. tags = ["a", "b"]`}},
		{"null declared value", errOf(FromPlain(map[string]any{"builds_dir": nil}, "executors[0]")),
			input.Error{Key: "executors[0].builds_dir", Msg: "null values cannot be written to config.toml", Fix: "give a value or leave the key out"}},
	} {
		ie := input.As(tc.err)
		if ie == nil {
			t.Errorf("%s: %v is not an input error", tc.name, tc.err)
			continue
		}
		if d := cmp.Diff(tc.want, *ie); d != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, d)
		}
	}
}

func errOf(_ *Table, err error) error { return err }

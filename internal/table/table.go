// Package table holds settings files as ordered tables: TOML and YAML
// parsed with bounds on size and nesting, typed readers, and a TOML encoder
// that writes keys in the order they were given, indented as gitlab-runner
// writes its own config. Its errors are input.Errors that name the line,
// column and key at fault but not the file: callers place them (input.At).
package table

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/BurntSushi/toml"
	"gopkg.in/yaml.v3"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/input"
)

// Table is a TOML table that remembers the order of its keys, so that
// settings copied "verbatim" come out in the order the administrator wrote
// them. Values are string, int64, float64, bool, time.Time, []any or *Table.
type Table struct {
	keys []string
	vals map[string]any
}

// New returns an empty table.
func New() *Table { return &Table{vals: map[string]any{}} }

// Set adds or replaces a key; a new key goes last.
func (t *Table) Set(k string, v any) {
	if _, ok := t.vals[k]; !ok {
		t.keys = append(t.keys, k)
	}
	t.vals[k] = v
}

// Get returns a value.
func (t *Table) Get(k string) (any, bool) {
	v, ok := t.vals[k]
	return v, ok
}

// Delete removes a key.
func (t *Table) Delete(k string) {
	if _, ok := t.vals[k]; !ok {
		return
	}
	delete(t.vals, k)
	for i, kk := range t.keys {
		if kk == k {
			t.keys = append(t.keys[:i:i], t.keys[i+1:]...)
			break
		}
	}
}

// Keys returns the keys in order.
func (t *Table) Keys() []string { return append([]string(nil), t.keys...) }

// Clone deep-copies the table.
func (t *Table) Clone() *Table {
	c := New()
	for _, k := range t.keys {
		c.Set(k, CloneValue(t.vals[k]))
	}
	return c
}

func CloneValue(v any) any {
	switch x := v.(type) {
	case *Table:
		return x.Clone()
	case []any:
		out := make([]any, len(x))
		for i := range x {
			out[i] = CloneValue(x[i])
		}
		return out
	}
	return v
}

// ParseTOML decodes TOML into an ordered Table. The error carries the
// line number when the parser gives one.
//
// Errors never quote the file: what the parser found may be a secret (an
// unquoted token), so they give the line, column and key instead.
func ParseTOML(data []byte) (*Table, error) {
	if err := CheckTOMLNesting(data); err != nil {
		return nil, err
	}
	// Decoded into an interface, the library hands over the tables it
	// parsed as they are, instead of copying each value by reflection.
	var v any
	md, err := toml.Decode(string(data), &v)
	if err != nil {
		var pe toml.ParseError
		if asParseError(err, &pe) {
			return nil, &input.Error{Line: pe.Position.Line, Column: pe.Position.Col, Key: keyOfLine(data, pe.Position.Line), Msg: unquote(pe.Message)}
		}
		return nil, &input.Error{Msg: "not valid TOML"}
	}
	order := map[string][]string{}
	seen := map[string]bool{}
	for _, k := range md.Keys() {
		if len(k) == 0 {
			continue
		}
		parent := strings.Join(k[:len(k)-1], "\x00")
		id := parent + "\x01" + k[len(k)-1]
		if !seen[id] {
			seen[id] = true
			order[parent] = append(order[parent], k[len(k)-1])
		}
	}
	m, _ := v.(map[string]any)
	return tableFromMap(m, nil, order)
}

// MaxNesting bounds how deep arrays and tables may nest in a file. The
// TOML library spends memory quadratic in the depth of nested inline
// tables (80 KB of them cost gigabytes); gitlab-runner's settings nest a
// few levels.
const MaxNesting = 32

// CheckTOMLNesting measures nesting on the bytes, before the TOML library
// sees them: brackets and braces outside strings and comments, plus the
// parts of a dotted key (a.b.c nests as deep as {b = {c = ...}}). Every
// text is checked before it is decoded as TOML.
func CheckTOMLNesting(data []byte) error {
	var stack []byte // '[' or '{', innermost last
	line, dots, inKey := 1, 0, true
	tooDeep := func() error {
		return &input.Error{Line: line, Msg: fmt.Sprintf("keys, arrays and tables are nested more than %d levels deep; gitlab-runner's settings never are", MaxNesting)}
	}
	for i := 0; i < len(data); i++ {
		switch c := data[i]; c {
		case '\n':
			line++
			if len(stack) == 0 {
				inKey, dots = true, 0
			}
		case '#':
			for i+1 < len(data) && data[i+1] != '\n' {
				i++
			}
		case '"', '\'':
			i = skipTOMLString(data, i, &line)
		case '=':
			inKey, dots = false, 0
		case '.':
			if inKey {
				dots++
				if dots+len(stack) > MaxNesting {
					return tooDeep()
				}
			}
		case ',':
			if len(stack) > 0 && stack[len(stack)-1] == '{' {
				inKey, dots = true, 0
			}
		case '[', '{':
			stack = append(stack, c)
			if len(stack)+dots > MaxNesting {
				return tooDeep()
			}
			if c == '{' {
				inKey, dots = true, 0
			}
		case ']', '}':
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
			if c == '}' {
				inKey = false
			}
		}
	}
	return nil
}

// skipTOMLString returns the index of the last byte of the string that
// starts at data[i] (basic or literal, one line or multi-line).
func skipTOMLString(data []byte, i int, line *int) int {
	c := data[i]
	multi := i+2 < len(data) && data[i+1] == c && data[i+2] == c
	if multi {
		i += 2
	}
	for i++; i < len(data); i++ {
		switch {
		case data[i] == '\\' && c == '"':
			if i+1 < len(data) && data[i+1] == '\n' {
				*line++
			}
			i++
		case data[i] == '\n':
			*line++
			if !multi {
				return i - 1 // unterminated: the parser says so
			}
		case data[i] == c && !multi:
			return i
		case data[i] == c && i+2 < len(data) && data[i+1] == c && data[i+2] == c:
			i += 2
			for i+1 < len(data) && data[i+1] == c { // up to two quotes end the content
				i++
			}
			return i
		}
	}
	return i
}

var (
	reQuoted  = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile("\"(?:[^\"\\\\]|\\\\.)*\"|'[^'\n]*'|`[^`]*`") })
	reLineKey = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^\s*([A-Za-z0-9_-]+(?:\s*\.\s*[A-Za-z0-9_-]+)*)\s*=`)
	})
)

// unquote drops what a parser's message quotes from the file, but for
// a character or two (a ',' or ']' expected), too short to be a secret.
func unquote(msg string) string {
	return reQuoted().ReplaceAllStringFunc(msg, func(q string) string {
		if utf8.RuneCountInString(q) <= 4 {
			return q
		}
		return "(text not shown)"
	})
}

// keyOfLine names the key set on a line ("", when the line sets none).
func keyOfLine(data []byte, line int) string {
	lines := strings.SplitN(string(data), "\n", line+1)
	if line < 1 || line > len(lines) {
		return ""
	}
	if m := reLineKey().FindStringSubmatch(lines[line-1]); m != nil && len(m[1]) <= 64 {
		return strings.ReplaceAll(m[1], " ", "")
	}
	return ""
}

func asParseError(err error, pe *toml.ParseError) bool {
	p, ok := err.(toml.ParseError)
	if ok {
		*pe = p
	}
	return ok
}

func tableFromMap(m map[string]any, path []string, order map[string][]string) (*Table, error) {
	t := New()
	keys := make([]string, 0, len(m))
	pos := map[string]int{}
	for i, k := range order[strings.Join(path, "\x00")] {
		pos[k] = i
	}
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		pi, iok := pos[keys[i]]
		pj, jok := pos[keys[j]]
		switch {
		case iok && jok:
			return pi < pj
		case iok != jok:
			return iok
		}
		return keys[i] < keys[j]
	})
	for _, k := range keys {
		v, err := valueFromTOML(m[k], append(append([]string(nil), path...), k), order)
		if err != nil {
			return nil, err
		}
		t.Set(k, v)
	}
	return t, nil
}

func valueFromTOML(v any, path []string, order map[string][]string) (any, error) {
	switch x := v.(type) {
	case map[string]any:
		return tableFromMap(x, path, order)
	case []map[string]any:
		out := make([]any, len(x))
		for i, e := range x {
			t, err := tableFromMap(e, path, order)
			if err != nil {
				return nil, err
			}
			out[i] = t
		}
		return out, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			c, err := valueFromTOML(e, path, order)
			if err != nil {
				return nil, err
			}
			out[i] = c
		}
		return out, nil
	case string, int64, float64, bool, time.Time:
		return x, nil
	}
	return nil, &input.Error{Key: strings.Join(path, "."), Msg: fmt.Sprintf("unsupported value of type %T", v)}
}

// ParseYAML decodes a YAML mapping into an ordered Table.
func ParseYAML(data []byte) (*Table, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, yamlError(err)
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return New(), nil
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, &input.Error{Line: root.Line, Msg: "the document must be a mapping of keys to values"}
	}
	budget := maxYAMLValues
	v, err := valueFromYAML(root, nil, 0, &budget)
	if err != nil {
		return nil, err
	}
	return v.(*Table), nil
}

// reYAMLError is how yaml.v3 words a syntax error: "yaml: line 3: ...".
var reYAMLError = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^yaml: line (\d+): (.*)$`) })

// yamlError gives the line of a YAML syntax error as a field.
func yamlError(err error) *input.Error {
	msg := unquote(err.Error())
	if m := reYAMLError().FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &input.Error{Line: line, Msg: m[2]}
	}
	return &input.Error{Msg: msg}
}

// maxYAMLValues bounds the values a YAML file may expand to. Aliases are
// expanded while converting: ten lines of aliases of aliases ("billion
// laughs") would otherwise expand to billions of values.
const maxYAMLValues = 100_000

func valueFromYAML(n *yaml.Node, path []string, depth int, budget *int) (any, error) {
	if depth > 64 {
		return nil, &input.Error{Line: n.Line, Msg: "nesting is too deep"}
	}
	if *budget--; *budget < 0 {
		return nil, &input.Error{Line: n.Line, Msg: fmt.Sprintf("the file expands to more than %d values (YAML aliases of aliases?)", maxYAMLValues),
			Fix: "write the values out instead"}
	}
	at := func(msg, fix string) *input.Error {
		return &input.Error{Line: n.Line, Key: strings.Join(path, "."), Msg: msg, Fix: fix}
	}
	switch n.Kind {
	case yaml.AliasNode:
		return valueFromYAML(n.Alias, path, depth+1, budget)
	case yaml.MappingNode:
		t := New()
		for i := 0; i+1 < len(n.Content); i += 2 {
			kn, vn := n.Content[i], n.Content[i+1]
			if kn.Kind != yaml.ScalarNode || (kn.Tag != "!!str" && kn.Tag != "!!int" && kn.Tag != "!!bool") {
				return nil, &input.Error{Line: kn.Line, Msg: "keys must be plain strings"}
			}
			if kn.Value == "<<" && kn.Tag == "!!merge" {
				return nil, &input.Error{Line: kn.Line, Msg: "YAML merge keys (<<) are not supported", Fix: "write the keys out"}
			}
			if _, dup := t.Get(kn.Value); dup {
				return nil, &input.Error{Line: kn.Line, Key: strings.Join(append(append([]string(nil), path...), kn.Value), "."), Msg: "appears twice"}
			}
			v, err := valueFromYAML(vn, append(append([]string(nil), path...), kn.Value), depth+1, budget)
			if err != nil {
				return nil, err
			}
			t.Set(kn.Value, v)
		}
		return t, nil
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := valueFromYAML(c, path, depth+1, budget)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return nil, at("empty (null) values cannot be written to config.toml", "give a value or remove the key")
		case "!!str", "!!binary":
			return n.Value, nil
		case "!!bool":
			var b bool
			if err := n.Decode(&b); err != nil {
				return nil, at("not a valid boolean", "")
			}
			return b, nil
		case "!!int":
			var i int64
			if err := n.Decode(&i); err != nil {
				return nil, at("not an integer that fits in 64 bits", "quote it if it is text")
			}
			return i, nil
		case "!!float":
			var f float64
			if err := n.Decode(&f); err != nil {
				return nil, at("not a valid number", "quote it if it is text")
			}
			return f, nil
		case "!!timestamp":
			var t time.Time
			if err := n.Decode(&t); err != nil {
				return nil, at("not a valid date and time", "quote it if it is text")
			}
			return t, nil
		}
		return nil, at("unsupported YAML tag "+n.Tag, "")
	}
	return nil, at("unsupported YAML node", "")
}

// FromPlain converts JSON-like values (Ansible module arguments) into a
// Table, checking that every value can be written as TOML.
func FromPlain(m map[string]any, path string) (*Table, error) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	t := New()
	for _, k := range keys {
		p := k
		if path != "" {
			p = path + "." + k
		}
		v, err := valueFromPlain(m[k], p)
		if err != nil {
			return nil, err
		}
		t.Set(k, v)
	}
	return t, nil
}

func valueFromPlain(v any, path string) (any, error) {
	switch x := v.(type) {
	case nil:
		return nil, &input.Error{Key: path, Msg: "null values cannot be written to config.toml", Fix: "give a value or leave the key out"}
	case map[string]any:
		return FromPlain(x, path)
	case []any:
		out := make([]any, len(x))
		for i := range x {
			c, err := valueFromPlain(x[i], fmt.Sprintf("%s[%d]", path, i))
			if err != nil {
				return nil, err
			}
			out[i] = c
		}
		return out, nil
	case string:
		if !utf8.ValidString(x) {
			return nil, &input.Error{Key: path, Msg: "not valid UTF-8"}
		}
		return x, nil
	case bool, int64, time.Time:
		return x, nil
	case int:
		return int64(x), nil
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i, nil
		}
		f, err := x.Float64()
		if err != nil {
			return nil, &input.Error{Key: path, Msg: fmt.Sprintf("%q is not a number", x.String())}
		}
		return f, nil
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return int64(x), nil
		}
		return x, nil
	}
	return nil, &input.Error{Key: path, Msg: fmt.Sprintf("unsupported value of type %T", v)}
}

// GetString reads a string key ("" when absent).
func (t *Table) GetString(key string) (string, error) {
	v, ok := t.Get(key)
	if !ok {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", &input.Error{Msg: fmt.Sprintf("must be %s, not %s", KindString, typeName(v))}
	}
	return s, nil
}

func typeName(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case []any:
		return "a list"
	case *Table:
		return "a table"
	}
	return fmt.Sprintf("%T", v)
}

// GetInt reads an integer key; ok reports whether it is present.
func (t *Table) GetInt(key string) (int64, bool, error) {
	v, ok := t.Get(key)
	if !ok {
		return 0, false, nil
	}
	n, ok := v.(int64)
	if !ok {
		return 0, true, &input.Error{Msg: fmt.Sprintf("must be %s, not %s", KindInt, typeName(v))}
	}
	return n, true, nil
}

// GetBool reads a boolean key, def when absent.
func (t *Table) GetBool(key string, def bool) (bool, error) {
	v, ok := t.Get(key)
	if !ok {
		return def, nil
	}
	b, ok := v.(bool)
	if !ok {
		return false, &input.Error{Msg: fmt.Sprintf("must be %s, not %s", KindBool, typeName(v))}
	}
	return b, nil
}

// GetStringList reads a list of strings.
func (t *Table) GetStringList(key string) ([]string, error) {
	v, ok := t.Get(key)
	if !ok {
		return nil, nil
	}
	arr, ok := v.([]any)
	if !ok {
		return nil, &input.Error{Msg: fmt.Sprintf("must be %s, not %s", KindStringList, typeName(v)),
			Fix: fmt.Sprintf("write it as a list, e.g. %s = [\"a\", \"b\"]", key)}
	}
	out := make([]string, 0, len(arr))
	for i, e := range arr {
		s, ok := e.(string)
		if !ok {
			return nil, &input.Error{Msg: fmt.Sprintf("item %d must be a string, not %s", i, typeName(e))}
		}
		out = append(out, s)
	}
	return out, nil
}

// Kind is the type a key read by name must have.
type Kind int

// The kinds of keys.
const (
	KindString Kind = iota + 1
	KindBool
	KindInt
	KindStringList
)

// String is what a value of this kind must be, for messages: "must be %s".
func (k Kind) String() string {
	switch k {
	case KindBool:
		return "true or false"
	case KindInt:
		return "an integer"
	case KindStringList:
		return "a list of strings"
	}
	return "a string"
}

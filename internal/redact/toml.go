package redact

import (
	"errors"
	"slices"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/table"
)

// TOML redacts a TOML text by key: the value of every secret key
// (IsSecretKey) and the value part of every NAME=value list entry whose
// NAME looks secret (IsSecretName) become "<redacted>", whatever their
// shape (multi-line strings included); every other byte stays as it was,
// so a diff of two redacted texts shows what changed. Commented-out
// assignments are redacted too, and what is secret by its shape wherever
// it stands (tokens, URL credentials, private keys: see shapes). A text
// that is not TOML is redacted line by line, or hidden whole where a
// secret value may run past its line.
func TOML(text string) string {
	orig, keys, ok := decodeTOML(text)
	if !ok {
		return byLine(text)
	}
	spans, err := scanTOML(text)
	if err != nil {
		return Hidden
	}
	out := commentLines(replaceSpans(text, spans))
	out = shapes(replaceValues(out, secretStrings(orig)))
	after, afterKeys, ok := decodeTOML(out)
	if !ok {
		return Hidden
	}
	if hasSecrets(after) || !slices.Equal(keys, afterKeys) {
		return Hidden
	}
	return out
}

// decodeTOML decodes a TOML text, within the nesting the TOML library
// handles in reasonable time and memory, and lists its keys in order
// (redaction changes values, never keys).
func decodeTOML(text string) (map[string]any, []string, bool) {
	if table.CheckTOMLNesting([]byte(text)) != nil {
		return nil, nil, false
	}
	var m map[string]any
	md, err := toml.Decode(text, &m)
	if err != nil {
		return nil, nil, false
	}
	keys := make([]string, 0, len(md.Keys()))
	for _, k := range md.Keys() {
		keys = append(keys, k.String())
	}
	return m, keys, true
}

func isTOML(text string) bool {
	_, _, ok := decodeTOML(text)
	return ok
}

// Hidden replaces a text whose secrets cannot be told apart from the rest.
const Hidden = "# (hidden: the secrets in this text could not be located safely)\n"

// span is a part of a text and what replaces it.
type span struct {
	start, end int
	repl       string
}

func replaceSpans(text string, spans []span) string {
	if len(spans) == 0 {
		return text
	}
	var b strings.Builder
	last := 0
	for _, sp := range spans {
		b.WriteString(text[last:sp.start])
		b.WriteString(sp.repl)
		last = sp.end
	}
	b.WriteString(text[last:])
	return b.String()
}

// replaceValues replaces what is left of each secret value (one that also
// appears elsewhere, say) wherever it occurs, longest first.
func replaceValues(text string, values []string) string {
	var pairs []string
	for _, v := range values {
		if len(v) >= 6 {
			pairs = append(pairs, v, Placeholder)
		}
	}
	if len(pairs) == 0 {
		return text
	}
	return strings.NewReplacer(pairs...).Replace(text)
}

var quotedPlaceholder = `"` + Placeholder + `"`

// tomlScanner finds where each value of a valid TOML text starts and ends
// (the TOML library keeps no positions). It needs to follow only valid
// TOML: the text is decoded first, and the result is checked after.
type tomlScanner struct {
	s     string
	i     int
	spans []span
}

var errFollow = errors.New("cannot follow the text")

func scanTOML(s string) ([]span, error) {
	sc := &tomlScanner{s: s}
	for {
		sc.blank()
		if sc.i >= len(s) {
			return sc.spans, nil
		}
		switch {
		case strings.HasPrefix(s[sc.i:], "[["):
			sc.i += 2
			if _, err := sc.key(); err != nil {
				return nil, err
			}
			if !strings.HasPrefix(s[sc.i:], "]]") {
				return nil, errFollow
			}
			sc.i += 2
		case s[sc.i] == '[':
			sc.i++
			if _, err := sc.key(); err != nil {
				return nil, err
			}
			if !sc.eat(']') {
				return nil, errFollow
			}
		default:
			if err := sc.keyValue(); err != nil {
				return nil, err
			}
		}
		sc.space()
		if sc.i < len(s) && s[sc.i] == '#' {
			sc.comment()
		}
		if sc.i < len(s) && !sc.newline() {
			return nil, errFollow
		}
	}
}

func (sc *tomlScanner) eat(c byte) bool {
	if sc.i < len(sc.s) && sc.s[sc.i] == c {
		sc.i++
		return true
	}
	return false
}

func (sc *tomlScanner) space() {
	for sc.i < len(sc.s) && (sc.s[sc.i] == ' ' || sc.s[sc.i] == '\t') {
		sc.i++
	}
}

func (sc *tomlScanner) newline() bool {
	if strings.HasPrefix(sc.s[sc.i:], "\r\n") {
		sc.i += 2
		return true
	}
	return sc.eat('\n')
}

func (sc *tomlScanner) comment() {
	for sc.i < len(sc.s) && sc.s[sc.i] != '\n' {
		sc.i++
	}
}

// blank skips white space, newlines and comments.
func (sc *tomlScanner) blank() {
	for sc.i < len(sc.s) {
		switch sc.s[sc.i] {
		case ' ', '\t', '\r', '\n':
			sc.i++
		case '#':
			sc.comment()
		default:
			return
		}
	}
}

// key reads a (dotted) key and gives its last part.
func (sc *tomlScanner) key() (string, error) {
	var last string
	for {
		sc.space()
		if sc.i >= len(sc.s) {
			return "", errFollow
		}
		switch c := sc.s[sc.i]; {
		case c == '"':
			end, err := sc.basicEnd(sc.i + 1)
			if err != nil {
				return "", err
			}
			raw := sc.s[sc.i+1 : end-1]
			if strings.Contains(raw, `\`) {
				// An escaped key: decode it as the TOML library does.
				var m map[string]any
				if _, err := toml.Decode(sc.s[sc.i:end]+" = 0", &m); err != nil || len(m) != 1 {
					return "", errFollow
				}
				for k := range m {
					raw = k
				}
			}
			last, sc.i = raw, end
		case c == '\'':
			end, err := sc.literalEnd(sc.i + 1)
			if err != nil {
				return "", err
			}
			last, sc.i = sc.s[sc.i+1:end-1], end
		default:
			j := sc.i
			for j < len(sc.s) && isBare(sc.s[j]) {
				j++
			}
			if j == sc.i {
				return "", errFollow
			}
			last, sc.i = sc.s[sc.i:j], j
		}
		sc.space()
		if !sc.eat('.') {
			return last, nil
		}
	}
}

func isBare(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

func (sc *tomlScanner) keyValue() error {
	k, err := sc.key()
	if err != nil {
		return err
	}
	if !sc.eat('=') {
		return errFollow
	}
	sc.space()
	return sc.value(k, false)
}

// basicEnd gives the end (after the closing quote) of a one-line basic
// string whose content starts at i.
func (sc *tomlScanner) basicEnd(i int) (int, error) {
	for i < len(sc.s) {
		switch sc.s[i] {
		case '\\':
			i += 2
		case '"':
			return i + 1, nil
		case '\n':
			return 0, errFollow
		default:
			i++
		}
	}
	return 0, errFollow
}

// literalEnd gives the end (after the closing quote) of a one-line
// literal string whose content starts at i.
func (sc *tomlScanner) literalEnd(i int) (int, error) {
	j := strings.IndexAny(sc.s[i:], "'\n")
	if j < 0 || sc.s[i+j] != '\'' {
		return 0, errFollow
	}
	return i + j + 1, nil
}

// multiEnd gives the end of a multi-line string whose content starts at i:
// after the last quote of the first run of three or more (up to two quotes
// may end the content).
func (sc *tomlScanner) multiEnd(i int, q byte) (int, error) {
	for i < len(sc.s) {
		switch c := sc.s[i]; {
		case c == '\\' && q == '"':
			i += 2
		case c == q:
			n := 0
			for i+n < len(sc.s) && sc.s[i+n] == q {
				n++
			}
			if n >= 3 {
				if n > 5 {
					return 0, errFollow
				}
				return i + n, nil
			}
			i += n
		default:
			i++
		}
	}
	return 0, errFollow
}

// value reads the value of key at sc.i, noting the spans to redact.
func (sc *tomlScanner) value(key string, inList bool) error {
	s, start := sc.s, sc.i
	if start >= len(s) {
		return errFollow
	}
	var end, quote int
	var err error
	switch c := s[start]; {
	case strings.HasPrefix(s[start:], `"""`), strings.HasPrefix(s[start:], `'''`):
		quote = 3
		end, err = sc.multiEnd(start+3, c)
	case c == '"':
		quote = 1
		end, err = sc.basicEnd(start + 1)
	case c == '\'':
		quote = 1
		end, err = sc.literalEnd(start + 1)
	case c == '[':
		return sc.array(key)
	case c == '{':
		return sc.inlineTable()
	default:
		return sc.bare(key)
	}
	if err != nil {
		return err
	}
	sc.i = end
	return sc.redactString(key, inList, start, end, quote)
}

// bare reads a value that is not a string, array or table (a number, a
// bool, a date) at sc.i: a secret key's is redacted whole, unless it is a
// bool.
func (sc *tomlScanner) bare(key string) error {
	s, start := sc.s, sc.i
	end := start
	for end < len(s) && !strings.ContainsRune(",]}#\r\n", rune(s[end])) {
		end++
	}
	for end > start && (s[end-1] == ' ' || s[end-1] == '\t') {
		end--
	}
	if end == start {
		return errFollow
	}
	if raw := s[start:end]; IsSecretKey(key) && raw != "true" && raw != "false" {
		sc.spans = append(sc.spans, span{start, end, quotedPlaceholder})
	}
	sc.i = end
	return nil
}

// redactString notes what to redact of the string value of key at
// s[start:end], opened and closed by quote quotes: the whole of a secret
// key's, the value part of a secret NAME=value list entry, or the secret
// assignments in a script.
func (sc *tomlScanner) redactString(key string, inList bool, start, end, quote int) error {
	content := sc.s[start+quote : end-quote]
	if quote == 3 {
		// A newline right after the opening quotes is not part of the string.
		content = strings.TrimPrefix(strings.TrimPrefix(content, "\r"), "\n")
	}
	switch {
	case IsSecretKey(key):
		if content != "" && content != Placeholder {
			sc.spans = append(sc.spans, span{start, end, quotedPlaceholder})
		}
		return nil
	case inList:
		if shown, secret := SecretEntry(content); secret {
			sc.spans = append(sc.spans, span{start, end, `"` + shown + `"`})
			return nil
		}
	}
	if strings.IndexByte(content, '=') < 0 {
		return nil
	}
	return sc.redactScript(start, end, quote)
}

// redactScript notes the secret assignments in a script or command line
// (pre_build_script = "export GH_TOKEN=...") held by the string at
// s[start:end]: where the string holds no escape, its text is its value,
// redacted in place (a script keeps its lines in a diff); else it is
// decoded, redacted and written again.
func (sc *tomlScanner) redactScript(start, end, quote int) error {
	s := sc.s
	if raw := s[start+quote : end-quote]; s[start] == '\'' || !strings.Contains(raw, `\`) {
		if red := redactAssignments(raw); red != raw {
			sc.spans = append(sc.spans, span{start + quote, end - quote, red})
		}
		return nil
	}
	var m map[string]any
	if _, err := toml.Decode("x = "+s[start:end], &m); err != nil {
		return errFollow
	}
	v, _ := m["x"].(string)
	if red := redactAssignments(v); red != v {
		sc.spans = append(sc.spans, span{start, end, table.Quote(red)})
	}
	return nil
}

func (sc *tomlScanner) array(key string) error {
	sc.i++
	for {
		sc.blank()
		if sc.eat(']') {
			return nil
		}
		if err := sc.value(key, true); err != nil {
			return err
		}
		sc.blank()
		if sc.eat(',') {
			continue
		}
		if sc.eat(']') {
			return nil
		}
		return errFollow
	}
}

func (sc *tomlScanner) inlineTable() error {
	sc.i++
	for {
		sc.blank()
		if sc.eat('}') {
			return nil
		}
		if err := sc.keyValue(); err != nil {
			return err
		}
		sc.blank()
		if sc.eat(',') {
			continue
		}
		if sc.eat('}') {
			return nil
		}
		return errFollow
	}
}

// secretValues calls fn with every value a decoded TOML or YAML document
// holds under a secret key, or as the value part of a secret NAME=value
// list entry, or assigned to a secret name in a string (a script), that
// is not yet redacted (nor empty, nor a bool).
func secretValues(root any, fn func(v any)) {
	var walk func(key string, v any, inList bool)
	walk = func(key string, v any, inList bool) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				walk(k, e, false)
			}
		case []map[string]any:
			for _, m := range x {
				walk(key, m, true)
			}
		case []any:
			for _, e := range x {
				walk(key, e, true)
			}
		case string:
			if IsSecretKey(key) {
				if x != "" && x != Placeholder {
					fn(x)
				}
				return
			}
			if inList {
				if _, secret := SecretEntry(x); secret {
					_, value, _ := envEntry(x)
					fn(value)
					return
				}
			}
			for _, v := range assignedValues(x) {
				fn(v)
			}
		case bool, nil:
		default:
			if IsSecretKey(key) {
				fn(x)
			}
		}
	}
	walk("", root, false)
}

// secretStrings lists the secret strings of a decoded document, longest
// first (so that a secret that contains another is replaced whole).
func secretStrings(root any) []string {
	var out []string
	secretValues(root, func(v any) {
		if s, ok := v.(string); ok {
			out = append(out, s)
		}
	})
	sort.SliceStable(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

func hasSecrets(root any) bool {
	found := false
	secretValues(root, func(any) { found = true })
	return found
}

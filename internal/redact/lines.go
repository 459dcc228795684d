package redact

import (
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"unicode"

	"gopkg.in/yaml.v3"
)

// File redacts a file's text by key, as TOML or as YAML by its name.
func File(name, text string) string {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".yaml", ".yml":
		return YAML(text)
	}
	return TOML(text)
}

// Keys redacts a text by key whatever its format: as TOML when it is TOML,
// else as YAML when it is a YAML mapping or list, else line by line.
func Keys(text string) string {
	if isTOML(text) {
		return TOML(text)
	}
	if docs, err := yamlDocs(text); err == nil && len(docs) > 0 && len(docs[0].Content) > 0 && docs[0].Content[0].Kind != yaml.ScalarNode {
		return YAML(text)
	}
	return byLine(text)
}

// lineKey finds "key =" or "key:" in a line: a quoted key, or a bare one
// (dotted or not; letters beyond ASCII included, as YAML keys may hold
// them and a look-alike may spell a real key).
var lineKey = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`("(?:[^"\\\n]|\\.)*"|'[^'\n]*'|[\pL\pN_.\-]+)[ \t]*[=:]`)
})

// byLine redacts a text that is neither TOML nor YAML: the rest of each
// line after a secret-looking key, the lines that continue a commented-out
// secret (and those indented under a plain "key: value"), and the whole
// text (Hidden) when a value that is not commented out may go on past its
// line; then secret assignments (NAME=value where lineKey sees no key, in
// a quoted word say) and the shapes that are secrets anywhere.
func byLine(text string) string {
	out, ok := redactLines(text, true)
	if !ok {
		return Hidden
	}
	return shapes(redactAssignments(out))
}

// commentLines redacts the commented-out assignments of a text, as byLine
// does: each comment line, and the comment lines that continue a
// commented-out secret.
func commentLines(text string) string {
	if !strings.Contains(text, "#") {
		return text
	}
	out, _ := redactLines(text, false)
	return out
}

// redactLines redacts the lines of a text (all, or only comment lines) as
// redactLine does, and drops the lines that continue a secret value past
// its line: in a comment, the comment lines after `# PrivateKey = """`,
// "# password: |" or "# secrets = [" up to the block's end (a "#" line
// that continues a secret's block is part of it). ok is false when a line
// that is not a comment opens such a value: where it ends is not known.
func redactLines(text string, all bool) (string, bool) {
	lines := strings.Split(text, "\n")
	out := lines[:0]
	var blk *block
	for _, line := range lines {
		body, comment := commentBody(line)
		if blk != nil {
			switch {
			case strings.TrimSpace(line) == "":
				out = append(out, line)
				continue
			case comment == blk.comment:
				part, last := blk.next(body)
				if last {
					blk = nil
				}
				if part {
					continue
				}
			case all && blk.comment && (blk.closer != "" || blk.depth > 0 || !startsEntry(strings.TrimSpace(line))):
				// Text that does not parse, where a line that is not a
				// comment may go on with a commented-out value (half
				// uncommented): where the value ends is not known.
				return "", false
			default:
				blk = nil
			}
		}
		if !comment && !all {
			out = append(out, line)
			continue
		}
		if t := strings.TrimLeft(body, " \t"); strings.HasPrefix(t, "? ") && IsSecretName(strings.TrimSpace(t[2:])) {
			if !comment {
				return "", false // a complex key: its value is on a later line
			}
			blk = &block{comment: true, indent: len(body) - len(t), list: true}
			out = append(out, line[:len(line)-len(body)]+" ? "+quotedPlaceholder)
			continue
		}
		red, b := redactLine(line)
		if b != nil {
			if !comment && !b.plain {
				return "", false
			}
			b.comment = comment
			b.indent -= len(line) - len(body)
			blk = b
		}
		out = append(out, red)
	}
	return strings.Join(out, "\n"), true
}

// commentBody gives a comment line's text after its "#" marks, or a line
// that is not a comment whole.
func commentBody(line string) (string, bool) {
	t := strings.TrimLeft(line, " \t")
	if !strings.HasPrefix(t, "#") {
		return line, false
	}
	return strings.TrimLeft(t, "#"), true
}

// block is a value that goes on past its line, and how to tell where it
// ends.
type block struct {
	comment bool   // its lines are comment lines (else lines that are not)
	closer  string // it ends on the line that holds this: """, ''', " or '
	yaml    bool   // the closer is a YAML single quote ('' escapes it)
	depth   int    // or where its brackets close
	// Else (a YAML block scalar, a nested or empty value) every line
	// indented more than its key is part of it, and a less indented line
	// too unless it starts another entry (a key, a list item, a table, a
	// document marker); for a plain value only lines indented more; for an
	// empty one list items at the key's indentation too.
	indent      int
	plain, list bool
}

// next takes the body of the next line: part says whether it belongs to
// the block, last whether the block ends with it.
func (b *block) next(body string) (part, last bool) {
	switch {
	case b.closer != "":
		return true, closes(body, b.closer, b.yaml)
	case b.depth > 0:
		b.depth += brackets(body)
		return true, b.depth <= 0
	}
	t := strings.TrimSpace(body)
	ind := len(body) - len(strings.TrimLeft(body, " \t"))
	switch {
	case ind > b.indent:
		return true, false
	case b.plain:
		return false, true
	case b.list && ind == b.indent && (t == "-" || strings.HasPrefix(t, "- ")):
		return true, false
	case startsEntry(t):
		return false, true
	}
	return true, false
}

// blockOf tells whether a secret's value (the rest of its line after the
// key) goes on past the line, and how; nil when it does not. colon is a
// YAML "key:" (else TOML's "key =").
func blockOf(v string, colon bool) *block {
	v = strings.TrimRight(v, " \t\r")
	if v == "" || v[0] == '#' {
		return &block{list: true}
	}
	switch {
	case strings.HasPrefix(v, `"""`), strings.HasPrefix(v, `'''`):
		if strings.Contains(v[3:], v[:3]) {
			return nil
		}
		return &block{closer: v[:3]}
	case v[0] == '"', v[0] == '\'':
		if closes(v[1:], v[:1], colon) {
			return nil
		}
		return &block{closer: v[:1], yaml: colon}
	case v[0] == '|', v[0] == '>':
		return &block{}
	case v[0] == '[', v[0] == '{':
		if d := brackets(v); d > 0 {
			return &block{depth: d}
		}
		return nil
	}
	if colon {
		return &block{plain: true}
	}
	return nil
}

// closes reports whether s holds the closing quote q: three double or
// three single quotes, or a double quote not escaped by a backslash, or a
// single quote (not doubled, in YAML).
func closes(s, q string, yaml bool) bool {
	switch q {
	case `"`:
		for i := 0; i < len(s); i++ {
			if s[i] == '\\' {
				i++
			} else if s[i] == '"' {
				return true
			}
		}
		return false
	case "'":
		for i := 0; i < len(s); i++ {
			if s[i] == '\'' {
				if yaml && i+1 < len(s) && s[i+1] == '\'' {
					i++
					continue
				}
				return true
			}
		}
		return false
	}
	return strings.Contains(s, q)
}

// brackets counts the brackets and braces a line opens, less those it
// closes, outside quoted strings and comments.
func brackets(s string) int {
	n := 0
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == '\\' && quote == '"' {
				i++
			} else if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '#':
			return n
		case c == '[' || c == '{':
			n++
		case c == ']' || c == '}':
			n--
		}
	}
	return n
}

// startsEntry reports a line (trimmed) that starts an entry of its own: a
// list item, a TOML table, a YAML document marker, or a key ("key: " or
// "key = "; base64's "abc=" is not one).
func startsEntry(t string) bool {
	switch {
	case t == "-", strings.HasPrefix(t, "- "), strings.HasPrefix(t, "["),
		strings.HasPrefix(t, "---"), strings.HasPrefix(t, "..."):
		return true
	}
	m := lineKey().FindStringSubmatchIndex(t)
	if m == nil || m[0] != 0 {
		return false
	}
	if m[1] == len(t) {
		return t[m[1]-1] == ':'
	}
	next := t[m[1]]
	if t[m[1]-1] == ':' {
		return next == ' ' || next == '\t'
	}
	return next == ' ' || next == '\t' || next == '"' || next == '\''
}

// redactLine replaces, after each secret-looking key of a line, the value
// up to the line's end, or, for a NAME=value list entry, up to its quote.
// blk, when not nil, is the value that may go on past the line (a
// multi-line string, a block scalar, an unclosed quote or bracket, nothing
// yet, a plain YAML value), its indent the key's column in the line.
func redactLine(line string) (out string, blk *block) {
	var b strings.Builder
	// The value after a secret key (from the key at ks, the separator
	// ending at sepEnd), the rest of the line from p written before it.
	value := func(p, ks, sepEnd int) (string, *block) {
		rest := strings.TrimLeft(line[sepEnd:], " \t")
		b.WriteString(line[p : len(line)-len(rest)])
		blk := blockOf(rest, line[sepEnd-1] == ':')
		if blk != nil {
			blk.indent = ks
		}
		if sepEnd == len(line) {
			b.WriteByte(' ') // "key:" with nothing after it
		}
		b.WriteString(quotedPlaceholder)
		if strings.TrimSpace(rest) != "" && rest[0] == '#' {
			b.WriteString(" " + strings.TrimSpace(rest))
		}
		return b.String(), blk
	}
	if ks, ke, sepEnd, ok := plainKey(line); ok && IsSecretName(line[ks:ke]) {
		return value(0, ks, sepEnd)
	}
	p := 0
	for p < len(line) {
		m := lineKey().FindStringSubmatchIndex(line[p:])
		if m == nil {
			break
		}
		ks, ke, sepEnd := p+m[2], p+m[3], p+m[1]
		key := line[ks:ke]
		name := key
		switch key[0] {
		case '"':
			name = key[1 : len(key)-1]
			if strings.Contains(name, `\`) {
				name = "token" // an escaped key may spell anything
			}
		case '\'':
			name = key[1 : len(key)-1]
		default:
			name = key[strings.LastIndexByte(key, '.')+1:]
		}
		if !IsSecretName(name) {
			b.WriteString(line[p:sepEnd])
			p = sepEnd
			continue
		}
		if ks > 0 && (line[ks-1] == '"' || line[ks-1] == '\'') && key[0] != '"' && key[0] != '\'' && line[ke:sepEnd] == "=" {
			// A quoted "NAME=value" list entry: its value ends at the quote.
			if j := strings.IndexByte(line[sepEnd:], line[ks-1]); j >= 0 {
				b.WriteString(line[p:sepEnd])
				if j > 0 {
					b.WriteString(Placeholder)
				}
				p = sepEnd + j
				continue
			}
		}
		return value(p, ks, sepEnd)
	}
	b.WriteString(line[p:])
	return b.String(), nil
}

// plainKey finds a YAML plain key at the start of a line that holds
// blanks or other characters lineKey takes for separators ("db password:
// x", "- my token: x", "# ci token:", "t!oken: x"), which lineKey sees
// only the last word of: the key runs up to the first colon followed by a
// blank or the line's end, and holds no "=" or quote (those lineKey
// reads).
func plainKey(line string) (ks, ke, sepEnd int, ok bool) {
	i := 0
	for i < len(line) {
		switch {
		case line[i] == ' ', line[i] == '\t', line[i] == '#':
			i++
		case strings.HasPrefix(line[i:], "- "), strings.HasPrefix(line[i:], "? "):
			i += 2
		default:
			goto key
		}
	}
key:
	if i >= len(line) || strings.ContainsRune(`"'{[&*!|>%@`+"`", rune(line[i])) {
		return 0, 0, 0, false
	}
	for j := i; j < len(line); j++ {
		switch {
		case line[j] == '#' && (line[j-1] == ' ' || line[j-1] == '\t'):
			return 0, 0, 0, false
		case line[j] == ':' && (j+1 == len(line) || line[j+1] == ' ' || line[j+1] == '\t'):
			k := strings.TrimRight(line[i:j], " \t")
			if strings.ContainsAny(k, `="'`) || !strings.ContainsFunc(k, func(r rune) bool {
				return r != '_' && r != '.' && r != '-' && !unicode.IsLetter(r) && !unicode.IsDigit(r)
			}) {
				return 0, 0, 0, false
			}
			return i, i + len(k), j + 1, true
		}
	}
	return 0, 0, 0, false
}

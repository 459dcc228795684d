package redact

import (
	"path/filepath"
	"regexp"
	"strings"
	"sync"

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
// line after a secret-looking key, and the whole text (Hidden) when such a
// value may go on past its line; then the shapes that are secrets
// anywhere.
func byLine(text string) string {
	lines := strings.Split(text, "\n")
	for i, line := range lines {
		if t := strings.TrimLeft(line, " \t"); strings.HasPrefix(t, "? ") && IsSecretName(strings.TrimSpace(t[2:])) {
			return Hidden
		}
		out, open := redactLine(line)
		if open {
			return Hidden
		}
		lines[i] = out
	}
	return shapes(strings.Join(lines, "\n"))
}

// commentLines redacts the commented-out assignments of a text: each line
// that is a comment, as byLine does.
func commentLines(text string) string {
	if !strings.Contains(text, "#") {
		return text
	}
	lines := strings.Split(text, "\n")
	for i, line := range lines {
		if strings.HasPrefix(strings.TrimLeft(line, " \t"), "#") {
			lines[i], _ = redactLine(line)
		}
	}
	return strings.Join(lines, "\n")
}

// redactLine replaces, after each secret-looking key of a line, the value
// up to the line's end, or, for a NAME=value list entry, up to its quote.
// open reports a value that may go on past the line (a multi-line string,
// a block scalar, an unclosed quote or bracket, nothing yet).
func redactLine(line string) (out string, open bool) {
	var b strings.Builder
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
		rest := strings.TrimLeft(line[sepEnd:], " \t")
		b.WriteString(line[p : len(line)-len(rest)])
		if strings.TrimSpace(rest) == "" || rest[0] == '#' {
			b.WriteString(rest)
			return b.String(), true
		}
		b.WriteString(quotedPlaceholder)
		return b.String(), opensBlock(rest)
	}
	b.WriteString(line[p:])
	return b.String(), false
}

// opensBlock reports a value that may go on past its line.
func opensBlock(v string) bool {
	v = strings.TrimRight(v, " \t\r")
	switch {
	case strings.HasPrefix(v, `"""`), strings.HasPrefix(v, `'''`), v[0] == '|', v[0] == '>':
		return true
	case v[0] == '"':
		for i := 1; i < len(v); i++ {
			if v[i] == '\\' {
				i++
			} else if v[i] == '"' {
				return false
			}
		}
		return true
	case v[0] == '\'':
		return !strings.Contains(v[1:], "'")
	case v[0] == '[' || v[0] == '{':
		return strings.Count(v, "[")+strings.Count(v, "{") > strings.Count(v, "]")+strings.Count(v, "}")
	}
	return false
}

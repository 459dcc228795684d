package redact

import (
	"encoding/json"
	"errors"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// YAML redacts a YAML text by key, as TOML does a TOML text: block scalars
// (password: |) and quoted or plain values over several lines included,
// and a value reached through an alias where it is defined.
func YAML(text string) string {
	docs, err := yamlDocs(text)
	if err != nil || !yamlCollection(docs) {
		// Not YAML, or YAML only as a scalar ("password = x" is a plain
		// scalar): line by line.
		return byLine(text)
	}
	secret, ok := yamlSecrets(docs)
	if !ok {
		return Hidden
	}
	spans, ok := yamlSpans(text, docs, secret)
	if !ok {
		return Hidden
	}
	var values []string
	for _, s := range secret {
		switch s.kind {
		case entrySecret:
			_, v, _ := envEntry(s.node.Value)
			values = append(values, v)
		case assignSecret:
			values = append(values, assignedValues(s.node.Value)...)
		default:
			values = append(values, s.node.Value)
		}
	}
	sort.SliceStable(values, func(i, j int) bool { return len(values[i]) > len(values[j]) })
	out := shapes(replaceValues(commentLines(replaceSpans(text, spans)), values))
	after, err := yamlDocs(out)
	if err != nil {
		return Hidden
	}
	if left, ok := yamlSecrets(after); !ok || len(left) > 0 || !slices.Equal(yamlPaths(docs), yamlPaths(after)) {
		return Hidden
	}
	return out
}

// yamlCollection reports a YAML text with a mapping or a list in it.
func yamlCollection(docs []*yaml.Node) bool {
	for _, d := range docs {
		for _, c := range d.Content {
			if c.Kind != yaml.ScalarNode {
				return true
			}
		}
	}
	return false
}

func yamlDocs(text string) ([]*yaml.Node, error) {
	dec := yaml.NewDecoder(strings.NewReader(text))
	var docs []*yaml.Node
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		docs = append(docs, &n)
	}
}

// yamlSecret is a scalar to redact: a secret key's value, a secret
// NAME=value list entry, or a string with secret assignments (a script).
type yamlSecret struct {
	node *yaml.Node
	kind int
}

const (
	valueSecret = iota
	entrySecret
	assignSecret
)

// maxVisits bounds the walk through aliases (a YAML text can make a
// small document that expands to billions of values).
const maxVisits = 100000

// yamlSecrets lists the scalars to redact, in the order met; ok is false
// when the document is too large to walk.
func yamlSecrets(docs []*yaml.Node) ([]yamlSecret, bool) {
	var out []yamlSecret
	seen := map[*yaml.Node]bool{}
	visits := 0
	var walk func(n *yaml.Node, key string, inList bool) bool
	walk = func(n *yaml.Node, key string, inList bool) bool {
		if visits++; visits > maxVisits {
			return false
		}
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				if !walk(c, "", false) {
					return false
				}
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				if !walk(n.Content[i+1], yamlKey(n.Content[i]), false) {
					return false
				}
			}
		case yaml.SequenceNode:
			for _, c := range n.Content {
				if !walk(c, key, true) {
					return false
				}
			}
		case yaml.AliasNode:
			if n.Alias != nil {
				return walk(n.Alias, key, inList)
			}
		case yaml.ScalarNode:
			switch {
			case IsSecretKey(key):
				if !keptScalar(n) && !seen[n] {
					seen[n] = true
					out = append(out, yamlSecret{n, valueSecret})
				}
			case seen[n]:
			case inList && isSecretEntry(n.Value):
				seen[n] = true
				out = append(out, yamlSecret{n, entrySecret})
			case len(assignedValues(n.Value)) > 0:
				seen[n] = true
				out = append(out, yamlSecret{n, assignSecret})
			}
		}
		return true
	}
	for _, d := range docs {
		if !walk(d, "", false) {
			return nil, false
		}
	}
	return out, true
}

// yamlKey is a mapping key as text: a scalar's value, or the value of the
// scalar an alias stands for ("a: &k password" then "*k : v" is
// password); "" for a key that is a list or mapping.
func yamlKey(n *yaml.Node) string {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < maxVisits; i++ {
		n = n.Alias
	}
	if n != nil && n.Kind == yaml.ScalarNode {
		return n.Value
	}
	return ""
}

// keptScalar is a value shown even under a secret key: empty, null, a
// bool (YAML 1.2's), or already redacted.
func keptScalar(n *yaml.Node) bool {
	if n.Value == "" || n.Value == Placeholder {
		return true
	}
	if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
		return false
	}
	switch n.Value {
	case "true", "True", "TRUE", "false", "False", "FALSE", "~", "null", "Null", "NULL":
		return true
	}
	return false
}

// yamlPaths lists every key and list item by its path, in document order
// (an alias by its mark only).
func yamlPaths(docs []*yaml.Node) []string {
	var out []string
	var walk func(n *yaml.Node, p string)
	walk = func(n *yaml.Node, p string) {
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				q := p + "." + strconv.Quote(n.Content[i].Value)
				out = append(out, q)
				walk(n.Content[i+1], q)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				q := p + "[" + strconv.Itoa(i) + "]"
				out = append(out, q)
				walk(c, q)
			}
		case yaml.AliasNode:
			out = append(out, p+"*")
		}
	}
	for i, d := range docs {
		for _, c := range d.Content {
			walk(c, "doc"+strconv.Itoa(i))
		}
	}
	return out
}

// yamlPlace is where a node's block sits: the indentation its lines must
// exceed, and whether it is inside [...] or {...}.
type yamlPlace struct {
	indent int
	flow   bool
}

// yamlSpans gives the spans that replace the secret scalars, from where
// the YAML library says each starts and where its style says it ends.
func yamlSpans(text string, docs []*yaml.Node, secret []yamlSecret) ([]span, bool) {
	lines := lineStarts(text)
	places := map[*yaml.Node]yamlPlace{}
	var walk func(n *yaml.Node, pl yamlPlace)
	walk = func(n *yaml.Node, pl yamlPlace) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, yamlPlace{-1, false})
			}
		case yaml.MappingNode:
			flow := pl.flow || n.Style&yaml.FlowStyle != 0
			for i := 0; i+1 < len(n.Content); i += 2 {
				walk(n.Content[i+1], yamlPlace{n.Content[i].Column - 1, flow})
			}
		case yaml.SequenceNode:
			flow := pl.flow || n.Style&yaml.FlowStyle != 0
			for _, c := range n.Content {
				walk(c, yamlPlace{itemIndent(text, lines, c), flow})
			}
		case yaml.ScalarNode:
			places[n] = pl
		}
	}
	for _, d := range docs {
		walk(d, yamlPlace{-1, false})
	}
	var spans []span
	for _, s := range secret {
		pl, ok := places[s.node]
		if !ok {
			return nil, false
		}
		start, ok := offsetOf(text, lines, s.node.Line, s.node.Column)
		if !ok {
			return nil, false
		}
		start = skipProperties(text, start)
		end, ok := scalarEnd(text, start, pl)
		if !ok {
			return nil, false
		}
		repl := quotedPlaceholder
		switch s.kind {
		case entrySecret:
			shown, _ := SecretEntry(s.node.Value)
			repl = `"` + shown + `"`
		case assignSecret:
			start, end, repl = assignSpan(text[start:end], start, s.node)
		}
		spans = append(spans, span{start, end, repl})
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].start < spans[j].start })
	for i := 1; i < len(spans); i++ {
		if spans[i].start < spans[i-1].end {
			return nil, false
		}
	}
	return spans, true
}

// assignSpan redacts the secret assignments of a scalar (raw, its text at
// offset start): in place where its text shows its value as it is (a
// block, plain, or quoted without escapes: a script keeps its lines in a
// diff), else by writing the redacted value again, double-quoted (JSON's
// escapes are YAML's).
func assignSpan(raw string, start int, n *yaml.Node) (int, int, string) {
	end := start + len(raw)
	switch {
	case n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0, n.Style == 0 || n.Style == yaml.TaggedStyle:
		return start, end, redactAssignments(raw)
	case len(raw) >= 2 && (n.Style&yaml.DoubleQuotedStyle != 0 && !strings.Contains(raw, `\`) ||
		n.Style&yaml.SingleQuotedStyle != 0 && !strings.Contains(raw[1:len(raw)-1], "''")):
		return start + 1, end - 1, redactAssignments(raw[1 : len(raw)-1])
	}
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(redactAssignments(n.Value))
	return start, end, strings.TrimSuffix(b.String(), "\n")
}

// itemIndent is the indentation a list item's lines must exceed: the
// column of its "-" (or its own column less one, in a flow list).
func itemIndent(text string, lines []int, n *yaml.Node) int {
	off, ok := offsetOf(text, lines, n.Line, n.Column)
	if !ok {
		return n.Column - 2
	}
	i := off - 1
	for i >= 0 && (text[i] == ' ' || text[i] == '\t') {
		i--
	}
	if i >= 0 && text[i] == '-' {
		return runeCount(text[lines[n.Line-1]:i])
	}
	return n.Column - 2
}

func runeCount(s string) int { return len([]rune(s)) }

func lineStarts(text string) []int {
	starts := []int{0}
	for i := 0; i < len(text); i++ {
		if text[i] == '\n' {
			starts = append(starts, i+1)
		}
	}
	return starts
}

// offsetOf turns the YAML library's line and column (from 1, in
// characters) into a byte offset.
func offsetOf(text string, lines []int, line, col int) (int, bool) {
	if line < 1 || line > len(lines) || col < 1 {
		return 0, false
	}
	off := lines[line-1]
	for c := 1; c < col; c++ {
		if off >= len(text) || text[off] == '\n' {
			return 0, false
		}
		_, size := utf8.DecodeRuneInString(text[off:])
		off += size
	}
	return off, true
}

// skipProperties steps over a node's anchor (&a) and tag (!!str), which
// the YAML library counts as the node's start.
func skipProperties(text string, i int) int {
	for i < len(text) && (text[i] == '&' || text[i] == '!') {
		for i < len(text) && !strings.ContainsRune(" \t\r\n", rune(text[i])) {
			i++
		}
		for i < len(text) && strings.ContainsRune(" \t\r\n", rune(text[i])) {
			i++
		}
	}
	return i
}

func indentOf(line string) int {
	n := 0
	for n < len(line) && line[n] == ' ' {
		n++
	}
	return n
}

// lineAt gives the line starting at i, without its line break, and where
// the next starts.
func lineAt(text string, i int) (string, int) {
	j := strings.IndexByte(text[i:], '\n')
	if j < 0 {
		return strings.TrimSuffix(text[i:], "\r"), len(text)
	}
	return strings.TrimSuffix(text[i:i+j], "\r"), i + j + 1
}

// plainContent is how much of a line a plain scalar takes: up to a
// comment, without trailing blanks.
func plainContent(line string) int {
	end := len(line)
	for k := 1; k < len(line); k++ {
		if line[k] == '#' && (line[k-1] == ' ' || line[k-1] == '\t') {
			end = k
			break
		}
	}
	return len(strings.TrimRight(line[:end], " \t"))
}

// scalarEnd gives the end of the scalar starting at start.
func scalarEnd(text string, start int, pl yamlPlace) (int, bool) {
	if start >= len(text) {
		return 0, false
	}
	switch text[start] {
	case '"':
		for i := start + 1; i < len(text); i++ {
			switch text[i] {
			case '\\':
				i++
			case '"':
				return i + 1, true
			}
		}
		return 0, false
	case '\'':
		for i := start + 1; i < len(text); i++ {
			if text[i] == '\'' {
				if i+1 < len(text) && text[i+1] == '\'' {
					i++
					continue
				}
				return i + 1, true
			}
		}
		return 0, false
	case '|', '>':
		if pl.flow {
			return 0, false
		}
		header, next := lineAt(text, start)
		end := start + len(header)
		for next < len(text) {
			line, after := lineAt(text, next)
			if strings.TrimSpace(line) != "" {
				if indentOf(line) <= pl.indent {
					break
				}
				end = next + len(line)
			}
			next = after
		}
		return end, true
	}
	if pl.flow {
		i := start
		for i < len(text) {
			c := text[i]
			if c == ',' || c == ']' || c == '}' || c == '#' && i > start && strings.ContainsRune(" \t\r\n", rune(text[i-1])) {
				break
			}
			if c == ':' && (i+1 == len(text) || strings.ContainsRune(" \t\r\n,]}", rune(text[i+1]))) {
				break
			}
			i++
		}
		for i > start && strings.ContainsRune(" \t\r\n", rune(text[i-1])) {
			i--
		}
		return i, i > start
	}
	first, next := lineAt(text, start)
	end := start + plainContent(first)
	for next < len(text) {
		line, after := lineAt(text, next)
		trimmed := strings.TrimSpace(line)
		switch {
		case trimmed == "":
			next = after
			continue
		case indentOf(line) <= pl.indent, strings.HasPrefix(trimmed, "#"),
			strings.HasPrefix(line, "---"), strings.HasPrefix(line, "..."):
			return end, end > start
		}
		end = next + plainContent(line)
		next = after
	}
	return end, end > start
}

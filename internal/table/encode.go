package table

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// EncodeTOML renders a table as a TOML document (no header).
func EncodeTOML(t *Table) []byte {
	var b bytes.Buffer
	writeTable(&b, t, nil)
	return b.Bytes()
}

// TableArray returns v as an array of tables ([[x]]), if it is one.
func TableArray(v any) ([]any, bool) {
	arr, ok := v.([]any)
	if !ok || len(arr) == 0 {
		return nil, false
	}
	for _, e := range arr {
		if _, ok := e.(*Table); !ok {
			return nil, false
		}
	}
	return arr, true
}

// writeTable writes key/values first, then sub-tables and arrays of tables,
// indented the way gitlab-runner itself writes its config.
func writeTable(b *bytes.Buffer, t *Table, path []string) {
	indent := strings.Repeat("  ", len(path))
	for _, k := range t.keys {
		v := t.vals[k]
		if _, ok := v.(*Table); ok {
			continue
		}
		if _, ok := TableArray(v); ok {
			continue
		}
		b.WriteString(indent)
		b.WriteString(encodeKey(k))
		b.WriteString(" = ")
		writeValue(b, v)
		b.WriteString("\n")
	}
	for _, k := range t.keys {
		v := t.vals[k]
		sub := append(append([]string(nil), path...), k)
		hdrIndent := strings.Repeat("  ", len(path))
		if st, ok := v.(*Table); ok {
			if len(path) == 0 {
				b.WriteString("\n")
			}
			b.WriteString(hdrIndent + "[" + encodePath(sub) + "]\n")
			writeTable(b, st, sub)
			continue
		}
		if arr, ok := TableArray(v); ok {
			for _, e := range arr {
				if len(path) == 0 {
					b.WriteString("\n")
				}
				b.WriteString(hdrIndent + "[[" + encodePath(sub) + "]]\n")
				writeTable(b, e.(*Table), sub)
			}
		}
	}
}

// isBareKey reports whether k may be written unquoted: [A-Za-z0-9_-]+.
func isBareKey(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func encodeKey(k string) string {
	if isBareKey(k) {
		return k
	}
	return Quote(k)
}

func encodePath(p []string) string {
	parts := make([]string, len(p))
	for i, k := range p {
		parts[i] = encodeKey(k)
	}
	return strings.Join(parts, ".")
}

// needsEscape reports whether s holds a byte quote escapes, or any byte
// outside ASCII (taken the long way, rune by rune).
func needsEscape(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			return true
		}
	}
	return false
}

// Quote writes s as a TOML basic string, escaping what must be escaped
// (and nothing when nothing must).
func Quote(s string) string {
	if !needsEscape(s) {
		return `"` + s + `"`
	}
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\b':
			b.WriteString(`\b`)
		case '\t':
			b.WriteString(`\t`)
		case '\n':
			b.WriteString(`\n`)
		case '\f':
			b.WriteString(`\f`)
		case '\r':
			b.WriteString(`\r`)
		default:
			if r < 0x20 || r == 0x7f || r == utf8.RuneError {
				fmt.Fprintf(&b, `\u%04X`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}

func writeValue(b *bytes.Buffer, v any) {
	switch x := v.(type) {
	case string:
		b.WriteString(Quote(x))
	case int64:
		b.WriteString(strconv.FormatInt(x, 10))
	case int:
		b.WriteString(strconv.Itoa(x))
	case float64:
		b.WriteString(formatFloat(x))
	case bool:
		b.WriteString(strconv.FormatBool(x))
	case time.Time:
		b.WriteString(formatTime(x))
	case []any:
		b.WriteString("[")
		for i, e := range x {
			if i > 0 {
				b.WriteString(", ")
			}
			writeValue(b, e)
		}
		b.WriteString("]")
	case *Table:
		b.WriteString("{")
		for i, k := range x.keys {
			if i > 0 {
				b.WriteString(",")
			}
			b.WriteString(" ")
			b.WriteString(encodeKey(k))
			b.WriteString(" = ")
			writeValue(b, x.vals[k])
		}
		if len(x.keys) > 0 {
			b.WriteString(" ")
		}
		b.WriteString("}")
	default:
		b.WriteString(Quote(fmt.Sprint(x)))
	}
}

func formatFloat(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	case math.IsNaN(f):
		return "nan"
	}
	s := strconv.FormatFloat(f, 'g', -1, 64)
	if !strings.ContainsAny(s, ".eEn") {
		s += ".0"
	}
	return s
}

// formatTime keeps TOML's local date/time kinds (BurntSushi/toml marks
// them with named zones) and writes offset date-times in RFC 3339.
func formatTime(t time.Time) string {
	switch t.Location().String() {
	case "datetime-local":
		return t.Format("2006-01-02T15:04:05.999999999")
	case "date-local":
		return t.Format("2006-01-02")
	case "time-local":
		return t.Format("15:04:05.999999999")
	}
	return t.Format(time.RFC3339Nano)
}

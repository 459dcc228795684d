package redact

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// secretAssignments calls fn with where the value of each assignment of a
// secret name (IsSecretName) starts and ends in s, a command line or a
// script: NAME=value as a shell writes it, alone, after export, declare,
// local, env or a command's name, or inside a quoted argument
// (-e "NAME=value"); cmd's "set NAME=value" (the value goes to the line's
// end); PowerShell's $env:NAME = value. gitlab-runner runs its script
// settings (pre_build_script, post_build_script, pre_get_sources_script,
// post_get_sources_script, and the pre_clone_script and post_clone_script
// of old versions) as such scripts. A value that only names another
// variable ($CI_JOB_TOKEN, "${X}") or is already redacted is left. The
// scan is linear: it starts at each "=" only.
func secretAssignments(s string, fn func(start, end int)) {
	for i := 0; i < len(s); {
		j := strings.IndexByte(s[i:], '=')
		if j < 0 {
			return
		}
		eq := i + j
		i = eq + 1
		if i < len(s) && s[i] == '=' {
			i++ // "==": a comparison
			continue
		}
		k := eq
		for k > 0 && (s[k-1] == ' ' || s[k-1] == '\t') {
			k--
		}
		n := k
		for n > 0 {
			r, size := utf8.DecodeLastRuneInString(s[:n])
			if r != '_' && !unicode.IsLetter(r) && !unicode.IsDigit(r) {
				break
			}
			n -= size
		}
		if n == k || s[n] >= '0' && s[n] <= '9' {
			continue
		}
		env := n >= 5 && strings.EqualFold(s[n-5:n], "$env:")
		if k < eq && !env {
			continue // "NAME = value" is no shell assignment
		}
		var quote byte
		if !env && n > 0 {
			switch c := s[n-1]; c {
			case ' ', '\t', '\n', '\r', ';', '&', '|', '(', '`', '{', '=':
			case '"', '\'':
				quote = c
			default:
				continue
			}
		}
		if !IsSecretName(s[n:k]) {
			continue
		}
		start := eq + 1
		if env {
			for start < len(s) && (s[start] == ' ' || s[start] == '\t') {
				start++
			}
		}
		var end int
		switch {
		case quote != 0:
			// Inside a quoted argument: up to its quote, or, with no
			// quote after it, as a word.
			if end = quotedEnd(s, start, quote); end == len(s) {
				end = shellWordEnd(s, start)
			}
		case isSetCommand(s[:n]):
			end = start
			for end < len(s) && s[end] != '\n' && s[end] != '\r' && s[end] != '&' {
				end++
			}
			for end > start && (s[end-1] == ' ' || s[end-1] == '\t') {
				end--
			}
		default:
			end = shellWordEnd(s, start)
		}
		if v := s[start:end]; end > start && !variableOnly(v) && strings.Trim(v, `"'`) != Placeholder {
			fn(start, end)
		}
		i = max(i, end)
	}
}

// redactAssignments replaces the value of each secret assignment in s.
func redactAssignments(s string) string {
	if strings.IndexByte(s, '=') < 0 {
		return s
	}
	var b strings.Builder
	last := 0
	secretAssignments(s, func(start, end int) {
		b.WriteString(s[last:start])
		b.WriteString(Placeholder)
		last = end
	})
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

// assignedValues lists the values of the secret assignments in s.
func assignedValues(s string) []string {
	if strings.IndexByte(s, '=') < 0 {
		return nil
	}
	var out []string
	secretAssignments(s, func(start, end int) { out = append(out, strings.Trim(s[start:end], `"'`)) })
	return out
}

// shellWordEnd gives the end of the shell word starting at i: at a blank
// or an operator outside quotes.
func shellWordEnd(s string, i int) int {
	for i < len(s) {
		switch c := s[i]; c {
		case ' ', '\t', '\n', '\r', ';', '&', '|', ')', '<', '>', '`':
			return i
		case '\\':
			i += 2
		case '"', '\'':
			i = quotedEnd(s, i+1, c)
			if i < len(s) {
				i++
			}
		default:
			i++
		}
	}
	return len(s)
}

// quotedEnd gives where the quoted text starting at i ends: at the quote
// q (not escaped by a backslash, for a double quote), or at the text's end.
func quotedEnd(s string, i int, q byte) int {
	for i < len(s) {
		switch s[i] {
		case q:
			return i
		case '\\':
			if q == '"' {
				i++
			}
		}
		i++
	}
	return len(s)
}

// isSetCommand reports text ending in cmd's "set " before a name.
func isSetCommand(before string) bool {
	t := strings.TrimRight(before, " \t")
	if len(t) == len(before) || len(t) < 3 || !strings.EqualFold(t[len(t)-3:], "set") {
		return false
	}
	return len(t) == 3 || strings.ContainsRune(" \t\n\r;&|(", rune(t[len(t)-4]))
}

// variableOnly reports a value that only names a variable: $X, ${X},
// "$X", "${X}".
func variableOnly(v string) bool {
	v = strings.Trim(v, `"`)
	if !strings.HasPrefix(v, "$") {
		return false
	}
	v = v[1:]
	if strings.HasPrefix(v, "{") && strings.HasSuffix(v, "}") {
		v = v[1 : len(v)-1]
	}
	if v == "" {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c != '_' && !(c >= 'A' && c <= 'Z') && !(c >= 'a' && c <= 'z') && !(c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

package redact

import "github.com/gitlab-runner-auth/gitlab-runner-auth/internal/table"

// Table returns a copy of t whose secrets show as <redacted>, by the rule
// TOML applies to text: every value under a secret key but bools and
// empty strings, the value of every secret NAME=value list entry, and in
// any other string the values of secret assignments (scripts) and what is
// secret by its shape.
// Rendering a config for a diff from it costs no parse.
func Table(t *table.Table) *table.Table {
	out := table.New()
	for _, k := range t.Keys() {
		v, _ := t.Get(k)
		out.Set(k, tableValue(k, v, false))
	}
	return out
}

func tableValue(key string, v any, inList bool) any {
	switch x := v.(type) {
	case *table.Table:
		return Table(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = tableValue(key, e, true)
		}
		return out
	case bool:
		return x
	case string:
		switch {
		case IsSecretKey(key):
			if x != "" {
				return Placeholder
			}
		case inList:
			if shown, secret := SecretEntry(x); secret {
				return shapes(shown)
			}
		}
		return shapes(redactAssignments(x))
	}
	if IsSecretKey(key) {
		return Placeholder
	}
	return v
}

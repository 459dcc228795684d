package redact

import (
	"regexp"
	"strings"
	"sync"
)

// secretAssignment matches "key = value" (TOML) or "key: value" (YAML),
// quoted or not, with the key in group 1 and the value in group 3.
var secretAssignment = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`(?m)(["']?)([A-Za-z0-9_.-]*[Tt][Oo][Kk][Ee][Nn][A-Za-z0-9_.-]*)(["']?\s*[=:]\s*)("(?:[^"\\\n]|\\.)*"|'[^'\n]*'|[^\s,}#\n][^,}\n]*)`)
})

// Keys replaces the value of every key that holds a secret
// (IsSecretKey: token, personal_access_token, registration_token, ...) in a
// TOML or YAML text, whatever the value's shape: secrets are found by where
// they are, not by what they look like, so a rotated-out token whose shape
// is unknown never shows in a diff.
func Keys(text string) string {
	if !strings.Contains(strings.ToLower(text), "token") {
		return text
	}
	return secretAssignment().ReplaceAllStringFunc(text, func(m string) string {
		sm := secretAssignment().FindStringSubmatch(m)
		if !IsSecretKey(sm[2]) || strings.TrimSpace(sm[4]) == `"`+Placeholder+`"` {
			return m
		}
		return sm[1] + sm[2] + sm[3] + `"` + Placeholder + `"`
	})
}

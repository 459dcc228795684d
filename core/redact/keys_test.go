package redact

import (
	"strings"
	"testing"
)

func TestRedactKeysWhateverTheShape(t *testing.T) {
	in := `concurrent = 4
[[client_configs]]
  url = "https://gl"
  personal_access_token = "old-secret-of-no-known-shape"
  personal_access_token_file = "/etc/pat"
  registration_token = 'another-old-one'
[[runners]]
  token = "abcdefghij"
  token_expires_at = 2026-01-01T00:00:00Z
  inline = { token = "inline-secret" }
registration_token: yaml-secret-value
`
	out := Keys(in)
	for _, s := range []string{"old-secret-of-no-known-shape", "another-old-one", "abcdefghij", "inline-secret", "yaml-secret-value"} {
		if strings.Contains(out, s) {
			t.Errorf("secret %q left in:\n%s", s, out)
		}
	}
	for _, keep := range []string{`personal_access_token_file = "/etc/pat"`, "token_expires_at = 2026-01-01T00:00:00Z", `url = "https://gl"`} {
		if !strings.Contains(out, keep) {
			t.Errorf("%q was redacted:\n%s", keep, out)
		}
	}
}

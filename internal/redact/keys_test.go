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

// Every setting of gitlab-runner's config that holds a secret is a secret
// key by the rule (the NAME=value lists are redacted by entry); the
// settings named like secrets that hold paths, names and times are not.
func TestRunnerSecretsFollowTheRule(t *testing.T) {
	for _, s := range RunnerSecrets {
		if s.Key == "environment" || s.Key == "MachineOptions" {
			if IsSecretKey(s.Key) {
				t.Errorf("%s %s: the whole list would be hidden", s.Section, s.Key)
			}
			continue
		}
		if !IsSecretKey(s.Key) {
			t.Errorf("%s %s (%s) is not redacted", s.Section, s.Key, s.What)
		}
		if !IsSecretKey(strings.ToLower(s.Key)) {
			// gitlab-runner's TOML library matches field names in any case.
			t.Errorf("%s %s in lower case is not redacted", s.Section, s.Key)
		}
	}
	for _, k := range NotSecret {
		if IsSecretKey(k) {
			t.Errorf("%s is redacted", k)
		}
	}
}

func TestSecretNames(t *testing.T) {
	for _, n := range []string{"DB_PASSWORD", "GITLAB_TOKEN", "AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "API_KEY", "SSH_PRIVATE_KEY",
		"GPG_KEY", "DOCKER_AUTH_CONFIG", "SENTRY_DSN", "PASSWORD", "MYSQL_ROOT_PASSWD", "DB_PASS", "amazonec2-secret-key",
		"digitalocean-access-token", "--password", "CI_JOB_JWT_TOKEN", "NPM_CONFIG__AUTH", "GOOGLE_APPLICATION_CREDENTIALS"} {
		if !IsSecretName(n) {
			t.Errorf("%s is not a secret name", n)
		}
	}
	for _, n := range []string{"PLAIN", "PATH", "HOME", "CI_SERVER_TLS_CA_FILE", "DB_PASSWORD_FILE", "LANG", "amazonec2-region", "TOKEN_EXPIRES_AT", "BYPASS_PROXY"} {
		if IsSecretName(n) {
			t.Errorf("%s is a secret name", n)
		}
	}
	for in, want := range map[string]string{
		"DB_PASSWORD=hunter2":            "DB_PASSWORD=<redacted>",
		"DB_PASSWORD=":                   "DB_PASSWORD=",
		"DB_PASSWORD=<redacted>":         "DB_PASSWORD=<redacted>",
		"PLAIN=shown":                    "PLAIN=shown",
		"--password=x=y":                 "--password=<redacted>",
		"not an entry: PASSWORD=x":       "not an entry: PASSWORD=x",
		"amazonec2-secret-key=abc/def==": "amazonec2-secret-key=<redacted>",
	} {
		if got, _ := SecretEntry(in); got != want {
			t.Errorf("%q shown as %q, want %q", in, got, want)
		}
	}
}

package redact

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// The rule for names (see IsSecretName): *_PAT, *_CREDS, *_TOKEN,
// *_SECRET*, *_KEY, JWT, COOKIE, BEARER, webhooks, and the words of
// passwords and credentials; not names of paths, times and switches, nor
// words that merely contain the letters (PATH, PATTERN, COMPAT).
func TestEnvironmentNamesRule(t *testing.T) {
	for _, n := range []string{
		"GH_PAT", "GITLAB_PAT", "PAT", "DOCKER_CREDS", "REGISTRY_CRED", "JWT", "CI_JOB_JWT_V2", "COOKIE", "SESSION_COOKIE",
		"BEARER", "BEARER_AUTH", "SLACK_WEBHOOK", "TEAMS_WEBHOOK_URL", "DiscordWebhook", "GITHUB_TOKEN", "CLIENT_SECRET",
		"CLIENT_SECRET_ID", "SECRETS", "MY_KEY", "SIGNING_KEY_ID", "npm_config__authToken",
	} {
		if !IsSecretName(n) {
			t.Errorf("%s is not a secret name", n)
		}
		for _, entry := range []string{n + "=SECRET-v", n + "=https://hooks.example.com/SECRET-v"} {
			if shown, secret := SecretEntry(entry); !secret || strings.Contains(shown, "SECRET-v") {
				t.Errorf("%q shown as %q", entry, shown)
			}
		}
	}
	for _, n := range []string{
		"PATH", "PATTERN", "COMPAT_LEVEL", "PATCH", "SPATIAL", "LC_ALL", "HOOKS_DIR", "GIT_HOOKS_PATH", "JWT_FILE",
		"COOKIE_PATH", "CREDS_FILE", "executor", "shell", "builds_dir", "cache_dir", "BUILDS_DIR", "concurrent",
	} {
		if IsSecretName(n) || IsSecretKey(n) {
			t.Errorf("%s is a secret name", n)
		}
	}
}

// No setting of gitlab-runner's config is taken for a secret but those
// that hold one (RunnerSecrets) and a few switches (booleans, always
// shown) named like secrets: the rule does not hide ordinary settings.
func TestRuleHidesNoOrdinaryRunnerSetting(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "runner-keys.txt"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for _, s := range RunnerSecrets {
		if IsSecretKey(s.Key) {
			want[s.Key] = true
		}
	}
	for _, k := range []string{
		// booleans
		"DisableAssumeRoleCredentialsCaching", "automount_service_account_token",
		"use_service_account_image_pull_secrets", "use_static_credentials",
		// [[runners.kubernetes.volumes.secret]]: a table, its keys are shown
		"secret",
	} {
		want[k] = true
	}
	var got []string
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		n++
		if IsSecretKey(line) {
			got = append(got, line)
			if !want[line] {
				t.Errorf("%s is taken for a secret", line)
			}
			delete(want, line)
		}
	}
	if n < 400 {
		t.Fatalf("only %d settings read", n)
	}
	for k := range want {
		if k != "personal_access_token" && k != "registration_token" { // this tool's template
			t.Errorf("%s is not a setting of gitlab-runner, or no longer secret", k)
		}
	}
	sort.Strings(got)
	t.Logf("secret settings: %v", got)
}

// Shapes that are secrets wherever they stand are redacted in any text:
// webhook URLs (all but the host), bearer tokens, private keys in PEM,
// AWS access key ids, user:password@ in any URL; certificates and
// ordinary words stay.
func TestShapesRedactedInAnyText(t *testing.T) {
	r := New()
	for _, text := range []string{
		"posting to https://hooks.slack.com/services/T0000/B0000/SECRETslack123 failed",
		`{"url":"https://discord.com/api/webhooks/123/SECRETdiscord-x"}`,
		"https://acme.webhook.office.com/webhookb2/SECRETteams@x/IncomingWebhook/abc",
		"Authorization: Bearer SECRETbearer.eyJhbGciOi-x_y",
		"authorization: bearer SECRET0bearer",
		"-----BEGIN RSA PRIVATE KEY-----\nSECRETpem1\nSECRETpem2==\n-----END RSA PRIVATE KEY-----",
		"# -----BEGIN OPENSSH PRIVATE KEY-----\n# SECRETpem1\n# -----END OPENSSH PRIVATE KEY-----",
		`"key":"-----BEGIN PRIVATE KEY-----\nSECRETpem1\n-----END PRIVATE KEY-----\n"`,
		"-----BEGIN ENCRYPTED PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nSECRETpem1",
		"key id AKIASECRETAWS1234567 in use",
		"postgres://ci:SECRETpw@db.example.com/x and ssh://git:SECRETssh@host",
	} {
		got := r.Redact(text)
		if strings.Contains(got, "SECRET") || !strings.Contains(got, Placeholder) {
			t.Errorf("%q redacted to %q", text, got)
		}
	}
	for _, text := range []string{
		"-----BEGIN CERTIFICATE-----\nMIIBkeepme\n-----END CERTIFICATE-----",
		"a bearer token is sent; Bearer authentication",
		"https://gitlab.example.com/api/v4/runners/7",
		"see ASIA and AKIA, the prefixes",
		"git hooks are in .git/hooks",
	} {
		if got := r.Redact(text); got != text {
			t.Errorf("%q redacted to %q", text, got)
		}
	}
}

// The same shapes are redacted by key-based redaction too, under any key,
// and the text stays valid TOML or YAML.
func TestShapesRedactedUnderAnyKey(t *testing.T) {
	for name, in := range map[string]string{
		"a.toml": "[[runners]]\n  url = \"https://u:SECRETpw@gitlab.example.com\"\n  notify = \"https://hooks.slack.com/services/T/B/SECRETslack\"\n" +
			"  tls_key = \"\"\"\n-----BEGIN EC PRIVATE KEY-----\nSECRETpem\n-----END EC PRIVATE KEY-----\n\"\"\"\n  description = \"glrt-SECRETtoken123\"\n",
		"a.yaml": "url: https://u:SECRETpw@gitlab.example.com\nnotify: https://hooks.slack.com/services/T/B/SECRETslack\n" +
			"tls_key: |\n  -----BEGIN EC PRIVATE KEY-----\n  SECRETpem\n  -----END EC PRIVATE KEY-----\ndescription: glrt-SECRETtoken123\n",
	} {
		for _, got := range []string{File(name, in), Keys(in)} {
			if strings.Contains(got, "SECRET") || got == Hidden {
				t.Errorf("%s redacted to\n%s", name, got)
			}
		}
	}
}

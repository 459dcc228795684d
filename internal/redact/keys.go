package redact

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// RunnerSecret is a setting of gitlab-runner's config.toml (or of this
// tool's template) whose value is a secret, or a list whose NAME=value
// entries may carry one.
type RunnerSecret struct {
	Section, Key, What string
}

// RunnerSecrets lists the settings of gitlab-runner's config.toml that hold
// secrets, by their toml tags, and this tool's own. Source: gitlab-runner
// at commit d79f3e7b (main, 2026-08-22), common/config.go (RunnerCredentials,
// KubernetesConfig, SshConfig, ConnectorConfig, Config, DockerMachine,
// RunnerSettings.Environment, Service.Environment) and
// cache/cacheconfig/cacheconfig.go (CacheS3Config, CacheGCSCredentials,
// CacheAzureCredentials). Redaction goes by key name wherever the key sits, and
// IsSecretKey's rule covers every one of them (a test holds it to this
// table); a key that is not listed but is named like a secret (password,
// secret, *_token, ...) is redacted as well.
var RunnerSecrets = []RunnerSecret{
	{"[[runners]]", "token", "the runner's authentication token (RunnerCredentials)"},
	{"[runners.cache.s3]", "AccessKey", "the S3 access key id: not a secret by AWS's definition, redacted all the same (it names the account the secret key signs for)"},
	{"[runners.cache.s3]", "SecretKey", "the S3 secret access key"},
	{"[runners.cache.s3]", "SessionToken", "an S3 session token"},
	{"[runners.cache.gcs]", "PrivateKey", "the GCS service account's private key (CredentialsFile, a path, is shown)"},
	{"[runners.cache.azure]", "AccountKey", "the Azure storage account key"},
	{"[runners.kubernetes]", "bearer_token", "the Kubernetes API bearer token"},
	{"[runners.ssh]", "password", "the SSH executor's password"},
	{"[runners.autoscaler.connector_config]", "password", "the autoscaler's instance password (also under vm_isolation)"},
	{"(global)", "sentry_dsn", "the Sentry DSN, whose user part is a key"},
	{"[[client_configs]]", "personal_access_token", "this tool's template: the PAT"},
	{"[[client_configs]]", "registration_token", "this tool's template: the legacy registration token"},
	// Lists of NAME=value strings: the value is redacted when NAME looks
	// secret (IsSecretName), e.g. "DB_PASSWORD=<redacted>".
	{"[[runners]], [[runners.docker.services]], [[runners.kubernetes.services]]", "environment", "NAME=value entries"},
	{"[runners.machine]", "MachineOptions", "driver options, e.g. amazonec2-secret-key=..."},
}

// NotSecret are settings named like secrets that hold none: paths, names
// and times, shown in diffs.
var NotSecret = []string{
	"tls-key-file", "key_file", "cert_file", "identity_file", "key_path", "CredentialsFile",
	"personal_access_token_file", "registration_token_file",
	"token_obtained_at", "token_expires_at",
	"image_pull_secrets", "pause_pod_image_pull_secrets", // names of Kubernetes secrets
	"AccessID", "AccountName", "ServerSideEncryptionKeyID", "key", "topology_key",
}

// The rule for names (IsSecretKey, IsSecretName), after simple case
// folding, case ignored, a name split into words at "_", "-", ".", any
// other character that is not a letter or digit, and camel case:
//
//   - its words joined contain token, password, passwd, passphrase,
//     secret, privatekey, apikey, accesskey, accountkey, credential or
//     webhook (GITLAB_TOKEN, DB_PASSWORD, CLIENT_SECRET_ID, SecretKey,
//     SLACK_WEBHOOK);
//   - or one of its words is pat, creds, cred, jwt, cookie, bearer, auth,
//     authorization, dsn, pass or pwd (GH_PAT, DOCKER_CREDS, JWT,
//     CI_JOB_JWT_V2, COOKIE, BEARER, SENTRY_DSN);
//   - or, for environment names and driver options only, one of its words
//     is key (SSH_KEY, AWS_ACCESS_KEY_ID): settings named *_key hold
//     names (topology_key);
//   - but not when its last word is file, path, dir, at or allowed (a
//     path, a time, a switch: DB_PASSWORD_FILE, token_expires_at), nor the
//     lists of names of Kubernetes secrets (image_pull_secrets).
var (
	// A name holds a secret when its words, lower-cased and joined,
	// contain one of these...
	secretParts = []string{"token", "password", "passwd", "passphrase", "secret", "privatekey", "apikey", "accesskey", "accountkey", "credential", "webhook"}
	// ...or when one of its words is one of these.
	secretWords = map[string]bool{
		"auth": true, "authorization": true, "dsn": true, "pass": true, "pwd": true,
		"pat": true, "pats": true, "creds": true, "cred": true, "jwt": true, "cookie": true, "cookies": true, "bearer": true,
	}
	// A name whose last word is one of these holds a path, a time or a
	// switch.
	notSecretLast = map[string]bool{"file": true, "path": true, "dir": true, "at": true, "allowed": true}
	// Lists of names of Kubernetes secrets.
	notSecretNames = map[string]bool{"imagepullsecrets": true, "pausepodimagepullsecrets": true}
)

// words splits a key or variable name into lower-case words: at every
// character that is not an ASCII letter or digit, and where camel case
// starts a new word (SecretKey, ServerSideEncryptionKeyID). The name is
// first folded as gitlab-runner's decoder compares it (foldASCII).
func words(name string) []string {
	name = foldASCII(name)
	var out []string
	var cur []byte
	flush := func() {
		if len(cur) > 0 {
			out = append(out, strings.ToLower(string(cur)))
			cur = cur[:0]
		}
	}
	upper := func(c byte) bool { return c >= 'A' && c <= 'Z' }
	lower := func(c byte) bool { return c >= 'a' && c <= 'z' }
	digit := func(c byte) bool { return c >= '0' && c <= '9' }
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !upper(c) && !lower(c) && !digit(c) {
			flush()
			continue
		}
		if upper(c) && len(cur) > 0 {
			prev := cur[len(cur)-1]
			if lower(prev) || digit(prev) || (upper(prev) && i+1 < len(name) && lower(name[i+1])) {
				flush()
			}
		}
		cur = append(cur, c)
	}
	flush()
	return out
}

// IsSecretKey reports a key whose value is a secret, whatever its shape:
// token, personal_access_token, bearer_token, password, SecretKey,
// sentry_dsn, ... (see RunnerSecrets), but not a key that names a file,
// path or time (*_file, *_path, *_at). Names are compared as
// gitlab-runner's decoder compares them, after simple case folding: a
// look-alike such as "paſſword" is the setting it stands for.
func IsSecretKey(key string) bool { return secretName(key, false) }

// IsSecretName reports an environment variable (or driver option) name
// whose value is a secret: IsSecretKey's rule, and any name with the word
// KEY (SSH_KEY, AWS_ACCESS_KEY_ID, GPG_KEY).
func IsSecretName(name string) bool { return secretName(name, true) }

func secretName(name string, env bool) bool {
	w := words(name)
	if len(w) == 0 || notSecretLast[w[len(w)-1]] {
		return false
	}
	joined := strings.Join(w, "")
	if notSecretNames[joined] {
		return false
	}
	for _, p := range secretParts {
		if strings.Contains(joined, p) {
			return true
		}
	}
	for _, x := range w {
		if secretWords[x] || (env && (x == "key" || x == "keys")) {
			return true
		}
	}
	return false
}

// envEntry splits a NAME=value list entry ("DB_PASSWORD=x",
// "--password=x", "amazonec2-secret-key=x"); ok is false for anything else.
func envEntry(s string) (name, value string, ok bool) {
	name, value, ok = strings.Cut(s, "=")
	if !ok {
		return "", "", false
	}
	n := strings.TrimLeft(name, "-")
	if len(name)-len(n) > 2 || n == "" {
		return "", "", false
	}
	for i, r := range n {
		switch {
		case r == '_' || unicode.IsLetter(r):
		case i > 0 && (unicode.IsDigit(r) || r == '.' || r == '-'):
		default:
			return "", "", false
		}
	}
	return name, value, true
}

// SecretEntry reports a NAME=value list entry whose value must be hidden
// (a secret-looking NAME and a value that is neither empty nor already
// redacted), and the entry as shown.
func SecretEntry(s string) (shown string, secret bool) {
	name, value, ok := envEntry(s)
	if !ok || value == "" || value == Placeholder || !IsSecretName(name) {
		return s, false
	}
	return name + "=" + Placeholder, true
}

// foldASCII replaces each character beyond ASCII that Unicode simple case
// folding equates with an ASCII letter by that letter, in the same case:
// "paſſword" (U+017F) becomes "password", a Kelvin sign (U+212A) "K".
// gitlab-runner decodes config.toml with BurntSushi/toml (common/config.go,
// LoadConfig: toml.DecodeFile), which takes a key for a setting when the
// names match under strings.EqualFold (v1.6.0, decode.go, unifyStruct),
// that is under simple folding: a key spelled so is the real setting.
// Other characters beyond ASCII are left, and split words as before.
func foldASCII(name string) string {
	ascii := true
	for i := 0; i < len(name); i++ {
		if name[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		return name
	}
	var b strings.Builder
	for _, r := range name {
		if r >= utf8.RuneSelf {
			for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
				if f < utf8.RuneSelf && unicode.IsUpper(f) == unicode.IsUpper(r) {
					r = f
					break
				}
			}
		}
		b.WriteRune(r)
	}
	return b.String()
}

func isSecretEntry(s string) bool {
	_, secret := SecretEntry(s)
	return secret
}

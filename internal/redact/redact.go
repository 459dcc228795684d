// Package redact keeps secrets out of every text the tool prints: a
// Redactor knows each secret the run read or received, and recognises
// what is a secret by its shape (GitLab tokens, URL credentials, webhook
// URLs, bearer tokens, private keys, AWS key ids); TOML, YAML and File
// redact by key, replacing the parsed value of every secret setting
// (RunnerSecrets, and any key named like a secret, compared after simple
// case folding as gitlab-runner's decoder compares keys) where it stands
// in the text, the value of every secret NAME=value entry and of every
// secret assignment in a string (scripts), and commented-out secrets to
// the end of their block.
package redact

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
	"unicode/utf16"
)

// Redactor removes secrets from text before it leaves the process. Every
// secret the engine reads or receives is added to it; output paths pass
// text through Redact as a last line of defence.
type Redactor struct {
	mu      sync.Mutex
	secrets map[string]bool
	sorted  []string
	dirty   bool
}

// New returns an empty redactor.
func New() *Redactor { return &Redactor{secrets: map[string]bool{}} }

// Add registers secret values (values shorter than 6 characters are
// ignored: they would redact ordinary words).
func (r *Redactor) Add(values ...string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, v := range values {
		v = strings.TrimSpace(v)
		if len(v) < 6 || r.secrets[v] {
			continue
		}
		// Also as JSON writes it: a secret with <, >, &, " or \ (or
		// beyond ASCII) echoed inside JSON, by GitLab or by whoever
		// encoded a message, is no longer the same bytes.
		for _, f := range jsonForms(v) {
			r.secrets[f] = true
		}
		r.dirty = true
	}
}

// jsonForms gives a string as it is and as JSON encoders write it inside a
// JSON string: with <, > and & escaped (Go, Rails) or not, and with every
// character beyond ASCII escaped as well (Python).
func jsonForms(s string) []string {
	forms := []string{s}
	add := func(f string) {
		for _, g := range forms {
			if g == f {
				return
			}
		}
		forms = append(forms, f)
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	plain := strings.TrimSuffix(b.String(), "\n")
	add(plain[1 : len(plain)-1])
	html, _ := json.Marshal(s)
	add(string(html[1 : len(html)-1]))
	var ascii strings.Builder
	for _, c := range string(html[1 : len(html)-1]) {
		switch {
		case c < 0x80:
			ascii.WriteRune(c)
		case c > 0xFFFF:
			r1, r2 := utf16.EncodeRune(c)
			fmt.Fprintf(&ascii, "\\u%04x\\u%04x", r1, r2)
		default:
			fmt.Fprintf(&ascii, "\\u%04x", c)
		}
	}
	add(ascii.String())
	return forms
}

// Value returns v with every string in it redacted, map keys included,
// ready to be encoded as JSON: encoding escapes characters a secret may
// hold, so the encoded text alone is redacted too late. Values other than
// JSON's own (structs, typed slices) are taken as JSON sees them.
func (r *Redactor) Value(v any) any {
	switch x := v.(type) {
	case nil, bool, float64, json.Number:
		return x
	case string:
		return r.Redact(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = r.Value(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[r.Redact(k)] = r.Value(e)
		}
		return out
	}
	b, err := json.Marshal(v)
	if err != nil {
		return v
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var g any
	if err := dec.Decode(&g); err != nil {
		return v
	}
	return r.Value(g)
}

// Token shapes GitLab hands out; redacted even when not registered.
// No word boundary before the prefix: a token glued to other text
// ("xglrt-...") is still a token. Routable tokens carry dots; legacy
// registration gives runner tokens "t1_..." to "t3_..." (app/models/ci/runner.rb).
var tokenShapes = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`(glrt-|glpat-|glrtr-|GR1348941|glptt-|gldt-|glft-|glimt-|glcbt-|gloas-|glsoat-)[A-Za-z0-9_\-\.]{6,}|t[1-3]_[A-Za-z0-9_\-\.]{16,}`)
})

// Redact replaces every known secret, anything shaped like a GitLab
// token, and the credentials and query of any URL, with <redacted>.
func (r *Redactor) Redact(s string) string {
	if r != nil {
		r.mu.Lock()
		if r.dirty {
			// Sorted once per batch of additions, not per addition: a host
			// with 1,000 runners adds 1,000 tokens.
			r.sorted = r.sorted[:0]
			for sec := range r.secrets {
				r.sorted = append(r.sorted, sec)
			}
			// Longest first, so a secret that contains another is removed whole.
			sort.Slice(r.sorted, func(i, j int) bool { return len(r.sorted[i]) > len(r.sorted[j]) })
			r.dirty = false
		}
		for _, sec := range r.sorted {
			if strings.Contains(s, sec) {
				s = strings.ReplaceAll(s, sec, Placeholder)
			}
		}
		s = r.redactCutSecrets(s)
		r.mu.Unlock()
	}
	return shapes(s)
}

// shapes redacts what is a secret by its shape wherever it stands: GitLab
// tokens, a URL's user name and password and its query, everything but
// the host of a webhook URL, bearer tokens, private keys in PEM and AWS
// access key ids. The patterns run only where the literal each needs is
// present: a regular expression scans text far slower than
// strings.Contains, and most texts hold none of them.
func shapes(s string) string {
	if strings.Contains(s, "://") {
		s = urlUserinfo().ReplaceAllString(s, "${1}"+Placeholder+"@")
		s = urlQuery().ReplaceAllString(s, "${1}?"+Placeholder)
		if containsFold(s, "hook") {
			s = webhookURL().ReplaceAllStringFunc(s, redactWebhook)
		}
	}
	if mayHoldTokenShape(s) {
		s = tokenShapes().ReplaceAllString(s, Placeholder)
	}
	if strings.Contains(s, "PRIVATE KEY") {
		s = privateKey().ReplaceAllString(s, Placeholder)
	}
	if strings.Contains(s, "earer") || strings.Contains(s, "EARER") {
		s = bearer().ReplaceAllStringFunc(s, redactBearer)
	}
	if strings.Contains(s, "AKIA") || strings.Contains(s, "ASIA") {
		s = awsKeyID().ReplaceAllString(s, Placeholder)
	}
	return s
}

// containsFold reports whether s holds word (lower case ASCII) in lower,
// upper or title case.
func containsFold(s, word string) bool {
	return strings.Contains(s, word) || strings.Contains(s, strings.ToUpper(word)) ||
		strings.Contains(s, strings.ToUpper(word[:1])+word[1:])
}

// mayHoldTokenShape reports whether s holds a literal every match of
// tokenShapes starts with.
func mayHoldTokenShape(s string) bool {
	return strings.Contains(s, "gl") || strings.Contains(s, "GR1348941") ||
		strings.Contains(s, "t1_") || strings.Contains(s, "t2_") || strings.Contains(s, "t3_")
}

// A URL's user name and password, and its query and fragment
// (private_token=...), never leave the process. The query ends at a
// backslash that escapes a quote: text redacted may be JSON (the CLI's
// report), whose strings end with \" after a URL, and must stay JSON.
//
// A webhook URL (hooks.slack.com/services/..., discord.com/api/webhooks/...,
// *.webhook.office.com/...) carries its secret in the path: a URL whose
// host or path holds "hook" keeps only its scheme and host.
//
// A private key in PEM ("-----BEGIN ... PRIVATE KEY-----") goes up to its
// END line, or, cut short, up to the next quote or "--" (the body is
// base64, headers and comment marks); certificates are not secrets.
//
// "Bearer TOKEN" loses the token when it looks like one (8 characters or
// more, not only letters): "Bearer authentication" stays.
var (
	webhookURL = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.\-]*://(?:` + Placeholder + `@)?[^\s/?#"'<>]+)(/[^\s?#"'<>\\]*)`)
	})
	privateKey = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`-----BEGIN[A-Z0-9 ]*PRIVATE KEY[A-Z0-9 ]*-----(?:[^"'\\-]|\\[^"'-]|-[^"'\\-])*(?:-----END[A-Z0-9 ]*-----)?`)
	})
	bearer   = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`(?i)\b(bearer[ \t]+)([A-Za-z0-9\-._~+/]+=*)`) })
	awsKeyID = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`\b(?:AKIA|ASIA)[0-9A-Z]{16}\b`) })
)

func redactWebhook(u string) string {
	m := webhookURL().FindStringSubmatchIndex(u)
	if m == nil || !strings.Contains(strings.ToLower(u), "hook") || m[5] == m[4] || u[m[4]:m[5]] == "/" {
		return u
	}
	return u[:m[3]] + "/" + Placeholder
}

func redactBearer(m string) string {
	sm := bearer().FindStringSubmatch(m)
	tok := sm[2]
	if len(tok) < 8 || strings.Trim(tok, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") == "" {
		return m
	}
	return sm[1] + Placeholder
}

var (
	urlUserinfo = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.\-]*://)[^\s/?#@"'<>]+@`) })
	urlQuery    = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.\-]*://[^\s?#"'<>]*)[?#](?:[^\s"'<>\\]|\\[^"])*`)
	})
)

// redactCutSecrets removes the start of a known secret (6 characters or
// more) that text cut to length leaves before its "...": whoever cut it
// should have redacted first, and this is the line behind that rule.
func (r *Redactor) redactCutSecrets(s string) string {
	for from := 0; ; {
		i := strings.Index(s[from:], "...")
		if i < 0 {
			return s
		}
		i += from
		longest := 0
		for _, sec := range r.sorted {
			for k := min(len(sec)-1, i); k >= 6 && k > longest; k-- {
				if s[i-k:i] == sec[:k] {
					longest = k
					break
				}
			}
		}
		if longest > 0 {
			s = s[:i-longest] + Placeholder + s[i:]
			i += len(Placeholder) - longest
		}
		from = i + 3
	}
}

// Placeholder replaces every token in diffs and check-mode output.
const Placeholder = "<redacted>"

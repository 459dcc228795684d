// Package redact keeps secrets out of every text the tool prints: a
// Redactor knows each secret the run read or received, and recognises
// anything shaped like a GitLab token; TOML, YAML and File redact by key,
// replacing the parsed value of every secret setting (RunnerSecrets, and
// any key named like a secret) where it stands in the text.
package redact

import (
	"regexp"
	"sort"
	"strings"
	"sync"
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
		r.secrets[v] = true
		r.dirty = true
	}
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
	s = urlUserinfo().ReplaceAllString(s, "${1}"+Placeholder+"@")
	s = urlQuery().ReplaceAllString(s, "${1}?"+Placeholder)
	return tokenShapes().ReplaceAllString(s, Placeholder)
}

// A URL's user name and password, and its query and fragment
// (private_token=...), never leave the process. The query ends at a
// backslash that escapes a quote: text redacted may be JSON (the CLI's
// report), whose strings end with \" after a URL, and must stay JSON.
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

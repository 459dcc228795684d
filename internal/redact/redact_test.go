package redact

import (
	"encoding/json"
	"strings"
	"testing"
)

// Token shapes GitLab hands out are redacted even when the run never saw
// them: legacy t1_ tokens, routable tokens with dots, a prefix glued to
// other text.
func TestTokenShapesAreRedacted(t *testing.T) {
	r := New()
	for _, tok := range []string{
		"glrt-t1_AbCdEfGhIjKlMnOpQrStUv",
		"glrt-t2_AbCdEfGhIjKlMnOpQrSt.01a2b3c4d",
		"t1_AbCdEfGhIjKlMnOpQrStUvWx",
		"t3_AbCdEfGhIjKlMnOp-_Qr.0a1b2c3d4",
		"glpat-AbCdEfGhIjKlMnOpQrSt",
	} {
		for _, text := range []string{"token " + tok + " rejected", "x" + tok, `"` + tok + `"`} {
			if got := r.Redact(text); strings.Contains(got, tok[4:14]) {
				t.Errorf("%q redacted to %q", text, got)
			}
		}
	}
	if got := r.Redact("executor t1 and glrt-x"); got != "executor t1 and glrt-x" {
		t.Errorf("ordinary words redacted: %q", got)
	}
}

// A secret cut short by whoever shortened a message ("glpat-abc...")
// loses what is left of it too; ordinary text before "..." stays.
func TestCutSecretsAreRedacted(t *testing.T) {
	r := New()
	r.Add("zzSECRETshapeless0123456789")
	for _, text := range []string{"GitLab said: xxxzzSECRETsh...", "zzSECRETshapeless012... and more...", "a...zzSECRE..."} {
		got := r.Redact(text)
		if strings.Contains(got, "zzSECR") || !strings.Contains(got, "<redacted>") {
			t.Errorf("%q redacted to %q", text, got)
		}
	}
	if got := r.Redact("waiting... zzSEC... done"); got != "waiting... zzSEC... done" {
		t.Errorf("text with no secret changed: %q", got)
	}
}

// The CLI redacts its JSON report as text: a URL's query or credentials
// inside a JSON string are redacted without taking the backslash that
// escapes the string's closing quote, so the report stays JSON; the query
// is still redacted whole in plain text.
func TestRedactingJSONKeepsItJSON(t *testing.T) {
	r := New()
	for _, msg := range []string{
		`url "https://gitlab.example.org/?private_token=SECRETquery123" has a query`,
		`url "https://user:SECRETpassword1@gitlab.example.org" has credentials`,
		`"https://gitlab.example.org/#SECRETfragment\" and \\"`,
		"https://gitlab.example.org/?a=1\nSECRETnext\" line",
		"key -----BEGIN PRIVATE KEY-----\nSECRETpem\" cut short",
		"key -----BEGIN PRIVATE KEY-----\nSECRETpem\n-----END PRIVATE KEY-----\" whole",
		`webhook "https://hooks.slack.com/services/T/B/SECREThook\" quoted`,
		`header "Authorization: Bearer SECRETbearer1\" quoted`,
	} {
		b, err := json.Marshal(map[string]string{"msg": msg})
		if err != nil {
			t.Fatal(err)
		}
		got := r.Redact(string(b))
		var back map[string]string
		if err := json.Unmarshal([]byte(got), &back); err != nil {
			t.Errorf("%s redacted to %s: no longer JSON (%v)", b, got, err)
			continue
		}
		if strings.Contains(back["msg"], "SECRET") || !strings.Contains(back["msg"], Placeholder) {
			t.Errorf("%q redacted to %q", msg, back["msg"])
		}
	}
	if got := r.Redact(`see https://gitlab.example.org/?a=b\SECRETafter here`); strings.Contains(got, "SECRET") {
		t.Errorf("plain text query redacted to %q", got)
	}
}

// A secret holding characters JSON escapes is redacted in JSON text too,
// however the encoder wrote it (Go and Rails escape <, > and &; Python
// escapes everything beyond ASCII).
func TestSecretsAreRedactedAsJSONWritesThem(t *testing.T) {
	const pat = `glpat-<b>&"é\SECRETjson1`
	r := New()
	r.Add(pat)
	for _, text := range []string{
		`{"scope":"api glpat-\u003cb\u003e\u0026\"é\\SECRETjson1"}`,
		`{"scope":"api glpat-<b>&\"é\\SECRETjson1"}`,
		`{"scope":"api glpat-\u003cb\u003e\u0026\"\u00e9\\SECRETjson1"}`,
		"scope api " + pat,
	} {
		if got := r.Redact(text); strings.Contains(got, "SECRETjson") || !strings.Contains(got, Placeholder) {
			t.Errorf("%s redacted to %s", text, got)
		}
	}
}

// Value redacts every string of a value before it is encoded: nested,
// in map keys, in typed values; numbers stay numbers.
func TestValueRedactsEveryString(t *testing.T) {
	r := New()
	r.Add("SECRETvalue<1>")
	type runner struct {
		Name  string `json:"name"`
		Error string `json:"error"`
		ID    int64  `json:"id"`
	}
	in := map[string]any{
		"msg":     "failed: SECRETvalue<1>",
		"runners": []runner{{Name: "a", Error: "GitLab said SECRETvalue<1>", ID: 9007199254740993}},
		"diff":    map[string]string{"SECRETvalue<1>": "x"},
		"n":       3,
	}
	b, err := json.Marshal(r.Value(in))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "SECRETvalue") || !strings.Contains(string(b), `"id":9007199254740993`) || !strings.Contains(string(b), `"n":3`) {
		t.Errorf("encoded: %s", b)
	}
}

// The literal checks before each pattern skip only text the pattern
// cannot match: over random text made of the patterns' pieces, Redact
// gives what running every pattern unconditionally gives.
func TestLiteralChecksSkipOnlyWhatCannotMatch(t *testing.T) {
	pieces := []string{"gl", "rt-", "pat-", "GR1348941", "t1_", "t2_", "t3_", "t4_", "abcdefgh", "0123456789", "://", "https", "user:pw@", "@", "?", "#", "q=1", "/", " ", "\n", "\"", "\\", "-", ".", "_", "g", "l", "t", "1",
		"hook", "Hook", "HOOK", "hoo", "/services/", "-----BEGIN ", "-----END ", "-----", "RSA ", "PRIVATE KEY", "PRIVATE", "-----BEGIN PRIVATE KEY-----", "KEY-----", "'",
		"Bearer ", "bearer\t", "BEARER ", "earer", "AKIA", "ASIA", "0123456789ABCDEF", "XYZ"}
	seed := uint64(1)
	next := func(n int) int {
		seed = seed*6364136223846793005 + 1442695040888963407
		return int((seed >> 33) % uint64(n))
	}
	patterns := []struct {
		name string
		fn   func(string) string
	}{
		{"userinfo", func(s string) string { return urlUserinfo().ReplaceAllString(s, "${1}"+Placeholder+"@") }},
		{"query", func(s string) string { return urlQuery().ReplaceAllString(s, "${1}?"+Placeholder) }},
		{"webhook", func(s string) string { return webhookURL().ReplaceAllStringFunc(s, redactWebhook) }},
		{"token", func(s string) string { return tokenShapes().ReplaceAllString(s, Placeholder) }},
		{"pem", func(s string) string { return privateKey().ReplaceAllString(s, Placeholder) }},
		{"bearer", func(s string) string { return bearer().ReplaceAllStringFunc(s, redactBearer) }},
		{"aws", func(s string) string { return awsKeyID().ReplaceAllString(s, Placeholder) }},
	}
	hits := map[string]int{}
	all := func(s string) string {
		for _, p := range patterns {
			if t := p.fn(s); t != s {
				hits[p.name]++
				s = t
			}
		}
		return s
	}
	var r *Redactor // no known secrets: the patterns alone
	matched := 0
	for range 40000 {
		var b strings.Builder
		for range 1 + next(16) {
			b.WriteString(pieces[next(len(pieces))])
		}
		s := b.String()
		want := all(s)
		if want != s {
			matched++
		}
		if got := r.Redact(s); got != want {
			t.Fatalf("Redact(%q) = %q, the patterns give %q", s, got, want)
		}
	}
	if matched < 2000 {
		t.Fatalf("only %d of 40000 texts matched a pattern: the generator does not exercise them", matched)
	}
	t.Logf("texts each pattern changed: %v", hits)
	for _, p := range patterns {
		if hits[p.name] < 20 {
			t.Errorf("pattern %s matched %d texts: the generator does not exercise it", p.name, hits[p.name])
		}
	}
}

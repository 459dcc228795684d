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

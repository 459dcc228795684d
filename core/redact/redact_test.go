package redact

import (
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

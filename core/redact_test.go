package core

import (
	"strings"
	"testing"
)

// Token shapes GitLab hands out are redacted even when the run never saw
// them: legacy t1_ tokens, routable tokens with dots, a prefix glued to
// other text.
func TestTokenShapesAreRedacted(t *testing.T) {
	r := NewRedactor()
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

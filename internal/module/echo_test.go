package module

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/redact"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/testkit/coretest"
)

// A token GitLab echoes back, holding every character JSON escapes, is not
// in the module's result in any form: as is, or as JSON writes it.
func TestEchoedTokenNeverInTheResult(t *testing.T) {
	const pat = `glpat-<b>&"SECRETmodpat71`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok := r.Header.Get("PRIVATE-TOKEN")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		_ = json.NewEncoder(w).Encode(map[string]any{"error": "insufficient_scope", "scope": "api " + tok,
			"message": map[string]any{"token": []string{tok + " is not allowed"}}})
	}))
	t.Cleanup(srv.Close)
	in := map[string]any{
		"prefix": filepath.Join(t.TempDir(), "prefix"), "instance": "main", "hostname": "node5",
		"clients":             []any{map[string]any{"url": srv.URL, "personal_access_token": pat}},
		"executors":           []any{map[string]any{"name": "a", "url": srv.URL, "executor": "shell"}},
		"_ansible_check_mode": false, "_ansible_diff": true,
	}
	sec := redact.New() // one redactor for the run and the result, as Main has
	res := Run(context.Background(), args(t, in), sec)
	var buf bytes.Buffer
	emit(&buf, res, sec)
	coretest.Record(t, "module-result", buf.Bytes())
	out := buf.String()
	if !strings.Contains(out, "insufficient_scope") || res["failed"] != true {
		t.Fatalf("GitLab's refusal is not reported: %s", out)
	}
	b, _ := json.Marshal(pat)
	for _, form := range []string{pat, string(b[1 : len(b)-1]), `glpat-<b>&\"`, "SECRETmodpat"} {
		if strings.Contains(out, form) {
			t.Fatalf("the token shows as %s: %s", form, out)
		}
	}
}

package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/testkit/coretest"
)

// hostilePAT holds every character JSON escapes (<, >, &, ").
const hostilePAT = `glpat-<b>&"SECRETpat9c1e2f`

// echoingGitLab answers every request 403 insufficient_scope, echoing the
// request's token in the scope and in a nested message (as a GitLab
// behind a misbehaving proxy might).
func echoingGitLab(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok := r.Header.Get("PRIVATE-TOKEN")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		_ = json.NewEncoder(w).Encode(map[string]any{
			"error": "insufficient_scope", "error_description": "The request requires higher privileges than provided by the access token.",
			"scope": "api " + tok, "message": map[string]any{"token": []string{tok + " is not allowed"}},
		})
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// Forms of a secret that could reach the output: as is, and as JSON
// writes it, with and without HTML escaping.
func jsonForms(s string) []string {
	b, _ := json.Marshal(s)
	plain := strings.NewReplacer(`\u003c`, "<", `\u003e`, ">", `\u0026`, "&").Replace(string(b))
	return []string{s, string(b[1 : len(b)-1]), plain[1 : len(plain)-1], "SECRETpat"}
}

// A token GitLab echoes back never reaches the output, whatever JSON does
// to its characters: text and JSON reports alike.
func TestEchoedTokenWithJSONSpecialCharacters(t *testing.T) {
	url := echoingGitLab(t)
	p := coretest.NewPrefix(t, "main")
	p.Template("", coretest.ClientConfig{URL: url, PAT: hostilePAT})
	p.Executor("shell.toml", "url = \""+url+"\"\n")
	for _, out := range []string{"text", "json"} {
		r := runCLI(t, p, "--output", out)
		mustExit(t, r, 1)
		all := r.stdout + r.stderr
		if !strings.Contains(all, "insufficient_scope") {
			t.Fatalf("GitLab's answer is not reported:\n%s", all)
		}
		for _, form := range jsonForms(hostilePAT) {
			if strings.Contains(all, form) {
				t.Fatalf("--output %s: the token shows as %s:\n%s", out, form, all)
			}
		}
		if out == "json" {
			var doc map[string]any
			if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
				t.Fatalf("not JSON: %v\n%s", err, r.stdout)
			}
		}
	}
}

package gitlabsim

import (
	"net/http"
	"slices"
	"strings"
	"time"
)

// Personal access tokens, as lib/api/api_guard.rb and
// lib/gitlab/auth/auth_finders.rb check them:
//
//   - no token, or one GitLab does not know: 401 {"message":"401 Unauthorized"}
//     (UnauthorizedError, rescued by lib/api/helpers.rb `unauthorized!`);
//   - expired or revoked: 401 with the OAuth2 body of APIGuard's
//     oauth2_bearer_token_error_handler, {"error":"invalid_token","error_description":...}
//     and a WWW-Authenticate header;
//   - missing scope: 403 {"error":"insufficient_scope","error_description":...,"scope":...},
//     where "scope" names every scope registered for the endpoint's class
//     plus API::API's (api, read_api), space-separated, as
//     Gitlab::Auth::InsufficientScopeError carries them.

// scopeRule is what `allow_access_with_scope` grants on one route.
// API::API itself always registers `api`, and `read_api` for GET/HEAD
// (lib/api/api.rb); the endpoint's class may register more (registered),
// some of which hold on this route only (applies: their `if:` lambda).
type scopeRule struct {
	registered []string
	applies    []string
}

// forProfile drops the scopes the release does not have: manage_runner
// before 17.1 (Profile.ManageRunnerScope).
func (sr scopeRule) forProfile(p Profile) scopeRule {
	if p.ManageRunnerScope {
		return sr
	}
	drop := func(in []string) []string {
		var out []string
		for _, v := range in {
			if v != "manage_runner" {
				out = append(out, v)
			}
		}
		return out
	}
	return scopeRule{registered: drop(sr.registered), applies: drop(sr.applies)}
}

// allowed lists the scopes that open the route.
func (sr scopeRule) allowed(method string) []string {
	out := append([]string(nil), sr.applies...)
	out = append(out, "api")
	if method == http.MethodGet || method == http.MethodHead {
		out = append(out, "read_api")
	}
	return out
}

// named lists the scopes the 403 body names.
func (sr scopeRule) named() string {
	return strings.Join(append(append([]string(nil), sr.registered...), "api", "read_api"), " ")
}

// patFromRequest reads the token from PRIVATE-TOKEN, the private_token
// parameter or an Authorization: Bearer header (auth_finders.rb).
func patFromRequest(r *http.Request) string {
	if v := r.Header.Get("PRIVATE-TOKEN"); v != "" {
		return v
	}
	if v := r.URL.Query().Get("private_token"); v != "" {
		return v
	}
	if a := r.Header.Get("Authorization"); strings.HasPrefix(a, "Bearer ") {
		return strings.TrimPrefix(a, "Bearer ")
	}
	return ""
}

// patExpired: a token expires at the start of its expires_at day.
func patExpired(p PAT, now time.Time) bool {
	return !p.ExpiresAt.IsZero() && !now.Before(p.ExpiresAt)
}

// authenticate finds the request's token and its user, or writes the 401.
// Callers hold s.mu.
func (s *Sim) authenticate(w http.ResponseWriter, r *http.Request) (actor, bool) {
	tok := patFromRequest(r)
	var pat *PAT
	for _, p := range s.pats {
		if tok != "" && p.Value == tok {
			pat = p
		}
	}
	switch {
	case pat == nil:
		apiError(w, http.StatusUnauthorized, "401 Unauthorized")
		return actor{}, false
	case pat.Revoked:
		invalidToken(w, "Token was revoked. You have to re-authorize from the user.")
		return actor{}, false
	case patExpired(*pat, s.now()):
		invalidToken(w, "Token is expired. You can either do re-authorization or token refresh.")
		return actor{}, false
	}
	u := s.users[pat.User]
	if u == nil {
		apiError(w, http.StatusUnauthorized, "401 Unauthorized")
		return actor{}, false
	}
	admin := u.Admin && (!s.opts.AdminMode || slices.Contains(pat.Scopes, "admin_mode"))
	// Copies: the request goes on without the lock while tests may edit tokens.
	uc, pc := *u, *pat
	pc.Scopes = append([]string(nil), pat.Scopes...)
	return actor{user: &uc, pat: &pc, admin: admin}, true
}

// invalidToken is Rack::OAuth2::Server::Resource::Bearer::Unauthorized.
func invalidToken(w http.ResponseWriter, description string) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="The API", error="invalid_token", error_description="`+description+`"`)
	writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "invalid_token", "error_description": description})
}

// checkScope writes the 403 insufficient_scope answer unless the token has
// one of the route's scopes.
func checkScope(w http.ResponseWriter, method string, sr scopeRule, a actor) bool {
	for _, want := range sr.allowed(method) {
		if slices.Contains(a.pat.Scopes, want) {
			return true
		}
	}
	writeJSON(w, http.StatusForbidden, map[string]any{
		"error":             "insufficient_scope",
		"error_description": "The request requires higher privileges than provided by the access token.",
		"scope":             sr.named(),
	})
	return false
}

package gitlabsim

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

func newServer(t *testing.T) (*Sim, *httptest.Server) {
	t.Helper()
	s := New(Options{
		PATs: []PAT{
			{Name: "admin", Value: "adm-token-1", Scopes: []string{"api"}, Admin: true},
			{Name: "creator", Value: "create-token", Scopes: []string{"create_runner"}},
			{Name: "reader", Value: "read-token", Scopes: []string{"read_api"}},
		},
		RegistrationToken: "reg-token-1",
	})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, srv
}

type reply struct {
	status int
	header http.Header
	body   map[string]any
	list   []map[string]any
}

func do(t *testing.T, srv *httptest.Server, method, path, pat string, body any) reply {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = strings.NewReader(string(b))
	}
	req, _ := http.NewRequest(method, srv.URL+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if pat != "" {
		req.Header.Set("PRIVATE-TOKEN", pat)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	r := reply{status: resp.StatusCode, header: resp.Header}
	if len(data) > 0 && data[0] == '[' {
		_ = json.Unmarshal(data, &r.list)
	} else if len(data) > 0 {
		_ = json.Unmarshal(data, &r.body)
	}
	return r
}

func TestStatusCodesAndBodiesFollowGitLab(t *testing.T) {
	s, srv := newServer(t)
	created := do(t, srv, "POST", "/api/v4/user/runners", "adm-token-1", map[string]any{"runner_type": "instance_type", "description": "d", "tag_list": []string{"a", "b"}, "run_untagged": false})
	if created.status != 201 || created.body["token"] == nil || !strings.HasPrefix(created.body["token"].(string), "glrt-") {
		t.Fatalf("create: %d %v", created.status, created.body)
	}
	id := int64(created.body["id"].(float64))
	token := created.body["token"].(string)

	cases := []struct {
		name           string
		method, path   string
		pat            string
		body           any
		status         int
		field, message string
	}{
		{"no PAT", "GET", "/api/v4/runners/all", "", nil, 401, "message", "401 Unauthorized"},
		{"unknown PAT", "GET", "/api/v4/runners/all", "nope", nil, 401, "message", "401 Unauthorized"},
		{"scope missing for create", "POST", "/api/v4/user/runners", "read-token", map[string]any{"runner_type": "instance_type"}, 403, "error", "insufficient_scope"},
		{"scope missing for delete", "DELETE", "/api/v4/runners/1", "create-token", nil, 403, "error", "insufficient_scope"},
		{"non-admin lists all", "GET", "/api/v4/runners/all", "read-token", nil, 403, "message", "403 Forbidden"},
		{"non-admin creates instance runner", "POST", "/api/v4/user/runners", "create-token", map[string]any{"runner_type": "instance_type"}, 403, "message", "403 Forbidden"},
		{"runner not found", "GET", "/api/v4/runners/999", "adm-token-1", nil, 404, "message", "404 Runner Not Found"},
		{"bad runner token verify", "POST", "/api/v4/runners/verify", "", map[string]any{"token": "glrt-wrong"}, 403, "message", "403 Forbidden"},
		{"bad registration token", "POST", "/api/v4/runners", "", map[string]any{"token": "wrong"}, 403, "message", "403 Forbidden - invalid token supplied"},
		{"verify ok", "POST", "/api/v4/runners/verify", "", map[string]any{"token": token, "system_id": "s_000000000001"}, 200, "", ""},
		{"legacy register", "POST", "/api/v4/runners", "", map[string]any{"token": "reg-token-1", "description": "legacy"}, 201, "", ""},
		{"update", "PUT", "/api/v4/runners/" + itoa(id), "adm-token-1", map[string]any{"paused": true}, 200, "", ""},
		{"reset by id", "POST", "/api/v4/runners/" + itoa(id) + "/reset_authentication_token", "adm-token-1", nil, 201, "", ""},
		{"group runner needs group_id", "POST", "/api/v4/user/runners", "adm-token-1", map[string]any{"runner_type": "group_type"}, 400, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, srv, tc.method, tc.path, tc.pat, tc.body)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d (%v)", r.status, tc.status, r.body)
			}
			if tc.field != "" && r.body[tc.field] != tc.message {
				t.Fatalf("%s = %v, want %q", tc.field, r.body[tc.field], tc.message)
			}
		})
	}
	// The old token died with the reset.
	if r := do(t, srv, "POST", "/api/v4/runners/verify", "", map[string]any{"token": token}); r.status != 403 {
		t.Fatalf("old token still verifies: %d", r.status)
	}
	s.SetRegistrationDisabled(true)
	gone := do(t, srv, "POST", "/api/v4/runners", "", map[string]any{"token": "reg-token-1"})
	if gone.status != 410 || gone.body["message"] != "410 Gone" {
		t.Fatalf("registration disabled: %d %v", gone.status, gone.body)
	}
	if r := do(t, srv, "DELETE", "/api/v4/runners", "", map[string]any{"token": "glrt-none"}); r.status != 403 {
		t.Fatalf("delete with bad token: %d", r.status)
	}
	for _, e := range s.Requests() {
		for _, secret := range []string{"adm-token-1", "reg-token-1", token} {
			if strings.Contains(e.Query+e.Path+e.Auth, secret) {
				t.Fatalf("the request log holds a secret: %+v", e)
			}
		}
	}
}

func itoa(i int64) string { return strconv.FormatInt(i, 10) }

func TestPaginationAndTagFilter(t *testing.T) {
	s, srv := newServer(t)
	for i := 0; i < 230; i++ {
		tags := []string{"host1", "main"}
		if i%2 == 1 {
			tags = []string{"host1"}
		}
		s.AddRunner(Runner{Description: "r", TagList: tags})
	}
	r := do(t, srv, "GET", "/api/v4/runners/all?tag_list=host1,main&per_page=500", "adm-token-1", nil)
	if len(r.list) != 100 || r.header.Get("X-Per-Page") != "100" || r.header.Get("X-Total") != "115" ||
		r.header.Get("X-Next-Page") != "2" || r.header.Get("X-Total-Pages") != "2" {
		t.Fatalf("page 1: %d items, headers %v", len(r.list), r.header)
	}
	if !strings.Contains(r.header.Get("Link"), `rel="next"`) {
		t.Fatalf("no next link: %s", r.header.Get("Link"))
	}
	r2 := do(t, srv, "GET", "/api/v4/runners/all?tag_list=host1,main&per_page=100&page=2", "adm-token-1", nil)
	if len(r2.list) != 15 || r2.header.Get("X-Next-Page") != "" || r2.header.Get("X-Prev-Page") != "1" {
		t.Fatalf("page 2: %d items, headers %v", len(r2.list), r2.header)
	}
	def := do(t, srv, "GET", "/api/v4/runners/all", "adm-token-1", nil)
	if len(def.list) != 20 {
		t.Fatalf("default page size %d, want 20", len(def.list))
	}
	if _, hasTags := def.list[0]["tag_list"]; hasTags {
		t.Fatal("list entries must not carry tag_list (GitLab's list entity has none)")
	}
}

func TestFaultInjection(t *testing.T) {
	s, srv := newServer(t)
	s.InjectFault(Fault{Kind: "verify", Type: FaultRateLimit, RetryAfter: 7})
	r := do(t, srv, "POST", "/api/v4/runners/verify", "", map[string]any{"token": "x"})
	if r.status != 429 || r.header.Get("Retry-After") != "7" {
		t.Fatalf("ratelimit: %d %v", r.status, r.header)
	}
	s.InjectFault(Fault{Kind: "create", Type: FaultDrop, After: true})
	req, _ := http.NewRequest("POST", srv.URL+"/api/v4/user/runners", strings.NewReader(`{"runner_type":"instance_type"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("PRIVATE-TOKEN", "adm-token-1")
	if _, err := http.DefaultClient.Do(req); err == nil {
		t.Fatal("dropped connection returned an answer")
	}
	if len(s.Runners()) != 1 {
		t.Fatal("a fault 'after' must still carry the request out (a lost answer)")
	}
	s.InjectFault(Fault{Type: FaultStatus, Status: 502, Skip: 1})
	if r := do(t, srv, "GET", "/api/v4/runners/all", "adm-token-1", nil); r.status != 200 {
		t.Fatalf("skip: %d", r.status)
	}
	if r := do(t, srv, "GET", "/api/v4/runners/all", "adm-token-1", nil); r.status != 502 {
		t.Fatalf("status fault: %d", r.status)
	}
	if s.FaultsFired() != 3 {
		t.Fatalf("faults fired %d, want 3", s.FaultsFired())
	}
}

package gitlabsim

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
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

func TestTotalsLeftOutAboveTenThousand(t *testing.T) {
	s, srv := newServer(t)
	for i := 0; i < countLimit+1; i++ {
		s.AddRunner(Runner{Description: "r", TagList: []string{"x"}})
	}
	r := do(t, srv, "GET", "/api/v4/runners/all?per_page=100&page=2", "adm-token-1", nil)
	if len(r.list) != 100 || r.header.Get("X-Next-Page") != "3" || r.header.Get("X-Prev-Page") != "1" {
		t.Fatalf("page 2: %d items, headers %v", len(r.list), r.header)
	}
	if _, ok := r.header["X-Total"]; ok {
		t.Fatal("X-Total must be left out above 10,000 rows")
	}
	if _, ok := r.header["X-Total-Pages"]; ok || strings.Contains(r.header.Get("Link"), `rel="last"`) {
		t.Fatalf("X-Total-Pages and the last link must be left out: %v", r.header)
	}
}

func TestManagersRecordEachHost(t *testing.T) {
	s, srv := newServer(t)
	// 17.9: a glrt- verify contacts nothing (TestWhichRequestsAreContacts has every release).
	if err := s.SetVersion("17.9"); err != nil {
		t.Fatal(err)
	}
	created := do(t, srv, "POST", "/api/v4/user/runners", "adm-token-1", map[string]any{"runner_type": "instance_type"})
	token := created.body["token"].(string)
	id := int64(created.body["id"].(float64))
	path := "/api/v4/runners/" + itoa(id) + "/managers"

	if r := do(t, srv, "GET", path, "adm-token-1", nil); r.status != 200 || len(r.list) != 0 {
		t.Fatalf("a new runner has no managers: %d %v", r.status, r.list)
	}
	do(t, srv, "POST", "/api/v4/runners/verify", "", map[string]any{"token": token, "system_id": "s_0123456789ab"})
	do(t, srv, "POST", "/api/v4/runners/verify", "", map[string]any{"token": token, "system_id": "s_0123456789ab"})
	do(t, srv, "POST", "/api/v4/runners/verify", "", map[string]any{"token": token})
	r := do(t, srv, "GET", path, "read-token", nil)
	if r.status != 200 || len(r.list) != 2 {
		t.Fatalf("managers after verify: %d %v", r.status, r.list)
	}
	if r.list[0]["system_id"] != "s_0123456789ab" || r.list[1]["system_id"] != "<legacy>" {
		t.Fatalf("managers carry the system id, <legacy> without one: %v", r.list)
	}
	// A runner created in the UI is not "contacted" by verify, only by the job poll.
	if r.list[0]["contacted_at"] != nil || r.list[0]["status"] != "never_contacted" {
		t.Fatalf("verify of a glrt- token contacted the manager: %v", r.list[0])
	}
	poll := do(t, srv, "POST", "/api/v4/jobs/request", "", map[string]any{"token": token, "system_id": "s_0123456789ab",
		"info": map[string]any{"version": "17.9.3", "platform": "linux", "architecture": "amd64"}})
	if poll.status != 204 || poll.header.Get("X-GitLab-Last-Update") == "" {
		t.Fatalf("job poll: %d %v", poll.status, poll.header)
	}
	again := do(t, srv, "POST", "/api/v4/jobs/request", "", map[string]any{"token": token, "last_update": poll.header.Get("X-GitLab-Last-Update")})
	if again.header.Get("X-GitLab-Last-Update") != poll.header.Get("X-GitLab-Last-Update") {
		t.Fatal("the queue value must stay the same while nothing changes")
	}
	r = do(t, srv, "GET", path, "adm-token-1", nil)
	if r.list[0]["status"] != "online" || r.list[0]["version"] != "17.9.3" || r.list[0]["ip_address"] != "127.0.0.1" {
		t.Fatalf("the job poll is a contact: %v", r.list[0])
	}
	for _, e := range s.Requests() {
		if e.Kind() == "jobs-request" && e.Mutating {
			t.Fatal("the job poll must not count as mutating")
		}
	}
	if n := s.Counts()["jobs-request"]; n != 2 {
		t.Fatalf("jobs-request counted %d times", n)
	}
}

func TestTokenShapes(t *testing.T) {
	s := New(Options{RoutableTokens: true})
	r, _ := s.Runner(s.AddRunner(Runner{}))
	if !strings.HasPrefix(r.Token, "glrt-t1_") || !strings.Contains(r.Token, ".") {
		t.Fatalf("routable token %q", r.Token)
	}
	legacy, _ := s.Runner(s.AddRunner(Runner{Legacy: true, RunnerType: "project_type"}))
	if !strings.HasPrefix(legacy.Token, "t3_") {
		t.Fatalf("legacy project runner token %q", legacy.Token)
	}
}

func TestRequestLogHoldsNoSecret(t *testing.T) {
	s, srv := newServer(t)
	created := do(t, srv, "POST", "/api/v4/user/runners?private_token=adm-token-1", "", map[string]any{"runner_type": "instance_type"})
	token := created.body["token"].(string)
	do(t, srv, "POST", "/api/v4/runners/verify", "", map[string]any{"token": token})
	do(t, srv, "POST", "/api/v4/runners", "", map[string]any{"token": "reg-token-1"})
	do(t, srv, "GET", "/api/v4/runners/all?tag_list=a", "adm-token-1", nil)
	b, _ := json.Marshal(s.Requests())
	for _, secret := range []string{"adm-token-1", "reg-token-1", token} {
		if strings.Contains(string(b), secret) {
			t.Fatalf("the request log holds a secret: %s", b)
		}
	}
}

func TestRouteTable(t *testing.T) {
	seen := map[string]bool{}
	for _, rt := range routes {
		key := rt.method + " " + rt.pattern
		if seen[key] || rt.kind == "" || rt.source == "" || rt.handle == nil {
			t.Errorf("route %s: duplicate or incomplete", key)
		}
		seen[key] = true
		got, _ := match(rt.method, apiPrefix+strings.ReplaceAll(rt.pattern, ":id", "7"))
		if got == nil || got.pattern != rt.pattern {
			t.Errorf("route %s is shadowed by %s", key, got.pattern)
		}
	}
	if rt, seg := match("GET", "/api/v4/groups/a%2Fb/runners"); rt == nil || seg != "a/b" {
		t.Fatalf("URL-encoded path: %v %q", rt, seg)
	}
}

func TestControlAPI(t *testing.T) {
	s := New(Options{})
	s.EnableControl()
	srv := httptest.NewServer(s)
	defer srv.Close()
	ctl := func(method, path, body string) (int, string) {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	steps := []struct {
		method, path, body string
		status             int
	}{
		{"POST", "/-/sim/users", `{"username":"alice"}`, 201},
		{"POST", "/-/sim/groups", `{"full_path":"ops","members":{"alice":50}}`, 201},
		{"POST", "/-/sim/projects", `{"full_path":"ops/app"}`, 201},
		{"POST", "/-/sim/members", `{"path":"ops/app","username":"alice","access_level":40}`, 204},
		{"POST", "/-/sim/pats", `{"name":"a","value":"a-token","scopes":["read_api"],"user":"alice"}`, 204},
		{"PUT", "/-/sim/pats/a/scopes", `{"scopes":["api"]}`, 204},
		{"POST", "/-/sim/runners", `{"description":"x","runner_type":"group_type","group_id":100,"system_ids":["s_000000000001"]}`, 201},
		{"POST", "/-/sim/runners/1/managers", `{"system_id":"s_000000000002"}`, 204},
		{"POST", "/-/sim/runners/1/orphan", ``, 204},
		{"PUT", "/-/sim/settings", `{"admin_mode":true,"migration_backoff":false,"latency_ms":0}`, 204},
		{"POST", "/-/sim/pats/a/expire", ``, 204},
		{"POST", "/-/sim/runners/9/orphan", ``, 404},
		{"PUT", "/-/sim/settings", `{"registration_tokens_allowed":true}`, 204},
		{"POST", "/-/sim/clock", `{"advance":"240h"}`, 200},
		{"POST", "/-/sim/clock", `{"advance":"soon"}`, 400},
		{"GET", "/-/sim/housekeeping", ``, 200},
		{"PUT", "/-/sim/profile", `{"version":"16.11"}`, 200},
		{"PUT", "/-/sim/profile", `{"managers_route":true}`, 200},
		{"PUT", "/-/sim/profile", `{"version":"9.9"}`, 400},
	}
	for _, st := range steps {
		if got, body := ctl(st.method, st.path, st.body); got != st.status {
			t.Fatalf("%s %s: %d %s, want %d", st.method, st.path, got, body, st.status)
		}
	}
	r, _ := s.Runner(1)
	if !r.Orphaned {
		t.Fatalf("runner after control calls: %+v", r)
	}
	// Both managers were never contacted: 240 hours later GitLab's hourly
	// clean-up has deleted them.
	if len(r.Managers) != 0 {
		t.Fatalf("stale managers survived the clock: %+v", r.Managers)
	}
	if p := s.Profile(); p.Version != "16.11" || !p.ManagersRoute || p.ManageRunnerScope {
		t.Fatalf("profile after control calls: %+v", p)
	}
	if _, body := ctl("GET", "/-/sim/clock", ""); !strings.Contains(body, `"version":"16.11"`) {
		t.Fatalf("clock view: %s", body)
	}
	if st, body := ctl("GET", "/-/sim/runners", ""); st != 200 || strings.Contains(body, r.Token) {
		t.Fatalf("runners view: %d (must never show a token)", st)
	}
	_, body := ctl("GET", "/-/sim/counts", "")
	var c RequestCounts
	if err := json.Unmarshal([]byte(body), &c); err != nil || c.ByKind == nil {
		t.Fatalf("counts: %v %s", err, body)
	}
}

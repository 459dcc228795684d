package gitlabsim

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestJobLifecycle follows one job the way gitlab-runner drives it: the
// poll that was told "nothing new" gets the job once it is queued (the
// queue ticked), the trace arrives in patches, the final state is kept,
// and nothing more is handed out.
func TestJobLifecycle(t *testing.T) {
	s, srv := newServer(t)
	s.EnableControl()
	mine, other := s.AddRunner(Runner{}), s.AddRunner(Runner{})
	r, _ := s.Runner(mine)
	idle := do(t, srv, "POST", "/api/v4/jobs/request", "", map[string]any{"token": r.Token, "system_id": "s_0123456789ab"})
	last := idle.header.Get("X-GitLab-Last-Update")
	if idle.status != 204 || last == "" {
		t.Fatalf("idle poll: %d %v", idle.status, idle.header)
	}

	status, body := control(t, srv, "POST", "/-/sim/jobs", `{"name":"build","script":["echo hi","sleep 1"],"runner_id":`+itoa(mine)+`,"watched":true,"variables":{"FOO":"bar"}}`)
	var created struct{ ID int64 }
	if err := json.Unmarshal([]byte(body), &created); status != 201 || err != nil || created.ID == 0 {
		t.Fatalf("POST /-/sim/jobs: %d %s", status, body)
	}
	// Another runner is not given a job pinned to this one.
	o, _ := s.Runner(other)
	if p := do(t, srv, "POST", "/api/v4/jobs/request", "", map[string]any{"token": o.Token}); p.status != 204 {
		t.Fatalf("another runner's poll: %d", p.status)
	}

	got := do(t, srv, "POST", "/api/v4/jobs/request", "", map[string]any{"token": r.Token, "system_id": "s_0123456789ab", "last_update": last})
	if got.status != 201 {
		t.Fatalf("poll with the old queue value after a job was queued: %d, want 201 (the queue ticks)", got.status)
	}
	var payload struct {
		ID      int64  `json:"id"`
		Token   string `json:"token"`
		JobInfo struct {
			Name string `json:"name"`
		} `json:"job_info"`
		RunnerInfo struct {
			Timeout int `json:"timeout"`
		} `json:"runner_info"`
		Variables []struct {
			Key, Value string
			Masked     bool
		} `json:"variables"`
		Steps []struct {
			Name   string   `json:"name"`
			Script []string `json:"script"`
		} `json:"steps"`
	}
	b, _ := json.Marshal(got.body)
	if err := json.Unmarshal(b, &payload); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{}
	for _, v := range payload.Variables {
		vars[v.Key] = v.Value
		if v.Key == "CI_JOB_TOKEN" && !v.Masked {
			t.Error("CI_JOB_TOKEN must be masked")
		}
	}
	if payload.ID != created.ID || payload.JobInfo.Name != "build" || payload.RunnerInfo.Timeout != 3600 ||
		len(payload.Steps) != 1 || payload.Steps[0].Name != "script" || strings.Join(payload.Steps[0].Script, ";") != "echo hi;sleep 1" ||
		vars["FOO"] != "bar" || vars["GIT_STRATEGY"] != "none" || vars["CI_JOB_TOKEN"] != payload.Token {
		t.Fatalf("job payload: %+v", payload)
	}
	if j, _ := s.Job(created.ID); j.Status != JobRunning || j.RunnerID != mine || j.SystemID != "s_0123456789ab" {
		t.Fatalf("a job handed out is running on its runner: %+v", j)
	}
	if again := do(t, srv, "POST", "/api/v4/jobs/request", "", map[string]any{"token": r.Token}); again.status != 204 {
		t.Fatalf("the job was handed out twice: %d", again.status)
	}

	patch := func(rng, text string) (int, http.Header) {
		req, _ := http.NewRequest("PATCH", srv.URL+"/api/v4/jobs/"+itoa(created.ID)+"/trace?debug_trace=false", strings.NewReader(text))
		req.Header.Set("Content-Type", "text/plain")
		req.Header.Set("Content-Range", rng)
		req.Header.Set("JOB-TOKEN", payload.Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header
	}
	if st, h := patch("0-5", "hi&a=b\n"); st != 202 || h.Get("Range") != "0-7" || h.Get("X-GitLab-Trace-Update-Interval") != "3" {
		t.Fatalf("first patch: %d %v", st, h)
	}
	if st, h := patch("0-5", "again"); st != 416 || h.Get("Range") != "0-7" {
		t.Fatalf("patch at an offset already written: %d %v", st, h)
	}
	if st, _ := patch("7-10", "done"); st != 202 {
		t.Fatalf("second patch: %d", st)
	}
	update := func(state string, extra map[string]any) int {
		body := map[string]any{"token": payload.Token, "state": state}
		for k, v := range extra {
			body[k] = v
		}
		return do(t, srv, "PUT", "/api/v4/jobs/"+itoa(created.ID), "", body).status
	}
	if st := update("running", nil); st != 200 {
		t.Fatalf("keep-alive: %d", st)
	}
	if st := update("success", map[string]any{"output": map[string]any{"checksum": "crc32:1", "bytesize": 11}}); st != 200 {
		t.Fatalf("final update: %d", st)
	}
	if st := update("success", nil); st != 403 {
		t.Fatalf("update of a finished job: %d, want 403", st)
	}

	status, body = control(t, srv, "GET", "/-/sim/jobs/"+itoa(created.ID), "")
	var view JobView
	if err := json.Unmarshal([]byte(body), &view); status != 200 || err != nil {
		t.Fatalf("GET /-/sim/jobs/%d: %d %s", created.ID, status, body)
	}
	if view.Status != JobSuccess || view.Trace != "hi&a=b\ndone" || view.Updates != 2 || view.TracePatches != 2 ||
		view.RunnerID != mine || view.FinishedAt.IsZero() || view.StartedAt.IsZero() {
		t.Fatalf("the job as recorded: %+v", view)
	}
	if strings.Contains(body, payload.Token) {
		t.Fatal("the control API showed a job token")
	}
	if status, body = control(t, srv, "GET", "/-/sim/jobs", ""); status != 200 || !strings.Contains(body, `"status":"success"`) {
		t.Fatalf("GET /-/sim/jobs: %d %s", status, body)
	}
	for _, bad := range []string{`{"script":[]}`, `{`} {
		if status, _ = control(t, srv, "POST", "/-/sim/jobs", bad); status != 400 {
			t.Fatalf("POST /-/sim/jobs %s: %d, want 400", bad, status)
		}
	}
	if status, _ = control(t, srv, "GET", "/-/sim/jobs/99", ""); status != 404 {
		t.Fatalf("unknown job: %d", status)
	}
	c := s.Counts()
	if c["job-update"] != 3 || c["job-trace"] != 3 {
		t.Fatalf("counts: %v", c)
	}
	for _, e := range s.Requests() {
		if (e.Kind() == "job-update" || e.Kind() == "job-trace") && (e.Auth != "job-token" || !e.Mutating) {
			t.Fatalf("log entry %+v: want auth job-token, mutating", e)
		}
	}
}

// TestKilledJobIsRecordedFailed: what gitlab-runner reports for a job it
// aborts (SIGTERM: "aborted: terminated") stays on the record.
func TestKilledJobIsRecordedFailed(t *testing.T) {
	s, srv := newServer(t)
	id := s.AddRunner(Runner{})
	jid := s.EnqueueJob(JobSpec{Script: []string{"sleep 60"}})
	takeJobs(s, id)
	token := tokenOf(s, "$job"+itoa(jid))
	if st := do(t, srv, "PUT", "/api/v4/jobs/"+itoa(jid), "", map[string]any{"token": token, "state": "failed",
		"failure_reason": "runner_system_failure", "exit_code": 0}).status; st != 200 {
		t.Fatalf("failed update: %d", st)
	}
	j, _ := s.Job(jid)
	if j.Status != JobFailed || j.FailureReason != "runner_system_failure" || j.RunnerID != id {
		t.Fatalf("job: %+v", j)
	}
}

func control(t *testing.T, srv *httptest.Server, method, path, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// PUT /jobs/:id and PATCH /jobs/:id/trace are contacts of the job's runner
// and of the manager that took the job, not of the runner's other
// managers (authenticate_job!(heartbeat_runner: true): `job.runner&.heartbeat`,
// `job.runner_manager&.heartbeat(get_runner_ip)`).
func TestJobUpdatesContactTheRunnerAndItsManager(t *testing.T) {
	s, srv := newClockSim(t, Options{Version: "17.9"})
	id, token := createRunner(t, srv)
	poll(t, srv, token, "s_000000000002")
	s.EnqueueJob(JobSpec{Script: []string{"true"}})
	took := do(t, srv, "POST", "/api/v4/jobs/request", "", map[string]any{"token": token, "system_id": "s_000000000001"})
	if took.status != 201 {
		t.Fatalf("job request: %d %v", took.status, took.body)
	}
	jobToken, _ := took.body["token"].(string)
	s.Advance(10 * time.Minute)
	if r := do(t, srv, "PUT", "/api/v4/jobs/1", "", map[string]any{"token": jobToken, "state": "running"}); r.status != 200 {
		t.Fatalf("job update: %d", r.status)
	}
	now := s.Now()
	if c := do(t, srv, "GET", "/api/v4/runners/"+id, "adm", nil).body["contacted_at"]; c == nil || !jsonTime(t, c).Equal(now) {
		t.Fatalf("the job update contacts the runner: %v, want %s", c, now)
	}
	for _, m := range managers(t, srv, id) {
		c := jsonTime(t, m["contacted_at"])
		switch m["system_id"] {
		case "s_000000000001":
			if !c.Equal(now) {
				t.Fatalf("the manager that took the job is contacted: %s, want %s", c, now)
			}
		default:
			if !c.Equal(t0) {
				t.Fatalf("another manager is not: %v", m)
			}
		}
	}
}

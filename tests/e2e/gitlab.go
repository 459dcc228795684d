package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// GitLab is the simulator (build/gitlab-sim, its own process) behind a
// recording proxy. The container talks to the proxy only, so the test can
// take "GitLab" off the network (connection refused) without losing the
// simulator's state, and can see which runner each job request came from.
type GitLab struct {
	SimURL string // the simulator itself (control API)
	URL    string // what the host is given: the proxy
	sim    *exec.Cmd
	ctx    context.Context // the run's: its waits end with it

	mu    sync.Mutex
	addr  string
	srv   *http.Server
	polls []Poll
	ids   map[[32]byte]int64 // token hash -> runner id
}

// Poll is one job request by gitlab-runner (POST /api/v4/jobs/request).
type Poll struct {
	At       time.Time
	RunnerID int64 // 0: token unknown to GitLab
	Status   int   // 0: GitLab down
}

func startGitLab(ctx context.Context, simBin, dir, patFile string) (*GitLab, error) {
	addrFile := filepath.Join(dir, "sim.addr")
	logFile, err := os.Create(filepath.Join(dir, "gitlab-sim.log"))
	if err != nil {
		return nil, err
	}
	sim := exec.Command(simBin, "--listen", "127.0.0.1:0", "--addr-file", addrFile, "--pat", "admin:api:admin:"+patFile)
	sim.Stdout, sim.Stderr = logFile, logFile
	sim.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := sim.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w (run `make build`)", simBin, err)
	}
	g := &GitLab{sim: sim, ctx: ctx, ids: map[[32]byte]int64{}}
	cleanups.push(fmt.Sprintf("stop gitlab-sim (pid %d)", sim.Process.Pid), func() {
		_ = sim.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = sim.Wait(); logFile.Close(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-sim.Process.Pid, syscall.SIGKILL)
		}
	})
	if err := waitFor(ctx, "gitlab-sim to write its address to "+addrFile+" (its log: "+logFile.Name()+")", func() (bool, string) {
		b, err := os.ReadFile(addrFile)
		if err == nil && strings.HasPrefix(string(b), "http") {
			g.SimURL = strings.TrimSpace(string(b))
			return true, ""
		}
		return false, fmt.Sprint(err)
	}); err != nil {
		return nil, err
	}
	// A random free port for the proxy; it keeps it across Down/Up.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	g.addr = ln.Addr().String()
	g.URL = "http://" + g.addr
	g.serve(ln)
	cleanups.push("stop the GitLab proxy", func() { g.Down() })
	return g, nil
}

func (g *GitLab) serve(ln net.Listener) {
	target, _ := url.Parse(g.SimURL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "POST" && r.URL.Path == "/api/v4/jobs/request" {
			body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
			r.Body = io.NopCloser(bytes.NewReader(body))
			var req struct {
				Token string `json:"token"`
			}
			_ = json.Unmarshal(body, &req)
			rec := &statusRecorder{ResponseWriter: w}
			proxy.ServeHTTP(rec, r)
			g.recordPoll(req.Token, rec.status)
			return
		}
		proxy.ServeHTTP(w, r)
	})
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	g.mu.Lock()
	g.srv = srv
	g.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = 200
	}
	return s.ResponseWriter.Write(b)
}

// recordPoll notes which runner polled; the token itself is never kept, only
// its hash, resolved to a runner id by the simulator's control API.
func (g *GitLab) recordPoll(token string, status int) {
	h := sha256.Sum256([]byte(token))
	g.mu.Lock()
	id, known := g.ids[h]
	g.mu.Unlock()
	if !known && token != "" {
		var v struct {
			Valid bool  `json:"valid"`
			ID    int64 `json:"id"`
		}
		b, _ := json.Marshal(map[string]string{"token": token})
		if err := g.control("POST", "/-/sim/verify", b, &v); err == nil && v.Valid {
			id = v.ID
			g.mu.Lock()
			g.ids[h] = id
			g.mu.Unlock()
		}
	}
	g.mu.Lock()
	g.polls = append(g.polls, Poll{At: time.Now(), RunnerID: id, Status: status})
	g.mu.Unlock()
}

// Down takes GitLab off the network: new connections are refused.
func (g *GitLab) Down() {
	g.mu.Lock()
	srv := g.srv
	g.srv = nil
	g.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// Up puts GitLab back on the same address.
func (g *GitLab) Up() error {
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ {
		if ln, err = net.Listen("tcp", g.addr); err == nil {
			g.serve(ln)
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("GitLab proxy cannot listen on %s again: %w", g.addr, err)
}

// PolledSince returns, per runner id, the last status of its job requests
// since t.
func (g *GitLab) PolledSince(t time.Time) map[int64]int {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := map[int64]int{}
	for _, p := range g.polls {
		if !p.At.Before(t) {
			out[p.RunnerID] = p.Status
		}
	}
	return out
}

// WaitPolls waits until every runner id has polled GitLab since t and got
// 204 (no job for you), for as long as the run goes on. It returns what
// was seen.
func (g *GitLab) WaitPolls(t time.Time, ids []int64) (map[int64]int, error) {
	return g.waitPolls(g.ctx, t, ids)
}

// PollsWithin is WaitPolls for at most d: a measurement (do the runners
// poll again by themselves?), never a condition of success.
func (g *GitLab) PollsWithin(t time.Time, ids []int64, d time.Duration) bool {
	ctx, cancel := context.WithTimeout(g.ctx, d)
	defer cancel()
	_, err := g.waitPolls(ctx, t, ids)
	return err == nil
}

func (g *GitLab) waitPolls(ctx context.Context, t time.Time, ids []int64) (map[int64]int, error) {
	var seen map[int64]int
	err := waitFor(ctx, fmt.Sprintf("runners %v to ask GitLab for jobs with their own token and get 204", ids), func() (bool, string) {
		seen = g.PolledSince(t)
		missing := []string{}
		for _, id := range ids {
			if seen[id] != http.StatusNoContent {
				missing = append(missing, fmt.Sprintf("%d (last status %d)", id, seen[id]))
			}
		}
		return len(missing) == 0, "not yet: " + strings.Join(missing, ", ") + " (0 = no request)"
	})
	return seen, err
}

// ForbiddenSince counts the job requests GitLab answered 403 since t: a
// token it no longer knows (a runner deleted while gitlab-runner still
// had it).
func (g *GitLab) ForbiddenSince(t time.Time) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	for _, p := range g.polls {
		if !p.At.Before(t) && p.Status == http.StatusForbidden {
			n++
		}
	}
	return n
}

// Counts are the API requests register-runner made (gitlab-runner's own job
// requests are left out) since the last ResetLog.
type Counts struct {
	Total, Mutating int
	Kinds           map[string]int
}

func (c Counts) String() string {
	parts := []string{}
	for _, k := range []string{"verify", "list", "get", "managers", "create", "register", "reset", "rotate", "update", "delete-token", "delete-id"} {
		if c.Kinds[k] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", k, c.Kinds[k]))
		}
	}
	for k, n := range c.Kinds {
		if !strings.Contains(" verify list get managers create register reset rotate update delete-token delete-id ", " "+k+" ") {
			parts = append(parts, fmt.Sprintf("%s %d", k, n))
		}
	}
	if len(parts) == 0 {
		return "no request"
	}
	return strings.Join(parts, ", ")
}

func (g *GitLab) Counts() (Counts, error) {
	var rc struct {
		Total    int            `json:"total"`
		Mutating int            `json:"mutating"`
		ByKind   map[string]int `json:"by_kind"`
	}
	if err := g.control("GET", "/-/sim/counts", nil, &rc); err != nil {
		return Counts{}, err
	}
	// gitlab-runner's own requests are left out: its job requests (kind
	// "jobs-request", not mutating; the proxy counts them per runner), and
	// a job's state updates and trace (mutating, they change the job).
	polls := rc.ByKind["jobs-request"]
	jobs := rc.ByKind["job-update"] + rc.ByKind["job-trace"]
	for _, k := range []string{"jobs-request", "job-update", "job-trace"} {
		delete(rc.ByKind, k)
	}
	return Counts{Total: rc.Total - polls - jobs, Mutating: rc.Mutating - jobs, Kinds: rc.ByKind}, nil
}

// Job is a CI job as the simulator records it (its control API's JobView).
type Job struct {
	ID            int64     `json:"id"`
	Status        string    `json:"status"`
	RunnerID      int64     `json:"runner_id"`
	FailureReason string    `json:"failure_reason"`
	Trace         string    `json:"trace"`
	StartedAt     time.Time `json:"started_at"`
	FinishedAt    time.Time `json:"finished_at"`
}

// Duration is how long the job ran, from the runner taking it to its final
// state.
func (j Job) Duration() time.Duration { return j.FinishedAt.Sub(j.StartedAt) }

// EnqueueJob queues a shell job that only runner may take; GitLab is
// "watched" (trace updates every 3 s, as when someone has the job open).
func (g *GitLab) EnqueueJob(runner int64, script ...string) (int64, error) {
	b, _ := json.Marshal(map[string]any{"name": "e2e", "script": script, "runner_id": runner, "watched": true})
	var created struct {
		ID int64 `json:"id"`
	}
	err := g.control("POST", "/-/sim/jobs", b, &created)
	return created.ID, err
}

func (g *GitLab) Job(id int64) (Job, error) {
	var j Job
	err := g.control("GET", fmt.Sprintf("/-/sim/jobs/%d", id), nil, &j)
	return j, err
}

// WaitJob waits until the job is in one of the states, for as long as
// the run goes on.
func (g *GitLab) WaitJob(id int64, states ...string) (Job, error) {
	var j Job
	err := waitFor(g.ctx, fmt.Sprintf("job %d to be %s", id, strings.Join(states, " or ")), func() (bool, string) {
		var err error
		if j, err = g.Job(id); err != nil {
			return false, err.Error()
		}
		for _, s := range states {
			if j.Status == s {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%q (failure reason %q; trace ends %q)", j.Status, j.FailureReason, tail(j.Trace, 3))
	})
	return j, err
}

func (g *GitLab) ResetLog() error { return g.control("POST", "/-/sim/reset-log", nil, nil) }

// SimRunner is a runner as GitLab holds it.
type SimRunner struct {
	ID          int64  `json:"id"`
	Description string `json:"description"`
}

func (g *GitLab) Runners() ([]SimRunner, error) {
	var rs []SimRunner
	err := g.control("GET", "/-/sim/runners", nil, &rs)
	return rs, err
}

func (g *GitLab) control(method, path string, body []byte, into any) error {
	// The simulator is local; the limit only keeps a wedged one from
	// hanging the proxy, far beyond what a loaded machine takes.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, g.SimURL+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if resp.StatusCode >= 300 {
		return fmt.Errorf("simulator %s %s: %s", method, path, resp.Status)
	}
	if into != nil {
		if err := json.Unmarshal(b, into); err != nil {
			return errors.New("simulator " + path + ": " + err.Error())
		}
	}
	return nil
}

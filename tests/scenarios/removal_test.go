package scenarios

import (
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/core"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/coretest"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/gitlabsim"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/plan"
)

// An executor removed while GitLab fails its delete (5xx, a 429 asking
// for a wait longer than the run, no answer): its entry leaves the config
// in this run all the same, so gitlab-runner stops taking jobs on it; the
// removal is recorded in the state file and retried by every run until
// GitLab confirms. A warning by default, a failure with CleanupFails (the
// CLI's --strict, the module unless ignore_cleanup_errors).
func TestFailedRemovalStillTakesTheEntryOut(t *testing.T) {
	for _, fault := range []gitlabsim.Fault{
		{Kind: "delete-token", Type: gitlabsim.FaultStatus, Status: 502, Times: -1},
		{Kind: "delete-token", Type: gitlabsim.FaultRateLimit, Times: -1, RetryAfterHeader: "3600"},
		{Kind: "delete-token", Type: gitlabsim.FaultDrop, Times: -1},
	} {
		t.Run(string(fault.Type), func(t *testing.T) {
			sim := coretest.NewSim(t, coretest.SimOptions())
			p := coretest.NewPrefix(t, "main")
			p.Template("", coretest.ClientConfig{URL: sim.URL, PAT: coretest.AdminPAT})
			p.Executor("a.toml", "url = \""+sim.URL+"\"\nexecutor = \"shell\"\n")
			p.Executor("docker.toml", "url = \""+sim.URL+"\"\nexecutor = \"docker\"\nprivileged = true\n")
			mustRun(t, p, nil)
			docker := runnerID(t, sim, "docker")
			p.Remove("main/docker.toml")
			sim.InjectFault(fault)
			fast := func(o *core.Options) { o.RetryBudget, o.MaxAttempts, o.RequestTimeout = time.Second, 2, time.Second }
			res := mustRun(t, p, fast)
			if strings.Contains(p.Config(), "main docker Runner") {
				t.Fatalf("the removed executor's entry is still in the config:\n%s", p.Config())
			}
			var r *core.RunnerResult
			for i := range res.Runners {
				if res.Runners[i].ID == docker {
					r = &res.Runners[i]
				}
			}
			if r == nil || r.Action != plan.Delete || r.Error == "" || !r.Pending {
				t.Fatalf("runners %+v: want docker's delete failed and pending", res.Runners)
			}
			if _, ok := sim.Runner(docker); !ok {
				t.Fatal("the runner is gone although GitLab refused its delete")
			}
			st := readState(t, p)
			if len(st.Pending) != 1 || st.Pending[0].ID != docker || st.Pending[0].Token == "" || st.Pending[0].LastError == "" {
				t.Fatalf("pending %+v: want docker's removal with its token and GitLab's answer", st.Pending)
			}
			// Retried by every run; a failure where removals must succeed.
			if oc := run(t, p, both(fast, func(o *core.Options) { o.CleanupFails = true })); oc.Err == nil {
				t.Fatal("CleanupFails: a removal GitLab did not confirm did not fail the run")
			}
			sim.ClearFaults()
			res = mustRun(t, p, both(fast, func(o *core.Options) { o.CleanupFails = true }))
			if _, ok := sim.Runner(docker); ok {
				t.Fatal("the pending removal was not retried once GitLab answered")
			}
			if st := readState(t, p); len(st.Pending) != 0 {
				t.Fatalf("pending %+v after GitLab confirmed", st.Pending)
			}
			if len(sim.Runners()) != 1 || len(res.Runners) != 2 {
				t.Fatalf("GitLab holds %d runners, want a's alone; runners %+v", len(sim.Runners()), res.Runners)
			}
		})
	}
}

// On a reload (gitlab-runner running, RunnerPID), a runner leaves the
// config first, gitlab-runner is told (SIGHUP) and given ReloadWait to
// take the new config, and only then is the runner deleted: gitlab-runner
// never polls with a token already dead.
func TestRemovalWaitsForGitLabRunnerToReload(t *testing.T) {
	sim := gitlabsim.New(coretest.SimOptions())
	p := coretest.NewPrefix(t, "main")
	hup := filepath.Join(t.TempDir(), "hup")
	// A stand-in for gitlab-runner that notes each SIGHUP.
	runner := exec.Command("sh", "-c", `trap 'date +%s.%N >> "$0"' HUP; while :; do sleep 0.05; done`, hup)
	if err := runner.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = runner.Process.Kill(); _ = runner.Wait() })
	var mu sync.Mutex
	var atDelete struct {
		seen, configNamesIt, hupBefore bool
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodDelete && r.URL.Path == "/api/v4/runners" {
			mu.Lock()
			atDelete.seen = true
			atDelete.configNamesIt = strings.Contains(p.Config(), "main docker Runner")
			_, err := os.Stat(hup)
			atDelete.hupBefore = err == nil
			mu.Unlock()
		}
		sim.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.Template("", coretest.ClientConfig{URL: srv.URL, PAT: coretest.AdminPAT})
	p.Executor("a.toml", "url = \""+srv.URL+"\"\nexecutor = \"shell\"\n")
	p.Executor("docker.toml", "url = \""+srv.URL+"\"\nexecutor = \"docker\"\n")
	mustRun(t, p, nil)
	p.Remove("main/docker.toml")
	time.Sleep(100 * time.Millisecond) // the trap is set
	start := time.Now()
	mustRun(t, p, func(o *core.Options) { o.RunnerPID, o.ReloadWait = runner.Process.Pid, 300*time.Millisecond })
	mu.Lock()
	defer mu.Unlock()
	if !atDelete.seen || atDelete.configNamesIt || !atDelete.hupBefore {
		t.Fatalf("at the delete: sent %v, the config still named the runner %v, gitlab-runner signalled before %v",
			atDelete.seen, atDelete.configNamesIt, atDelete.hupBefore)
	}
	if time.Since(start) < 300*time.Millisecond {
		t.Fatal("the delete did not wait for gitlab-runner to take the new config")
	}
}

package scenarios

import (
	"net/http"
	"net/http/httptest"
	"slices"
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

// Whatever removes an executor — a reload (RunnerPID, systemd's
// $MAINPID), the Ansible module or the CLI by hand (no RunnerPID: the run
// finds the gitlab-runner running this config itself) — its runner leaves
// the config first, every gitlab-runner running that config is told
// (SIGHUP) and given ReloadWait to take it, and only then is the runner
// deleted: gitlab-runner never asks for jobs with a token already dead
// (403, "Checking for jobs... forbidden" in its log).
func TestRemovalWaitsForGitLabRunnerToReload(t *testing.T) {
	for _, tc := range []struct {
		name      string
		runnerPID bool
	}{{"reload with --runner-pid", true}, {"module or CLI, gitlab-runner found by its config", false}} {
		t.Run(tc.name, func(t *testing.T) {
			sim := gitlabsim.New(coretest.SimOptions())
			p := coretest.NewPrefix(t, "main")
			var mu sync.Mutex
			var atDelete struct {
				seen, configNamesIt, reloaded bool
			}
			var fake *coretest.FakeRunner
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodDelete && r.URL.Path == "/api/v4/runners" {
					mu.Lock()
					atDelete.seen = true
					atDelete.configNamesIt = strings.Contains(p.Config(), "main docker Runner")
					atDelete.reloaded = slices.Contains(fake.Log(), "reload")
					mu.Unlock()
				}
				sim.ServeHTTP(w, r)
			}))
			t.Cleanup(srv.Close)
			p.Template("", coretest.ClientConfig{URL: srv.URL, PAT: coretest.AdminPAT})
			p.Executor("a.toml", "url = \""+srv.URL+"\"\nexecutor = \"shell\"\n")
			p.Executor("docker.toml", "url = \""+srv.URL+"\"\nexecutor = \"docker\"\n")
			mustRun(t, p, nil)
			ids := map[string]int64{}
			for _, e := range p.Entries(t) {
				ids[strings.Fields(e.Name)[2]] = e.ID // "node12 main docker Runner"
			}
			fake = coretest.StartFakeRunner(t, p.ConfigPath())
			fake.WaitPolled(t, 0, ids["a"], ids["docker"])

			p.Remove("main/docker.toml")
			res := mustRun(t, p, func(o *core.Options) {
				if tc.runnerPID {
					o.RunnerPID = fake.PID
				}
			})
			// gitlab-runner asks for jobs again with the config it holds now.
			fake.WaitPolled(t, len(fake.Log()), ids["a"])
			mu.Lock()
			defer mu.Unlock()
			if !atDelete.seen || atDelete.configNamesIt || !atDelete.reloaded {
				t.Fatalf("at the delete: sent %v, the config still named the runner %v, gitlab-runner had taken the new config %v",
					atDelete.seen, atDelete.configNamesIt, atDelete.reloaded)
			}
			if r := fake.Refused(); len(r) > 0 {
				t.Fatalf("gitlab-runner asked for jobs with the deleted runner's token: %q", r)
			}
			if res.Reload == nil || !slices.Equal(res.Reload.PIDs, []int{fake.PID}) || res.Reload.Waited == "" || res.Reload.Refused != nil {
				t.Fatalf("result's reload %+v: want gitlab-runner (pid %d) signalled and waited for", res.Reload, fake.PID)
			}
			if _, ok := sim.Runner(ids["docker"]); ok {
				t.Fatal("the removed executor's runner is still in GitLab")
			}
		})
	}
}

// A run that removes nothing signals nobody and waits for nothing, and
// when no gitlab-runner runs the config (a start: ExecStartPre), a removal
// is made at once.
func TestNoReloadWithoutRemovalsOrRunner(t *testing.T) {
	sim := coretest.NewSim(t, coretest.SimOptions())
	p := coretest.NewPrefix(t, "main")
	p.Template("", coretest.ClientConfig{URL: sim.URL, PAT: coretest.AdminPAT})
	p.Executor("a.toml", "url = \""+sim.URL+"\"\nexecutor = \"shell\"\n")
	p.Executor("docker.toml", "url = \""+sim.URL+"\"\nexecutor = \"docker\"\n")
	mustRun(t, p, nil)
	fake := coretest.StartFakeRunner(t, p.ConfigPath())
	p.Executor("b.toml", "url = \""+sim.URL+"\"\nexecutor = \"shell\"\n")
	if res := mustRun(t, p, nil); res.Reload != nil || !res.ConfigChanged {
		t.Fatalf("a new executor: reload %+v, config changed %v; want no signal (gitlab-runner sees the new file by itself)", res.Reload, res.ConfigChanged)
	}
	fake.Stop()
	p.Remove("main/docker.toml")
	if res := mustRun(t, p, nil); res.Reload != nil {
		t.Fatalf("no gitlab-runner runs the config: reload %+v, want none", res.Reload)
	}
	if slices.Contains(fake.Log(), "reload") {
		t.Fatalf("the fake gitlab-runner was signalled: %q", fake.Log())
	}
}

package scenarios

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/engine"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/hostfs"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/plan"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/testkit/coretest"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/testkit/gitlabsim"
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
			fast := func(o *engine.Options) { o.Limits.RetryBudget, o.Limits.MaxAttempts = time.Second, 2 }
			res := mustRun(t, p, fast)
			if strings.Contains(p.Config(), "main docker Runner") {
				t.Fatalf("the removed executor's entry is still in the config:\n%s", p.Config())
			}
			var r *engine.RunnerResult
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
			if oc := run(t, p, both(fast, func(o *engine.Options) { o.Policy.CleanupFails = true })); oc.Err == nil {
				t.Fatal("CleanupFails: a removal GitLab did not confirm did not fail the run")
			}
			sim.ClearFaults()
			res = mustRun(t, p, both(fast, func(o *engine.Options) { o.Policy.CleanupFails = true }))
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
			res := mustRun(t, p, func(o *engine.Options) {
				if tc.runnerPID {
					o.Runner.PID = fake.PID
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

// writePending replaces the state file's pending removals (as someone
// with write access to the prefix could).
func writePending(t *testing.T, p *coretest.Prefix, pending ...hostfs.PendingRemoval) {
	t.Helper()
	st := readState(t, p)
	st.Pending = pending
	if err := os.WriteFile(hostfs.Layout{Prefix: p.Dir, Instance: p.Instance}.StatePath(), st.Encode(), 0o600); err != nil {
		t.Fatal(err)
	}
}

// A host deletes only what it can prove its own, even from its own state
// file: a pending removal is made with the runner's token, or — its token
// dead — by id once a read by id shows the description it recorded and a
// manager with this host's system id. A removal without that proof (an
// id written into the state file: another team's runner) deletes nothing
// and names the runner.
func TestPendingRemovalNeedsItsProof(t *testing.T) {
	sim, p := standard(t)
	mustRun(t, p, nil)
	sysID := strings.TrimSpace(string(mustRead(t, filepath.Join(p.Dir, ".runner_system_id"))))
	// Another team's runner: no manager seen lately (its host is off).
	other := sim.AddRunner(gitlabsim.Runner{Description: "team-b build Runner", TagList: []string{"team-b"}})
	mine := sim.AddRunner(gitlabsim.Runner{Description: host + " main old Runner", Managers: map[string]gitlabsim.Manager{sysID: {}}})
	mineToken, _ := sim.Runner(mine)
	url := sim.URL

	for _, tc := range []struct {
		name    string
		pending hostfs.PendingRemoval
		deleted bool
	}{
		{"an id alone: another team's runner", hostfs.PendingRemoval{Action: "delete", URL: url, ID: other}, false},
		{"another runner's description recorded", hostfs.PendingRemoval{Action: "delete", URL: url, ID: other, SystemID: sysID, Description: "team-b build Runner"}, false},
		{"a dead token", hostfs.PendingRemoval{Action: "delete", URL: url, ID: other, Token: "glrt-t1_deadDEADdeadDEADdead"}, false},
		{"this host's runner, its description and system id recorded", hostfs.PendingRemoval{Action: "delete", URL: url, ID: mine, SystemID: sysID, Description: host + " main old Runner"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := tc.pending.ID
			writePending(t, p, tc.pending)
			oc := run(t, p, nil)
			if oc.Err != nil {
				t.Fatalf("run failed: %v", oc.Err)
			}
			if _, there := sim.Runner(id); there == tc.deleted {
				t.Fatalf("runner %d still in GitLab: %v, want deleted %v; runners %+v; requests %v", id, there, tc.deleted, oc.Res.Runners, sim.Requests())
			}
			if !tc.deleted {
				named := false
				for _, l := range oc.Res.LeftBehind {
					named = named || l.ID == id
				}
				if !named {
					t.Fatalf("left_behind %+v: want runner %d named", oc.Res.LeftBehind, id)
				}
			}
			if st := readState(t, p); len(st.Pending) != 0 {
				t.Fatalf("pending %+v: the removal was decided, it must not stay", st.Pending)
			}
		})
	}
	// The runner's own token proves it, whatever else is recorded.
	again := sim.AddRunner(gitlabsim.Runner{Description: host + " main old Runner", Token: mineToken.Token + "x"})
	tok, _ := sim.Runner(again)
	writePending(t, p, hostfs.PendingRemoval{Action: "delete", URL: url, ID: again, Token: tok.Token})
	mustRun(t, p, nil)
	if _, there := sim.Runner(again); there {
		t.Fatal("a pending removal with the runner's token was not made")
	}
}

// A removal this host records carries its proof: the runner's token, this
// host's system id and the runner's description.
func TestPendingRemovalIsRecordedWithItsProof(t *testing.T) {
	sim, p := standard(t)
	mustRun(t, p, nil)
	docker := runnerID(t, sim, "docker")
	p.Remove("main/docker.yaml")
	sim.InjectFault(gitlabsim.Fault{Kind: "delete-token", Type: gitlabsim.FaultStatus, Status: 502, Times: -1})
	mustRun(t, p, func(o *engine.Options) { o.Limits.RetryBudget, o.Limits.MaxAttempts = time.Second, 2 })
	st := readState(t, p)
	sysID := strings.TrimSpace(string(mustRead(t, filepath.Join(p.Dir, ".runner_system_id"))))
	if len(st.Pending) != 1 || st.Pending[0].ID != docker || st.Pending[0].Token == "" || st.Pending[0].SystemID != sysID ||
		st.Pending[0].Description != host+" main docker Runner" {
		t.Fatalf("pending %+v: want docker's removal with its token, system id %s and description", st.Pending, sysID)
	}
	// Its token dies meanwhile: the recorded proof, borne out by GitLab,
	// still lets the removal be made (by id).
	sim.ClearFaults()
	sim.RevokeToken(docker)
	mustRun(t, p, nil)
	if _, there := sim.Runner(docker); there {
		t.Fatal("the pending removal, proven by id, was not made")
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A removal of an entry whose token works takes two passes: the first
// writes the config without it, the second deletes the runner. Check mode
// shows the first pass and says what the second would do; the run's
// result reports the removal once, with the second pass's outcome, and a
// steady state is one pass.
func TestRemovalTakesASecondPass(t *testing.T) {
	sim, p := standard(t)
	if res := mustRun(t, p, nil); res.Passes != 1 || res.NextPass != "" {
		t.Fatalf("first run: %d passes, next pass %q; want one pass and none left", res.Passes, res.NextPass)
	}
	id := ids(sim)["gpu"]
	p.Remove("main/gpu.yml")
	chk := mustCheck(t, sim, p, nil)
	if !strings.Contains(chk.NextPass, fmt.Sprint(id)) || chk.Passes != 0 {
		t.Fatalf("check: next pass %q, passes %d; want the second pass to name runner %d and no pass made", chk.NextPass, chk.Passes, id)
	}
	res := mustRun(t, p, nil)
	var removals []engine.RunnerResult
	for _, r := range res.Runners {
		if r.Action == plan.Delete {
			removals = append(removals, r)
		}
	}
	if res.Passes != 2 || len(removals) != 1 || removals[0].ID != id || removals[0].Deferred || removals[0].Pending || removals[0].Error != "" {
		t.Fatalf("run: %d passes, removals %+v; want two passes and runner %d deleted, reported once", res.Passes, removals, id)
	}
	if _, ok := sim.Runner(id); ok {
		t.Fatal("the runner is still in GitLab")
	}
	if res := mustRun(t, p, nil); res.Passes != 1 {
		t.Fatalf("steady state: %d passes, want 1", res.Passes)
	}
}

// A later pass decides everything again: a create that failed in pass one
// and succeeded in pass two is no failure of the run, and its executor is
// not reported skipped.
func TestFailureAPassTwoMendsIsNoFailure(t *testing.T) {
	sim, p := standard(t)
	mustRun(t, p, nil)
	gpu := ids(sim)["gpu"]
	// gpu's executor is renamed: its runner goes (a second pass deletes
	// it), and the new one's create fails once.
	p.Remove("main/gpu.yml")
	p.Executor("cuda.toml", "url = \""+sim.URL+"\"\nexecutor = \"custom\"\n[custom]\n  run_exec = \"/opt/run.sh\"\n")
	sim.InjectFault(gitlabsim.Fault{Kind: "create", Type: gitlabsim.FaultStatus, Status: 502})
	// (A create GitLab answered 502 may have been carried out: a third
	// pass looks for a late duplicate.)
	res := mustRun(t, p, nil)
	if res.Passes < 2 || len(res.Skipped) != 0 {
		t.Fatalf("%d passes, skipped %+v; want two passes or more and nothing skipped", res.Passes, res.Skipped)
	}
	for _, r := range res.Runners {
		if r.Error != "" {
			t.Fatalf("runner %s reported failed (%s) although a later pass made it", r.Name, r.Error)
		}
	}
	var cuda bool
	for _, r := range sim.Runners() {
		cuda = cuda || r.Description == host+" main cuda Runner"
	}
	if _, ok := sim.Runner(gpu); ok || !cuda {
		t.Fatalf("GitLab holds %+v: want gpu's runner deleted and cuda's created", sim.Runners())
	}
}

// A run stopped part way (its time bound) reports nothing it did not do,
// wherever it stopped: a runner reported deleted is gone, one reported
// created exists; and the next run leaves GitLab holding exactly what the
// config names.
func TestStoppedRunReportsNothingItDidNotDo(t *testing.T) {
	for _, bound := range []time.Duration{30 * time.Millisecond, 90 * time.Millisecond, 150 * time.Millisecond, 250 * time.Millisecond} {
		sim, p := standard(t)
		mustRun(t, p, nil)
		p.Remove("main/gpu.yml")
		for _, n := range []string{"x", "y", "z"} {
			p.Executor(n+".toml", "url = \""+sim.URL+"\"\nexecutor = \"shell\"\n")
		}
		sim.SetLatency(20 * time.Millisecond)
		oc := run(t, p, func(o *engine.Options) { o.Limits.Timeout, o.Limits.Concurrency = bound, 1 })
		sim.SetLatency(0)
		if oc.Res != nil {
			for _, r := range oc.Res.Runners {
				_, exists := sim.Runner(r.ID)
				switch {
				case r.Error != "" || r.Deferred || r.Pending:
				case r.Action == plan.Delete && exists:
					t.Fatalf("bound %v: runner %d reported deleted is in GitLab", bound, r.ID)
				case r.Action == plan.Create && !exists:
					t.Fatalf("bound %v: runner %s reported created (id %d) is not in GitLab", bound, r.Name, r.ID)
				}
			}
		}
		mustRun(t, p, nil)
		got := map[int64]bool{}
		for _, e := range p.Entries(t) {
			got[e.ID] = true
		}
		if len(got) != 5 || len(sim.Runners()) != 5 {
			var names []string
			for _, e := range p.Entries(t) {
				names = append(names, fmt.Sprintf("%s=%d", e.Name, e.ID))
			}
			t.Fatalf("bound %v: the config names %d runners (%v), GitLab holds %d (%v); want 5 and 5", bound, len(got), names, len(sim.Runners()), ids(sim))
		}
		for _, r := range sim.Runners() {
			if !got[r.ID] {
				t.Fatalf("bound %v: runner %d (%s) is in GitLab and in no config", bound, r.ID, r.Description)
			}
		}
	}
}

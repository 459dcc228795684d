package scenarios

import (
	"strings"
	"testing"
	"time"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/engine"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/hostfs"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/plan"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/testkit/coretest"
)

// An executor moves from an old GitLab (now shut down) to a new one.
func TestDecommissionedGitLabDoesNotBlockStarts(t *testing.T) {
	simA := coretest.NewSim(t, coretest.SimOptions())
	simB := coretest.NewSim(t, coretest.SimOptions())
	p := coretest.NewPrefix(t, "main")
	p.Template("", coretest.ClientConfig{URL: simA.URL, PAT: coretest.AdminPAT})
	p.Executor("shell.toml", "url = \""+simA.URL+"\"\n")
	mustRun(t, p, nil)
	// Old GitLab decommissioned: its URL is now dead.
	p.Write("config.main.toml", strings.ReplaceAll(p.Config(), simA.URL, "http://127.0.0.1:9"))
	p.Template("", coretest.ClientConfig{URL: simB.URL, PAT: coretest.AdminPAT})
	p.Executor("shell.toml", "url = \""+simB.URL+"\"\n")
	fast := func(o *engine.Options) { o.Limits.RetryBudget = 500 * time.Millisecond; o.Limits.MaxAttempts = 2 }
	oc := run(t, p, fast)
	if oc.Err != nil {
		t.Fatalf("the run fails (ExecStartPre exits 1: gitlab-runner never starts) although the new GitLab's runner is registered: %v", oc.Err)
	}
	if len(simB.Runners()) != 1 {
		t.Fatalf("%d runners on the new GitLab, want 1", len(simB.Runners()))
	}
	// The old runner's delete failed, told as a warning naming the old
	// GitLab, and did not fail the run.
	var old *engine.RunnerResult
	for i, r := range oc.Res.Runners {
		if r.URL == "http://127.0.0.1:9" {
			old = &oc.Res.Runners[i]
		}
	}
	if old == nil || old.Action != plan.Delete || old.Error == "" || !warned(oc.Res, "127.0.0.1:9") {
		t.Fatalf("runners %+v, warnings %q: want the old runner's delete failed, with a warning", oc.Res.Runners, oc.Res.Warnings)
	}
	// The old entry has left the config (gitlab-runner no longer runs a
	// removed executor); its removal is pending in the state file, retried
	// by every run, and fails the run where removals must succeed.
	if strings.Contains(p.Config(), "127.0.0.1:9") {
		t.Fatal("the removed executor's entry is still in the config: gitlab-runner keeps running it")
	}
	if !old.Pending {
		t.Errorf("the old runner's delete is not reported pending: %+v", old)
	}
	st := readState(t, p)
	if len(st.Pending) != 1 || st.Pending[0].URL != "http://127.0.0.1:9" || st.Pending[0].Token == "" {
		t.Fatalf("pending removals %+v, want the old runner with its token", st.Pending)
	}
	oc = run(t, p, both(fast, func(o *engine.Options) { o.Policy.CleanupFails = true }))
	if oc.Err == nil {
		t.Fatal("a removal GitLab does not confirm does not fail the run with CleanupFails")
	}
	if st := readState(t, p); len(st.Pending) != 1 || st.Pending[0].LastError == "" {
		t.Fatalf("after a retry, pending %+v, want the removal still pending with GitLab's last answer", st.Pending)
	}
}

func readState(t *testing.T, p *coretest.Prefix) *hostfs.State {
	t.Helper()
	st, _, err := hostfs.ReadState(hostfs.Layout{Prefix: p.Dir, Instance: p.Instance})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

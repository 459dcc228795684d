package scenarios

import (
	"strings"
	"testing"
	"time"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/core"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/coretest"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/plan"
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
	fast := func(o *core.Options) { o.RetryBudget = 500 * time.Millisecond; o.MaxAttempts = 2 }
	oc := run(t, p, fast)
	if oc.Err != nil {
		t.Fatalf("the run fails (ExecStartPre exits 1: gitlab-runner never starts) although the new GitLab's runner is registered: %v", oc.Err)
	}
	if len(simB.Runners()) != 1 {
		t.Fatalf("%d runners on the new GitLab, want 1", len(simB.Runners()))
	}
	// The old runner's delete failed, told as a warning naming the old
	// GitLab, and did not fail the run.
	var old *core.RunnerResult
	for i, r := range oc.Res.Runners {
		if r.URL == "http://127.0.0.1:9" {
			old = &oc.Res.Runners[i]
		}
	}
	if old == nil || old.Action != plan.Delete || old.Error == "" || !warned(oc.Res, "127.0.0.1:9") {
		t.Fatalf("runners %+v, warnings %q: want the old runner's delete failed, with a warning", oc.Res.Runners, oc.Res.Warnings)
	}
	// The old entry stays until its GitLab answers; strict mode fails.
	if !strings.Contains(p.Config(), "127.0.0.1:9") {
		t.Fatal("the old runner's entry (and token) was dropped")
	}
	if oc := run(t, p, both(fast, func(o *core.Options) { o.Strict = true })); oc.Err == nil {
		t.Fatal("strict mode does not fail")
	}
}

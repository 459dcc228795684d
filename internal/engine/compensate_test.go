package engine_test

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/engine"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/plan"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/testkit/coretest"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/testkit/gitlabsim"
)

// A config write that fails after runners were created (the space was
// reserved, then an I/O error): the runners this run created are deleted
// again with their own tokens, the marker stays, and a later run ends
// with GitLab holding exactly what the config names. Also when the
// verify after create failed, so GitLab recorded no manager for them.
func TestFailedConfigWriteLeaksNoRunner(t *testing.T) {
	for _, verifyFails := range []bool{false, true} {
		sim := coretest.NewSim(t, coretest.SimOptions())
		p := coretest.NewPrefix(t, "main")
		p.Template("", coretest.ClientConfig{URL: sim.URL, PAT: coretest.AdminPAT})
		for _, n := range []string{"a", "b", "c"} {
			p.Executor(n+".toml", "url = \""+sim.URL+"\"\nexecutor = \"shell\"\n")
		}
		o := engine.Options{Prefix: p.Dir, Instance: "main", Hostname: "node3", Limits: engine.Limits{Concurrency: 4, Request: coretest.Patient.Request, RetryBudget: time.Second, MaxAttempts: 2, Lock: coretest.Patient.Lock}}
		if verifyFails {
			sim.InjectFault(gitlabsim.Fault{Kind: "verify", Type: gitlabsim.FaultStatus, Status: 500, Times: -1})
		}
		restore := engine.FailConfigWrites(syscall.EIO)
		for run := 0; run < 3; run++ {
			oc := coretest.Run(t, context.Background(), o)
			if oc.Err == nil {
				t.Fatalf("verify fails %v, run %d: a failed config write did not fail the run", verifyFails, run)
			}
			if n := len(sim.Runners()); n != 0 {
				t.Fatalf("verify fails %v, run %d: GitLab holds %d runners after a run that could not write their tokens", verifyFails, run, n)
			}
			if _, err := os.Stat(filepath.Join(p.Dir, ".gitlab-runner-auth.main.incomplete")); err != nil {
				t.Fatalf("verify fails %v, run %d: the marker is gone although GitLab and the disk disagreed: %v", verifyFails, run, err)
			}
		}
		restore()
		sim.ClearFaults()
		if oc := coretest.Run(t, context.Background(), o); oc.Err != nil {
			t.Fatal(oc.Err)
		}
		if n := len(sim.Runners()); n != 3 || len(p.Entries(t)) != 3 {
			t.Fatalf("verify fails %v: GitLab holds %d runners, the config %d, want 3 and 3", verifyFails, n, len(p.Entries(t)))
		}
	}
}

// A state file that cannot be written keeps the entries that were to
// leave the config: a removal is recorded before its entry leaves, so
// none is made, and none is reported made (nor pending, nor left to a
// next pass); a later run makes them.
func TestFailedStateWriteKeepsTheEntriesToRemove(t *testing.T) {
	sim := coretest.NewSim(t, coretest.SimOptions())
	p := coretest.NewPrefix(t, "main")
	p.Template("", coretest.ClientConfig{URL: sim.URL, PAT: coretest.AdminPAT})
	for _, n := range []string{"a", "b"} {
		p.Executor(n+".toml", "url = \""+sim.URL+"\"\nexecutor = \"shell\"\n")
	}
	o := engine.Options{Prefix: p.Dir, Instance: "main", Hostname: "node3", Limits: engine.Limits{Concurrency: 4, Request: coretest.Patient.Request, Lock: coretest.Patient.Lock}}
	if oc := coretest.Run(t, context.Background(), o); oc.Err != nil {
		t.Fatal(oc.Err)
	}
	p.Remove("main/b.toml")
	restore := engine.FailStateWrites(syscall.EIO)
	oc := coretest.Run(t, context.Background(), o)
	restore()
	if n := len(sim.Runners()); n != 2 || len(p.Entries(t)) != 2 {
		t.Fatalf("GitLab holds %d runners, the config %d; want both kept", n, len(p.Entries(t)))
	}
	var b *engine.RunnerResult
	for i, r := range oc.Res.Runners {
		if r.Action == plan.Delete {
			b = &oc.Res.Runners[i]
		}
	}
	if b == nil || b.Error == "" || b.Pending || b.Deferred || oc.Res.Passes != 1 || len(oc.Res.Warnings) == 0 {
		t.Fatalf("runners %+v (passes %d, warnings %q): want b's delete failed, neither pending nor deferred, in one pass, and a warning", oc.Res.Runners, oc.Res.Passes, oc.Res.Warnings)
	}
	if oc = coretest.Run(t, context.Background(), o); oc.Err != nil || len(sim.Runners()) != 1 || len(p.Entries(t)) != 1 {
		t.Fatalf("the run after: %v; GitLab holds %d runners, the config %d, want 1 and 1", oc.Err, len(sim.Runners()), len(p.Entries(t)))
	}
}

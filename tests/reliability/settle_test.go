package reliability

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/config"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/plan"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/testkit/gitlabsim"
)

// TestLateRequestsOfAKilledRunAreSettled makes GitLab finish, during the
// next run, what a killed run had asked for: a create of the same executor
// (would be a duplicate) and a token reset of a runner being adopted (would
// leave a dead token in the config). The run notices both.
func TestLateRequestsOfAKilledRunAreSettled(t *testing.T) {
	w := baseline(t)
	// As a killed run leaves it.
	w.p.Write(".gitlab-runner-auth.main.incomplete", "pid 1\n")
	var once1, once2 sync.Once
	bID := w.id(t, "b")
	w.sim.OnRequest("create", false, func(gitlabsim.Entry) {
		once1.Do(func() {
			w.sim.AddRunner(gitlabsim.Runner{Description: config.DefaultDescription(hostname, "main", "e"),
				TagList: []string{hostname, "main", "shell"}})
		})
	})
	w.sim.OnRequest("reset", true, func(gitlabsim.Entry) {
		once2.Do(func() { w.sim.RevokeToken(bID) })
	})
	res, err := w.sync(t, context.Background())
	if err != nil {
		t.Fatalf("sync: %v", err)
	}
	w.converged(t, declared)
	deleted := false
	for _, r := range res.Runners {
		if r.Action == plan.Delete && r.Name == "e" {
			deleted = true
		}
	}
	if !deleted {
		t.Fatalf("the late duplicate of e was not reported as deleted: %+v", res.Runners)
	}
	if c := w.sim.Counts(); c["reset"] != 2 {
		t.Fatalf("want the adopted token reset again after the late reset, got %v", c)
	}
	if _, err := os.Stat(filepath.Join(w.p.Dir, ".gitlab-runner-auth.main.incomplete")); !os.IsNotExist(err) {
		t.Fatal("a clean run must remove the marker")
	}
	// After a clean run there is nothing to settle: no extra list request.
	w.p.Executor("f.toml", executorFile(w.sim.URL, "f", ""))
	w.sim.ResetLog()
	if _, err := w.sync(t, context.Background()); err != nil {
		t.Fatal(err)
	}
	if c := w.sim.Counts(); c["list"] != 1 || c["create"] != 1 {
		t.Fatalf("a run after a clean one must not settle: %v", c)
	}
}

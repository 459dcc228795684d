package gitlabrules

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/engine"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/testkit/coretest"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/testkit/gitlabsim"
)

// A failure that persists (here: an old runner on a GitLab that is gone)
// keeps the .incomplete marker, so every later run treats any runner with
// this host's name and no manager as its own.
func TestAFailedRunLeavesNoMarkerThatWidensOwnership(t *testing.T) {
	sim := coretest.NewSim(t, coretest.SimOptions())
	h := newHost(t, "node12", sysA)
	h.p.Template("", coretest.ClientConfig{URL: sim.URL, PAT: coretest.AdminPAT})
	h.p.Executor("shell.toml", "url = \""+sim.URL+"\"\n")
	h.mustRun()
	cfg, _ := os.ReadFile(h.p.ConfigPath())
	cfg = append(cfg, []byte("\n[[runners]]\n  name = \"node12 main gone Runner\"\n  url = \"http://127.0.0.1:9\"\n  id = 5\n  token = \"glrt-deadGitLabToken000000\"\n  executor = \"shell\"\n")...)
	h.p.Write("config.main.toml", string(cfg))
	if _, err := h.run(func(o *engine.Options) { o.Policy.CleanupFails = true }); err == nil {
		t.Fatal("want the delete on the dead GitLab to fail")
	}
	if _, err := os.Stat(filepath.Join(h.p.Dir, ".gitlab-runner-auth.main.incomplete")); err == nil {
		t.Fatal("a run that failed without a create or reset in doubt left its marker")
	}
	// Another host named node12 (other cluster) has a runner it has not used
	// for a while (GitLab dropped its stale managers), or has just created.
	stray := sim.AddRunner(gitlabsim.Runner{Description: "node12 main old Runner", TagList: []string{"node12", "main"}})
	h.run(func(o *engine.Options) { o.Refresh = true })
	if _, ok := sim.Runner(stray); !ok {
		t.Errorf("runner %d (no manager, not provably this host's) was deleted", stray)
	}
}

// Token revoked; GitLab answers 500 to the read of the runner's managers
// (after retries): ownership is unknown, yet the run registers a new runner.
func TestUnreadableRunnerIsNeverReplaced(t *testing.T) {
	sim := coretest.NewSim(t, coretest.SimOptions())
	h := newHost(t, "node12", sysA)
	h.p.Template("", coretest.ClientConfig{URL: sim.URL, PAT: coretest.AdminPAT})
	h.p.Executor("shell.toml", "url = \""+sim.URL+"\"\n")
	h.mustRun()
	id := sim.Runners()[0].ID
	sim.RevokeToken(id)
	sim.InjectFault(gitlabsim.Fault{Kind: "managers", Type: gitlabsim.FaultStatus, Status: 500, Times: 100})
	res, err := h.run()
	if !failedAlone(res, err, "shell") {
		t.Errorf("got %v, want the run to fail for the runner it could not read", err)
	}
	if n := len(sim.Runners()); n != 1 {
		t.Errorf("%d runners in GitLab after a 5xx on a read: a duplicate was registered (spec 4.2.2: any other failure fails the run)", n)
	}
}

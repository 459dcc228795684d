package scenarios

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/config"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/engine"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/plan"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/testkit/coretest"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/testkit/gitlabsim"
)

// A service start serves what can be served; --strict is all or nothing.
func serve(o *engine.Options)  { o.Policy = plan.Policy{Serve: true} }
func strict(o *engine.Options) { o.Policy = plan.Policy{Strict: true, CleanupFails: true} }

// downHost registers two executors against a GitLab the test can then
// take down (connection refused).
func downHost(t *testing.T) (*coretest.Sim, *coretest.Prefix) {
	t.Helper()
	sim := coretest.NewSim(t, coretest.SimOptions())
	p := coretest.NewPrefix(t, "main")
	p.Template("", coretest.ClientConfig{URL: sim.URL, PAT: coretest.AdminPAT})
	p.Executor("shell.toml", "url = \""+sim.URL+"\"\n")
	p.Executor("docker.toml", "url = \""+sim.URL+"\"\nexecutor = \"docker\"\n[docker]\n  image = \"alpine\"\n")
	mustRun(t, p, serve)
	return sim, p
}

// skippedReasons are the executors a result says were not served, with why.
func skippedReasons(res *engine.Result) map[string]string {
	out := map[string]string{}
	if res != nil {
		for _, s := range res.Skipped {
			out[s.Name] = s.Reason
		}
	}
	return out
}

// GitLab down, every executor has its token on disk: gitlab-runner starts
// with them (a degraded start), the config untouched; --strict fails.
func TestGitLabDownWithEveryTokenOnDiskStartsDegraded(t *testing.T) {
	sim, p := downHost(t)
	before := coretest.Snapshot(t, p.ConfigPath())
	sim.Down()

	res := mustRun(t, p, serve)
	if !res.Degraded || len(res.Runners) != 2 || res.Runners[0].Action != plan.Keep || res.Runners[0].ID == 0 || len(res.Warnings) != 1 {
		t.Fatalf("result %+v: want a degraded start keeping both runners, with one warning", res)
	}
	after := coretest.Snapshot(t, p.ConfigPath())
	if !bytes.Equal(before.Data, after.Data) || !before.MTime.Equal(after.MTime) {
		t.Fatal("a degraded start rewrote the config")
	}
	oc := run(t, p, strict)
	if oc.Err == nil || (oc.Res != nil && (oc.Res.Degraded || len(oc.Res.Runners) != 0)) {
		t.Fatalf("strict: %+v, %v: want a failure, not a degraded start", oc.Res, oc.Err)
	}
}

func TestGitLabFailingWith5xxStartsDegraded(t *testing.T) {
	sim, p := downHost(t)
	sim.InjectFault(gitlabsim.Fault{Type: gitlabsim.FaultStatus, Status: 502, Times: -1})
	if res := mustRun(t, p, serve); !res.Degraded || len(res.Warnings) == 0 {
		t.Fatalf("result %+v: want a degraded start, with a warning", res)
	}
}

// GitLab down and something needs it: the executors that can start do
// (a degraded start), the one that needs GitLab is skipped and named; a
// runner to delete leaves the config, its removal pending. Strict fails
// instead, naming the executor that needs GitLab; and when nothing at all
// can start (the config was lost), the run fails.
func TestGitLabDownServesWhatItCan(t *testing.T) {
	for _, tc := range []struct {
		name    string
		setup   func(p *coretest.Prefix, url string)
		skipped map[string]string
		pending bool
		fails   bool
	}{
		{"a new executor must be created", func(p *coretest.Prefix, url string) {
			p.Executor("extra.toml", "url = \""+url+"\"\nexecutor = \"shell\"\n")
		}, map[string]string{"extra": config.SkipLate}, false, false},
		{"an executor was removed and its runner must be deleted", func(p *coretest.Prefix, _ string) {
			p.Remove("main/docker.toml")
		}, map[string]string{}, true, false},
		{"the config was lost", func(p *coretest.Prefix, _ string) {
			if err := os.Remove(p.ConfigPath()); err != nil {
				panic(err)
			}
		}, map[string]string{"docker": config.SkipLate, "shell": config.SkipLate}, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sim, p := downHost(t)
			sim.Down()
			tc.setup(p, sim.URL)
			oc := run(t, p, strict)
			if oc.Err == nil || (oc.Res != nil && oc.Res.Degraded) {
				t.Fatalf("strict started degraded although GitLab is needed: %+v", oc.Res)
			}
			for name := range tc.skipped {
				if skippedReasons(oc.Res)[name] != config.SkipLate {
					t.Errorf("strict: the failure does not name %s as needing GitLab: %+v", name, oc.Res)
				}
			}
			oc = run(t, p, serve)
			if tc.fails {
				if oc.Err == nil || len(skippedReasons(oc.Res)) != len(tc.skipped) {
					t.Fatalf("result %+v, %v: want a failure naming %v", oc.Res, oc.Err, tc.skipped)
				}
				return
			}
			if oc.Err != nil || !oc.Res.Degraded || len(oc.Res.Skipped) != len(tc.skipped) {
				t.Fatalf("result %+v, %v: want a degraded start skipping %v", oc.Res, oc.Err, tc.skipped)
			}
			for name, why := range tc.skipped {
				if skippedReasons(oc.Res)[name] != why {
					t.Errorf("skipped %+v, want %s: %s", oc.Res.Skipped, name, why)
				}
			}
			if strings.Contains(p.Config(), "main docker Runner") == tc.pending {
				t.Errorf("docker's entry in the config: %v, want %v\n%s", !tc.pending, !tc.pending, p.Config())
			}
			var pending bool
			for _, rr := range oc.Res.Runners {
				pending = pending || rr.Pending
			}
			if pending != tc.pending {
				t.Errorf("a removal reported pending: %v, want %v: %+v", pending, tc.pending, oc.Res.Runners)
			}
			if !strings.Contains(p.Config(), "main shell Runner") {
				t.Error("shell's entry is gone: a working executor was taken offline")
			}
		})
	}
}

func TestRejectedTokenIsNeverKeptDegraded(t *testing.T) {
	sim, p := downHost(t)
	// One token is revoked; the lookup that would heal it finds GitLab failing.
	var revoked string
	for _, r := range sim.Runners() {
		if strings.Contains(r.Description, "shell") {
			revoked = r.Token
			sim.RevokeToken(r.ID)
		}
	}
	sim.InjectFault(gitlabsim.Fault{Method: "GET", Type: gitlabsim.FaultStatus, Status: 503, Times: -1})
	if oc := run(t, p, strict); oc.Err == nil || (oc.Res != nil && oc.Res.Degraded) {
		t.Fatalf("kept a rejected token in a degraded start: %+v", oc.Res)
	}
	// Serving what can be served, docker starts; shell is skipped and its
	// dead token leaves the config (the state file still names its runner).
	res := mustRun(t, p, serve)
	if !res.Degraded || skippedReasons(res)["shell"] != config.SkipLate || len(res.Skipped) != 1 || res.Skipped[0].Kept {
		t.Fatalf("result %+v, want docker started and shell skipped, its entry not kept", res)
	}
	if strings.Contains(p.Config(), revoked) {
		t.Fatal("the rejected token is still in the config")
	}
}

package scenarios

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/engine"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/input"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/plan"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/testkit/coretest"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/testkit/gitlabsim"
)

// A world is a host and its GitLab brought into some state before the
// check and the run under test.
type world struct {
	name  string
	setup func(t *testing.T, sim *coretest.Sim, p *coretest.Prefix)
	pat   string // the client's PAT ("" keeps the admin's)
}

// synced runs a real sync first, then edit changes the world.
func synced(edit func(t *testing.T, sim *coretest.Sim, p *coretest.Prefix)) func(*testing.T, *coretest.Sim, *coretest.Prefix) {
	return func(t *testing.T, sim *coretest.Sim, p *coretest.Prefix) {
		t.Helper()
		mustRun(t, p, nil)
		if edit != nil {
			edit(t, sim, p)
		}
	}
}

func runnerID(t *testing.T, sim *coretest.Sim, name string) int64 {
	t.Helper()
	id, ok := ids(sim)[name]
	if !ok {
		t.Fatalf("no runner for %s in %+v", name, sim.Runners())
	}
	return id
}

var worlds = []world{
	{name: "fresh host", setup: func(*testing.T, *coretest.Sim, *coretest.Prefix) {}},
	{name: "fresh host, PAT may only create", pat: coretest.CreateOnlyPAT, setup: func(*testing.T, *coretest.Sim, *coretest.Prefix) {}},
	{name: "fresh host, PAT may only read", pat: coretest.ReadOnlyPAT, setup: func(*testing.T, *coretest.Sim, *coretest.Prefix) {}},
	{name: "steady state", setup: synced(nil)},
	{name: "lost config", setup: synced(func(t *testing.T, _ *coretest.Sim, p *coretest.Prefix) { p.Remove("config.main.toml") })},
	{name: "lost config and state", setup: synced(func(t *testing.T, _ *coretest.Sim, p *coretest.Prefix) {
		p.Remove("config.main.toml")
		p.Remove(".gitlab-runner-auth.main.json")
	})},
	{name: "rejected token", setup: synced(func(t *testing.T, sim *coretest.Sim, _ *coretest.Prefix) {
		sim.RevokeToken(runnerID(t, sim, "shell"))
	})},
	{name: "runner deleted in GitLab", setup: synced(func(t *testing.T, sim *coretest.Sim, _ *coretest.Prefix) {
		sim.DeleteRunner(runnerID(t, sim, "docker"))
	})},
	{name: "removed executor", setup: synced(func(t *testing.T, _ *coretest.Sim, p *coretest.Prefix) { p.Remove("main/gpu.yml") })},
	{name: "changed settings", setup: synced(func(t *testing.T, sim *coretest.Sim, p *coretest.Prefix) {
		p.Executor("shell.toml", "url = \""+sim.URL+"\"\nexecutor = \"shell\"\ntags = [\"slow\"]\n")
	})},
	{name: "added executor", setup: synced(func(t *testing.T, sim *coretest.Sim, p *coretest.Prefix) {
		p.Executor("extra.toml", "url = \""+sim.URL+"\"\nexecutor = \"shell\"\n")
	})},
	{name: "rejected token, PAT may only create", pat: coretest.CreateOnlyPAT, setup: synced(func(t *testing.T, sim *coretest.Sim, _ *coretest.Prefix) {
		sim.RevokeToken(runnerID(t, sim, "shell"))
	})},
	{name: "lost config, PAT may only read", pat: coretest.ReadOnlyPAT, setup: synced(func(t *testing.T, _ *coretest.Sim, p *coretest.Prefix) {
		p.Remove("config.main.toml")
	})},
	{name: "invalid executor file", setup: synced(func(t *testing.T, sim *coretest.Sim, p *coretest.Prefix) {
		p.Executor("shell.toml", "url = \""+sim.URL+"\"\nexecutor = [\n")
	})},
}

// A policy is what failures do in both the check and the run: the
// default, --strict, and a service start's (serve what can be served).
var policies = []struct {
	name string
	set  func(*plan.Policy)
}{
	{"default", func(*plan.Policy) {}},
	{"strict", func(p *plan.Policy) { p.Strict = true }},
	{"serve", func(p *plan.Policy) { p.Serve = true }},
}

// A trouble is how GitLab misbehaves during both the check and the run.
type trouble struct {
	name  string
	fault *gitlabsim.Fault
	// readOnly: the fault hits only requests a check also makes, so the
	// check can foresee all of it.
	readOnly bool
	// describesToken: the fault hits GET /personal_access_tokens/self, so
	// neither the check nor the run learns what a new token may do: what
	// GitLab then refuses a weak token cannot be foreseen.
	describesToken bool
}

func troubles() []trouble {
	out := []trouble{{name: "no fault", readOnly: true}}
	out = append(out, trouble{name: "GitLab down", fault: &gitlabsim.Fault{Type: gitlabsim.FaultDrop, Times: -1}, readOnly: true})
	kinds := []struct {
		kind     string
		readOnly bool
	}{
		{"verify", true}, {"list", true}, {"get", true}, {"managers", true}, {"pat-self", true},
		{"create", false}, {"reset", false}, {"update", false}, {"delete-id", false}, {"delete-token", false},
	}
	for _, k := range kinds {
		for _, st := range []int{500, 403, 404, 400} {
			out = append(out, trouble{name: fmt.Sprintf("%d on %s", st, k.kind), readOnly: k.readOnly, describesToken: k.kind == "pat-self",
				fault: &gitlabsim.Fault{Kind: k.kind, Type: gitlabsim.FaultStatus, Status: st, Times: -1}})
		}
	}
	return out
}

// planned is what a check says, or a run did, for one runner.
type planned struct {
	Name     string
	Action   plan.Action
	ID       int64 // 0 for a runner not created yet
	Executor string
	Failed   bool
}

// summary is the part of a result the check must predict.
type summary struct {
	Runners []planned
	Changed bool
	Exit    int
}

func summarize(oc coretest.Outcome, forCheck bool) summary {
	s := summary{Exit: exitOf(oc.Err)}
	if oc.Res == nil {
		return s
	}
	s.Changed = oc.Res.Changed
	for _, r := range oc.Res.Runners {
		p := planned{Name: r.Name, Action: r.Action, ID: r.ID, Executor: r.Executor, Failed: r.Error != ""}
		if !forCheck && (r.Action == plan.Create || r.Action == plan.Replace) && !p.Failed {
			p.ID = 0 // the check cannot know the id GitLab will assign
		}
		s.Runners = append(s.Runners, p)
	}
	return s
}

func exitOf(err error) int {
	switch {
	case err == nil:
		return 0
	case input.Is(err):
		return 2
	}
	return 1
}

// TestCheckTellsWhatTheRunDoes runs, for every world, every way GitLab
// can misbehave and every failure policy, a check and then the real run,
// and asserts the check
// foretold the run: the same steps with the same ids, the same failures,
// the same exit status and the same changed. Faults on requests only a
// real run makes (a create, a delete) cannot be foreseen: there the steps
// and ids must still match, and only the steps the fault hits may fail.
func TestCheckTellsWhatTheRunDoes(t *testing.T) {
	t.Setenv("GRA_TEST_PARTITION", "pbatch")
	n := 0
	for _, w := range worlds {
		for _, tr := range troubles() {
			for _, pol := range policies {
				n++
				truthCase(t, w, tr, pol.name, pol.set)
			}
		}
	}
	t.Logf("%d scenarios", n)
}

func truthCase(t *testing.T, w world, tr trouble, policy string, set func(*plan.Policy)) {
	t.Run(w.name+"/"+tr.name+"/"+policy, func(t *testing.T) {
		t.Parallel()
		sim, p := standardLayout(t)
		if w.pat != "" {
			p.Template("concurrent = 4\n", coretest.ClientConfig{URL: sim.URL, PAT: coretest.AdminPAT})
		}
		w.setup(t, sim, p)
		if w.pat != "" {
			p.Template("concurrent = 4\n", coretest.ClientConfig{URL: sim.URL, PAT: w.pat})
		}
		if tr.fault != nil {
			sim.InjectFault(*tr.fault)
		}
		// Failing answers are not retried long; an answer slow to
		// come (a loaded machine) is still waited for.
		quick := func(o *engine.Options) {
			o.Limits.RetryBudget, o.Limits.MaxAttempts = 2*time.Second, 2
			set(&o.Policy)
		}
		chk := checkRun(t, sim, p, quick)
		got := run(t, p, quick)
		want, did := summarize(chk, true), summarize(got, false)
		if tr.readOnly && !(tr.describesToken && w.pat != "") {
			if d := cmp.Diff(want, did); d != "" {
				t.Fatalf("the check did not tell what the run did (-check +run):\n%s\ncheck error: %v\nrun error: %v", d, chk.Err, got.Err)
			}
			return
		}
		// Faults on mutating requests: same plan, failures only there;
		// a delete GitLab refused with 403 (the token died meanwhile)
		// is honestly reported as forgotten.
		strip := func(s summary) []planned {
			out := make([]planned, len(s.Runners))
			for i, r := range s.Runners {
				r.Failed = false
				if r.Action == plan.Forget && tr.fault.Status == 403 && tr.fault.Kind == "delete-token" {
					r.Action = plan.Delete
				}
				out[i] = r
			}
			return out
		}
		if d := cmp.Diff(strip(want), strip(did)); d != "" {
			t.Fatalf("the run did not carry out the check's plan (-check +run):\n%s", d)
		}
		for i, r := range did.Runners {
			if want.Runners[i].Failed && !r.Failed {
				t.Errorf("%s: the check said it fails, the run did it", r.Name)
			}
		}
	})
}

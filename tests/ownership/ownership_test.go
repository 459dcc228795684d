package ownership

import (
	"reflect"
	"testing"
	"time"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/plan"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/testkit/coretest"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/testkit/gitlabsim"
)

const day = 24 * time.Hour

func simAt(t *testing.T, version string, mod func(*gitlabsim.Options)) *coretest.Sim {
	t.Helper()
	o := coretest.SimOptions()
	o.Version = version
	if mod != nil {
		mod(&o)
	}
	return coretest.NewSim(t, o)
}

// A node off for 10 days (HPC maintenance) with runner tokens that live 3
// days comes back: GitLab deleted its runner managers after 7 days, its
// tokens expired. Its config names its runners: they are healed by id,
// not replaced, and GitLab holds exactly one runner per executor.
func TestTenDaysOffHealsByID(t *testing.T) {
	sim := simAt(t, "18.5", func(o *gitlabsim.Options) { o.TokenLifetime = 3 * day })
	h := newHost(t, sim, "node7", "machine-7", "hw-7")
	for _, n := range []string{"shell", "docker", "gpu"} {
		h.executor(n, "")
	}
	h.mustRun()
	h.poll()
	before := h.ids()
	if !reflect.DeepEqual(before, []int64{1, 2, 3}) {
		t.Fatalf("ids %v", before)
	}
	sim.Advance(10 * day)
	for _, r := range sim.Runners() {
		if len(r.Managers) != 0 {
			t.Fatalf("runner %d still has managers after 10 days: the simulator did not clean up stale managers", r.ID)
		}
		if _, ok := sim.VerifyToken(r.Token); ok {
			t.Fatalf("runner %d's token still works after 10 days", r.ID)
		}
	}
	res := h.mustRun()
	for name, a := range actions(res) {
		if a != plan.Adopt {
			t.Errorf("%s: %s, want adopt (healed by id)", name, a)
		}
	}
	if got := h.ids(); !reflect.DeepEqual(got, before) {
		t.Fatalf("ids %v -> %v: runners were replaced, not healed", before, got)
	}
	if got := simIDs(sim); !reflect.DeepEqual(got, before) {
		t.Fatalf("GitLab holds %v, want %v", got, before)
	}
	for _, e := range h.config() {
		if _, ok := sim.VerifyToken(e.Token); !ok {
			t.Errorf("%s: the token on disk does not verify", e.Name)
		}
	}
	// Then steady again.
	sim.ResetLog()
	res = h.mustRun()
	if c := sim.RequestCounts(); c.Total != 3 || c.ByKind["verify"] != 3 {
		t.Fatalf("steady state after healing: %+v", c.ByKind)
	}
	for name, a := range actions(res) {
		if a != plan.Keep {
			t.Errorf("%s: %s after healing", name, a)
		}
	}
}

// GitLab 16.11 has no GET /runners/:id/managers: a lost config with the
// state file intact heals its runners by id instead of registering
// duplicates, and removing an executor whose token GitLab rejects deletes
// its runner by id, never reporting a delete that did not happen.
func TestGitLabWithoutManagersRoute(t *testing.T) {
	sim := simAt(t, "16.11", nil)
	h := newHost(t, sim, "node8", "machine-8", "hw-8")
	h.executor("shell", "")
	h.executor("docker", "")
	h.mustRun()
	before := h.ids()
	h.p.Remove("config.main.toml")
	res := h.mustRun()
	for name, a := range actions(res) {
		if a != plan.Adopt {
			t.Errorf("%s: %s, want adopt", name, a)
		}
	}
	if got := simIDs(sim); !reflect.DeepEqual(got, before) || !reflect.DeepEqual(h.ids(), before) {
		t.Fatalf("GitLab holds %v, config %v, want %v: duplicates registered", got, h.ids(), before)
	}
	// The docker runner's token is reset elsewhere; its executor is removed.
	var dockerID int64
	for _, e := range h.config() {
		if e.Name == "node8 main docker Runner" {
			dockerID = e.ID
		}
	}
	sim.RevokeToken(dockerID)
	h.p.Remove("main/docker.toml")
	res = h.mustRun()
	var did plan.Action
	for _, r := range res.Runners {
		if r.ID == dockerID {
			did = r.Action
		}
	}
	_, exists := sim.Runner(dockerID)
	switch {
	case did == plan.Delete && exists:
		t.Fatalf("reported deleted, but runner %d is still in GitLab", dockerID)
	case did != plan.Delete:
		t.Fatalf("runner %d: %s, want delete (its config names it, no other host uses it)", dockerID, did)
	}
}

// One runner, two hosts (GitLab's model since 16.0: the same token on
// several hosts). Removing the executor on one host removes only that
// host's runner manager; the other host keeps running it.
func TestSharedRunnerLosesOnlyThisHostsManager(t *testing.T) {
	sim := simAt(t, "18.5", nil)
	a := newHost(t, sim, "node12", "machine-a", "hw-a")
	a.executor("shell", "")
	a.mustRun()
	a.poll()
	// The administrator put the same runner on host b (same cluster name).
	b := newHost(t, sim, "node12", "machine-b", "hw-b")
	b.executor("shell", "")
	b.p.Write("config.main.toml", a.p.Config())
	b.mustRun()
	b.poll()
	id := a.ids()[0]
	r, _ := sim.Runner(id)
	if len(r.Managers) != 2 {
		t.Fatalf("runner %d has %d managers, want a's and b's", id, len(r.Managers))
	}
	b.p.Remove("main/shell.toml")
	b.executor("other", "")
	res := b.mustRun()
	if actions(res)["node12 main shell Runner"] != plan.Detach && actions(res)["shell"] != plan.Detach {
		t.Fatalf("b's removal: %+v, want detach", res.Runners)
	}
	r, ok := sim.Runner(id)
	if !ok {
		t.Fatal("b deleted the runner a still uses")
	}
	if _, has := r.Managers[b.systemID()]; has || len(r.Managers) != 1 {
		t.Fatalf("managers after b's removal: %v, want a's only", r.Managers)
	}
	sim.ResetLog()
	resA := a.mustRun()
	if actions(resA)["shell"] != plan.Keep || sim.MutatingRequests() != 0 {
		t.Fatalf("a after b left: %+v", resA.Runners)
	}
}

// A prefix copied to another machine (a golden image with the prefix in
// it) starts a fresh identity there: a new system id, runners of its
// own, and the original host's runners untouched — as for an image with a
// fixed machine id on other hardware. A host that was only renamed keeps
// its runners, their descriptions following the new name.
func TestClonedAndRenamedHosts(t *testing.T) {
	for _, tc := range []struct {
		name              string
		hostname, machine string
		hardware          string
		renamed           bool
	}{
		{"copied to a machine with its own machine id", "node21", "machine-21", "hw-21", false},
		{"copied with the same host name too", "node20", "machine-21", "hw-21", false},
		{"image with a fixed machine id on other hardware", "node21", "machine-20", "hw-21", false},
		{"renamed", "node22", "machine-20", "hw-20", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sim := simAt(t, "18.5", nil)
			orig := newHost(t, sim, "node20", "machine-20", "hw-20")
			orig.executor("shell", "")
			orig.executor("docker", "")
			orig.mustRun()
			orig.poll()
			ids := orig.ids()
			origSID := orig.systemID()

			var next *host
			if tc.renamed {
				next = orig
				next.name = tc.hostname
			} else {
				next = newHost(t, sim, tc.hostname, tc.machine, tc.hardware)
				for _, f := range []string{"config.template.main.toml", "main/shell.toml", "main/docker.toml", "config.main.toml", ".runner_system_id", ".gitlab-runner-auth.main.json"} {
					b, err := readFile(orig.p.Dir, f)
					if err != nil {
						t.Fatal(err)
					}
					next.p.Write(f, string(b))
				}
			}
			sim.ResetLog()
			res := next.mustRun()
			if tc.renamed {
				if !reflect.DeepEqual(next.ids(), ids) || next.systemID() != origSID {
					t.Fatalf("renamed host: ids %v (was %v), system id %s (was %s)", next.ids(), ids, next.systemID(), origSID)
				}
				for _, r := range sim.Runners() {
					if r.Description != "node22 main shell Runner" && r.Description != "node22 main docker Runner" {
						t.Errorf("runner %d still described %q", r.ID, r.Description)
					}
				}
				return
			}
			if next.systemID() == origSID {
				t.Fatal("the clone kept the original's system id")
			}
			for _, id := range next.ids() {
				for _, o := range ids {
					if id == o {
						t.Fatalf("the clone's config holds the original's runner %d", id)
					}
				}
			}
			if len(res.LeftBehind) != 2 {
				t.Errorf("the clone does not name the original's 2 runners it left: %+v", res.LeftBehind)
			}
			for _, e := range sim.Requests() {
				if e.Mutating && (e.Kind() == "reset" || e.Kind() == "update" || e.Kind() == "delete-id" || e.Kind() == "delete-token" || e.Kind() == "delete-manager") {
					t.Errorf("the clone sent %s %s", e.Method, e.Path)
				}
			}
			// The original goes on untouched.
			sim.ResetLog()
			resO := orig.mustRun()
			for _, r := range resO.Runners {
				if r.Action != plan.Keep {
					t.Errorf("original: %s %s after the clone ran", r.Action, r.Name)
				}
			}
			if n := len(sim.Runners()); n != 4 {
				t.Errorf("GitLab holds %d runners, want the original's 2 and the clone's 2", n)
			}
		})
	}
}

// A host back from five weeks off, its tokens expired, finds GitLab down:
// it does not start degraded on dead tokens (gitlab-runner would only
// poll with them); it fails, so systemd retries, and heals once GitLab
// answers.
func TestExpiredTokensNeverStartDegraded(t *testing.T) {
	sim := simAt(t, "18.5", func(o *gitlabsim.Options) { o.TokenLifetime = 30 * day })
	h := newHost(t, sim, "node15", "machine-15", "hw-15")
	h.executor("shell", "")
	h.mustRun()
	// Down the next day: tokens alive, the start is degraded.
	sim.Advance(day)
	sim.InjectFault(gitlabsim.Fault{Type: gitlabsim.FaultDrop, Times: -1})
	if res, err := h.run(); err != nil || !res.Degraded {
		t.Fatalf("GitLab down with live tokens: %v, degraded %v", err, res != nil && res.Degraded)
	}
	// Five weeks later, still down: the tokens expired.
	sim.Advance(35 * day)
	res, err := h.run()
	if err == nil || (res != nil && res.Degraded) {
		t.Fatalf("started degraded on expired tokens: %v", err)
	}
	sim.ClearFaults()
	if a := actions(h.mustRun())["shell"]; a != plan.Adopt {
		t.Fatalf("once GitLab answers: %s, want adopt (healed by id)", a)
	}
}

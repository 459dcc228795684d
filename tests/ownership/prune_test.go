package ownership

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/plan"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/prune"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/redact"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/testkit/coretest"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/testkit/gitlabsim"
)

// pruneFleet is a fleet after 10 days of life: hosts a, b and c live;
// d and e decommissioned on day 0; f re-imaged and renamed (its old
// runner carries its old name); g unreachable in today's play; and
// another team's runner on the same GitLab.
type pruneFleet struct {
	sim                 *coretest.Sim
	live                []*host
	g                   *host
	leftovers, foreign  []int64
	gRunner, fOldRunner int64
	// seen is the controller's record of first sightings.
	seen string
}

func newPruneFleet(t *testing.T) *pruneFleet {
	sim := simAt(t, "18.5", nil)
	pf := &pruneFleet{sim: sim, seen: filepath.Join(t.TempDir(), "seen.json")}
	mk := func(name string) *host {
		h := newHost(t, sim, name, "machine-"+name, "hw-"+name)
		h.executor("shell", "")
		h.mustRun()
		h.poll()
		return h
	}
	a, b, c, d, e, f, g := mk("nodea"), mk("nodeb"), mk("nodec"), mk("noded"), mk("nodee"), mk("nodef"), mk("nodeg")
	pf.leftovers = append(pf.leftovers, d.ids()[0], e.ids()[0], f.ids()[0])
	pf.fOldRunner, pf.gRunner = f.ids()[0], g.ids()[0]
	// Another team's runner: neither the fleet's description nor a host of it.
	pf.foreign = append(pf.foreign, sim.AddRunner(gitlabsim.Runner{Description: "team-x docker builder", TagList: []string{"main", "docker"}}))
	// f is re-installed under a new name: its generated files and machine
	// id are gone, its old runner carries the old name.
	for _, g := range []string{"config.main.toml", ".gitlab-runner-auth.main.json", ".runner_system_id"} {
		f.p.Remove(g)
	}
	f.name, f.machine.ID = "nodef2", "machine-f2"
	f.mustRun()
	f.poll()
	// Ten days of life: live hosts restart and poll every day, g too.
	for day := 0; day < 10; day++ {
		sim.Advance(24 * time.Hour)
		for _, h := range []*host{a, b, c, f, g} {
			h.mustRun()
			h.poll()
		}
	}
	pf.live, pf.g = []*host{a, b, c, f}, g
	return pf
}

// prune runs the clean-up as the play's last task would: keep is what the
// hosts that ran reported; g is expected but did not report.
func (pf *pruneFleet) prune(t *testing.T, mod func(*prune.Options)) (*prune.Result, error) {
	t.Helper()
	var keep []int64
	var reported []string
	for _, h := range pf.live {
		res := h.mustRun()
		for _, r := range res.Runners {
			keep = append(keep, r.ID)
		}
		reported = append(reported, h.name)
	}
	o := prune.Options{URL: pf.sim.URL, PAT: coretest.AdminPAT, Tags: []string{"main"}, Keep: keep,
		HostsExpected: append(append([]string(nil), reported...), pf.g.name), HostsReported: reported,
		MaxDelete: 20, RequestTimeout: coretest.Patient.Request, Timeout: 10 * time.Minute, Secrets: redact.New(), MinIdle: plan.StaleAfter,
		Fleet: testFleet, Now: pf.sim.Now, SeenFile: pf.seen}
	if mod != nil {
		mod(&o)
	}
	res, err := prune.Run(context.Background(), o)
	if res != nil {
		coretest.Record(t, "prune", []byte(res.Before+res.After))
	}
	return res, err
}

func sortedIDs(ids []int64) []int64 {
	out := append([]int64(nil), ids...)
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func (pf *pruneFleet) deleted(res *prune.Result) []int64 {
	var out []int64
	for _, r := range res.Runners {
		if r.Action == "delete" {
			out = append(out, r.ID)
		}
	}
	return sortedIDs(out)
}

// Exactly the runners no host claims — two decommissioned hosts' and a
// re-imaged host's old one — are deleted; the unreachable host's, the
// live hosts' and another team's stay. Check mode says so first and
// deletes nothing.
func TestPruneDeletesExactlyTheLeftovers(t *testing.T) {
	pf := newPruneFleet(t)
	before := len(pf.sim.Runners())
	pf.sim.ResetLog()
	chk, err := pf.prune(t, func(o *prune.Options) { o.Check = true })
	if err != nil {
		t.Fatal(err)
	}
	if got, want := pf.deleted(chk), sortedIDs(pf.leftovers); !equal(got, want) {
		t.Fatalf("check mode would delete %v, want %v", got, want)
	}
	if n := pf.sim.RequestCounts().ByKind["delete-id"]; n != 0 || len(pf.sim.Runners()) != before || chk.Deleted != 0 || !chk.Changed {
		t.Fatalf("check mode deleted (%d requests, %d runners of %d), changed %v", n, len(pf.sim.Runners()), before, chk.Changed)
	}
	res, err := pf.prune(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Deleted != len(pf.leftovers) || !res.Changed {
		t.Fatalf("deleted %d, want %d", res.Deleted, len(pf.leftovers))
	}
	for _, id := range pf.leftovers {
		if _, ok := pf.sim.Runner(id); ok {
			t.Errorf("leftover %d still in GitLab", id)
		}
	}
	for _, id := range append([]int64{pf.gRunner}, pf.foreign...) {
		if _, ok := pf.sim.Runner(id); !ok {
			t.Errorf("runner %d was deleted", id)
		}
	}
	for _, r := range res.Runners {
		if r.ID == pf.gRunner && r.Rule != plan.PruneMissing.Name {
			t.Errorf("the unreachable host's runner: %s, want %q", r.Rule, plan.PruneMissing.Name)
		}
		if r.ID == pf.foreign[0] {
			t.Error("another team's runner is listed as the fleet's")
		}
	}
	for _, h := range pf.live {
		if res := h.mustRun(); len(res.Runners) == 0 || res.Runners[0].Action != plan.Keep {
			t.Errorf("%s after the clean-up: %+v", h.name, res.Runners)
		}
	}
	// Nothing left to do.
	again, err := pf.prune(t, nil)
	if err != nil || again.Deleted != 0 || again.Changed {
		t.Fatalf("a second clean-up: deleted %d, changed %v, %v", again.Deleted, again.Changed, err)
	}
}

// max_delete stops a mistake from wiping a fleet: more to delete than it
// allows, and nothing is deleted; min_idle keeps runners used recently.
func TestPruneBounds(t *testing.T) {
	pf := newPruneFleet(t)
	n := len(pf.sim.Runners())
	_, err := pf.prune(t, func(o *prune.Options) { o.MaxDelete = 2 })
	var tooMany *prune.TooManyError
	if !errors.As(err, &tooMany) || !equal(sortedIDs(tooMany.Would), sortedIDs(pf.leftovers)) {
		t.Fatalf("max_delete 2 with 3 to delete: %v", err)
	}
	if len(pf.sim.Runners()) != n {
		t.Fatal("a refused clean-up deleted runners")
	}
	res, err := pf.prune(t, func(o *prune.Options) { o.MinIdle = 30 * 24 * time.Hour })
	if err != nil || res.Deleted != 0 || len(pf.sim.Runners()) != n {
		t.Fatalf("min_idle 30 days, leftovers idle for 10: deleted %d, %v", res.Deleted, err)
	}
	for _, r := range res.Runners {
		if r.Rule == plan.PruneIdle.Name {
			t.Errorf("runner %d idle for 10 days taken for idle with min_idle 30 days", r.ID)
		}
	}
	// A keep list that forgot a host: its runner was contacted today, so
	// min_idle keeps it.
	res, err = pf.prune(t, func(o *prune.Options) { o.Keep = o.Keep[1:] })
	if err != nil || res.Deleted != len(pf.leftovers) {
		t.Fatalf("a keep list missing a live runner: deleted %d, %v", res.Deleted, err)
	}
}

func equal(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// GitLab's 429 (with the wait it asks for) and 5xx are retried as for
// sync; a runner that stays unreadable is kept with a warning, and a
// delete that keeps failing fails the run with the runner named, the
// others deleted.
func TestPruneThroughTransientFaults(t *testing.T) {
	pf := newPruneFleet(t)
	pf.sim.InjectFault(gitlabsim.Fault{Kind: "list", Type: gitlabsim.FaultStatus, Status: 429, RetryAfter: 1})
	pf.sim.InjectFault(gitlabsim.Fault{Kind: "get", Type: gitlabsim.FaultStatus, Status: 502, Times: 2})
	pf.sim.InjectFault(gitlabsim.Fault{Kind: "delete-id", Type: gitlabsim.FaultStatus, Status: 503})
	res, err := pf.prune(t, nil)
	if err != nil || res.Deleted != len(pf.leftovers) {
		t.Fatalf("through a 429, two 502 and a 503: deleted %d, %v", res.Deleted, err)
	}

	pf = newPruneFleet(t)
	unreadable := pf.leftovers[0]
	pf.sim.InjectFault(gitlabsim.Fault{Path: fmt.Sprintf("/api/v4/runners/%d", unreadable), Method: "GET", Type: gitlabsim.FaultStatus, Status: 500, Times: -1})
	undeletable := pf.leftovers[1]
	pf.sim.InjectFault(gitlabsim.Fault{Path: fmt.Sprintf("/api/v4/runners/%d", undeletable), Method: "DELETE", Type: gitlabsim.FaultStatus, Status: 500, Times: -1})
	res, err = pf.prune(t, nil)
	if err == nil || res.Deleted != len(pf.leftovers)-2 {
		t.Fatalf("a runner unreadable, one undeletable: deleted %d, err %v", res.Deleted, err)
	}
	for _, r := range res.Runners {
		switch r.ID {
		case unreadable:
			if r.Action != "keep" || r.Rule != plan.PruneUnreadable.Name {
				t.Errorf("unreadable runner: %+v", r)
			}
		case undeletable:
			if r.Error == "" {
				t.Errorf("undeletable runner has no error: %+v", r)
			}
		}
	}
	if len(res.Warnings) != 1 {
		t.Errorf("warnings %q, want one for the unreadable runner", res.Warnings)
	}
	for _, id := range []int64{unreadable, undeletable} {
		if _, ok := pf.sim.Runner(id); !ok {
			t.Errorf("runner %d is gone", id)
		}
	}
}

package ownership

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/input"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/plan"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/prune"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/redact"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/testkit/coretest"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/testkit/gitlabsim"
)

// The clean-up deletes only what is provably the fleet's and provably
// idle, on every GitLab version: each test here is a way real GitLab and
// real fleets break a clean-up that decides on looks and on one clock.

// prune runs the clean-up for fleet testFleet against url with the
// simulator's clock as the controller's.
func runPrune(t *testing.T, sim *coretest.Sim, url string, mod func(*prune.Options)) (*prune.Result, error) {
	t.Helper()
	o := prune.Options{URL: url, PAT: coretest.AdminPAT, Fleet: testFleet, Tags: []string{"main"}, MaxDelete: 20,
		MinIdle: plan.StaleAfter, RequestTimeout: 5 * time.Second, Timeout: time.Minute, Secrets: redact.New(),
		Now: sim.Now, SeenFile: filepath.Join(t.TempDir(), "seen.json")}
	if mod != nil {
		mod(&o)
	}
	res, err := prune.Run(context.Background(), o)
	if res != nil {
		b, _ := json.Marshal(res)
		coretest.Record(t, "prune", b)
	}
	return res, err
}

// ruleOf is the rule the clean-up applied to a runner ("" when not reported).
func ruleOf(res *prune.Result, id int64) string {
	for _, r := range res.Runners {
		if r.ID == id {
			return r.Rule
		}
	}
	return ""
}

func mustExist(t *testing.T, sim *coretest.Sim, ids ...int64) {
	t.Helper()
	for _, id := range ids {
		if _, ok := sim.Runner(id); !ok {
			t.Errorf("runner %d was deleted", id)
		}
	}
}

// A host provisioned minutes before the play's clean-up is in no keep
// list and its gitlab-runner has not polled yet: GitLab 16.11 and 17.0
// give no age for its runners (no created_at in the details, no managers
// route), 17.9 only its manager's created_at. Its runners are kept on
// every version, and on 16.11/17.0 the controller's first sighting is
// what ages them.
func TestHostProvisionedMinutesBeforePruneIsKept(t *testing.T) {
	for _, version := range gitlabsim.ProfileVersions() {
		t.Run(version, func(t *testing.T) {
			sim := simAt(t, version, nil)
			h := newHost(t, sim, "nodenew", "machine-new", "hw-new")
			h.executor("shell", "")
			h.mustRun()
			id := h.ids()[0]
			sim.Advance(10 * time.Minute)
			seen := filepath.Join(t.TempDir(), "seen.json")
			res, err := runPrune(t, sim, sim.URL, func(o *prune.Options) { o.SeenFile = seen })
			if err != nil {
				t.Fatal(err)
			}
			mustExist(t, sim, id)
			if rule := ruleOf(res, id); rule == plan.PruneIdle.Name || rule == "" {
				t.Fatalf("a runner made 10 minutes ago: rule %q", rule)
			}
			// Eight days on, nobody used it: whatever the version, its age
			// is known now (on 16.11/17.0 from the first sighting) and it goes.
			sim.Advance(8 * 24 * time.Hour)
			res, err = runPrune(t, sim, sim.URL, func(o *prune.Options) { o.SeenFile = seen })
			if err != nil || res.Deleted != 1 {
				t.Fatalf("8 days later: deleted %d (%v), rule %q", res.Deleted, err, ruleOf(res, id))
			}
		})
	}
}

// Two fleets share one GitLab, the instance name main (so the tag and the
// description pattern): fleet A's clean-up deletes its own leftover, and
// never a runner of fleet B, whose host is off for 8 days and outside A's
// play.
func TestAnotherFleetsRunnersAreNeverDeleted(t *testing.T) {
	sim := simAt(t, "18.5", nil)
	mine := newHost(t, sim, "nodea", "machine-a", "hw-a")
	gone := newHost(t, sim, "nodeb", "machine-b", "hw-b")
	theirs := newHost(t, sim, "nodex", "machine-x", "hw-x")
	theirs.fleet = "other-team"
	for _, h := range []*host{mine, gone, theirs} {
		h.executor("shell", "")
		h.mustRun()
		h.poll()
	}
	sim.Advance(8 * 24 * time.Hour)
	mine.mustRun()
	mine.poll()
	res, err := runPrune(t, sim, sim.URL, func(o *prune.Options) {
		o.Keep, o.HostsExpected, o.HostsReported = mine.ids(), []string{"nodea"}, []string{"nodea"}
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Deleted != 1 {
		t.Fatalf("deleted %d, want fleet A's one leftover", res.Deleted)
	}
	if _, ok := sim.Runner(gone.ids()[0]); ok {
		t.Error("fleet A's leftover is still in GitLab")
	}
	mustExist(t, sim, theirs.ids()[0])
	if rule := ruleOf(res, theirs.ids()[0]); rule != plan.PruneOtherFleet.Name {
		t.Errorf("fleet B's runner: rule %q, want %q", rule, plan.PruneOtherFleet.Name)
	}
}

// GitLab's clock far in the future (a Date of 2100) or in the past must not
// make runners look idle: the clean-up deletes nothing and says why.
func TestClocksThatDisagreeDeleteNothing(t *testing.T) {
	for _, c := range []struct {
		name  string
		shift func(sim *coretest.Sim)
	}{
		{"GitLab in 2100", func(sim *coretest.Sim) { sim.SetNow(time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)) }},
		{"GitLab in 1990", func(sim *coretest.Sim) { sim.SetNow(time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC)) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			pf := newPruneFleet(t)
			n := len(pf.sim.Runners())
			controller := pf.sim.Now()
			c.shift(pf.sim)
			res, err := pf.prune(t, func(o *prune.Options) { o.Now = func() time.Time { return controller } })
			var ce *prune.ClockError
			if !errors.As(err, &ce) || !ce.Known || ce.Skew < time.Hour {
				t.Fatalf("clocks apart: %v, want a ClockError", err)
			}
			if res.Deleted != 0 || len(pf.sim.Runners()) != n {
				t.Fatalf("deleted %d with clocks apart", res.Deleted)
			}
		})
	}
}

// A group listing holds the runners of the group's ancestors too: the
// clean-up of org/team-a keeps the runner of org, idle and marked as it is.
func TestAncestorGroupsRunnersAreKept(t *testing.T) {
	sim := simAt(t, "18.5", nil)
	org := sim.AddGroup(gitlabsim.Group{FullPath: "org"})
	team := sim.AddGroup(gitlabsim.Group{FullPath: "org/team-a"})
	idle := sim.Now().Add(-30 * 24 * time.Hour)
	add := func(group int64, host string) int64 {
		return sim.AddRunner(gitlabsim.Runner{RunnerType: "group_type", GroupID: group, Description: host + " main shell Runner",
			TagList: []string{"main"}, MaintenanceNote: coretest.Marked(testFleet, host), CreatedAt: idle, ContactedAt: idle})
	}
	parents, own := add(org, "nodep"), add(team, "nodet")
	res, err := runPrune(t, sim, sim.URL, func(o *prune.Options) { o.Group = "org/team-a" })
	if err != nil {
		t.Fatal(err)
	}
	mustExist(t, sim, parents)
	if _, ok := sim.Runner(own); ok {
		t.Error("the group's own idle runner is still there")
	}
	if rule := ruleOf(res, parents); rule != plan.PruneOutOfScope.Name {
		t.Errorf("the parent group's runner: rule %q, want %q", rule, plan.PruneOutOfScope.Name)
	}
}

// Blank tags would widen the listing to every runner of the scope: they
// are refused before any request.
func TestBlankTagsAreRefused(t *testing.T) {
	sim := simAt(t, "18.5", nil)
	for _, tags := range [][]string{{""}, {"main", "  "}} {
		_, err := runPrune(t, sim, sim.URL, func(o *prune.Options) { o.Tags = tags })
		if ie := input.As(err); ie == nil || !strings.HasPrefix(string(ie.Option), "tags[") {
			t.Fatalf("tags %q: %v, want an input error naming the tag", tags, err)
		}
	}
	if n := len(sim.Requests()); n != 0 {
		t.Fatalf("%d requests for refused tags", n)
	}
}

// min_idle below two hours would take GitLab's lagging contacted_at for
// idleness: refused.
func TestMinIdleBelowTwoHoursIsRefused(t *testing.T) {
	sim := simAt(t, "18.5", nil)
	_, err := runPrune(t, sim, sim.URL, func(o *prune.Options) { o.MinIdle = 90 * time.Minute })
	if ie := input.As(err); ie == nil || ie.Option != "min_idle" {
		t.Fatalf("min_idle 90m: %v", err)
	}
}

// Between the listing and the read by id the runner changed (another team
// took it over, its tags changed): the details decide, and it is kept.
func TestListingAndDetailsDisagreeingKeeps(t *testing.T) {
	pf := newPruneFleet(t)
	victim := pf.leftovers[0]
	pf.sim.OnRequest("list", true, func(gitlabsim.Entry) {
		pf.sim.UpdateRunner(victim, func(r *gitlabsim.Runner) { r.TagList = []string{"team-x"} })
	})
	res, err := pf.prune(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	mustExist(t, pf.sim, victim)
	if rule := ruleOf(res, victim); rule != plan.PruneDisagrees.Name {
		t.Errorf("rule %q, want %q", rule, plan.PruneDisagrees.Name)
	}
	if res.Deleted != len(pf.leftovers)-1 {
		t.Errorf("deleted %d, want the other leftovers", res.Deleted)
	}
}

// Decided idle, then used before its DELETE: the read by id just before
// the DELETE sees it and keeps it.
func TestRunnerUsedJustBeforeItsDeleteIsKept(t *testing.T) {
	pf := newPruneFleet(t)
	victim := pf.leftovers[0]
	reads := 0
	pf.sim.OnRequest("get", false, func(e gitlabsim.Entry) {
		if !strings.HasSuffix(e.Path, "/"+itoa64(victim)) {
			return
		}
		if reads++; reads == 2 { // the second read is the one before the DELETE
			now := pf.sim.Now()
			pf.sim.UpdateRunner(victim, func(r *gitlabsim.Runner) { r.ContactedAt = now })
		}
	})
	res, err := pf.prune(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	mustExist(t, pf.sim, victim)
	if rule := ruleOf(res, victim); rule != plan.PruneContacted.Name || res.Deleted != len(pf.leftovers)-1 {
		t.Errorf("rule %q, deleted %d", rule, res.Deleted)
	}
}

func itoa64(n int64) string { b, _ := json.Marshal(n); return string(b) }

// A listing whose pages shifted holds a runner twice: it is decided, read
// and deleted once.
func TestRunnerListedTwiceIsDeletedOnce(t *testing.T) {
	pf := newPruneFleet(t)
	srv := httptest.NewServer(duplicateFirst(pf.sim))
	t.Cleanup(srv.Close)
	pf.sim.ResetLog()
	res, err := pf.prune(t, func(o *prune.Options) { o.URL = srv.URL })
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int64]int{}
	for _, r := range res.Runners {
		seen[r.ID]++
	}
	for id, n := range seen {
		if n > 1 {
			t.Errorf("runner %d reported %d times", id, n)
		}
	}
	if n := pf.sim.Counts()["delete-id"]; n != len(pf.leftovers) || res.Deleted != len(pf.leftovers) {
		t.Errorf("%d DELETEs, %d deleted, want %d", n, res.Deleted, len(pf.leftovers))
	}
}

// duplicateFirst serves the simulator, with every runner list page holding
// its first runner twice, as a listing whose pages shifted may.
func duplicateFirst(sim *coretest.Sim) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		sim.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		var items []json.RawMessage
		if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/runners/all") && json.Unmarshal(body, &items) == nil && len(items) > 0 {
			items = append(items, items[0])
			body, _ = json.Marshal(items)
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.Header().Del("Content-Length")
		w.WriteHeader(rec.Code)
		_, _ = io.Copy(w, bytes.NewReader(body))
	})
}

// A 403 on the managers route is not "no managers": the runner is
// unreadable, and kept.
func TestForbiddenManagersKeep(t *testing.T) {
	pf := newPruneFleet(t)
	victim := pf.leftovers[0]
	pf.sim.InjectFault(gitlabsim.Fault{Path: "/api/v4/runners/" + itoa64(victim) + "/managers", Type: gitlabsim.FaultStatus, Status: 403, Times: -1})
	res, err := pf.prune(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	mustExist(t, pf.sim, victim)
	if rule := ruleOf(res, victim); rule != plan.PruneUnreadable.Name {
		t.Errorf("rule %q, want %q", rule, plan.PruneUnreadable.Name)
	}
}

// Runners an earlier version left carry no mark: the clean-up keeps them
// and counts them; include_unmarked takes them, once; hosts that sync with
// a version that marks make them the fleet's again.
func TestUnmarkedRunnersAndTheMigration(t *testing.T) {
	sim := simAt(t, "18.5", nil)
	idle := sim.Now().Add(-30 * 24 * time.Hour)
	var old []int64
	for _, host := range []string{"node1", "node2"} {
		old = append(old, sim.AddRunner(gitlabsim.Runner{Description: host + " main shell Runner", TagList: []string{"main"},
			CreatedAt: idle, ContactedAt: idle}))
	}
	res, err := runPrune(t, sim, sim.URL, nil)
	if err != nil || res.Deleted != 0 || res.Unmarked != 2 {
		t.Fatalf("unmarked look-alikes: deleted %d, unmarked %d, %v", res.Deleted, res.Unmarked, err)
	}
	for _, id := range old {
		if rule := ruleOf(res, id); rule != plan.PruneUnmarked.Name {
			t.Errorf("runner %d: rule %q", id, rule)
		}
	}
	// Another fleet's marked runner stays even with include_unmarked.
	other := sim.AddRunner(gitlabsim.Runner{Description: "nodex main shell Runner", TagList: []string{"main"},
		MaintenanceNote: coretest.Marked("other-team", "nodex"), CreatedAt: idle, ContactedAt: idle})
	res, err = runPrune(t, sim, sim.URL, func(o *prune.Options) { o.IncludeUnmarked = true })
	if err != nil || res.Deleted != 2 {
		t.Fatalf("include_unmarked: deleted %d, %v", res.Deleted, err)
	}
	mustExist(t, sim, other)
}

// Prune over plain http to another host warns, as sync does: one warning,
// naming the GitLab; the same GitLab over https gives none.
func TestPlainHTTPWarns(t *testing.T) {
	warnings := func(url string) []string {
		res, _ := prune.Run(context.Background(), prune.Options{URL: url, PAT: coretest.AdminPAT, Fleet: testFleet,
			MinIdle: plan.StaleAfter, Timeout: 2 * time.Second, RequestTimeout: time.Second, SeenFile: filepath.Join(t.TempDir(), "s")})
		if res == nil {
			t.Fatalf("%s: no result", url)
		}
		return res.Warnings
	}
	if w := warnings("http://gitlab.invalid"); len(w) != 1 || !strings.Contains(w[0], "http://gitlab.invalid") {
		t.Errorf("over http: warnings %q, want one naming the GitLab", w)
	}
	if w := warnings("https://gitlab.invalid"); len(w) != 0 {
		t.Errorf("over https: warnings %q, want none", w)
	}
}

// A project runner assigned to several projects: an administrator's
// DELETE would remove it from every one of them (authenticate_delete_runner!
// skips the check for administrators), so a clean-up of one project keeps
// it; the project's own runner goes.
func TestRunnerOfSeveralProjectsIsKept(t *testing.T) {
	sim := simAt(t, "18.5", nil)
	sim.AddGroup(gitlabsim.Group{FullPath: "ci"})
	app := sim.AddProject(gitlabsim.Project{FullPath: "ci/app"})
	lib := sim.AddProject(gitlabsim.Project{FullPath: "ci/lib"})
	idle := sim.Now().Add(-30 * 24 * time.Hour)
	add := func(host string) int64 {
		return sim.AddRunner(gitlabsim.Runner{RunnerType: "project_type", ProjectID: app, Description: host + " main shell Runner",
			TagList: []string{"main"}, MaintenanceNote: coretest.Marked(testFleet, host), CreatedAt: idle, ContactedAt: idle})
	}
	shared, own := add("nodes"), add("nodeo")
	if !sim.AssignRunner(shared, lib) {
		t.Fatal("could not assign the runner to a second project")
	}
	res, err := runPrune(t, sim, sim.URL, func(o *prune.Options) { o.Project = "ci/app" })
	if err != nil {
		t.Fatal(err)
	}
	mustExist(t, sim, shared)
	if _, ok := sim.Runner(own); ok {
		t.Error("the project's own idle runner is still there")
	}
	if rule := ruleOf(res, shared); rule != plan.PruneOutOfScope.Name {
		t.Errorf("the runner of two projects: rule %q, want %q", rule, plan.PruneOutOfScope.Name)
	}
}

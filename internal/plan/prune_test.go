package plan

import (
	"regexp"
	"testing"
	"time"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/fleet"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/gitlab"
)

var (
	pruneNow = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	day      = 24 * time.Hour
)

func ago(d time.Duration) *time.Time { t := pruneNow.Add(-d); return &t }

func note(f, host string) *string {
	s := fleet.Mark{Fleet: f, Host: host, Instance: "main"}.Note("")
	return &s
}

// oldRunner is a runner of fleet "farm" and host node2, last used 30 days ago.
func oldRunner() gitlab.Runner {
	return gitlab.Runner{Description: "node2 main a Runner", RunnerType: "instance_type", CreatedAt: ago(90 * day), ContactedAt: ago(30 * day),
		TagList: []string{"main"}, MaintenanceNote: note("farm", "node2")}
}

func pruneEv() PruneEvidence {
	return PruneEvidence{Details: map[int64]gitlab.Runner{}, Managers: map[int64][]gitlab.Manager{}, Unreadable: map[int64]string{},
		Gone: map[int64]bool{}, Fleet: "farm", Tags: []string{"main"}, Pattern: regexp.MustCompile(`^\S+ \S+ \S+ Runner$`),
		Keep: map[int64]bool{}, Missing: map[string]bool{"node9": true}, MinIdle: 7 * day, Now: pruneNow, GitLabNow: pruneNow,
		FirstSeen: map[int64]Sighting{}}
}

type pruneCase struct {
	name     string
	desc     string
	runner   func(r *gitlab.Runner) // nil: not read; else edits oldRunner
	managers []gitlab.Manager       // nil: not read
	edit     func(ev *PruneEvidence, id int64)
	want     PruneRow
}

func decideOne(t *testing.T, c pruneCase) PruneDecision {
	t.Helper()
	ev := pruneEv()
	const id = 7
	desc := c.desc
	if desc == "" {
		desc = "node2 main a Runner"
	}
	ev.Listed = []gitlab.Summary{{ID: id, Description: desc}}
	if c.runner != nil {
		r := oldRunner()
		r.ID = id
		c.runner(&r)
		ev.Details[id] = r
	}
	if c.managers != nil {
		ev.Managers[id] = c.managers
	}
	if c.edit != nil {
		c.edit(&ev, id)
	}
	ds := Prune(ev)
	if len(ds) != 1 {
		t.Fatalf("%d decisions for one runner", len(ds))
	}
	return ds[0]
}

var none = []gitlab.Manager{}

// Every row of the clean-up's table is reached by the evidence it names,
// in the table's order, and only "idle" deletes.
func TestPruneTableRows(t *testing.T) {
	keep := func(r *gitlab.Runner) {}
	cases := []pruneCase{
		{name: "foreign", desc: "team-x builder", runner: keep, managers: none, want: PruneForeign},
		{name: "reported", runner: keep, managers: none, edit: func(ev *PruneEvidence, id int64) { ev.Keep[id] = true }, want: PruneReported},
		{name: "host missing, by its mark", desc: "renamed main a Runner", runner: func(r *gitlab.Runner) { r.MaintenanceNote = note("farm", "node9") }, managers: none, want: PruneMissing},
		{name: "host missing, by description", desc: "node9 main a Runner", want: PruneMissing},
		{name: "gone", edit: func(ev *PruneEvidence, id int64) { ev.Gone[id] = true }, want: PruneGone},
		{name: "unreadable", edit: func(ev *PruneEvidence, id int64) { ev.Unreadable[id] = "500" }, want: PruneUnreadable},
		{name: "not read", want: PruneUnreadable},
		{name: "group runner in the instance's scope", runner: func(r *gitlab.Runner) { r.RunnerType = "group_type" }, managers: none, want: PruneOutOfScope},
		{name: "details lack the tag", runner: func(r *gitlab.Runner) { r.TagList = []string{"other"} }, managers: none, want: PruneDisagrees},
		{name: "details' description differs", runner: func(r *gitlab.Runner) { r.Description = "team-x builder" }, managers: none, want: PruneDisagrees},
		{name: "another fleet's", runner: func(r *gitlab.Runner) { r.MaintenanceNote = note("team-b", "node2") }, managers: none, want: PruneOtherFleet},
		{name: "unmarked", runner: func(r *gitlab.Runner) { r.MaintenanceNote = nil }, managers: none, want: PruneUnmarked},
		{name: "mark hidden from the token (maintenance_note null)", runner: func(r *gitlab.Runner) { r.MaintenanceNote = nil }, managers: none, want: PruneUnmarked},
		{name: "a note edited by hand below the mark", runner: func(r *gitlab.Runner) { s := *note("farm", "node2") + "\nsee ticket"; r.MaintenanceNote = &s }, managers: none, want: PruneUnmarked},
		{name: "managers not read yet", runner: keep, want: PruneUnreadable},
		{name: "never contacted, no created_at, no manager: age unknown", runner: func(r *gitlab.Runner) { r.ContactedAt, r.CreatedAt = nil, nil }, managers: none, want: PruneAgeUnknown},
		{name: "first seen 3 days ago", runner: func(r *gitlab.Runner) { r.ContactedAt, r.CreatedAt = nil, nil }, managers: none,
			edit: func(ev *PruneEvidence, id int64) {
				ev.FirstSeen[id] = Sighting{GitLab: *ago(3 * day), Local: *ago(3 * day)}
			}, want: PruneAgeUnknown},
		{name: "contacted yesterday", runner: func(r *gitlab.Runner) { r.ContactedAt = ago(day) }, managers: none, want: PruneContacted},
		{name: "contacted yesterday, no created_at (GitLab before 18.x)", runner: func(r *gitlab.Runner) { r.ContactedAt, r.CreatedAt = ago(day), nil }, managers: none, want: PruneContacted},
		{name: "contacted 30 days ago, no created_at", runner: func(r *gitlab.Runner) { r.CreatedAt = nil }, managers: none, want: PruneIdle},
		{name: "created an hour ago, never contacted", runner: func(r *gitlab.Runner) { r.ContactedAt, r.CreatedAt = nil, ago(time.Hour) }, managers: none, want: PruneContacted},
		{name: "manager seen 2 days ago", runner: keep, managers: []gitlab.Manager{{SystemID: "s_1", ContactedAt: ago(2 * day)}}, want: PruneManaged},
		{name: "manager created minutes ago (verify of a new runner sets no contacted_at)", runner: func(r *gitlab.Runner) { r.ContactedAt, r.CreatedAt = nil, nil },
			managers: []gitlab.Manager{{SystemID: "s_1", CreatedAt: ago(10 * time.Minute)}}, want: PruneManaged},
		{name: "clocks 2 hours apart", runner: keep, managers: none, edit: func(ev *PruneEvidence, id int64) { ev.GitLabNow = pruneNow.Add(2 * time.Hour) }, want: PruneClockSkew},
		{name: "GitLab sent no Date", runner: keep, managers: none, edit: func(ev *PruneEvidence, id int64) { ev.GitLabNow = time.Time{} }, want: PruneClockSkew},
		{name: "idle", runner: keep, managers: []gitlab.Manager{{SystemID: "s_1", ContactedAt: ago(8 * day)}}, want: PruneIdle},
		{name: "idle, no managers route (GitLab 16.11)", runner: keep, edit: func(ev *PruneEvidence, id int64) { ev.NoManagersRoute = true }, want: PruneIdle},
		{name: "never contacted, first seen 8 days ago", runner: func(r *gitlab.Runner) { r.ContactedAt, r.CreatedAt = nil, nil }, managers: none,
			edit: func(ev *PruneEvidence, id int64) {
				ev.FirstSeen[id] = Sighting{GitLab: *ago(8 * day), Local: *ago(8 * day)}
			}, want: PruneIdle},
		{name: "unmarked, include_unmarked", runner: func(r *gitlab.Runner) { r.MaintenanceNote = nil }, managers: none,
			edit: func(ev *PruneEvidence, id int64) { ev.IncludeUnmarked = true }, want: PruneIdle},
	}
	reached := map[string]bool{}
	for _, c := range cases {
		d := decideOne(t, c)
		if d.Row != c.want {
			t.Errorf("%s: row %q (%s), want %q", c.name, d.Row.Name, d.Reason, c.want.Name)
		}
		if d.Row.Delete != (c.want == PruneIdle) {
			t.Errorf("%s: delete %v", c.name, d.Row.Delete)
		}
		reached[d.Row.Name] = true
	}
	for _, r := range PruneTable {
		if !reached[r.Name] {
			t.Errorf("row %q is reached by no case", r.Name)
		}
	}
}

// The rows are tried in the table's order: evidence that meets several
// rows gets the first.
func TestPruneRowsAreTriedInOrder(t *testing.T) {
	// Reported and of another fleet and out of scope: reported.
	d := decideOne(t, pruneCase{runner: func(r *gitlab.Runner) { r.RunnerType = "group_type"; r.MaintenanceNote = note("x", "node2") }, managers: none,
		edit: func(ev *PruneEvidence, id int64) { ev.Keep[id] = true }})
	if d.Row != PruneReported {
		t.Errorf("reported, another fleet's and out of scope: %q", d.Row.Name)
	}
	// Out of scope and of another fleet: out of scope.
	d = decideOne(t, pruneCase{runner: func(r *gitlab.Runner) { r.RunnerType = "group_type"; r.MaintenanceNote = note("x", "node2") }, managers: none})
	if d.Row != PruneOutOfScope {
		t.Errorf("another fleet's and out of scope: %q", d.Row.Name)
	}
	// Skewed clocks and a recent contact: recent (it would not go anyway).
	d = decideOne(t, pruneCase{runner: func(r *gitlab.Runner) { r.ContactedAt = ago(time.Hour) }, managers: none,
		edit: func(ev *PruneEvidence, id int64) { ev.GitLabNow = pruneNow.Add(5 * day) }})
	if d.Row != PruneContacted {
		t.Errorf("recent, clocks apart: %q", d.Row.Name)
	}
}

// An age counts only when it is min_idle on both clocks: a GitLab clock
// far in the future cannot make a runner idle, nor can a controller's.
func TestIdleNeedsBothClocks(t *testing.T) {
	for _, c := range []struct {
		name            string
		gitlab, control time.Time
		want            PruneRow
	}{
		{"GitLab in 2100", time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC), pruneNow, PruneClockSkew},
		{"controller in 2100", pruneNow, time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC), PruneClockSkew},
		{"GitLab in 1990", time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC), pruneNow, PruneContacted},
		{"30 minutes apart", pruneNow.Add(30 * time.Minute), pruneNow, PruneIdle},
	} {
		d := decideOne(t, pruneCase{runner: func(r *gitlab.Runner) {}, managers: none,
			edit: func(ev *PruneEvidence, id int64) { ev.GitLabNow, ev.Now = c.gitlab, c.control }})
		if d.Row != c.want {
			t.Errorf("%s: %q (%s), want %q", c.name, d.Row.Name, d.Reason, c.want.Name)
		}
	}
}

// The scope asked for is exact: a group's own runners, not its ancestors';
// a project's own, not one shared with other projects.
func TestPruneScopeIsExact(t *testing.T) {
	group := func(ids ...int64) func(r *gitlab.Runner) {
		return func(r *gitlab.Runner) {
			r.RunnerType, r.Groups = "group_type", nil
			for _, id := range ids {
				r.Groups = append(r.Groups, gitlab.Owner{ID: id})
			}
		}
	}
	project := func(ids ...int64) func(r *gitlab.Runner) {
		return func(r *gitlab.Runner) {
			r.RunnerType, r.Projects = "project_type", nil
			for _, id := range ids {
				r.Projects = append(r.Projects, gitlab.Owner{ID: id})
			}
		}
	}
	inGroup := func(ev *PruneEvidence, id int64) { ev.Scope = PruneScope{RunnerType: "group_type", GroupID: 20} }
	inProject := func(ev *PruneEvidence, id int64) { ev.Scope = PruneScope{RunnerType: "project_type", ProjectID: 30} }
	for _, c := range []pruneCase{
		{name: "the group's own runner", runner: group(20), edit: inGroup, want: PruneIdle},
		{name: "the parent group's runner", runner: group(10), edit: inGroup, want: PruneOutOfScope},
		{name: "a group runner whose group the token cannot see", runner: group(), edit: inGroup, want: PruneOutOfScope},
		{name: "an instance runner in a group listing", runner: func(r *gitlab.Runner) {}, edit: inGroup, want: PruneOutOfScope},
		{name: "the project's own runner", runner: project(30), edit: inProject, want: PruneIdle},
		{name: "a runner of this and another project", runner: project(30, 31), edit: inProject, want: PruneOutOfScope},
		{name: "a group runner in a project listing", runner: group(20), edit: inProject, want: PruneOutOfScope},
	} {
		c.managers = none
		if d := decideOne(t, c); d.Row != c.want {
			t.Errorf("%s: %q (%s), want %q", c.name, d.Row.Name, d.Reason, c.want.Name)
		}
	}
}

// A runner listed twice (pages that shifted while listing) is decided once.
func TestRunnerListedTwiceIsDecidedOnce(t *testing.T) {
	ev := pruneEv()
	r := oldRunner()
	r.ID = 4
	ev.Details[4], ev.Managers[4] = r, none
	ev.Listed = []gitlab.Summary{{ID: 4, Description: r.Description}, {ID: 5, Description: "x"}, {ID: 4, Description: r.Description}}
	ds := Prune(ev)
	if len(ds) != 2 || ds[0].ID != 4 || ds[1].ID != 5 {
		t.Fatalf("decisions %+v, want runner 4 once, then 5", ds)
	}
}

// Runners GitLab gives no age for are flagged for the controller to
// record, whether it has seen them before or not.
func TestAgelessRunnersAreSighted(t *testing.T) {
	ageless := func(r *gitlab.Runner) { r.ContactedAt, r.CreatedAt = nil, nil }
	if d := decideOne(t, pruneCase{runner: ageless, managers: none}); !d.Sighted {
		t.Error("an ageless runner seen for the first time is not flagged for the record")
	}
	if d := decideOne(t, pruneCase{runner: func(r *gitlab.Runner) {}, managers: none}); d.Sighted {
		t.Error("a runner with an age is flagged for the record")
	}
}

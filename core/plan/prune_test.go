package plan

import (
	"regexp"
	"testing"
	"time"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/gitlab"
)

// Every row of the clean-up's table is reached, in order, by the
// evidence it names, and only "idle" deletes.
func TestPruneTableRows(t *testing.T) {
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) *time.Time { t := now.Add(-d); return &t }
	day := 24 * time.Hour
	old := gitlab.Runner{CreatedAt: ago(90 * day), ContactedAt: ago(30 * day), TagList: []string{"main"}}
	cases := []struct {
		name     string
		desc     string
		runner   *gitlab.Runner // nil: not read
		managers []gitlab.Manager
		keep     bool
		why      string // Unreadable
		want     PruneRow
	}{
		{"foreign", "team-x builder", &old, nil, false, "", PruneForeign},
		{"reported", "node1 main a Runner", &old, nil, true, "", PruneReported},
		{"host missing", "node9 main a Runner", &old, nil, false, "", PruneMissing},
		{"host missing by tag", "renamed main a Runner", &gitlab.Runner{TagList: []string{"node9"}, CreatedAt: ago(90 * day)}, nil, false, "", PruneMissing},
		{"unreadable", "node2 main a Runner", nil, nil, false, "500", PruneUnreadable},
		{"not read", "node2 main b Runner", nil, nil, false, "", PruneUnreadable},
		{"contacted", "node2 main c Runner", &gitlab.Runner{CreatedAt: ago(90 * day), ContactedAt: ago(day)}, nil, false, "", PruneContacted},
		{"created", "node2 main d Runner", &gitlab.Runner{CreatedAt: ago(time.Hour)}, nil, false, "", PruneContacted},
		{"manager seen", "node2 main e Runner", &old, []gitlab.Manager{{SystemID: "s_1", ContactedAt: ago(2 * day)}}, false, "", PruneManaged},
		{"idle", "node2 main f Runner", &old, []gitlab.Manager{{SystemID: "s_1", ContactedAt: ago(8 * day)}}, false, "", PruneIdle},
	}
	ev := PruneEvidence{Details: map[int64]gitlab.Runner{}, Managers: map[int64][]gitlab.Manager{}, Unreadable: map[int64]string{},
		Pattern: regexp.MustCompile(`^\S+ \S+ \S+ Runner$`), Keep: map[int64]bool{}, Missing: map[string]bool{"node9": true},
		MinIdle: 7 * day, Now: now}
	for i, c := range cases {
		id := int64(i + 1)
		ev.Listed = append(ev.Listed, gitlab.Summary{ID: id, Description: c.desc})
		if c.runner != nil {
			ev.Details[id] = *c.runner
		}
		if c.managers != nil {
			ev.Managers[id] = c.managers
		}
		if c.why != "" {
			ev.Unreadable[id] = c.why
		}
		ev.Keep[id] = c.keep
	}
	ds := Prune(ev)
	if len(ds) != len(cases) {
		t.Fatalf("%d decisions for %d runners", len(ds), len(cases))
	}
	for i, d := range ds {
		if d.Row != cases[i].want {
			t.Errorf("%s: row %q (%s), want %q", cases[i].name, d.Row.Name, d.Reason, cases[i].want.Name)
		}
		if d.Row.Delete != (cases[i].want == PruneIdle) {
			t.Errorf("%s: delete %v", cases[i].name, d.Row.Delete)
		}
	}
}

package plan

import (
	"slices"
	"testing"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/gitlab"
)

// The decision table's rows are tried in the table's order: evidence that
// meets several rows gets the first of them, and the table (which the
// docs show) lists them in that order.
func TestRowsAreTriedInOrder(t *testing.T) {
	cases := []struct {
		name  string
		world func() *world
		drift bool
		step  string // the executor (or removal) decided
		win   Row
		also  []Row // rows the evidence meets too, later in the table
	}{
		{name: "orphaned and drifted", drift: true, step: "a",
			world: func() *world {
				return newWorld(true, entry("a", 1), entry("b", 2)).applied(map[string]int64{"a": 1, "b": 2}).verify("a", gitlab.TokenOrphaned).alive("b")
			},
			win: RowOrphaned, also: []Row{RowDrifted}},
		{name: "rejected: its runner unreadable, another of it this host's", step: "b",
			world: func() *world {
				return newWorld(true, entry("a", 1), entry("b", 2)).alive("a").verify("b", gitlab.TokenRejected).
					with(func(ev *Evidence) { ev.Facts(ref(2)).Unreadable = "500" }).found(listed("a", 1), listed("b", 7)).mine(7)
			},
			win: RowRejectedUnreadable, also: []Row{RowRejectedFound}},
		{name: "rejected: its runner forbidden, another of it this host's", step: "b",
			world: func() *world {
				return newWorld(true, entry("a", 1), entry("b", 2)).alive("a").verify("b", gitlab.TokenRejected).
					with(func(ev *Evidence) { ev.Facts(ref(2)).Forbidden = true }).found(listed("a", 1), listed("b", 7)).mine(7)
			},
			win: RowRejectedForbidden, also: []Row{RowRejectedFound}},
		{name: "rejected: its runner this host's, another of it too", step: "b",
			world: func() *world {
				return newWorld(true, entry("a", 1), entry("b", 2)).alive("a").verify("b", gitlab.TokenRejected).exists(2).mine(2, 7).
					found(listed("a", 1), listed("b", 2), listed("b", 7))
			},
			win: RowRejectedMine, also: []Row{RowRejectedFound}},
		{name: "no token: the named runner unreadable, another of it this host's", step: "b",
			world: func() *world {
				return newWorld(true).applied(map[string]int64{"b": 2}).found(listed("a", 1), listed("b", 2), listed("b", 5)).mine(1, 5).
					with(func(ev *Evidence) { ev.Facts(ref(2)).Unreadable = "503" })
			},
			win: RowLostUnreadable, also: []Row{RowLostFound}},
		{name: "no token: the named runner this host's, a newer one too", step: "b",
			world: func() *world {
				return newWorld(true).applied(map[string]int64{"b": 2}).found(listed("a", 1), listed("b", 2), listed("b", 5)).exists(2).mine(1, 2, 5)
			},
			win: RowLostNamed, also: []Row{RowLostFound}},
		{name: "no token: the named runner this host's, the PAT may not list", step: "b",
			world: func() *world {
				return newWorld(true).applied(map[string]int64{"b": 2}).exists(2).mine(2).
					with(func(ev *Evidence) { ev.ListDenied[gl] = "needs read_api" })
			},
			win: RowLostNamed, also: []Row{RowLostMayNotList}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := tc.world()
			if tc.drift {
				w.ev.Desired.Executors[0].Paused = true
			}
			p := Build(w.ev)
			i := slices.IndexFunc(p.Steps, func(s Step) bool { return s.Name == tc.step && s.Executor != nil })
			if i < 0 {
				t.Fatalf("no step for %s: %+v", tc.step, viewOf(p))
			}
			if got := p.Steps[i].Rule; got != tc.win.Name {
				t.Fatalf("%s decided by %q, want %q (the first row it meets)", tc.step, got, tc.win.Name)
			}
			at := slices.Index(Table, tc.win)
			for _, r := range tc.also {
				if j := slices.Index(Table, r); at < 0 || j < 0 || j < at {
					t.Errorf("the table lists %q (at %d) before %q (at %d), but %q decides", r.Name, j, tc.win.Name, at, tc.win.Name)
				}
			}
		})
	}
}

package plan

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/gitlab"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/hostfs"
)

// pendingWorld: a and b served; the state file records the removal of
// runner 3 ("node1 main old Runner").
func pendingWorld(pat bool, pr hostfs.PendingRemoval) *world {
	w := newWorld(pat, entry("a", 1), entry("b", 2)).alive("a", "b")
	pr.Action, pr.Name, pr.URL, pr.ID = "delete", "old", gl, 3
	w.ev.State.Pending = []hostfs.PendingRemoval{pr}
	w.ev.Prev = MatchPrevious(w.ev.Desired, liveOf(w.ev.Prev), w.ev.State)
	return w
}

// proof is what this host records with a removal.
var proof = hostfs.PendingRemoval{SystemID: "s_this", Description: "node1 main old Runner"}

func withToken(pr hostfs.PendingRemoval) hostfs.PendingRemoval { pr.Token = "tok-3"; return pr }

// A pending removal, row by row: made only on its proof.
func TestPendingTable(t *testing.T) {
	token := func(st gitlab.TokenState, id int64) func(*Evidence) {
		return func(ev *Evidence) {
			ev.Undeclared[ref(3)] = gitlab.Verification{State: st, Creds: gitlab.Credentials{ID: id}}
		}
	}
	described := func(d string) func(*Evidence) {
		return func(ev *Evidence) { ev.Facts(ref(3)).Details = &gitlab.Runner{ID: 3, Description: d} }
	}
	step := func(row Row, via Via, faulted bool) view {
		return view{Action: row.Then, Rule: row.Name, Name: "old", ID: 3, Via: via, Faulted: faulted, FromConfig: true}
	}
	tested := map[string]bool{}
	for _, tc := range []struct {
		name  string
		world func() *world
		want  view
		notes int
	}{
		{"its token works", func() *world { return pendingWorld(true, withToken(proof)).with(token(gitlab.TokenAlive, 3)) },
			step(RowPendingToken, ByToken, false), 0},
		{"its token, GitLab silent", func() *world { return pendingWorld(true, withToken(hostfs.PendingRemoval{})) },
			step(RowPendingToken, ByToken, false), 0},
		{"its token works, another host uses the runner", func() *world {
			return pendingWorld(true, withToken(proof)).with(token(gitlab.TokenAlive, 3)).managers(3, "s_this", "s_other")
		}, step(RowPendingShared, ByToken, false), 0},
		{"its token works, its managers unreadable: whether another host uses it is unknown", func() *world {
			return pendingWorld(true, withToken(proof)).with(token(gitlab.TokenAlive, 3)).with(func(ev *Evidence) { ev.Facts(ref(3)).Unreadable = "502" })
		}, step(RowPendingUnknown, ByToken, true), 0},
		{"a token that works, of another runner", func() *world {
			return pendingWorld(true, withToken(proof)).with(token(gitlab.TokenAlive, 9))
		}, step(RowPendingUnproven, Nothing, false), 1},
		{"token dead, proof borne out", func() *world {
			return pendingWorld(true, withToken(proof)).with(token(gitlab.TokenRejected, 0)).with(described("node1 main old Runner")).mine(3)
		}, step(RowPendingProven, ByID, false), 0},
		{"no token, proof borne out", func() *world {
			return pendingWorld(true, proof).with(described("node1 main old Runner")).mine(3)
		}, step(RowPendingProven, ByID, false), 0},
		{"no token, gone", func() *world {
			return pendingWorld(true, proof).with(func(ev *Evidence) { ev.Facts(ref(3)).Gone = true })
		},
			step(RowPendingGone, Nothing, false), 0},
		{"no token, unreadable", func() *world {
			return pendingWorld(true, proof).with(func(ev *Evidence) { ev.Facts(ref(3)).Unreadable = "502" })
		}, step(RowPendingUnknown, ByID, true), 0},
		{"no token, forbidden", func() *world {
			return pendingWorld(true, proof).with(func(ev *Evidence) { ev.Facts(ref(3)).Forbidden = true })
		}, step(RowPendingUnknown, ByID, true), 0},
		{"an id alone", func() *world {
			return pendingWorld(true, hostfs.PendingRemoval{}).with(described("team-b build Runner")).managers(3)
		}, step(RowPendingUnproven, Nothing, false), 1},
		{"another description", func() *world {
			return pendingWorld(true, proof).with(described("team-b build Runner")).mine(3)
		}, step(RowPendingUnproven, Nothing, false), 1},
		{"no manager of this host", func() *world {
			return pendingWorld(true, proof).with(described("node1 main old Runner")).managers(3)
		}, step(RowPendingUnproven, Nothing, false), 1},
		{"recorded by another system id", func() *world {
			pr := proof
			pr.SystemID = "s_old"
			return pendingWorld(true, pr).with(described("node1 main old Runner")).mine(3)
		}, step(RowPendingUnproven, Nothing, false), 1},
		{"another host uses it", func() *world {
			return pendingWorld(true, proof).with(described("node1 main old Runner")).managers(3, "s_this", "s_other")
		}, step(RowPendingUnproven, Nothing, false), 1},
		{"no personal access token to read it", func() *world { return pendingWorld(false, proof) },
			step(RowPendingUnproven, Nothing, false), 1},
	} {
		tested[tc.want.Rule] = true
		t.Run(tc.name, func(t *testing.T) {
			p := Build(tc.world().ev)
			if d := cmp.Diff([]view{keep("a", 1), keep("b", 2), tc.want}, viewOf(p)); d != "" {
				t.Fatalf("plan (-want +got):\n%s", d)
			}
			if len(p.Left) != tc.notes {
				t.Fatalf("left behind %+v, want %d named", p.Left, tc.notes)
			}
		})
	}
	for _, r := range PendingTable {
		if !tested[r.Name] {
			t.Errorf("no case above expects the row %q", r.Name)
		}
	}
}

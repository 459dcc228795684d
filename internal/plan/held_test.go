package plan

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/config"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/gitlab"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/hostfs"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/table"
)

// heldWorld: executors a and b served, aa declared but its file invalid
// (skipped), each with an entry in the config.
func heldWorld() *world {
	ev := NewEvidence()
	ev.Desired, ev.SystemID, ev.Now = fixture(true), "s_this", now
	ev.Desired.Skipped = []config.Skipped{{Name: "aa", File: "main/aa.toml", Reason: config.SkipInvalid}}
	var live []hostfs.LiveRunner
	for _, e := range []hostfs.LiveRunner{entry("a", 1), entry("aa", 3), entry("b", 2)} {
		e.Table = table.New()
		e.Table.Set("name", e.Name)
		live = append(live, e)
	}
	ev.Prev = MatchPrevious(ev.Desired, &hostfs.LiveConfig{Exists: true, Runners: live}, ev.State)
	w := &world{ev}
	return w.applied(map[string]int64{"a": 1, "b": 2}).alive("a", "b")
}

func held(rule string, a Action) view {
	return view{Action: a, Rule: rule, Name: "aa", ID: 3, Via: Nothing, FromConfig: true, Unverified: rule == RowHeldUnverified.Name}
}

// The last good entry of an executor whose file is invalid, row by row:
// verified like any token, in its place among the executors (name order),
// forgotten when GitLab rejects its token.
func TestHeldTable(t *testing.T) {
	tested := map[string]bool{}
	for _, tc := range []struct {
		name   string
		answer *gitlab.Verification
		want   view
	}{
		{"token verified", &gitlab.Verification{State: gitlab.TokenAlive}, held(RowHeldVerified.Name, Keep)},
		{"orphaned, as for any executor", &gitlab.Verification{State: gitlab.TokenOrphaned}, held(RowHeldVerified.Name, Keep)},
		{"token rejected", &gitlab.Verification{State: gitlab.TokenRejected}, held(RowHeldRejected.Name, Forget)},
		{"GitLab did not answer", nil, held(RowHeldUnverified.Name, Keep)},
	} {
		tested[tc.want.Rule] = true
		t.Run(tc.name, func(t *testing.T) {
			w := heldWorld()
			if tc.answer != nil {
				w.ev.HeldVerified["aa"] = *tc.answer
			}
			p := Build(w.ev)
			if d := cmp.Diff([]view{keep("a", 1), tc.want, keep("b", 2)}, viewOf(p)); d != "" {
				t.Fatalf("plan (-want +got):\n%s", d)
			}
			if !p.Steps[1].Held || p.Steps[1].Reason == "" {
				t.Fatalf("step %+v: want a held step with a reason", p.Steps[1])
			}
			// The config lists the entries in name order; a forgotten one
			// is not written.
			var names []string
			for _, s := range Sections(w.ev.Prev, p, p.Predict(), nil, nil) {
				names = append(names, s.Name)
			}
			want := []string{"node1 main a Runner", "node1 main aa Runner", "node1 main b Runner"}
			if tc.want.Action == Forget {
				want = []string{"node1 main a Runner", "node1 main b Runner"}
			}
			if d := cmp.Diff(want, names); d != "" {
				t.Fatalf("sections (-want +got):\n%s", d)
			}
		})
	}
	// A degraded start keeps it as it keeps every token: unverified.
	w := heldWorld()
	w.ev.HeldVerified["aa"] = gitlab.Verification{State: gitlab.TokenRejected}
	if d := cmp.Diff([]view{
		{Action: Keep, Rule: "degraded", Name: "a", ID: 1, Unverified: true, FromConfig: true, Declared: true},
		{Action: Keep, Rule: "degraded", Name: "aa", ID: 3, Via: Nothing, Unverified: true, FromConfig: true},
		{Action: Keep, Rule: "degraded", Name: "b", ID: 2, Unverified: true, FromConfig: true, Declared: true},
	}, viewOf(KeepUnverified(w.ev))); d != "" {
		t.Fatalf("degraded plan (-want +got):\n%s", d)
	}
	for _, r := range HeldTable {
		if !tested[r.Name] {
			t.Errorf("no case above expects the row %q", r.Name)
		}
	}
}

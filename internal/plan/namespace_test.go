package plan

import "testing"

// A cached group or project id is verified only when a runner would be
// registered in it.
func TestNamespacesToVerify(t *testing.T) {
	cached := []CachedNamespace{{Key: "group https://gl ops/ci", ClientKey: gl, Kind: "group", Path: "ops/ci", ID: 77},
		{Key: "project https://gl ops/app", ClientKey: gl, Kind: "project", Path: "ops/app", ID: 9}}
	w := newWorld(true)
	for _, e := range w.ev.Desired.Executors {
		e.RunnerType, e.GroupID = "group_type", 77
	}
	p := Build(w.ev) // two creates in group 77
	if got := NamespacesToVerify(p, cached); len(got) != 1 || got[0].ID != 77 {
		t.Fatalf("creates in group 77: verify %+v", got)
	}
	w = newWorld(true, entry("a", 1), entry("b", 2)).applied(map[string]int64{"a": 1, "b": 2}).alive("a", "b")
	for _, e := range w.ev.Desired.Executors {
		e.RunnerType, e.GroupID = "group_type", 77
	}
	if got := NamespacesToVerify(Build(w.ev), cached); len(got) != 0 {
		t.Fatalf("steady state: verify %+v, want nothing", got)
	}
	if !SameNamespace("ops/CI", "ops/ci") || SameNamespace("ops/ci", "team-b/ci") || SameNamespace("ops/ci", "") {
		t.Fatal("SameNamespace")
	}
}

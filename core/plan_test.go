package core

import (
	"fmt"
	"testing"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/gitlab"
)

// planFixture: host node1, instance main, executors a and b on one GitLab.
func planFixture(pat bool) *Desired {
	c := &ClientConfig{URL: "https://gl", Key: "https://gl", RegistrationToken: "reg"}
	if pat {
		c.PAT = "pat"
	}
	d := &Desired{Layout: Layout{Prefix: "/p", Instance: "main"}, Hostname: "node1", Clients: []*ClientConfig{c}}
	for _, n := range []string{"a", "b"} {
		e := &Executor{Name: n, Client: c, Type: "shell", Description: DefaultDescription("node1", "main", n),
			AccessLevel: "not_protected", RunnerType: "instance_type", Tags: []string{"main", "node1"}}
		d.Executors = append(d.Executors, e)
	}
	return d
}

func live(entries ...LiveRunner) *LiveConfig { return &LiveConfig{Exists: true, Runners: entries} }

func lr(name string, id int64) LiveRunner {
	return LiveRunner{Name: DefaultDescription("node1", "main", name), URL: "https://gl", ID: id, Token: fmt.Sprintf("tok-%d", id)}
}

func summary(name string, id int64) gitlab.Summary {
	return gitlab.Summary{ID: id, Description: DefaultDescription("node1", "main", name)}
}

func stateWith(d *Desired, ids map[string]int64) *State {
	st := &State{Version: 1, Runners: map[string]StateRunner{}}
	for _, e := range d.Executors {
		if id, ok := ids[e.Name]; ok {
			s := e.Settings()
			st.Runners[e.Name] = StateRunner{ID: id, URL: "https://gl", Applied: &s}
		}
	}
	return st
}

func actions(p Plan) string {
	var s string
	for _, st := range p.Steps {
		s += fmt.Sprintf("%s:%s:%d ", st.Action, st.Name, st.ID)
	}
	return s
}

func TestBuildPlan(t *testing.T) {
	alive := func(names ...string) map[string]VerifyOutcome {
		m := map[string]VerifyOutcome{}
		for _, n := range names {
			m[n] = VerifyOutcome{Alive: true}
		}
		return m
	}
	cases := []struct {
		name  string
		pat   bool
		live  *LiveConfig
		state map[string]int64
		obs   func(d *Desired) Observation
		drift bool
		want  string
	}{
		{name: "first run without PAT creates", live: live(), want: "create:a:0 create:b:0 "},
		{name: "first run with PAT and empty lookup creates", pat: true, live: live(),
			obs:  func(*Desired) Observation { o := newObservation(); o.Found["https://gl"] = nil; return o },
			want: "create:a:0 create:b:0 "},
		{name: "steady state keeps", live: live(lr("a", 1), lr("b", 2)), state: map[string]int64{"a": 1, "b": 2},
			obs:  func(*Desired) Observation { o := newObservation(); o.Verified = alive("a", "b"); return o },
			want: "keep:a:1 keep:b:2 "},
		{name: "undeclared entry is deleted by token", live: live(lr("a", 1), lr("b", 2), lr("old", 3)),
			state: map[string]int64{"a": 1, "b": 2},
			obs:   func(*Desired) Observation { o := newObservation(); o.Verified = alive("a", "b"); return o },
			want:  "keep:a:1 keep:b:2 delete:old:3 "},
		{name: "dead token with runner present is adopted", pat: true, live: live(lr("a", 1), lr("b", 2)),
			state: map[string]int64{"a": 1, "b": 2},
			obs: func(*Desired) Observation {
				o := newObservation()
				o.Verified = alive("a")
				o.Verified["b"] = VerifyOutcome{}
				o.Details[2] = gitlab.Runner{ID: 2}
				o.Found["https://gl"] = []gitlab.Summary{summary("a", 1), summary("b", 2)}
				return o
			},
			want: "keep:a:1 adopt:b:2 "},
		{name: "dead token with runner gone is replaced", pat: true, live: live(lr("a", 1), lr("b", 2)),
			state: map[string]int64{"a": 1, "b": 2},
			obs: func(*Desired) Observation {
				o := newObservation()
				o.Verified = alive("a")
				o.Verified["b"] = VerifyOutcome{}
				o.Found["https://gl"] = []gitlab.Summary{summary("a", 1)}
				return o
			},
			want: "keep:a:1 replace:b:0 "},
		{name: "dead token without PAT is replaced", live: live(lr("a", 1), lr("b", 2)), state: map[string]int64{"a": 1, "b": 2},
			obs: func(*Desired) Observation {
				o := newObservation()
				o.Verified = alive("a")
				o.Verified["b"] = VerifyOutcome{}
				return o
			},
			want: "keep:a:1 replace:b:0 "},
		{name: "lost config adopts and removes duplicates and leftovers", pat: true, live: live(),
			obs: func(*Desired) Observation {
				o := newObservation()
				o.Found["https://gl"] = []gitlab.Summary{summary("a", 1), summary("b", 2), summary("b", 5), summary("gone", 7),
					{ID: 9, Description: "somebody else"}}
				return o
			},
			want: "adopt:a:1 adopt:b:5 delete:b:2 delete:gone:7 "},
		{name: "state file picks the candidate to adopt", pat: true, live: live(), state: map[string]int64{"b": 2},
			obs: func(*Desired) Observation {
				o := newObservation()
				o.Found["https://gl"] = []gitlab.Summary{summary("a", 1), summary("b", 2), summary("b", 5)}
				return o
			},
			want: "adopt:a:1 adopt:b:2 delete:b:5 "},
		{name: "drift with PAT updates", pat: true, live: live(lr("a", 1), lr("b", 2)), state: map[string]int64{"a": 1, "b": 2}, drift: true,
			obs:  func(*Desired) Observation { o := newObservation(); o.Verified = alive("a", "b"); return o },
			want: "update:a:1 keep:b:2 "},
		{name: "drift without PAT re-registers", live: live(lr("a", 1), lr("b", 2)), state: map[string]int64{"a": 1, "b": 2}, drift: true,
			obs:  func(*Desired) Observation { o := newObservation(); o.Verified = alive("a", "b"); return o },
			want: "replace:a:1 keep:b:2 "},
		{name: "unknown state without PAT keeps", live: live(lr("a", 1), lr("b", 2)),
			obs:  func(*Desired) Observation { o := newObservation(); o.Verified = alive("a", "b"); return o },
			want: "keep:a:1 keep:b:2 "},
		{name: "foreign config entries are left alone",
			live:  live(lr("a", 1), lr("b", 2), LiveRunner{Name: "hand made", URL: "https://gl", ID: 8, Token: "t8"}),
			state: map[string]int64{"a": 1, "b": 2},
			obs:   func(*Desired) Observation { o := newObservation(); o.Verified = alive("a", "b"); return o },
			want:  "keep:a:1 keep:b:2 "},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := planFixture(tc.pat)
			st := stateWith(d, tc.state)
			if tc.drift {
				d.Executors[0].Paused = true
			}
			obs := newObservation()
			if tc.obs != nil {
				obs = tc.obs(d)
			}
			prev := matchPrevious(d, tc.live, st)
			got := actions(BuildPlan(d, prev, st, obs))
			if got != tc.want {
				t.Fatalf("plan %q, want %q", got, tc.want)
			}
		})
	}
}

func TestCheckPlanIsAPureValue(t *testing.T) {
	d := planFixture(true)
	st := stateWith(d, map[string]int64{"a": 1, "b": 2})
	prev := matchPrevious(d, live(lr("a", 1), lr("b", 2)), st)
	obs := newObservation()
	obs.Verified = map[string]VerifyOutcome{"a": {Alive: true}, "b": {Alive: true}}
	p1 := actions(BuildPlan(d, prev, st, obs))
	p2 := actions(BuildPlan(d, prev, st, obs))
	if p1 != p2 || BuildPlan(d, prev, st, obs).Changed() {
		t.Fatalf("plans differ or report a change: %q %q", p1, p2)
	}
}

package core

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"sync/atomic"
	"testing"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/config"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/gitlab"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/hostfs"
)

// planFixture: host node1, instance main, executors a and b on one GitLab.
func planFixture(pat bool) *config.Desired {
	c := &config.ClientConfig{URL: "https://gl", Key: "https://gl", RegistrationToken: "reg"}
	if pat {
		c.PAT = "pat"
	}
	d := &config.Desired{Layout: hostfs.Layout{Prefix: "/p", Instance: "main"}, Hostname: "node1", Clients: []*config.ClientConfig{c}}
	for _, n := range []string{"a", "b"} {
		e := &config.Executor{Name: n, Client: c, Type: "shell", Description: config.DefaultDescription("node1", "main", n),
			AccessLevel: "not_protected", RunnerType: "instance_type", Tags: []string{"main", "node1"}}
		d.Executors = append(d.Executors, e)
	}
	return d
}

func live(entries ...hostfs.LiveRunner) *hostfs.LiveConfig {
	return &hostfs.LiveConfig{Exists: true, Runners: entries}
}

func lr(name string, id int64) hostfs.LiveRunner {
	return hostfs.LiveRunner{Name: config.DefaultDescription("node1", "main", name), URL: "https://gl", ID: id, Token: fmt.Sprintf("tok-%d", id)}
}

func summary(name string, id int64) gitlab.Summary {
	return gitlab.Summary{ID: id, Description: config.DefaultDescription("node1", "main", name)}
}

func stateWith(d *config.Desired, ids map[string]int64) *hostfs.State {
	st := &hostfs.State{Version: 1, Runners: map[string]hostfs.StateRunner{}}
	for _, e := range d.Executors {
		if id, ok := ids[e.Name]; ok {
			s := e.Settings()
			st.Runners[e.Name] = hostfs.StateRunner{ID: id, URL: "https://gl", Applied: &s}
		}
	}
	return st
}

func actions(p Plan) string {
	var s string
	for _, st := range p.Steps {
		if st.Fault != "" {
			s += "fault:"
		}
		s += fmt.Sprintf("%s:%s:%d ", st.Action, st.Name, st.ID)
	}
	return s
}

// owned records GitLab's managers for runners on https://gl.
func owned(o Observation, own Ownership, ids ...int64) Observation {
	for _, id := range ids {
		o.Owners[RunnerRef{"https://gl", id}] = own
	}
	return o
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
		live  *hostfs.LiveConfig
		state map[string]int64
		obs   func(d *config.Desired) Observation
		drift bool
		want  string
	}{
		{name: "first run without PAT creates", live: live(), want: "create:a:0 create:b:0 "},
		{name: "first run with PAT and empty lookup creates", pat: true, live: live(),
			obs:  func(*config.Desired) Observation { o := newObservation(); o.Found["https://gl"] = nil; return o },
			want: "create:a:0 create:b:0 "},
		{name: "steady state keeps", live: live(lr("a", 1), lr("b", 2)), state: map[string]int64{"a": 1, "b": 2},
			obs:  func(*config.Desired) Observation { o := newObservation(); o.Verified = alive("a", "b"); return o },
			want: "keep:a:1 keep:b:2 "},
		{name: "undeclared entry is deleted by token", live: live(lr("a", 1), lr("b", 2), lr("old", 3)),
			state: map[string]int64{"a": 1, "b": 2},
			obs:   func(*config.Desired) Observation { o := newObservation(); o.Verified = alive("a", "b"); return o },
			want:  "keep:a:1 keep:b:2 delete:old:3 "},
		{name: "dead token with runner present is adopted", pat: true, live: live(lr("a", 1), lr("b", 2)),
			state: map[string]int64{"a": 1, "b": 2},
			obs: func(*config.Desired) Observation {
				o := newObservation()
				o.Verified = alive("a")
				o.Verified["b"] = VerifyOutcome{}
				o.Details[RunnerRef{"https://gl", 2}] = gitlab.Runner{ID: 2}
				o.Found["https://gl"] = []gitlab.Summary{summary("a", 1), summary("b", 2)}
				return owned(o, OwnerThisHost, 2)
			},
			want: "keep:a:1 adopt:b:2 "},
		{name: "dead token of a runner another host uses is not reset: a new one is made", pat: true, live: live(lr("a", 1), lr("b", 2)),
			state: map[string]int64{"a": 1, "b": 2},
			obs: func(*config.Desired) Observation {
				o := newObservation()
				o.Verified = alive("a")
				o.Verified["b"] = VerifyOutcome{}
				o.Details[RunnerRef{"https://gl", 2}] = gitlab.Runner{ID: 2}
				o.Found["https://gl"] = []gitlab.Summary{summary("a", 1), summary("b", 2)}
				return owned(o, OwnerOtherHost, 2)
			},
			want: "keep:a:1 replace:b:0 "},
		{name: "dead token and a runner the token may not read: no duplicate", pat: true, live: live(lr("a", 1), lr("b", 2)),
			state: map[string]int64{"a": 1, "b": 2},
			obs: func(*config.Desired) Observation {
				o := newObservation()
				o.Verified = alive("a")
				o.Verified["b"] = VerifyOutcome{}
				o.Forbidden[RunnerRef{"https://gl", 2}] = true
				return o
			},
			want: "keep:a:1 fault:replace:b:2 "},
		{name: "orphaned runner fails alone", live: live(lr("a", 1), lr("b", 2)), state: map[string]int64{"a": 1, "b": 2},
			obs: func(*config.Desired) Observation {
				o := newObservation()
				o.Verified = alive("a")
				o.Verified["b"] = VerifyOutcome{Orphaned: true}
				return o
			},
			want: "keep:a:1 fault:keep:b:2 "},
		{name: "no token and a token that may not list: no duplicate", pat: true, live: live(),
			obs: func(*config.Desired) Observation {
				o := newObservation()
				o.ListForbidden["https://gl"] = "needs read_api"
				return o
			},
			want: "fault:create:a:0 fault:create:b:0 "},
		{name: "dead token with runner gone is replaced", pat: true, live: live(lr("a", 1), lr("b", 2)),
			state: map[string]int64{"a": 1, "b": 2},
			obs: func(*config.Desired) Observation {
				o := newObservation()
				o.Verified = alive("a")
				o.Verified["b"] = VerifyOutcome{}
				o.Found["https://gl"] = []gitlab.Summary{summary("a", 1)}
				return o
			},
			want: "keep:a:1 replace:b:0 "},
		{name: "dead token without PAT is replaced", live: live(lr("a", 1), lr("b", 2)), state: map[string]int64{"a": 1, "b": 2},
			obs: func(*config.Desired) Observation {
				o := newObservation()
				o.Verified = alive("a")
				o.Verified["b"] = VerifyOutcome{}
				return o
			},
			want: "keep:a:1 replace:b:0 "},
		{name: "lost config adopts and removes duplicates and leftovers", pat: true, live: live(),
			obs: func(*config.Desired) Observation {
				o := newObservation()
				o.Found["https://gl"] = []gitlab.Summary{summary("a", 1), summary("b", 2), summary("b", 5), summary("gone", 7),
					{ID: 9, Description: "somebody else"}}
				return owned(o, OwnerThisHost, 1, 2, 5, 7)
			},
			want: "adopt:a:1 adopt:b:5 delete:b:2 delete:gone:7 "},
		{name: "lost config: runners with this identity but another host's managers are left alone", pat: true, live: live(),
			obs: func(*config.Desired) Observation {
				o := newObservation()
				o.Found["https://gl"] = []gitlab.Summary{summary("a", 1), summary("b", 2), summary("gone", 7)}
				return owned(o, OwnerOtherHost, 1, 2, 7)
			},
			want: "create:a:0 create:b:0 "},
		{name: "runners no host ever used are left alone", pat: true, live: live(),
			obs: func(*config.Desired) Observation {
				o := newObservation()
				o.Found["https://gl"] = []gitlab.Summary{summary("a", 1), summary("gone", 7)}
				return owned(o, OwnerNone, 1, 7)
			},
			want: "create:a:0 create:b:0 "},
		{name: "after an interrupted run, runners no host used yet are its own", pat: true, live: live(),
			obs: func(*config.Desired) Observation {
				o := newObservation()
				o.Interrupted = true
				o.Found["https://gl"] = []gitlab.Summary{summary("a", 1), summary("gone", 7)}
				return owned(o, OwnerNone, 1, 7)
			},
			want: "adopt:a:1 create:b:0 delete:gone:7 "},
		{name: "state file picks the candidate to adopt", pat: true, live: live(), state: map[string]int64{"b": 2},
			obs: func(*config.Desired) Observation {
				o := newObservation()
				o.Found["https://gl"] = []gitlab.Summary{summary("a", 1), summary("b", 2), summary("b", 5)}
				return owned(o, OwnerThisHost, 1, 2, 5)
			},
			want: "adopt:a:1 adopt:b:2 delete:b:5 "},
		{name: "drift with PAT updates", pat: true, live: live(lr("a", 1), lr("b", 2)), state: map[string]int64{"a": 1, "b": 2}, drift: true,
			obs:  func(*config.Desired) Observation { o := newObservation(); o.Verified = alive("a", "b"); return o },
			want: "update:a:1 keep:b:2 "},
		{name: "drift without PAT re-registers", live: live(lr("a", 1), lr("b", 2)), state: map[string]int64{"a": 1, "b": 2}, drift: true,
			obs:  func(*config.Desired) Observation { o := newObservation(); o.Verified = alive("a", "b"); return o },
			want: "replace:a:1 keep:b:2 "},
		{name: "unknown state without PAT keeps", live: live(lr("a", 1), lr("b", 2)),
			obs:  func(*config.Desired) Observation { o := newObservation(); o.Verified = alive("a", "b"); return o },
			want: "keep:a:1 keep:b:2 "},
		{name: "foreign config entries are left alone",
			live:  live(lr("a", 1), lr("b", 2), hostfs.LiveRunner{Name: "hand made", URL: "https://gl", ID: 8, Token: "t8"}),
			state: map[string]int64{"a": 1, "b": 2},
			obs:   func(*config.Desired) Observation { o := newObservation(); o.Verified = alive("a", "b"); return o },
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

// Runner ids are numbered per GitLab: the same id on two GitLabs is two
// runners, and deleting one never skips the other.
func TestRunnerIdsAreScopedByGitLab(t *testing.T) {
	d := planFixture(true)
	other := &config.ClientConfig{URL: "https://gl2", Key: "https://gl2", PAT: "pat2"}
	d.Clients = append(d.Clients, other)
	d.Executors[1].Client = other
	st := &hostfs.State{Version: 1, Runners: map[string]hostfs.StateRunner{}}
	lb := lr("b", 1)
	lb.URL = "https://gl2"
	prev := matchPrevious(d, live(lr("a", 1), lb), st)
	obs := newObservation()
	obs.Verified = map[string]VerifyOutcome{"a": {Alive: true, Creds: gitlab.Credentials{ID: 1}}, "b": {}}
	obs.Details[RunnerRef{"https://gl2", 1}] = gitlab.Runner{ID: 1}
	obs.Owners[RunnerRef{"https://gl2", 1}] = OwnerThisHost
	if got := actions(BuildPlan(d, prev, st, obs)); got != "keep:a:1 adopt:b:1 " {
		t.Fatalf("plan %q", got)
	}
	// Undeclared runners with id 1 on both GitLabs are both deleted.
	d.Executors = nil
	prev = matchPrevious(d, live(lr("a", 1), lb), st)
	p := BuildPlan(d, prev, st, newObservation())
	if got := actions(p); got != "delete:a:1 delete:b:1 " || p.Steps[0].ClientKey == p.Steps[1].ClientKey {
		t.Fatalf("plan %q", got)
	}
}

// TestBuildPlanIsAPureFunction: BuildPlan reads its inputs and nothing
// else. It leaves every input as it found it (compared with a twin built
// the same way), sends no request to the GitLab its clients name and writes
// nothing under the prefix, and the same inputs give the same plan.
func TestBuildPlanIsAPureFunction(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusTeapot)
	}))
	defer srv.Close()
	prefix := t.TempDir()
	// Inputs that take every branch: keep, update (drift), adopt (dead
	// token, runner found), delete (a leftover and a duplicate).
	inputs := func() (*config.Desired, Previous, *hostfs.State, Observation) {
		d := planFixture(true)
		d.Layout.Prefix = prefix
		d.Clients[0].URL = srv.URL
		d.Executors = append(d.Executors, &config.Executor{Name: "c", Client: d.Clients[0], Type: "shell",
			Description: config.DefaultDescription("node1", "main", "c"), AccessLevel: "not_protected", RunnerType: "instance_type",
			Tags: []string{"main", "node1"}})
		st := stateWith(d, map[string]int64{"a": 1, "b": 2, "c": 3})
		d.Executors[2].Paused = true
		prev := matchPrevious(d, live(lr("a", 1), lr("b", 2), lr("c", 3), lr("old", 4)), st)
		obs := newObservation()
		obs.Verified = map[string]VerifyOutcome{"a": {Alive: true}, "b": {}, "c": {Alive: true}}
		obs.Details[RunnerRef{"https://gl", 2}] = gitlab.Runner{ID: 2}
		obs.Found["https://gl"] = []gitlab.Summary{summary("a", 1), summary("b", 2), summary("b", 6), summary("c", 3), summary("old", 4)}
		return d, prev, st, owned(obs, OwnerThisHost, 2, 6)
	}
	d, prev, st, obs := inputs()
	p1 := actions(BuildPlan(d, prev, st, obs))
	if want := "keep:a:1 adopt:b:2 update:c:3 delete:b:6 delete:old:4 "; p1 != want {
		t.Fatalf("plan %q, want %q", p1, want)
	}
	d2, prev2, st2, obs2 := inputs()
	if !reflect.DeepEqual(d, d2) || !reflect.DeepEqual(prev, prev2) || !reflect.DeepEqual(st, st2) || !reflect.DeepEqual(obs, obs2) {
		t.Fatal("BuildPlan changed its inputs")
	}
	if p2 := actions(BuildPlan(d, prev, st, obs)); p2 != p1 {
		t.Fatalf("the same inputs gave another plan: %q, then %q", p1, p2)
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("BuildPlan sent %d requests", n)
	}
	if es, err := os.ReadDir(prefix); err != nil || len(es) != 0 {
		t.Fatalf("BuildPlan wrote under the prefix: %v %v", es, err)
	}

	// A steady state plans no change.
	steady := planFixture(true)
	sst := stateWith(steady, map[string]int64{"a": 1, "b": 2})
	sobs := newObservation()
	sobs.Verified = map[string]VerifyOutcome{"a": {Alive: true}, "b": {Alive: true}}
	if p := BuildPlan(steady, matchPrevious(steady, live(lr("a", 1), lr("b", 2)), sst), sst, sobs); p.Changed() {
		t.Fatalf("steady state plans a change: %q", actions(p))
	}
}

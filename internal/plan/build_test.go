package plan

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/config"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/fleet"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/gitlab"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/hostfs"
)

const gl = "https://gl"

// fixture: host node1 (system id s_this), instance main, executors a and
// b on one GitLab, with a PAT or only a registration token.
func fixture(pat bool) *config.Desired {
	c := &config.ClientConfig{URL: gl, Key: gl, RegistrationToken: "reg"}
	if pat {
		c.PAT = "pat"
	}
	d := &config.Desired{Layout: hostfs.Layout{Prefix: "/p", Instance: "main"}, Hostname: "node1", Clients: []*config.ClientConfig{c}}
	for _, n := range []string{"a", "b"} {
		d.Executors = append(d.Executors, &config.Executor{Name: n, Client: c, Type: "shell", Description: config.DefaultDescription("node1", "main", n),
			AccessLevel: "not_protected", RunnerType: "instance_type", Tags: []string{"main", "node1"}})
	}
	return d
}

func entry(name string, id int64) hostfs.LiveRunner {
	return hostfs.LiveRunner{Name: config.DefaultDescription("node1", "main", name), URL: gl, ID: id, Token: fmt.Sprintf("tok-%d", id)}
}

func listed(name string, id int64) gitlab.Summary {
	return gitlab.Summary{ID: id, Description: config.DefaultDescription("node1", "main", name)}
}

func ref(id int64) Ref { return Ref{gl, id} }

// world builds evidence step by step.
type world struct {
	ev Evidence
}

// now is the time every world's evidence was gathered.
var now = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

func newWorld(pat bool, entries ...hostfs.LiveRunner) *world {
	ev := NewEvidence()
	ev.Desired, ev.SystemID, ev.Now = fixture(pat), "s_this", now
	ev.Prev = MatchPrevious(ev.Desired, &hostfs.LiveConfig{Exists: true, Runners: entries}, ev.State)
	return &world{ev}
}

// applied records in the state file that GitLab holds the declared settings.
func (w *world) applied(ids map[string]int64) *world {
	for _, e := range w.ev.Desired.Executors {
		if id, ok := ids[e.Name]; ok {
			s := e.Settings()
			w.ev.State.Runners[e.Name] = hostfs.StateRunner{ID: id, URL: gl, Applied: &s}
		}
	}
	w.ev.Prev = MatchPrevious(w.ev.Desired, liveOf(w.ev.Prev), w.ev.State)
	return w
}

func liveOf(p Previous) *hostfs.LiveConfig {
	lc := &hostfs.LiveConfig{Exists: true}
	for _, r := range p.ByName {
		lc.Runners = append(lc.Runners, *r)
	}
	for _, o := range p.Owned {
		lc.Runners = append(lc.Runners, o.Runner)
	}
	for _, h := range p.Held {
		lc.Runners = append(lc.Runners, h.Runner)
	}
	lc.Runners = append(lc.Runners, p.Foreign...)
	return lc
}

func (w *world) verify(name string, st gitlab.TokenState) *world {
	w.ev.Verified[name] = gitlab.Verification{State: st}
	return w
}

func (w *world) alive(names ...string) *world {
	for _, n := range names {
		w.verify(n, gitlab.TokenAlive)
	}
	return w
}

func (w *world) found(s ...gitlab.Summary) *world {
	w.ev.Found[gl] = append(w.ev.Found[gl], s...)
	return w
}

func (w *world) exists(id int64) *world {
	w.ev.Facts(ref(id)).Details = &gitlab.Runner{ID: id}
	return w
}

// managers records the runner's managers, each seen an hour ago.
func (w *world) managers(id int64, systemIDs ...string) *world {
	return w.managersSeen(id, now.Add(-time.Hour), systemIDs...)
}

// managersSeen records managers last seen at the given time.
func (w *world) managersSeen(id int64, seen time.Time, systemIDs ...string) *world {
	f := w.ev.Facts(ref(id))
	f.ManagersRead = true
	f.Managers = []gitlab.Manager{}
	for i, s := range systemIDs {
		t := seen
		f.Managers = append(f.Managers, gitlab.Manager{ID: int64(i + 1), SystemID: s, ContactedAt: &t})
	}
	return w
}

// lastContact records the runner's own last contact (its details).
func (w *world) lastContact(id int64, t time.Time) *world {
	f := w.ev.Facts(ref(id))
	if f.Details == nil {
		f.Details = &gitlab.Runner{ID: id}
	}
	f.Details.ContactedAt = &t
	return w
}

func (w *world) mine(ids ...int64) *world {
	for _, id := range ids {
		w.managers(id, "s_this")
	}
	return w
}

func (w *world) with(f func(ev *Evidence)) *world {
	f(&w.ev)
	return w
}

// view is a step as the tests compare it: every field that decides what
// is sent and written, with the messages reduced to whether there is one.
type view struct {
	Action           Action
	Rule             string
	Name             string
	ID               int64
	Via              Via
	DeleteOld        bool
	UpdateAfterAdopt bool
	Faulted          bool
	Unverified       bool
	FromConfig       bool // Prev set
	Declared         bool // Executor set
	HasHave          bool
	HasVerified      bool
}

func viewOf(p Plan) []view {
	out := []view{}
	for _, s := range p.Steps {
		out = append(out, view{s.Action, s.Rule, s.Name, s.ID, s.Via, s.DeleteOld, s.UpdateAfterAdopt, s.Fault != "", s.Unverified,
			s.Prev != nil, s.Executor != nil, s.Have != nil, s.Verified != nil})
	}
	return out
}

// kept, etc. build the expected views.
func keep(name string, id int64) view {
	return view{Action: Keep, Rule: RowVerified.Name, Name: name, ID: id, FromConfig: true, Declared: true, HasVerified: true}
}

type decisionCase struct {
	name  string
	world func() *world
	drift bool // a's declared settings differ from what GitLab holds
	want  []view
	notes int
}

var decisionCases = []decisionCase{
	{name: "verified: steady state keeps",
		world: func() *world {
			return newWorld(true, entry("a", 1), entry("b", 2)).applied(map[string]int64{"a": 1, "b": 2}).alive("a", "b")
		},
		want: []view{keep("a", 1), keep("b", 2)}},
	{name: "verified: settings last applied unknown keeps",
		world: func() *world { return newWorld(false, entry("a", 1), entry("b", 2)).alive("a", "b") },
		want:  []view{keep("a", 1), keep("b", 2)}},
	{name: "orphaned fails alone",
		world: func() *world {
			return newWorld(true, entry("a", 1), entry("b", 2)).applied(map[string]int64{"a": 1, "b": 2}).alive("a").verify("b", gitlab.TokenOrphaned)
		},
		want: []view{keep("a", 1), {Action: Keep, Rule: RowOrphaned.Name, Name: "b", ID: 2, Faulted: true, FromConfig: true, Declared: true}}},
	{name: "drifted with a PAT updates", drift: true,
		world: func() *world {
			return newWorld(true, entry("a", 1), entry("b", 2)).applied(map[string]int64{"a": 1, "b": 2}).alive("a", "b")
		},
		want: []view{{Action: Update, Rule: RowDrifted.Name, Name: "a", ID: 1, FromConfig: true, Declared: true, HasHave: true, HasVerified: true}, keep("b", 2)}},
	{name: "drifted with a PAT that may not manage runners fails alone", drift: true,
		world: func() *world {
			return newWorld(true, entry("a", 1), entry("b", 2)).applied(map[string]int64{"a": 1, "b": 2}).alive("a", "b").
				with(func(ev *Evidence) {
					ev.Tokens[gl] = Capabilities{Known: true, Scopes: []string{"create_runner", "read_api"}}
				})
		},
		want: []view{{Action: Update, Rule: RowDrifted.Name, Name: "a", ID: 1, Faulted: true, FromConfig: true, Declared: true, HasHave: true, HasVerified: true}, keep("b", 2)}},
	{name: "drifted without a PAT re-registers, old one deleted after", drift: true,
		world: func() *world {
			return newWorld(false, entry("a", 1), entry("b", 2)).applied(map[string]int64{"a": 1, "b": 2}).alive("a", "b")
		},
		want: []view{{Action: Replace, Rule: RowDriftedNoPAT.Name, Name: "a", ID: 1, DeleteOld: true, FromConfig: true, Declared: true, HasVerified: true}, keep("b", 2)}},
	{name: "only the fleet's mark differs, no PAT: kept, not re-registered (the mark comes with the next update)",
		world: func() *world {
			w := newWorld(false, entry("a", 1), entry("b", 2)).applied(map[string]int64{"a": 1, "b": 2}).alive("a", "b")
			a := w.ev.State.Runners["a"]
			unmarked := *a.Applied
			unmarked.MaintenanceNote = ""
			a.Applied = &unmarked
			w.ev.State.Runners["a"] = a
			w.ev.Desired.Executors[0].Mark = fleet.Mark{Fleet: "hpc", Host: "node1", Instance: "main"}
			return w
		},
		want: []view{{Action: Keep, Rule: RowUnmarkedNoPAT.Name, Name: "a", ID: 1, FromConfig: true, Declared: true, HasVerified: true}, keep("b", 2)}},
	{name: "only the fleet's mark differs, with a PAT: one update writes it",
		world: func() *world {
			w := newWorld(true, entry("a", 1), entry("b", 2)).applied(map[string]int64{"a": 1, "b": 2}).alive("a", "b")
			w.ev.Desired.Executors[0].Mark = fleet.Mark{Fleet: "hpc", Host: "node1", Instance: "main"}
			return w
		},
		want: []view{{Action: Update, Rule: RowDrifted.Name, Name: "a", ID: 1, FromConfig: true, Declared: true, HasHave: true, HasVerified: true}, keep("b", 2)}},
	{name: "drifted without any credential that could change it keeps", drift: true,
		world: func() *world {
			w := newWorld(false, entry("a", 1), entry("b", 2)).applied(map[string]int64{"a": 1, "b": 2}).alive("a", "b")
			w.ev.Desired.Clients[0].RegistrationToken = ""
			return w
		},
		want: []view{{Action: Keep, Rule: RowDriftedNoFix.Name, Name: "a", ID: 1, FromConfig: true, Declared: true, HasVerified: true}, keep("b", 2)}},
	{name: "rejected, its runner unreadable: nothing done",
		world: func() *world {
			return newWorld(true, entry("a", 1), entry("b", 2)).alive("a").verify("b", gitlab.TokenRejected).
				with(func(ev *Evidence) { ev.Facts(ref(2)).Unreadable = "500" })
		},
		want: []view{keep("a", 1), {Action: Adopt, Rule: RowRejectedUnreadable.Name, Name: "b", ID: 2, Faulted: true, FromConfig: true, Declared: true}}},
	{name: "rejected, the PAT may not read its runner: no duplicate",
		world: func() *world {
			return newWorld(true, entry("a", 1), entry("b", 2)).alive("a").verify("b", gitlab.TokenRejected).
				with(func(ev *Evidence) { ev.Facts(ref(2)).Forbidden = true })
		},
		want: []view{keep("a", 1), {Action: Replace, Rule: RowRejectedForbidden.Name, Name: "b", ID: 2, Faulted: true, FromConfig: true, Declared: true}}},
	{name: "rejected, the runner exists and is this host's: token healed by id",
		world: func() *world {
			return newWorld(true, entry("a", 1), entry("b", 2)).alive("a").verify("b", gitlab.TokenRejected).exists(2).mine(2).
				found(listed("a", 1), listed("b", 2))
		},
		want: []view{keep("a", 1), {Action: Adopt, Rule: RowRejectedMine.Name, Name: "b", ID: 2, UpdateAfterAdopt: true, FromConfig: true, Declared: true}}},
	{name: "rejected, the runner exists but another host uses it: never reset, a new one is made, the old one named",
		world: func() *world {
			return newWorld(true, entry("a", 1), entry("b", 2)).alive("a").verify("b", gitlab.TokenRejected).exists(2).managers(2, "s_other").
				found(listed("a", 1), listed("b", 2))
		},
		want: []view{keep("a", 1), {Action: Replace, Rule: RowRejectedGone.Name, Name: "b", FromConfig: true, Declared: true}}, notes: 1},
	{name: "rejected after 10 days off: its manager gone stale (or deleted), the runner in this host's config is healed by id",
		world: func() *world {
			return newWorld(true, entry("a", 1), entry("b", 2)).verify("a", gitlab.TokenRejected).verify("b", gitlab.TokenRejected).
				exists(1).exists(2).managers(1).managersSeen(2, now.Add(-10*24*time.Hour), "s_this", "s_other").found(listed("a", 1), listed("b", 2))
		},
		want: []view{{Action: Adopt, Rule: RowRejectedMine.Name, Name: "a", ID: 1, UpdateAfterAdopt: true, FromConfig: true, Declared: true},
			{Action: Adopt, Rule: RowRejectedMine.Name, Name: "b", ID: 2, UpdateAfterAdopt: true, FromConfig: true, Declared: true}}},
	{name: "rejected on a GitLab without the managers route: the runner in this host's config is healed by id",
		world: func() *world {
			return newWorld(true, entry("a", 1), entry("b", 2)).alive("a").verify("b", gitlab.TokenRejected).exists(2).
				with(func(ev *Evidence) { ev.Facts(ref(2)).NoManagers = true })
		},
		want: []view{keep("a", 1), {Action: Adopt, Rule: RowRejectedMine.Name, Name: "b", ID: 2, UpdateAfterAdopt: true, FromConfig: true, Declared: true}}},
	{name: "rejected, another runner of it is this host's: that one adopted",
		world: func() *world {
			return newWorld(true, entry("a", 1), entry("b", 2)).alive("a").verify("b", gitlab.TokenRejected).
				found(listed("a", 1), listed("b", 7)).mine(7)
		},
		want: []view{keep("a", 1), {Action: Adopt, Rule: RowRejectedFound.Name, Name: "b", ID: 7, UpdateAfterAdopt: true, FromConfig: true, Declared: true}}},
	{name: "rejected and gone: replaced",
		world: func() *world {
			return newWorld(true, entry("a", 1), entry("b", 2)).alive("a").verify("b", gitlab.TokenRejected).found(listed("a", 1))
		},
		want: []view{keep("a", 1), {Action: Replace, Rule: RowRejectedGone.Name, Name: "b", FromConfig: true, Declared: true}}},
	{name: "rejected without a PAT: replaced, the old runner named",
		world: func() *world {
			return newWorld(false, entry("a", 1), entry("b", 2)).alive("a").verify("b", gitlab.TokenRejected)
		},
		want: []view{keep("a", 1), {Action: Replace, Rule: RowRejectedGone.Name, Name: "b", FromConfig: true, Declared: true}}, notes: 1},
	{name: "rejected, replacing needs create_runner the PAT lacks: fails alone",
		world: func() *world {
			w := newWorld(true, entry("a", 1), entry("b", 2)).alive("a").verify("b", gitlab.TokenRejected).found(listed("a", 1)).
				with(func(ev *Evidence) {
					ev.Tokens[gl] = Capabilities{Known: true, Scopes: []string{"read_api", "manage_runner"}}
				})
			w.ev.Desired.Clients[0].RegistrationToken = ""
			return w
		},
		want: []view{keep("a", 1), {Action: Replace, Rule: RowRejectedGone.Name, Name: "b", Faulted: true, FromConfig: true, Declared: true}}},
	{name: "no token, a runner of it unreadable: nothing done",
		world: func() *world {
			return newWorld(true).found(listed("a", 1)).with(func(ev *Evidence) { ev.Facts(ref(1)).Unreadable = "502" })
		},
		want: []view{{Action: Adopt, Rule: RowLostUnreadable.Name, Name: "a", ID: 1, Faulted: true, Declared: true},
			{Action: Create, Rule: RowNew.Name, Name: "b", Declared: true}}},
	{name: "no token and a PAT that may not list: no duplicate",
		world: func() *world {
			return newWorld(true).with(func(ev *Evidence) { ev.ListDenied[gl] = "needs read_api" })
		},
		want: []view{{Action: Create, Rule: RowLostMayNotList.Name, Name: "a", Faulted: true, Declared: true},
			{Action: Create, Rule: RowLostMayNotList.Name, Name: "b", Faulted: true, Declared: true}}},
	{name: "lost config: adopts, deletes a duplicate and a leftover, leaves another's",
		world: func() *world {
			return newWorld(true).found(listed("a", 1), listed("b", 2), listed("b", 5), listed("gone", 7), listed("theirs", 8),
				gitlab.Summary{ID: 9, Description: "somebody else"}).mine(1, 2, 5, 7).managers(8, "s_other")
		},
		want: []view{{Action: Adopt, Rule: RowLostFound.Name, Name: "a", ID: 1, UpdateAfterAdopt: true, Declared: true},
			{Action: Adopt, Rule: RowLostFound.Name, Name: "b", ID: 5, UpdateAfterAdopt: true, Declared: true},
			{Action: Delete, Rule: RowDuplicate.Name, Name: "b", ID: 2, Via: ByID},
			{Action: Delete, Rule: RowLeftover.Name, Name: "gone", ID: 7, Via: ByID}},
		notes: 1},
	{name: "lost config: the state file's id is preferred; a runner GitLab already matches is not updated",
		world: func() *world {
			w := newWorld(true).found(listed("a", 1), listed("b", 2), listed("b", 5)).mine(1, 2, 5).applied(map[string]int64{"b": 2})
			b := w.ev.Desired.Executors[1].Settings()
			w.ev.Facts(ref(2)).Details = &gitlab.Runner{ID: 2, Description: b.Description, TagList: []string{"main", "node1"}, AccessLevel: "not_protected", MaintenanceNote: &b.MaintenanceNote}
			return w
		},
		want: []view{{Action: Adopt, Rule: RowLostFound.Name, Name: "a", ID: 1, UpdateAfterAdopt: true, Declared: true},
			{Action: Adopt, Rule: RowLostNamed.Name, Name: "b", ID: 2, Declared: true},
			{Action: Delete, Rule: RowDuplicate.Name, Name: "b", ID: 5, Via: ByID}}},
	{name: "lost config, state file intact: its runners healed by id, whatever the managers say (none on GitLab 16.11)",
		world: func() *world {
			w := newWorld(true).applied(map[string]int64{"a": 1, "b": 2}).exists(1).exists(2)
			w.ev.Facts(ref(1)).NoManagers, w.ev.Facts(ref(2)).NoManagers = true, true
			return w.found(listed("a", 1), listed("b", 2))
		},
		want: []view{{Action: Adopt, Rule: RowLostNamed.Name, Name: "a", ID: 1, UpdateAfterAdopt: true, Declared: true},
			{Action: Adopt, Rule: RowLostNamed.Name, Name: "b", ID: 2, UpdateAfterAdopt: true, Declared: true}}},
	{name: "lost config, the state file's runner used by another host: not taken, a new one made",
		world: func() *world {
			return newWorld(true).applied(map[string]int64{"a": 1}).exists(1).managers(1, "s_other").found(listed("a", 1))
		},
		want:  []view{{Action: Create, Rule: RowNew.Name, Name: "a", Declared: true}, {Action: Create, Rule: RowNew.Name, Name: "b", Declared: true}},
		notes: 1},
	{name: "re-imaged after a long absence: runners with its identity nobody contacted for 30 days are taken back",
		world: func() *world {
			return newWorld(true).found(listed("a", 1), listed("b", 2), listed("gone", 3)).
				managers(1).managers(2).managersSeen(3, now.Add(-30*24*time.Hour), "s_old").
				lastContact(1, now.Add(-30*24*time.Hour)).lastContact(2, now.Add(-30*24*time.Hour)).lastContact(3, now.Add(-30*24*time.Hour))
		},
		want: []view{{Action: Adopt, Rule: RowLostFound.Name, Name: "a", ID: 1, UpdateAfterAdopt: true, Declared: true},
			{Action: Adopt, Rule: RowLostFound.Name, Name: "b", ID: 2, UpdateAfterAdopt: true, Declared: true},
			{Action: Delete, Rule: RowLeftover.Name, Name: "gone", ID: 3, Via: ByID}}},
	{name: "re-imaged within the stale window: runners contacted 2 days ago are not taken, new ones made and the old named",
		world: func() *world {
			return newWorld(true).found(listed("a", 1)).managersSeen(1, now.Add(-2*24*time.Hour), "s_old").lastContact(1, now.Add(-2*24*time.Hour))
		},
		want:  []view{{Action: Create, Rule: RowNew.Name, Name: "a", Declared: true}, {Action: Create, Rule: RowNew.Name, Name: "b", Declared: true}},
		notes: 1},
	{name: "runners nobody used are not this host's...",
		world: func() *world { return newWorld(true).found(listed("a", 1), listed("gone", 7)).managers(1).managers(7) },
		want: []view{{Action: Create, Rule: RowNew.Name, Name: "a", Declared: true},
			{Action: Create, Rule: RowNew.Name, Name: "b", Declared: true}},
		notes: 2},
	{name: "...except after an interrupted run",
		world: func() *world {
			return newWorld(true).found(listed("a", 1), listed("gone", 7)).managers(1).managers(7).with(func(ev *Evidence) { ev.Interrupted = true })
		},
		want: []view{{Action: Adopt, Rule: RowLostFound.Name, Name: "a", ID: 1, UpdateAfterAdopt: true, Declared: true},
			{Action: Create, Rule: RowNew.Name, Name: "b", Declared: true},
			{Action: Delete, Rule: RowLeftover.Name, Name: "gone", ID: 7, Via: ByID}}},
	{name: "undeclared entry whose token works is deleted by token",
		world: func() *world {
			return newWorld(true, entry("a", 1), entry("b", 2), entry("old", 3)).applied(map[string]int64{"a": 1, "b": 2}).alive("a", "b").
				with(func(ev *Evidence) { ev.Undeclared[ref(3)] = gitlab.Verification{State: gitlab.TokenAlive} })
		},
		want: []view{keep("a", 1), keep("b", 2), {Action: Delete, Rule: RowUndeclared.Name, Name: "old", ID: 3, Via: ByToken, FromConfig: true}}},
	{name: "undeclared entry GitLab did not answer for is deleted by token (its delete tries again)",
		world: func() *world {
			return newWorld(false, entry("a", 1), entry("b", 2), entry("old", 3)).alive("a", "b")
		},
		want: []view{keep("a", 1), keep("b", 2), {Action: Delete, Rule: RowUndeclared.Name, Name: "old", ID: 3, Via: ByToken, FromConfig: true}}},
	{name: "undeclared entry whose token is dead, this host's: deleted by id",
		world: func() *world {
			return newWorld(true, entry("a", 1), entry("b", 2), entry("old", 3)).alive("a", "b").mine(3).
				with(func(ev *Evidence) { ev.Undeclared[ref(3)] = gitlab.Verification{State: gitlab.TokenRejected} })
		},
		want: []view{keep("a", 1), keep("b", 2), {Action: Delete, Rule: RowUndeclaredMine.Name, Name: "old", ID: 3, Via: ByID, FromConfig: true}}},
	{name: "undeclared entry whose token is dead and runner gone: forgotten",
		world: func() *world {
			return newWorld(true, entry("a", 1), entry("b", 2), entry("old", 3)).alive("a", "b").
				with(func(ev *Evidence) {
					ev.Undeclared[ref(3)] = gitlab.Verification{State: gitlab.TokenRejected}
					ev.Facts(ref(3)).Gone = true
				})
		},
		want: []view{keep("a", 1), keep("b", 2), {Action: Forget, Rule: RowUndeclaredGone.Name, Name: "old", ID: 3, Via: Nothing, FromConfig: true}}},
	{name: "undeclared entry whose token is dead, another host uses it: forgotten, named",
		world: func() *world {
			return newWorld(true, entry("a", 1), entry("b", 2), entry("old", 3)).alive("a", "b").managers(3, "s_other").
				with(func(ev *Evidence) { ev.Undeclared[ref(3)] = gitlab.Verification{State: gitlab.TokenRejected} })
		},
		want:  []view{keep("a", 1), keep("b", 2), {Action: Forget, Rule: RowUndeclaredLeft.Name, Name: "old", ID: 3, Via: Nothing, FromConfig: true}},
		notes: 1},
	{name: "undeclared entry whose token is dead, without a PAT: forgotten, named (never reported deleted)",
		world: func() *world {
			return newWorld(false, entry("a", 1), entry("b", 2), entry("old", 3)).alive("a", "b").
				with(func(ev *Evidence) { ev.Undeclared[ref(3)] = gitlab.Verification{State: gitlab.TokenRejected} })
		},
		want:  []view{keep("a", 1), keep("b", 2), {Action: Forget, Rule: RowUndeclaredLeft.Name, Name: "old", ID: 3, Via: Nothing, FromConfig: true}},
		notes: 1},
	{name: "undeclared entry of a runner another host uses too: only this host's manager goes",
		world: func() *world {
			return newWorld(true, entry("a", 1), entry("b", 2), entry("old", 3)).alive("a", "b").managers(3, "s_this", "s_other").
				with(func(ev *Evidence) { ev.Undeclared[ref(3)] = gitlab.Verification{State: gitlab.TokenAlive} })
		},
		want: []view{keep("a", 1), keep("b", 2), {Action: Detach, Rule: RowUndeclaredShared.Name, Name: "old", ID: 3, Via: ByToken, FromConfig: true}}},
	{name: "undeclared entry whose other host's manager went stale: deleted",
		world: func() *world {
			return newWorld(true, entry("a", 1), entry("b", 2), entry("old", 3)).alive("a", "b").managersSeen(3, now.Add(-8*24*time.Hour), "s_other").
				with(func(ev *Evidence) { ev.Undeclared[ref(3)] = gitlab.Verification{State: gitlab.TokenAlive} })
		},
		want: []view{keep("a", 1), keep("b", 2), {Action: Delete, Rule: RowUndeclared.Name, Name: "old", ID: 3, Via: ByToken, FromConfig: true}}},
	{name: "entries of a config copied from another machine: forgotten, never touched, named",
		world: func() *world {
			w := newWorld(true)
			w.ev.Inherited = []hostfs.LiveRunner{entry("a", 1), entry("b", 2)}
			return w
		},
		want: []view{{Action: Create, Rule: RowNew.Name, Name: "a", Declared: true}, {Action: Create, Rule: RowNew.Name, Name: "b", Declared: true},
			{Action: Forget, Rule: RowInherited.Name, Name: "node1 main a Runner", ID: 1, Via: Nothing, FromConfig: true},
			{Action: Forget, Rule: RowInherited.Name, Name: "node1 main b Runner", ID: 2, Via: Nothing, FromConfig: true}},
		notes: 2},
	{name: "undeclared entry whose token works but whose managers cannot be read: never deleted by its token (another host may use it), stays, fails",
		world: func() *world {
			return newWorld(true, entry("a", 1), entry("b", 2), entry("old", 3)).alive("a", "b", "old").
				with(func(ev *Evidence) { ev.Facts(ref(3)).Unreadable = "503" })
		},
		want: []view{keep("a", 1), keep("b", 2), {Action: Delete, Rule: RowUndeclaredUnknown.Name, Name: "old", ID: 3, Via: ByToken, Faulted: true, FromConfig: true}}},
	{name: "undeclared entry written without its id: verify names the runner",
		world: func() *world {
			old := entry("old", 0)
			return newWorld(true, entry("a", 1), entry("b", 2), old).alive("a", "b").
				with(func(ev *Evidence) {
					ev.Undeclared[Ref{gl, 0}] = gitlab.Verification{State: gitlab.TokenAlive, Creds: gitlab.Credentials{ID: 7}}
				})
		},
		want: []view{keep("a", 1), keep("b", 2), {Action: Delete, Rule: RowUndeclared.Name, Name: "old", ID: 7, Via: ByToken, FromConfig: true}}},
	{name: "undeclared entry whose runner cannot be read: stays, fails",
		world: func() *world {
			return newWorld(true, entry("a", 1), entry("b", 2), entry("old", 3)).alive("a", "b").
				with(func(ev *Evidence) {
					ev.Undeclared[ref(3)] = gitlab.Verification{State: gitlab.TokenRejected}
					ev.Facts(ref(3)).Unreadable = "503"
				})
		},
		want: []view{keep("a", 1), keep("b", 2), {Action: Delete, Rule: RowUndeclaredUnknown.Name, Name: "old", ID: 3, Via: ByID, Faulted: true, FromConfig: true}}},
	{name: "foreign entries are left alone",
		world: func() *world {
			return newWorld(true, entry("a", 1), entry("b", 2), hostfs.LiveRunner{Name: "hand made", URL: gl, ID: 8, Token: "t8"}).
				applied(map[string]int64{"a": 1, "b": 2}).alive("a", "b")
		},
		want: []view{keep("a", 1), keep("b", 2)}},
}

func TestDecisionTable(t *testing.T) {
	for _, tc := range decisionCases {
		t.Run(tc.name, func(t *testing.T) {
			w := tc.world()
			if tc.drift {
				w.ev.Desired.Executors[0].Paused = true
			}
			p := Build(w.ev)
			if d := cmp.Diff(tc.want, viewOf(p)); d != "" {
				t.Fatalf("plan (-want +got):\n%s", d)
			}
			if len(p.Left) != tc.notes {
				t.Errorf("%d runners named as left alone, want %d: %+v", len(p.Left), tc.notes, p.Left)
			}
			for _, s := range p.Steps {
				if s.Fault == "" && s.Reason == "" {
					t.Errorf("%s %s has neither a reason nor a fault", s.Action, s.Name)
				}
			}
		})
	}
}

// Every row of the decision table is expected by some case above.
func TestEveryRowIsTested(t *testing.T) {
	tested := map[string]bool{}
	for _, tc := range decisionCases {
		for _, v := range tc.want {
			tested[v.Rule] = true
		}
		if tc.notes > 0 {
			tested[RowNotMine.Name] = true
		}
	}
	for _, r := range Table {
		if !tested[r.Name] {
			t.Errorf("no case of TestDecisionTable expects the row %q", r.Name)
		}
	}
}

// Runner ids are numbered per GitLab: the same id on two GitLabs is two
// runners, and deleting one never skips the other.
func TestRunnerIdsAreScopedByGitLab(t *testing.T) {
	w := newWorld(true)
	other := &config.ClientConfig{URL: "https://gl2", Key: "https://gl2", PAT: "pat2"}
	w.ev.Desired.Clients = append(w.ev.Desired.Clients, other)
	w.ev.Desired.Executors[1].Client = other
	lb := entry("b", 1)
	lb.URL = "https://gl2"
	w.ev.Prev = MatchPrevious(w.ev.Desired, &hostfs.LiveConfig{Runners: []hostfs.LiveRunner{entry("a", 1), lb}}, w.ev.State)
	w.alive("a").verify("b", gitlab.TokenRejected)
	w.ev.Facts(Ref{"https://gl2", 1}).Details = &gitlab.Runner{ID: 1}
	f := w.ev.Facts(Ref{"https://gl2", 1})
	f.ManagersRead, f.Managers = true, []gitlab.Manager{{ID: 1, SystemID: "s_this"}}
	p := Build(w.ev)
	if got := []string{string(p.Steps[0].Action), string(p.Steps[1].Action)}; got[0] != "keep" || got[1] != "adopt" || p.Steps[1].ClientKey != "https://gl2" {
		t.Fatalf("plan %+v", viewOf(p))
	}
	// Undeclared runners with id 1 on both GitLabs are both deleted.
	w.ev.Desired.Executors = nil
	w.ev.Prev = MatchPrevious(w.ev.Desired, &hostfs.LiveConfig{Runners: []hostfs.LiveRunner{entry("a", 1), lb}}, w.ev.State)
	p = Build(w.ev)
	if len(p.Steps) != 2 || p.Steps[0].Action != Delete || p.Steps[1].Action != Delete || p.Steps[0].ClientKey == p.Steps[1].ClientKey {
		t.Fatalf("plan %+v", viewOf(p))
	}
}

// Build reads its inputs and nothing else: it leaves them as it found
// them, and the same inputs give the same plan.
func TestBuildIsAPureFunction(t *testing.T) {
	inputs := func() Evidence {
		w := newWorld(true, entry("a", 1), entry("b", 2), entry("old", 4)).applied(map[string]int64{"a": 1, "b": 2}).
			alive("a").verify("b", gitlab.TokenRejected).exists(2).mine(2, 6).found(listed("a", 1), listed("b", 2), listed("b", 6), listed("old", 4))
		w.ev.Desired.Executors[0].Paused = true
		return w.ev
	}
	ev := inputs()
	p1 := Build(ev)
	if !reflect.DeepEqual(ev, inputs()) {
		t.Fatal("Build changed its inputs")
	}
	if d := cmp.Diff(viewOf(p1), viewOf(Build(ev))); d != "" {
		t.Fatalf("the same inputs gave another plan:\n%s", d)
	}
}

// The predicted outcomes of a plan say what a run that GitLab obeys
// achieves, and fail the steps with a fault.
func TestPredict(t *testing.T) {
	w := newWorld(true, entry("a", 1), entry("b", 2)).alive("a").verify("b", gitlab.TokenOrphaned)
	p := Build(w.ev)
	oc := p.Predict()
	if oc[0].Err != nil || oc[1].Err == nil || !oc[1].Predicted {
		t.Fatalf("outcomes %+v", oc)
	}
}

// The ownership table, row by row.
func TestOwnershipTable(t *testing.T) {
	recent, stale := now.Add(-time.Hour), now.Add(-8*24*time.Hour)
	cases := []struct {
		name            string
		named, identity bool
		interrupted     bool
		facts           RunnerFacts
		want            OwnershipRow
	}{
		{"another host seen an hour ago, even when named", true, true, false,
			RunnerFacts{ManagersRead: true, Managers: mgrs(recent, "s_other", "s_this")}, OwnOtherHost},
		{"named, its manager gone stale", true, true, false, RunnerFacts{ManagersRead: true, Managers: mgrs(stale, "s_this")}, OwnNamed},
		{"named, a <legacy> manager seen an hour ago (gitlab-runner rotated the token)", true, true, false,
			RunnerFacts{ManagersRead: true, Managers: mgrs(recent, "s_this", "<legacy>")}, OwnNamed},
		{"named, another host's manager stale", true, false, false, RunnerFacts{ManagersRead: true, Managers: mgrs(stale, "s_other")}, OwnNamed},
		{"named, no managers route", true, false, false, RunnerFacts{NoManagers: true}, OwnNamed},
		{"named, managers not read", true, false, false, RunnerFacts{}, OwnNamed},
		{"this host's manager, even stale", false, true, false, RunnerFacts{ManagersRead: true, Managers: mgrs(stale, "s_this")}, OwnManaged},
		{"no manager after an interrupted run", false, true, true, RunnerFacts{ManagersRead: true, Managers: []gitlab.Manager{}}, OwnInterrupted},
		{"no manager, nothing interrupted", false, true, false, RunnerFacts{ManagersRead: true, Managers: []gitlab.Manager{}}, OwnUnproven},
		{"idle for 8 days with this host's identity", false, true, false,
			RunnerFacts{ManagersRead: true, Managers: mgrs(stale, "s_old"), Details: &gitlab.Runner{ContactedAt: &stale}}, OwnIdle},
		{"idle, but not this host's identity", false, false, false,
			RunnerFacts{ManagersRead: true, Managers: mgrs(stale, "s_old"), Details: &gitlab.Runner{ContactedAt: &stale}}, OwnUnproven},
		{"idle on a GitLab without the managers route", false, true, false,
			RunnerFacts{NoManagers: true, Details: &gitlab.Runner{ContactedAt: &stale}}, OwnIdle},
		{"contacted an hour ago, another host's stale manager", false, true, false,
			RunnerFacts{ManagersRead: true, Managers: mgrs(stale, "s_old"), Details: &gitlab.Runner{ContactedAt: &recent}}, OwnUnproven},
		{"managers unreadable", false, true, false, RunnerFacts{Unreadable: "502"}, OwnUnproven},
	}
	seen := map[string]bool{}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ev := NewEvidence()
			ev.SystemID, ev.Now, ev.Interrupted = "s_this", now, tc.interrupted
			f := tc.facts
			ev.Runners[ref(1)] = &f
			got, why := ev.claim(ref(1), tc.named, tc.identity)
			if got != tc.want {
				t.Fatalf("row %q, want %q", got.Name, tc.want.Name)
			}
			if (got.Claim == Unproven || got.Claim == Shared) && why == "" {
				t.Error("a runner left alone without a reason")
			}
			seen[got.Name] = true
		})
	}
	for _, r := range OwnershipTable {
		if !seen[r.Name] {
			t.Errorf("no case reaches the ownership row %q", r.Name)
		}
	}
}

func mgrs(seen time.Time, systemIDs ...string) []gitlab.Manager {
	var out []gitlab.Manager
	for i, s := range systemIDs {
		t := seen
		out = append(out, gitlab.Manager{ID: int64(i + 1), SystemID: s, ContactedAt: &t})
	}
	return out
}

// The lineage table, row by row.
func TestLineageTable(t *testing.T) {
	rec := func(host, machine, hw string) hostfs.HostRecord {
		return hostfs.HostRecord{Hostname: host, Machine: machine, Hardware: hw, SystemID: "s_this"}
	}
	orig := rec("node1", "m1", "h1")
	cases := []struct {
		name     string
		recorded *hostfs.HostRecord
		now      hostfs.HostRecord
		want     LineageRow
	}{
		{"first run", nil, orig, LineageUnrecorded},
		{"same host", &orig, orig, LineageSame},
		{"same host, hardware replaced", &orig, rec("node1", "m1", "h2"), LineageSame},
		{"copied to a machine with another machine id", &orig, rec("node1", "m2", "h1"), LineageOtherMachine},
		{"copied, renamed too", &orig, rec("node2", "m2", "h2"), LineageOtherMachine},
		{"image with a fixed machine id on other hardware", &orig, rec("node2", "m1", "h2"), LineageOtherHardware},
		{"renamed", &orig, rec("node2", "m1", "h1"), LineageRenamed},
		{"renamed, hardware unreadable now", &orig, rec("node2", "m1", ""), LineageUnknownHardware},
	}
	seen := map[string]bool{}
	for _, tc := range cases {
		if got := Lineage(tc.recorded, tc.now); got != tc.want {
			t.Errorf("%s: row %q, want %q", tc.name, got.Name, tc.want.Name)
		}
		seen[tc.want.Name] = true
	}
	for _, r := range LineageTable {
		if !seen[r.Name] {
			t.Errorf("no case reaches the lineage row %q", r.Name)
		}
	}
}

package core

import (
	"fmt"
	"sort"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/gitlab"
)

// Action is what the plan does for one runner.
type Action string

// The actions of a plan.
const (
	Keep    Action = "keep"
	Create  Action = "create"
	Adopt   Action = "adopt"   // runner exists in GitLab; a new token is obtained by reset
	Replace Action = "replace" // the old runner is unusable; a new one is created
	Update  Action = "update"  // server-side settings drifted
	Delete  Action = "delete"
)

// Past tense for output lines.
func (a Action) Past() string {
	switch a {
	case Keep:
		return "kept"
	case Create:
		return "created"
	case Adopt:
		return "adopted"
	case Replace:
		return "replaced"
	case Update:
		return "updated"
	case Delete:
		return "deleted"
	}
	return string(a)
}

// Step is one entry of a plan.
type Step struct {
	Action Action
	// Name is the executor name (for deletes: the name the runner carried).
	Name string
	// Executor is the declared executor (nil for deletes).
	Executor *Executor
	// ClientKey is the normalised GitLab URL the step talks to.
	ClientKey string
	URL       string
	// ID is the runner this step acts on (0 for create).
	ID int64
	// Prev is the runner's entry in the live config, if any.
	Prev *LiveRunner
	// ByToken deletes with the runner's token; otherwise by id with the PAT.
	ByToken bool
	// DeleteOld makes a replace remove the old runner (by token) first.
	DeleteOld bool
	// UpdateAfterAdopt sends the desired settings after an adopt.
	UpdateAfterAdopt bool
	// Verified is GitLab's answer to verify (keep/update): its token expiry
	// is the one gitlab-runner needs to rotate in time.
	Verified *gitlab.Credentials
	// Unverified: a keep made without asking GitLab (degraded start).
	Unverified bool
	Settings   gitlab.Settings
	Reason     string
}

// Plan is the list of steps a sync carries out.
type Plan struct {
	Steps []Step
}

// Changed reports whether the plan does anything to GitLab.
func (p Plan) Changed() bool {
	for _, s := range p.Steps {
		if s.Action != Keep {
			return true
		}
	}
	return false
}

// Previous is the live config matched against the declared executors.
type Previous struct {
	// ByName holds the live entry of each declared executor.
	ByName map[string]*LiveRunner
	// Owned are entries of this host and instance that are no longer
	// declared (or moved to another GitLab, or duplicates): delete them.
	Owned []OwnedRunner
	// Foreign are entries that do not carry this host's identity: kept
	// verbatim, never touched.
	Foreign []LiveRunner
}

// OwnedRunner is a live entry to delete.
type OwnedRunner struct {
	Name   string
	Runner LiveRunner
}

// Observation is what read-only requests to GitLab found.
type Observation struct {
	// Verified holds POST /runners/verify results by executor name.
	Verified map[string]VerifyOutcome
	// Found holds the host/instance lookup per client key (only clients
	// that were looked up have an entry).
	Found map[string][]gitlab.Summary
	// Details holds GET /runners/:id results.
	Details map[int64]gitlab.Runner
}

// VerifyOutcome is one verify answer: 200 (alive) or 403 (dead).
type VerifyOutcome struct {
	Alive bool
	Creds gitlab.Credentials
}

func newObservation() Observation {
	return Observation{Verified: map[string]VerifyOutcome{}, Found: map[string][]gitlab.Summary{},
		Details: map[int64]gitlab.Runner{}}
}

// matchPrevious attributes each live [[runners]] entry to a declared
// executor, to this host and instance (to be deleted), or to nobody.
func matchPrevious(d *Desired, live *LiveConfig, st *State) Previous {
	prev := Previous{ByName: map[string]*LiveRunner{}}
	byName := map[string]*Executor{}
	byDesc := map[string]string{} // client key + description -> executor name
	for _, e := range d.Executors {
		byName[e.Name] = e
		byDesc[e.Client.Key+"\x00"+e.Description] = e.Name
	}
	type idKey struct {
		id  int64
		key string
	}
	byState := map[idKey]string{}
	for sname, sr := range st.Runners {
		sk, _ := NormalizeURL(sr.URL)
		byState[idKey{sr.ID, sk}] = sname
	}
	pat := identityPattern(d.Hostname, d.Layout.Instance)
	for i := range live.Runners {
		lr := live.Runners[i]
		key, _ := NormalizeURL(lr.URL)
		name := ""
		if lr.ID != 0 {
			name = byState[idKey{lr.ID, key}]
		}
		if name == "" {
			name = byDesc[key+"\x00"+lr.Name]
		}
		if name == "" {
			if m := pat.FindStringSubmatch(lr.Name); m != nil {
				name = m[1]
			}
		}
		if name == "" {
			prev.Foreign = append(prev.Foreign, lr)
			continue
		}
		if e := byName[name]; e != nil && e.Client.Key == key && prev.ByName[name] == nil && lr.Token != "" {
			prev.ByName[name] = &live.Runners[i]
			continue
		}
		prev.Owned = append(prev.Owned, OwnedRunner{Name: name, Runner: lr})
	}
	return prev
}

// BuildPlan turns what is declared, what the disk holds and what GitLab
// answered into a plan. It makes no request: every input is a value
// (--refresh acts earlier, by making observe read every runner).
func BuildPlan(d *Desired, prev Previous, st *State, obs Observation) Plan {
	var plan Plan
	claimed := map[int64]bool{} // runner ids some declared executor keeps, adopts or replaces
	type extra struct {
		e   *Executor
		ids []int64
	}
	var extras []extra
	pat := identityPattern(d.Hostname, d.Layout.Instance)

	found := indexFound(obs.Found)
	for _, e := range d.Executors {
		cands := candidates(e, d, found)
		step := planExecutor(e, prev.ByName[e.Name], cands, st, obs)
		if step.ID != 0 {
			claimed[step.ID] = true
		}
		plan.Steps = append(plan.Steps, step)
		// Other runners found with this executor's identity are duplicates.
		extras = append(extras, extra{e, otherIDs(cands, step.ID)})
	}

	deleted := map[int64]bool{}
	var deletes []Step
	for _, x := range extras {
		for _, id := range x.ids {
			if claimed[id] || deleted[id] {
				continue
			}
			deleted[id] = true
			deletes = append(deletes, Step{Action: Delete, Name: x.e.Name, ClientKey: x.e.Client.Key, URL: x.e.Client.URL,
				ID: id, Reason: "duplicate runner of this executor (left by an interrupted run)"})
		}
	}
	for i := range prev.Owned {
		o := prev.Owned[i]
		key, _ := NormalizeURL(o.Runner.URL)
		if o.Runner.ID != 0 && (claimed[o.Runner.ID] || deleted[o.Runner.ID]) {
			continue
		}
		if o.Runner.ID != 0 {
			deleted[o.Runner.ID] = true
		}
		r := o.Runner
		deletes = append(deletes, Step{Action: Delete, Name: o.Name, ClientKey: key, URL: o.Runner.URL, ID: o.Runner.ID,
			Prev: &r, ByToken: o.Runner.Token != "", Reason: "executor no longer declared"})
	}
	declared := map[string]bool{}
	for _, e := range d.Executors {
		declared[e.Name] = true
	}
	clientKeys := make([]string, 0, len(obs.Found))
	for k := range obs.Found {
		clientKeys = append(clientKeys, k)
	}
	sort.Strings(clientKeys)
	for _, key := range clientKeys {
		var url string
		for _, c := range d.Clients {
			if c.Key == key {
				url = c.URL
			}
		}
		for _, s := range obs.Found[key] {
			m := pat.FindStringSubmatch(s.Description)
			if m == nil || declared[m[1]] || claimed[s.ID] || deleted[s.ID] {
				continue
			}
			deleted[s.ID] = true
			deletes = append(deletes, Step{Action: Delete, Name: m[1], ClientKey: key, URL: url, ID: s.ID,
				Reason: "runner of this host and instance whose executor is no longer declared"})
		}
	}
	sort.SliceStable(deletes, func(i, j int) bool {
		if deletes[i].Name != deletes[j].Name {
			return deletes[i].Name < deletes[j].Name
		}
		return deletes[i].ID < deletes[j].ID
	})
	plan.Steps = append(plan.Steps, deletes...)
	return plan
}

// planExecutor decides the step of one declared executor, given its live
// config entry p (nil when it has none) and the runners the lookup found
// with its identity (cands).
func planExecutor(e *Executor, p *LiveRunner, cands []int64, st *State, obs Observation) Step {
	want := e.Settings()
	hasPAT := e.Client.PAT != ""
	step := Step{Name: e.Name, Executor: e, ClientKey: e.Client.Key, URL: e.Client.URL, Prev: p, Settings: want}
	adopt := func(id int64, update bool, reason string) Step {
		step.Action, step.ID, step.UpdateAfterAdopt, step.Reason = Adopt, id, update, reason
		return step
	}

	if p == nil {
		if best := pickCandidate(cands, st, e.Name, 0); best != 0 {
			update := true
			if det, ok := obs.Details[best]; ok {
				update = !det.Settings().Equal(want)
			}
			return adopt(best, update, "no token on disk; found this executor's runner in GitLab by host and instance")
		}
		step.Action = Create
		step.Reason = "new executor"
		if _, looked := obs.Found[e.Client.Key]; looked {
			step.Reason = "new executor (no runner of this host and instance found for it in GitLab)"
		}
		return step
	}

	if v, verified := obs.Verified[e.Name]; verified && v.Alive {
		step.ID = p.ID
		if v.Creds.ID != 0 {
			step.ID = v.Creds.ID
		}
		creds := v.Creds
		step.Verified = &creds
		drift, known := driftOf(e, step.ID, st, obs, want)
		switch {
		case !drift:
			step.Action = Keep
			step.Reason = "token verified"
			if !known {
				step.Reason = "token verified (settings last applied unknown)"
			}
		case hasPAT:
			step.Action = Update
			step.Reason = "server-side settings differ: " + driftReason(e, step.ID, st, obs, want)
		case e.Client.RegistrationToken != "":
			step.Action = Replace
			step.DeleteOld = true
			step.Reason = "server-side settings differ and there is no personal_access_token to update them in place; re-registering"
		default:
			step.Action = Keep
			step.Reason = "token verified"
		}
		return step
	}

	// The token was rejected (revoked or expired).
	if det, ok := obs.Details[p.ID]; ok && hasPAT && p.ID != 0 {
		return adopt(p.ID, !det.Settings().Equal(want),
			"token rejected by GitLab (revoked or expired); runner still exists, resetting its token")
	}
	if best := pickCandidate(cands, st, e.Name, p.ID); best != 0 {
		return adopt(best, true, "token rejected by GitLab; found this executor's runner by host and instance, resetting its token")
	}
	step.Action = Replace
	step.Reason = "token rejected by GitLab and the runner is gone; creating a new one"
	if !hasPAT {
		step.Reason = "token rejected by GitLab (no personal_access_token to look for the runner); creating a new one"
	}
	return step
}

// foundIndex maps client key + description to the runners found with it.
type foundIndex map[string][]int64

func indexFound(found map[string][]gitlab.Summary) foundIndex {
	idx := foundIndex{}
	for key, list := range found {
		for _, s := range list {
			k := key + "\x00" + s.Description
			idx[k] = append(idx[k], s.ID)
		}
	}
	return idx
}

// candidates are runners found by the lookup that belong to executor e:
// its description, or the default description of its name.
func candidates(e *Executor, d *Desired, found foundIndex) []int64 {
	ids := append([]int64(nil), found[e.Client.Key+"\x00"+e.Description]...)
	if def := DefaultDescription(d.Hostname, d.Layout.Instance, e.Name); def != e.Description {
		ids = append(ids, found[e.Client.Key+"\x00"+def]...)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

func otherIDs(ids []int64, keep int64) []int64 {
	var out []int64
	for _, id := range ids {
		if id != keep {
			out = append(out, id)
		}
	}
	return out
}

// pickCandidate prefers the id the state file recorded, then the newest.
func pickCandidate(ids []int64, st *State, name string, exclude int64) int64 {
	if sr, ok := st.Runners[name]; ok {
		for _, id := range ids {
			if id == sr.ID && id != exclude {
				return id
			}
		}
	}
	for i := len(ids) - 1; i >= 0; i-- {
		if ids[i] != exclude {
			return ids[i]
		}
	}
	return 0
}

// driftOf compares the desired settings with what GitLab has (when read)
// or what was last applied (state file). known is false when neither is
// available.
func driftOf(e *Executor, id int64, st *State, obs Observation, want gitlab.Settings) (drift, known bool) {
	if det, ok := obs.Details[id]; ok {
		return !det.Settings().Equal(want), true
	}
	if sr, ok := st.Runners[e.Name]; ok && sr.ID == id && sr.Applied != nil {
		return !sr.Applied.Equal(want), true
	}
	return false, false
}

func driftReason(e *Executor, id int64, st *State, obs Observation, want gitlab.Settings) string {
	var have gitlab.Settings
	if det, ok := obs.Details[id]; ok {
		have = det.Settings()
	} else if sr, ok := st.Runners[e.Name]; ok && sr.Applied != nil {
		have = *sr.Applied
	}
	return settingsDiff(have.Normalized(), want)
}

func settingsDiff(a, b gitlab.Settings) string {
	var out []string
	add := func(name string, x, y any) {
		if fmt.Sprint(x) != fmt.Sprint(y) {
			out = append(out, name)
		}
	}
	add("description", a.Description, b.Description)
	add("tag_list", a.TagList, b.TagList)
	add("run_untagged", a.RunUntagged, b.RunUntagged)
	add("locked", a.Locked, b.Locked)
	add("paused", a.Paused, b.Paused)
	add("access_level", a.AccessLevel, b.AccessLevel)
	add("maximum_timeout", a.MaximumTimeout, b.MaximumTimeout)
	add("maintenance_note", a.MaintenanceNote, b.MaintenanceNote)
	if len(out) == 0 {
		return "settings"
	}
	return fmt.Sprint(out)
}

package core

import (
	"fmt"
	"sort"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/config"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/gitlab"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/hostfs"
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
	Executor *config.Executor
	// ClientKey is the normalised GitLab URL the step talks to.
	ClientKey string
	URL       string
	// ID is the runner this step acts on (0 for create).
	ID int64
	// Prev is the runner's entry in the live config, if any.
	Prev *hostfs.LiveRunner
	// ByToken deletes with the runner's token; otherwise by id with the PAT.
	ByToken bool
	// OwnershipProven: GitLab's managers showed this runner is this host's
	// when the plan was made. A delete by id without it checks first.
	OwnershipProven bool
	// DeleteOld makes a replace remove the runner it supersedes (by
	// token) — last, once the new token is in the config (make before break).
	DeleteOld bool
	// UpdateAfterAdopt sends the desired settings after an adopt.
	UpdateAfterAdopt bool
	// Verified is GitLab's answer to verify (keep/update): its token expiry
	// is the one gitlab-runner needs to rotate in time.
	Verified *gitlab.Credentials
	// Unverified: a keep made without asking GitLab (degraded start).
	Unverified bool
	// Fault, when set, fails this step without a request: the plan found
	// something only the administrator can fix (an orphaned runner, a
	// lookup the token may not make). Other steps still run.
	Fault    string
	Settings gitlab.Settings
	// Have is what GitLab holds (read from GitLab, or last applied per the
	// state file) when the plan updates the settings: the diff's "before".
	Have   *gitlab.Settings
	Reason string
}

// Plan is the list of steps a sync carries out.
type Plan struct {
	Steps []Step
	// Notes are what the plan decided not to touch and why (runners that
	// are not provably this host's); front ends show them as warnings.
	Notes []string
}

// replacesOld reports whether a replace must remove the runner it
// supersedes once the new one is in place.
func (p Plan) replacesOld() bool {
	for _, s := range p.Steps {
		if s.Action == Replace && s.DeleteOld {
			return true
		}
	}
	return false
}

// Ref identifies the runner a step acts on.
func (s Step) Ref() RunnerRef { return RunnerRef{s.ClientKey, s.ID} }

// Changed reports whether the plan does anything to GitLab.
func (p Plan) Changed() bool {
	for _, s := range p.Steps {
		if s.Action != Keep && s.Fault == "" {
			return true
		}
	}
	return false
}

// Previous is the live config matched against the declared executors.
type Previous struct {
	// ByName holds the live entry of each declared executor.
	ByName map[string]*hostfs.LiveRunner
	// Owned are entries of this host and instance that are no longer
	// declared (or moved to another GitLab, or duplicates): delete them.
	Owned []OwnedRunner
	// Foreign are entries that do not carry this host's identity: kept
	// verbatim, never touched.
	Foreign []hostfs.LiveRunner
}

// OwnedRunner is a live entry to delete.
type OwnedRunner struct {
	Name   string
	Runner hostfs.LiveRunner
}

// RunnerRef identifies a runner everywhere: ids are numbered per GitLab,
// so the same id on two GitLabs is two runners.
type RunnerRef struct {
	ClientKey string // normalised GitLab URL
	ID        int64
}

// Ownership is what GitLab's runner managers say about who uses a runner.
type Ownership int

// Ownership values.
const (
	// OwnerNone: no manager at all. Nothing has used the runner's token
	// (or GitLab cleaned its managers up as stale), so it cannot be proven
	// to be this host's.
	OwnerNone Ownership = iota + 1
	// OwnerThisHost: a manager carries this host's system id.
	OwnerThisHost
	// OwnerOtherHost: managers exist, none of them this host's.
	OwnerOtherHost
)

// Observation is what read-only requests to GitLab found.
type Observation struct {
	// Verified holds POST /runners/verify results by executor name.
	Verified map[string]VerifyOutcome
	// Found holds the host/instance lookup per client key (only clients
	// that were looked up have an entry).
	Found map[string][]gitlab.Summary
	// ListForbidden holds client keys whose lookup the token may not make;
	// Why says what it lacks.
	ListForbidden map[string]string
	// Details holds GET /runners/:id results.
	Details map[RunnerRef]gitlab.Runner
	// Owners holds GET /runners/:id/managers results: every runner the
	// plan may reset or delete by id is checked.
	Owners map[RunnerRef]Ownership
	// Forbidden: the token may not read these runners (403).
	Forbidden map[RunnerRef]bool
	// Unreadable: reading these runners (or their managers) failed for
	// another reason (5xx, no answer): nothing may be decided about them.
	Unreadable map[RunnerRef]string
	// Interrupted: the previous run did not finish. A runner with this
	// host's identity and no manager at all is then taken as that run's:
	// it was killed between creating the runner and recording this host.
	Interrupted bool
}

// VerifyOutcome is one verify answer: 200 (alive), 403 (dead) or 422
// (orphaned: its group or project is gone).
type VerifyOutcome struct {
	Alive    bool
	Orphaned bool
	Creds    gitlab.Credentials
}

func newObservation() Observation {
	return Observation{Verified: map[string]VerifyOutcome{}, Found: map[string][]gitlab.Summary{},
		ListForbidden: map[string]string{}, Details: map[RunnerRef]gitlab.Runner{},
		Owners: map[RunnerRef]Ownership{}, Forbidden: map[RunnerRef]bool{}, Unreadable: map[RunnerRef]string{}}
}

// provablyMine reports whether GitLab's managers show the runner is this
// host's (or, after an interrupted run, that no host ever used it).
func (o Observation) provablyMine(ref RunnerRef) bool {
	own, checked := o.Owners[ref]
	return checked && (own == OwnerThisHost || (own == OwnerNone && o.Interrupted))
}

// notMineNote explains why a runner with this host's identity is left alone.
func (o Observation) notMineNote(ref RunnerRef, what string) string {
	why := "it has no runner manager, so nothing proves it is this host's"
	switch o.Owners[ref] {
	case OwnerOtherHost:
		why = "its runner managers carry another host's system id (another host with the same name?)"
	case 0:
		why = "its runner managers could not be read"
	}
	return fmt.Sprintf("runner %d on %s has this host's identity (%s), but %s; leaving it alone", ref.ID, ref.ClientKey, what, why)
}

// matchPrevious attributes each live [[runners]] entry to a declared
// executor, to this host and instance (to be deleted), or to nobody.
func matchPrevious(d *config.Desired, live *hostfs.LiveConfig, st *hostfs.State) Previous {
	prev := Previous{ByName: map[string]*hostfs.LiveRunner{}}
	byName := map[string]*config.Executor{}
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
		sk, _ := gitlab.NormalizeURL(sr.URL)
		byState[idKey{sr.ID, sk}] = sname
	}
	pat := config.IdentityPattern(d.Hostname, d.Layout.Instance)
	for i := range live.Runners {
		lr := live.Runners[i]
		key, _ := gitlab.NormalizeURL(lr.URL)
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
func BuildPlan(d *config.Desired, prev Previous, st *hostfs.State, obs Observation) Plan {
	var plan Plan
	claimed := map[RunnerRef]bool{} // runners some declared executor keeps, adopts or replaces
	type extra struct {
		e   *config.Executor
		ids []int64
	}
	var extras []extra
	pat := config.IdentityPattern(d.Hostname, d.Layout.Instance)

	found := indexFound(obs.Found)
	for _, e := range d.Executors {
		cands := candidates(e, d, found)
		step := planExecutor(e, prev.ByName[e.Name], cands, st, obs, &plan.Notes)
		if step.ID != 0 {
			claimed[step.Ref()] = true
		}
		plan.Steps = append(plan.Steps, step)
		// Other runners found with this executor's identity are duplicates.
		extras = append(extras, extra{e, otherIDs(cands, step.ID)})
	}

	deleted := map[RunnerRef]bool{}
	var deletes []Step
	for _, x := range extras {
		for _, id := range x.ids {
			ref := RunnerRef{x.e.Client.Key, id}
			if claimed[ref] || deleted[ref] {
				continue
			}
			deleted[ref] = true
			if !obs.provablyMine(ref) {
				plan.Notes = append(plan.Notes, obs.notMineNote(ref, "a duplicate of executor "+x.e.Name))
				continue
			}
			deletes = append(deletes, Step{Action: Delete, Name: x.e.Name, ClientKey: x.e.Client.Key, URL: x.e.Client.URL,
				ID: id, OwnershipProven: true, Reason: "duplicate runner of this executor (left by an interrupted run)"})
		}
	}
	for i := range prev.Owned {
		o := prev.Owned[i]
		key, _ := gitlab.NormalizeURL(o.Runner.URL)
		ref := RunnerRef{key, o.Runner.ID}
		if o.Runner.ID != 0 && (claimed[ref] || deleted[ref]) {
			continue
		}
		if o.Runner.ID != 0 {
			deleted[ref] = true
		}
		r := o.Runner
		// Its token, held in this host's config, is the proof it is ours.
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
			ref := RunnerRef{key, s.ID}
			m := pat.FindStringSubmatch(s.Description)
			if m == nil || declared[m[1]] || claimed[ref] || deleted[ref] {
				continue
			}
			deleted[ref] = true
			if !obs.provablyMine(ref) {
				plan.Notes = append(plan.Notes, obs.notMineNote(ref, "executor "+m[1]+", not declared here"))
				continue
			}
			deletes = append(deletes, Step{Action: Delete, Name: m[1], ClientKey: key, URL: url, ID: s.ID, OwnershipProven: true,
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
// with its identity (cands). What it leaves alone goes to notes.
func planExecutor(e *config.Executor, p *hostfs.LiveRunner, cands []int64, st *hostfs.State, obs Observation, notes *[]string) Step {
	want := e.Settings()
	hasPAT := e.Client.PAT != ""
	key := e.Client.Key
	step := Step{Name: e.Name, Executor: e, ClientKey: key, URL: e.Client.URL, Prev: p, Settings: want}
	adopt := func(id int64, reason string) Step {
		update := true
		if det, ok := obs.Details[RunnerRef{key, id}]; ok {
			update = !det.Settings().Equal(want) // nothing to PUT when GitLab already matches
		}
		step.Action, step.ID, step.UpdateAfterAdopt, step.Reason = Adopt, id, update, reason
		return step
	}
	// mine keeps the candidates provably this host's; the others are noted.
	mine := func(ids []int64) []int64 {
		var out []int64
		for _, id := range ids {
			if obs.provablyMine(RunnerRef{key, id}) {
				out = append(out, id)
			} else {
				*notes = append(*notes, obs.notMineNote(RunnerRef{key, id}, "executor "+e.Name))
			}
		}
		return out
	}

	// A runner GitLab could not tell about (5xx, no answer): deciding
	// without it could register a duplicate.
	unreadable := func(ids ...int64) (Step, bool) {
		for _, id := range ids {
			if why, bad := obs.Unreadable[RunnerRef{key, id}]; bad {
				step.ID = id
				step.Fault = fmt.Sprintf("runner %d on %s could not be read (%s); nothing was done for %s, so no duplicate is registered: run again once GitLab answers", id, e.Client.URL, why, e.Name)
				return step, true
			}
		}
		return step, false
	}

	if p == nil {
		if s, bad := unreadable(cands...); bad {
			s.Action = Adopt
			return s
		}
		if why, forbidden := obs.ListForbidden[key]; forbidden {
			step.Action = Create
			step.Fault = fmt.Sprintf("no token on disk, and the personal access token for %s may not look for an existing runner (%s); creating one could register a duplicate, so nothing was done: the token needs read_api (or api) and the role named", e.Client.URL, why)
			return step
		}
		if best := pickCandidate(mine(cands), st, e.Name, key, 0); best != 0 {
			return adopt(best, "no token on disk; found this executor's runner in GitLab by host and instance")
		}
		step.Action = Create
		step.Reason = "new executor"
		if _, looked := obs.Found[key]; looked {
			step.Reason = "new executor (no runner of this host and instance found for it in GitLab)"
		}
		return step
	}

	v, verified := obs.Verified[e.Name]
	if verified && v.Orphaned {
		step.Action, step.ID = Keep, p.ID
		step.Fault = fmt.Sprintf("GitLab says runner %d is orphaned (its group or project no longer exists); delete it in GitLab, fix the executor's runner_type/group_id/project_id, and run again", p.ID)
		return step
	}
	if verified && v.Alive {
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
			step.Have = knownSettings(e, step.ID, st, obs)
		case e.Client.RegistrationToken != "":
			step.Action = Replace
			step.DeleteOld = true
			step.Reason = "server-side settings differ and there is no personal_access_token to update them in place; registering a new runner, then removing the old one"
		default:
			step.Action = Keep
			step.Reason = "token verified"
		}
		return step
	}

	// The token was rejected (revoked or expired).
	ref := RunnerRef{key, p.ID}
	if s, bad := unreadable(append([]int64{p.ID}, cands...)...); bad {
		s.Action = Adopt
		return s
	}
	if hasPAT && p.ID != 0 && obs.Forbidden[ref] {
		step.Action, step.ID = Replace, p.ID
		step.Fault = fmt.Sprintf("token of runner %d rejected by GitLab, and the personal access token for %s may not read that runner (403); a 403 does not mean it is gone, so no new runner was registered: give the token access to it (owner of its group, maintainer of its project, or an administrator)", p.ID, e.Client.URL)
		return step
	}
	if _, exists := obs.Details[ref]; exists && hasPAT && p.ID != 0 {
		if obs.provablyMine(ref) {
			return adopt(p.ID, "token rejected by GitLab (revoked or expired); the runner still exists and is this host's, resetting its token")
		}
		*notes = append(*notes, obs.notMineNote(ref, "executor "+e.Name+" in this host's config"))
	}
	if best := pickCandidate(mine(otherIDs(cands, p.ID)), st, e.Name, key, p.ID); best != 0 {
		return adopt(best, "token rejected by GitLab; found this executor's runner by host and instance, resetting its token")
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
func candidates(e *config.Executor, d *config.Desired, found foundIndex) []int64 {
	ids := append([]int64(nil), found[e.Client.Key+"\x00"+e.Description]...)
	if def := config.DefaultDescription(d.Hostname, d.Layout.Instance, e.Name); def != e.Description {
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
func pickCandidate(ids []int64, st *hostfs.State, name, key string, exclude int64) int64 {
	if sr, ok := st.Runners[name]; ok && sr.Key() == key {
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
func driftOf(e *config.Executor, id int64, st *hostfs.State, obs Observation, want gitlab.Settings) (drift, known bool) {
	if det, ok := obs.Details[RunnerRef{e.Client.Key, id}]; ok {
		return !det.Settings().Equal(want), true
	}
	if sr, ok := st.Runners[e.Name]; ok && sr.ID == id && sr.Key() == e.Client.Key && sr.Applied != nil {
		return !sr.Applied.Equal(want), true
	}
	return false, false
}

// knownSettings is what GitLab holds for the runner, as far as known.
func knownSettings(e *config.Executor, id int64, st *hostfs.State, obs Observation) *gitlab.Settings {
	if det, ok := obs.Details[RunnerRef{e.Client.Key, id}]; ok {
		h := det.Settings().Normalized()
		return &h
	}
	if sr, ok := st.Runners[e.Name]; ok && sr.Applied != nil {
		h := sr.Applied.Normalized()
		return &h
	}
	return nil
}

func driftReason(e *config.Executor, id int64, st *hostfs.State, obs Observation, want gitlab.Settings) string {
	var have gitlab.Settings
	if det, ok := obs.Details[RunnerRef{e.Client.Key, id}]; ok {
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

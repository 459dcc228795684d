package plan

import (
	"fmt"
	"sort"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/config"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/gitlab"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/hostfs"
)

// Build turns the evidence into a plan: one step per declared executor
// (sorted by name), then the deletes, sorted by name and id. It makes no
// request and reads nothing but ev.
func Build(ev Evidence) Plan {
	var p Plan
	notes := &noteBook{seen: map[Ref]bool{}}
	claimed := map[Ref]bool{} // runners some declared executor keeps, adopts or replaces
	found := indexFound(ev.Found)
	var dups []Step
	for _, e := range ev.Desired.Executors {
		c := newExecutorCase(&ev, e, found, notes)
		step := c.decide()
		if step.ID != 0 {
			claimed[step.Ref()] = true
		}
		p.Steps = append(p.Steps, step)
		// Other runners found with this executor's identity are duplicates.
		for _, id := range otherIDs(c.cands, step.ID) {
			dups = append(dups, Step{Name: e.Name, ClientKey: e.Client.Key, URL: e.Client.URL, ID: id})
		}
	}
	deleted := map[Ref]bool{}
	var deletes []Step
	for _, d := range dups {
		ref := d.Ref()
		if claimed[ref] || deleted[ref] {
			continue
		}
		deleted[ref] = true
		if !ev.mine(ref) {
			notes.add(ref, ev.notMine(ref, "a duplicate of executor "+d.Name))
			continue
		}
		d.Action, d.Rule, d.Via = Delete, RowDuplicate.Name, ByID
		d.Reason = "duplicate runner of this executor (left by an interrupted run)"
		deletes = append(deletes, d)
	}
	for _, o := range ev.Prev.Owned {
		ref := o.Ref()
		if o.Runner.ID != 0 && (claimed[ref] || deleted[ref]) {
			continue
		}
		if o.Runner.ID != 0 {
			deleted[ref] = true
		}
		deletes = append(deletes, ev.undeclared(o, notes))
	}
	deletes = append(deletes, ev.leftovers(claimed, deleted, notes)...)
	sort.SliceStable(deletes, func(i, j int) bool {
		if deletes[i].Name != deletes[j].Name {
			return deletes[i].Name < deletes[j].Name
		}
		return deletes[i].ID < deletes[j].ID
	})
	p.Steps = append(p.Steps, deletes...)
	p.Notes = notes.list
	return p
}

// noteBook keeps one note per runner left alone.
type noteBook struct {
	seen map[Ref]bool
	list []string
}

func (n *noteBook) add(ref Ref, text string) {
	if !n.seen[ref] {
		n.seen[ref] = true
		n.list = append(n.list, text)
	}
}

// executorCase is what is known of one declared executor.
type executorCase struct {
	ev    *Evidence
	e     *config.Executor
	prev  *hostfs.LiveRunner
	v     gitlab.Verification
	want  gitlab.Settings
	cands []int64 // runners found with its identity, sorted
	caps  Capabilities
	notes *noteBook
	step  Step
}

func newExecutorCase(ev *Evidence, e *config.Executor, found foundIndex, notes *noteBook) *executorCase {
	c := &executorCase{ev: ev, e: e, prev: ev.Prev.ByName[e.Name], v: ev.Verified[e.Name], want: e.Settings(),
		cands: candidates(e, ev.Desired, found), caps: ev.Tokens[e.Client.Key], notes: notes}
	c.step = Step{Name: e.Name, Executor: e, ClientKey: e.Client.Key, URL: e.Client.URL, Prev: c.prev, Settings: c.want}
	return c
}

func (c *executorCase) hasPAT() bool { return c.e.Client.PAT != "" }

// decide walks the table's rows for a declared executor.
func (c *executorCase) decide() Step {
	if c.prev == nil {
		return c.lost()
	}
	switch c.v.State {
	case gitlab.TokenOrphaned:
		return c.row(RowOrphaned, c.prev.ID, "",
			fmt.Sprintf("GitLab says runner %d is orphaned (its group or project no longer exists); delete it in GitLab, fix the executor's runner_type/group_id/project_id, and run again", c.prev.ID))
	case gitlab.TokenAlive:
		return c.alive()
	}
	return c.rejected()
}

// row fills the step from a row of the table; a fault fails it.
func (c *executorCase) row(r Row, id int64, reason, fault string) Step {
	s := c.step
	s.Action, s.Rule, s.ID, s.Reason, s.Fault = r.Then, r.Name, id, reason, fault
	return s
}

func (c *executorCase) alive() Step {
	id := c.prev.ID
	if c.v.Creds.ID != 0 {
		id = c.v.Creds.ID
	}
	drift, known := c.drift(id)
	var s Step
	switch {
	case !drift:
		reason := "token verified"
		if !known {
			reason = "token verified (settings last applied unknown)"
		}
		s = c.row(RowVerified, id, reason, "")
	case c.hasPAT():
		s = c.row(RowDrifted, id, "server-side settings differ: "+c.driftReason(id), c.lacks(scopesManage, "update runners"))
		s.Have = c.known(id)
	case c.e.Client.RegistrationToken != "":
		s = c.row(RowDriftedNoPAT, id, "server-side settings differ and there is no personal_access_token to update them in place; registering a new runner, then removing the old one", "")
		s.DeleteOld = true
	default:
		s = c.row(RowDriftedNoFix, id, "token verified", "")
	}
	creds := c.v.Creds
	s.Verified = &creds
	return s
}

// rejected: the token on disk was refused (revoked or expired).
func (c *executorCase) rejected() Step {
	key := c.e.Client.Key
	ref := Ref{key, c.prev.ID}
	if id, why, bad := c.unreadable(append([]int64{c.prev.ID}, c.cands...)); bad {
		return c.row(RowRejectedUnreadable, id, "", c.unreadableFault(id, why))
	}
	if c.hasPAT() && c.prev.ID != 0 && c.facts(ref).Forbidden {
		return c.row(RowRejectedForbidden, c.prev.ID, "", fmt.Sprintf("token of runner %d rejected by GitLab, and the personal access token for %s may not read that runner (403); a 403 does not mean it is gone, so no new runner was registered: give the token access to it (owner of its group, maintainer of its project, or an administrator)", c.prev.ID, c.e.Client.URL))
	}
	if c.hasPAT() && c.prev.ID != 0 && c.facts(ref).Details != nil {
		if c.ev.mine(ref) {
			return c.adopt(RowRejectedMine, c.prev.ID, "token rejected by GitLab (revoked or expired); the runner still exists and is this host's, resetting its token")
		}
		c.notes.add(ref, c.ev.notMine(ref, "executor "+c.e.Name+" in this host's config"))
	}
	if best := c.pick(otherIDs(c.cands, c.prev.ID), c.prev.ID); best != 0 {
		return c.adopt(RowRejectedFound, best, "token rejected by GitLab; found this executor's runner by host and instance, resetting its token")
	}
	reason := "token rejected by GitLab and the runner is gone; creating a new one"
	if !c.hasPAT() {
		reason = "token rejected by GitLab (no personal_access_token to look for the runner); creating a new one"
	}
	return c.row(RowRejectedGone, 0, reason, c.cannotCreate())
}

// lost: no token on disk (first run, or the config was lost).
func (c *executorCase) lost() Step {
	if id, why, bad := c.unreadable(c.cands); bad {
		return c.row(RowLostUnreadable, id, "", c.unreadableFault(id, why))
	}
	key := c.e.Client.Key
	if why, denied := c.ev.ListDenied[key]; denied {
		return c.row(RowLostMayNotList, 0, "", fmt.Sprintf("no token on disk, and the personal access token for %s may not look for an existing runner (%s); creating one could register a duplicate, so nothing was done: the token needs read_api (or api) and the role named", c.e.Client.URL, why))
	}
	if best := c.pick(c.cands, 0); best != 0 {
		return c.adopt(RowLostFound, best, "no token on disk; found this executor's runner in GitLab by host and instance")
	}
	reason := "new executor"
	if _, looked := c.ev.Found[key]; looked {
		reason = "new executor (no runner of this host and instance found for it in GitLab)"
	}
	return c.row(RowNew, 0, reason, c.cannotCreate())
}

func (c *executorCase) adopt(r Row, id int64, reason string) Step {
	s := c.row(r, id, reason, c.lacks(scopesManage, "reset runner tokens"))
	s.UpdateAfterAdopt = true
	if det := c.facts(Ref{c.e.Client.Key, id}).Details; det != nil {
		s.UpdateAfterAdopt = !det.Settings().Equal(c.want) // nothing to PUT when GitLab already matches
	}
	return s
}

// pick chooses, among candidates provably this host's, the id the state
// file recorded, then the newest; the others are named as left alone.
func (c *executorCase) pick(ids []int64, exclude int64) int64 {
	key := c.e.Client.Key
	var mine []int64
	for _, id := range ids {
		if c.ev.mine(Ref{key, id}) {
			mine = append(mine, id)
		} else {
			c.notes.add(Ref{key, id}, c.ev.notMine(Ref{key, id}, "executor "+c.e.Name))
		}
	}
	if sr, ok := c.ev.State.Runners[c.e.Name]; ok && sr.Key() == key {
		for _, id := range mine {
			if id == sr.ID && id != exclude {
				return id
			}
		}
	}
	for i := len(mine) - 1; i >= 0; i-- {
		if mine[i] != exclude {
			return mine[i]
		}
	}
	return 0
}

func (c *executorCase) facts(ref Ref) *RunnerFacts {
	if f := c.ev.Runners[ref]; f != nil {
		return f
	}
	return &RunnerFacts{}
}

// unreadable finds a runner GitLab could not tell about (5xx, no answer):
// deciding without it could register a duplicate.
func (c *executorCase) unreadable(ids []int64) (int64, string, bool) {
	for _, id := range ids {
		if f := c.ev.Runners[Ref{c.e.Client.Key, id}]; f != nil && f.Unreadable != "" {
			return id, f.Unreadable, true
		}
	}
	return 0, "", false
}

func (c *executorCase) unreadableFault(id int64, why string) string {
	return fmt.Sprintf("runner %d on %s could not be read (%s); nothing was done for %s, so no duplicate is registered: run again once GitLab answers", id, c.e.Client.URL, why, c.e.Name)
}

// lacks is the fault of a step the token's known scopes do not allow.
func (c *executorCase) lacks(scopes []string, what string) string {
	if c.caps.May(scopes...) {
		return ""
	}
	return fmt.Sprintf("the personal access token for %s may not %s (it needs one of the scopes %v; it has %v); nothing was done for %s", c.e.Client.URL, what, scopes, c.caps.Scopes, c.e.Name)
}

// cannotCreate is the fault of a create no credential given allows.
func (c *executorCase) cannotCreate() string {
	if c.e.Client.RegistrationToken != "" || !c.hasPAT() {
		return ""
	}
	if f := c.lacks(scopesCreate, "create runners"); f != "" {
		return f + "; give it the create_runner scope or add a registration_token"
	}
	return ""
}

// drift compares the desired settings with what GitLab has (when read)
// or what was last applied (state file); known is false when neither is
// available.
func (c *executorCase) drift(id int64) (drift, known bool) {
	have := c.known(id)
	if have == nil {
		return false, false
	}
	return !have.Equal(c.want), true
}

// known is what GitLab holds for the runner, as far as known.
func (c *executorCase) known(id int64) *gitlab.Settings {
	if det := c.facts(Ref{c.e.Client.Key, id}).Details; det != nil {
		h := det.Settings().Normalized()
		return &h
	}
	if sr, ok := c.ev.State.Runners[c.e.Name]; ok && sr.ID == id && sr.Key() == c.e.Client.Key && sr.Applied != nil {
		h := sr.Applied.Normalized()
		return &h
	}
	return nil
}

func (c *executorCase) driftReason(id int64) string {
	var have gitlab.Settings
	if k := c.known(id); k != nil {
		have = *k
	}
	return fmt.Sprint(have.Diff(c.want))
}

// undeclared decides an entry of this host's config whose executor is no
// longer declared.
func (ev Evidence) undeclared(o OwnedRunner, notes *noteBook) Step {
	ref := o.Ref()
	r := o.Runner
	s := Step{Action: Delete, Name: o.Name, ClientKey: ref.ClientKey, URL: r.URL, ID: r.ID, Prev: &r, Reason: "executor no longer declared"}
	with := func(row Row, via Via) Step {
		s.Rule, s.Via = row.Name, via
		return s
	}
	v, answered := ev.Undeclared[ref]
	if r.Token != "" && (!answered || v.State == gitlab.TokenAlive) {
		return with(RowUndeclared, ByToken)
	}
	pat := ev.hasPAT(ref.ClientKey)
	f := ev.Runners[ref]
	switch {
	case r.ID == 0:
		s.Reason = "executor no longer declared; the entry has no runner id"
		return with(RowUndeclaredGone, Forget)
	case r.Token != "" && !pat:
		s.Reason = "executor no longer declared; its token is no longer valid, so the runner is considered gone"
		return with(RowUndeclaredGone, Forget)
	case !pat:
		s.Fault = fmt.Sprintf("cannot delete runner %d without its token or a personal access token", r.ID)
		return with(RowUndeclaredUnknown, ByID)
	case f != nil && f.Unreadable != "":
		s.Fault = fmt.Sprintf("reading runner %d to make sure it is this host's failed (%s); it stays in the config and the next run tries again", r.ID, f.Unreadable)
		return with(RowUndeclaredUnknown, ByID)
	case f != nil && f.Forbidden:
		s.Fault = fmt.Sprintf("the personal access token may not read runner %d (403) to make sure it is this host's; it stays in the config", r.ID)
		return with(RowUndeclaredUnknown, ByID)
	case f != nil && f.Gone:
		s.Reason = "executor no longer declared; the runner is already gone from GitLab"
		return with(RowUndeclaredGone, Forget)
	case ev.mine(ref):
		if c := ev.Tokens[ref.ClientKey]; !c.May(scopesManage...) {
			s.Fault = fmt.Sprintf("the personal access token for %s may not delete runners (it needs one of the scopes %v; it has %v)", r.URL, scopesManage, c.Scopes)
		}
		return with(RowUndeclaredMine, ByID)
	}
	notes.add(ref, ev.notMine(ref, "executor "+o.Name))
	s.Reason = "executor no longer declared; its runner is not provably this host's, so it is left alone"
	return with(RowUndeclaredNotMine, Forget)
}

// leftovers are runners GitLab lists with this host's and instance's
// identity whose executor is not declared.
func (ev Evidence) leftovers(claimed, deleted map[Ref]bool, notes *noteBook) []Step {
	pat := config.IdentityPattern(ev.Desired.Hostname, ev.Desired.Layout.Instance)
	declared := map[string]bool{}
	for _, e := range ev.Desired.Executors {
		declared[e.Name] = true
	}
	keys := make([]string, 0, len(ev.Found))
	for k := range ev.Found {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []Step
	for _, key := range keys {
		var url string
		for _, c := range ev.Desired.Clients {
			if c.Key == key {
				url = c.URL
			}
		}
		for _, s := range ev.Found[key] {
			ref := Ref{key, s.ID}
			m := pat.FindStringSubmatch(s.Description)
			if m == nil || declared[m[1]] || claimed[ref] || deleted[ref] {
				continue
			}
			deleted[ref] = true
			if !ev.mine(ref) {
				notes.add(ref, ev.notMine(ref, "executor "+m[1]+", not declared here"))
				continue
			}
			out = append(out, Step{Action: Delete, Rule: RowLeftover.Name, Via: ByID, Name: m[1], ClientKey: key, URL: url, ID: s.ID,
				Reason: "runner of this host and instance whose executor is no longer declared"})
		}
	}
	return out
}

func (ev Evidence) hasPAT(key string) bool {
	for _, c := range ev.Desired.Clients {
		if c.Key == key {
			return c.PAT != ""
		}
	}
	return false
}

// notMine explains why a runner with this host's identity is left alone.
func (ev Evidence) notMine(ref Ref, what string) string {
	why := "it has no runner manager, so nothing proves it is this host's"
	switch ev.ownership(ref) {
	case OwnerOtherHost:
		why = "its runner managers carry another host's system id (another host with the same name?)"
	case OwnerUnknown:
		why = "its runner managers could not be read"
	}
	return fmt.Sprintf("runner %d on %s has this host's identity (%s), but %s; leaving it alone", ref.ID, ref.ClientKey, what, why)
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

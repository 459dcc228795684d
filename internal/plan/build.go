package plan

import (
	"fmt"
	"sort"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/config"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/fleet"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/gitlab"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/hostfs"
)

// Build turns the evidence into a plan: one step per declared executor
// and per held entry (an executor whose file is invalid), sorted by name,
// then the deletes, detaches and forgotten entries, sorted by name and id.
// It makes no request and reads nothing but ev.
func Build(ev Evidence) Plan {
	b := &builder{ev: &ev, found: indexFound(ev.Found), left: map[Ref]int{}}
	var p Plan
	claimed := map[Ref]bool{} // runners some declared executor keeps, adopts or replaces
	var dups []Step
	for _, e := range ev.Desired.Executors {
		c := b.executor(e)
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
	held := heldSteps(ev, false)
	for _, s := range held {
		if s.ID != 0 {
			claimed[s.Ref()] = true
		}
	}
	p.Steps = byName(p.Steps, held)
	deleted := map[Ref]bool{}
	var deletes []Step
	for _, d := range dups {
		ref := d.Ref()
		if claimed[ref] || deleted[ref] {
			continue
		}
		deleted[ref] = true
		if row, why := ev.claim(ref, false, true); row.Claim != Mine && row.Claim != Reclaimable {
			b.leave(ref, d.URL, "", why)
			continue
		}
		d.Action, d.Rule, d.Via = Delete, RowDuplicate.Name, ByID
		d.Reason = "duplicate runner of this executor (left by an interrupted run, or by an earlier life of this host)"
		d.Fault = ev.mayNotDelete(ref)
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
		if o.Pending {
			deletes = append(deletes, b.pending(o))
			continue
		}
		deletes = append(deletes, b.undeclared(o))
	}
	deletes = append(deletes, b.leftovers(claimed, deleted)...)
	for _, r := range ev.Inherited {
		key, _ := gitlab.NormalizeURL(r.URL)
		lr := r
		deletes = append(deletes, Step{Action: Forget, Rule: RowInherited.Name, Via: Nothing, Name: r.Name, ClientKey: key, URL: r.URL, ID: r.ID, Prev: &lr,
			Reason: "this entry came with a prefix copied from another machine; it is that machine's"})
		b.leave(Ref{key, r.ID}, r.URL, r.Name, "it is in a config this prefix brought from another machine, whose runner it is")
	}
	sort.SliceStable(deletes, func(i, j int) bool {
		if deletes[i].Name != deletes[j].Name {
			return deletes[i].Name < deletes[j].Name
		}
		return deletes[i].ID < deletes[j].ID
	})
	p.Steps = append(p.Steps, deletes...)
	p.Left = b.list
	p.Host = ev.HostSteps
	return p.withFailures(ev.Policy)
}

// heldSteps decide the held entries (Previous.Held: the last good entry of
// an executor whose file is invalid), sorted by name: verified like any
// token, kept in place, forgotten when GitLab rejects the token. On a
// degraded start (unverified) they are kept as they are.
func heldSteps(ev Evidence, unverified bool) []Step {
	var out []Step
	for _, h := range ev.Prev.Held {
		r, ref := h.Runner, h.Ref()
		s := Step{Action: Keep, Held: true, Via: Nothing, Name: h.Name, ClientKey: ref.ClientKey, URL: r.URL, ID: r.ID, Prev: &r}
		v, answered := ev.HeldVerified[h.Name]
		switch {
		case unverified:
			s.Rule, s.Unverified = "degraded", true
			s.Reason = "its executor's file is invalid; GitLab unreachable, so its last good entry is kept, not verified"
		case answered && v.State == gitlab.TokenRejected:
			s.Action, s.Rule = Forget, RowHeldRejected.Name
			s.Reason = fmt.Sprintf("its executor's file is invalid and GitLab rejected the token of its last good entry; the entry leaves the config, and the state file still names runner %d, healed once the file is fixed", r.ID)
		case answered:
			s.Rule = RowHeldVerified.Name
			s.Reason = "its executor's file is invalid; its last good entry is kept (token verified)"
		default:
			s.Rule, s.Unverified = RowHeldUnverified.Name, true
			s.Reason = "its executor's file is invalid; its last good entry is kept, not verified (GitLab did not answer)"
		}
		out = append(out, s)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// byName merges two lists of steps sorted by name into one, a before b
// on equal names: the config then lists every executor's entry in name
// order, held ones in their place.
func byName(a, b []Step) []Step {
	out := make([]Step, 0, len(a)+len(b))
	for len(a) > 0 && len(b) > 0 {
		if b[0].Name < a[0].Name {
			out, b = append(out, b[0]), b[1:]
		} else {
			out, a = append(out, a[0]), a[1:]
		}
	}
	return append(append(out, a...), b...)
}

// builder is one Build: the evidence and the runners named as left alone.
type builder struct {
	ev    *Evidence
	found foundIndex
	left  map[Ref]int // index in list
	list  []Left
}

// leave names a runner the plan leaves alone (once per runner).
func (b *builder) leave(ref Ref, url, description, why string) {
	if _, ok := b.left[ref]; ok || ref.ID == 0 {
		return
	}
	l := Left{Ref: ref, URL: url, Description: description, Why: why}
	if f := b.ev.Runners[ref]; f != nil {
		if f.Details != nil {
			if l.Description == "" {
				l.Description = f.Details.Description
			}
			l.LastContact = f.Details.LastSeen()
		}
		for _, m := range f.Managers {
			if t := m.LastSeen(); t.After(l.LastContact) {
				l.LastContact = t
			}
		}
	}
	if l.Description == "" {
		for _, s := range b.ev.Found[ref.ClientKey] {
			if s.ID == ref.ID {
				l.Description = s.Description
			}
		}
	}
	b.left[ref] = len(b.list)
	b.list = append(b.list, l)
}

// executorCase is what is known of one declared executor.
type executorCase struct {
	*builder
	e    *config.Executor
	prev *hostfs.LiveRunner
	v    gitlab.Verification
	want gitlab.Settings
	// cands are runners found with its identity, sorted; named is the
	// runner the state file records for it (0: none).
	cands []int64
	named int64
	caps  Capabilities
	step  Step
}

func (b *builder) executor(e *config.Executor) *executorCase {
	c := &executorCase{builder: b, e: e, prev: b.ev.Prev.ByName[e.Name], v: b.ev.Verified[e.Name], want: e.Settings(),
		cands: candidates(e, b.ev.Desired, b.found), caps: b.ev.Tokens[e.Client.Key]}
	if sr, ok := b.ev.State.Runners[e.Name]; ok && sr.Key() == e.Client.Key {
		c.named = sr.ID
	}
	c.step = Step{Name: e.Name, Executor: e, ClientKey: e.Client.Key, URL: e.Client.URL, Prev: c.prev, Settings: c.want}
	return c
}

func (c *executorCase) hasPAT() bool { return c.e.Client.PAT != "" }

func (c *executorCase) ref(id int64) Ref { return Ref{c.e.Client.Key, id} }

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
	case c.onlyMarkDiffers(id):
		// Re-registering every runner of a host without a personal access
		// token only to mark it would cost GitLab a create and a delete
		// per runner: the mark comes with the next create or update. Until
		// then the fleet's prune keeps the runner (unmarked).
		s = c.row(RowUnmarkedNoPAT, id, "token verified; the fleet's mark is written with the next create or update (no personal_access_token to write it now)", "")
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

// rejected: the token on disk was refused (revoked, or expired while the
// host was off).
func (c *executorCase) rejected() Step {
	ref := c.ref(c.prev.ID)
	if id, why, bad := c.unreadable(append([]int64{c.prev.ID}, c.cands...)); bad {
		return c.row(RowRejectedUnreadable, id, "", c.unreadableFault(id, why))
	}
	if c.hasPAT() && c.prev.ID != 0 && c.facts(ref).Forbidden {
		return c.row(RowRejectedForbidden, c.prev.ID, "", fmt.Sprintf("token of runner %d rejected by GitLab, and the personal access token for %s may not read that runner (403); a 403 does not mean it is gone, so no new runner was registered: give the token access to it (owner of its group, maintainer of its project, or an administrator)", c.prev.ID, c.e.Client.URL))
	}
	if c.hasPAT() && c.prev.ID != 0 && c.facts(ref).Details != nil {
		// In this host's config: its own, unless another host uses it.
		if row, why := c.ev.claim(ref, true, true); row.Claim == Mine {
			return c.adopt(RowRejectedMine, c.prev.ID, "token rejected by GitLab (revoked, or expired while this host was off); the runner still exists and is this host's, resetting its token")
		} else {
			c.leave(ref, c.e.Client.URL, c.prev.Name, why)
		}
	}
	if best := c.pick(otherIDs(c.cands, c.prev.ID)); best != 0 {
		return c.adopt(RowRejectedFound, best, "token rejected by GitLab; found this executor's runner by host and instance, resetting its token")
	}
	reason := "token rejected by GitLab and the runner is gone; creating a new one"
	if !c.hasPAT() {
		reason = "token rejected by GitLab (no personal_access_token to look for the runner); creating a new one"
		c.leave(ref, c.e.Client.URL, c.prev.Name, "its token was rejected, and without a personal access token it can be neither checked nor removed")
	}
	return c.row(RowRejectedGone, 0, reason, c.cannotCreate())
}

// lost: no token on disk (first run, or the config was lost).
func (c *executorCase) lost() Step {
	if id, why, bad := c.unreadable(append([]int64{c.named}, c.cands...)); bad {
		return c.row(RowLostUnreadable, id, "", c.unreadableFault(id, why))
	}
	if c.named != 0 && c.hasPAT() && c.facts(c.ref(c.named)).Details != nil {
		if row, why := c.ev.claim(c.ref(c.named), true, true); row.Claim == Mine {
			return c.adopt(RowLostNamed, c.named, "no token on disk; the state file names this executor's runner, which still exists, resetting its token")
		} else {
			c.leave(c.ref(c.named), c.e.Client.URL, "", why)
		}
	}
	key := c.e.Client.Key
	if why, denied := c.ev.ListDenied[key]; denied {
		return c.row(RowLostMayNotList, 0, "", fmt.Sprintf("no token on disk, and the personal access token for %s may not look for an existing runner (%s); creating one could register a duplicate, so nothing was done: the token needs read_api (or api) and the role named", c.e.Client.URL, why))
	}
	if best := c.pick(otherIDs(c.cands, c.named)); best != 0 {
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
	if det := c.facts(c.ref(id)).Details; det != nil {
		s.UpdateAfterAdopt = !det.Settings().Equal(c.want) // nothing to PUT when GitLab already matches
	}
	return s
}

// pick chooses among the candidates: one that is this host's (the id the
// state file recorded, then the newest), else one that is reclaimable
// (the newest). The others that are neither are named as left alone.
func (c *executorCase) pick(ids []int64) int64 {
	var mine, reclaimable []int64
	for _, id := range ids {
		switch row, why := c.ev.claim(c.ref(id), id == c.named, true); row.Claim {
		case Mine:
			mine = append(mine, id)
		case Reclaimable:
			reclaimable = append(reclaimable, id)
		default:
			c.leave(c.ref(id), c.e.Client.URL, "", why)
		}
	}
	for _, id := range mine {
		if id == c.named {
			return id
		}
	}
	if len(mine) > 0 {
		return mine[len(mine)-1]
	}
	if len(reclaimable) > 0 {
		return reclaimable[len(reclaimable)-1]
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
		if f := c.ev.Runners[c.ref(id)]; id != 0 && f != nil && f.Unreadable != "" {
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

// onlyMarkDiffers: what GitLab holds differs from the declaration in the
// fleet's mark alone (a runner registered before the tool wrote marks).
func (c *executorCase) onlyMarkDiffers(id int64) bool {
	have := c.known(id)
	if have == nil {
		return false
	}
	h, w := *have, c.want
	h.MaintenanceNote, w.MaintenanceNote = fleet.Own(h.MaintenanceNote), fleet.Own(w.MaintenanceNote)
	return h.Equal(w)
}

// known is what GitLab holds for the runner, as far as known.
func (c *executorCase) known(id int64) *gitlab.Settings {
	if det := c.facts(c.ref(id)).Details; det != nil {
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

// pending decides a removal an earlier run could not finish: made only on
// its proof — the runner's token that GitLab accepts, or, read by id, the
// description it recorded and a manager with this host's system id.
func (b *builder) pending(o OwnedRunner) Step {
	ev := b.ev
	ref, r := o.Ref(), o.Runner
	s := Step{Action: Delete, Name: o.Name, ClientKey: ref.ClientKey, URL: r.URL, ID: r.ID, Prev: &r,
		Reason: "a removal an earlier run could not finish"}
	with := func(row Row, via Via, reason string) Step {
		s.Action, s.Rule, s.Via = row.Then, row.Name, via
		if reason != "" {
			s.Reason += "; " + reason
		}
		return s
	}
	unproven := func(why string) Step {
		b.leave(ref, r.URL, r.Name, "the state file records its removal, but "+why)
		return with(RowPendingUnproven, Nothing, "nothing proves the runner this host's ("+why+"), so it is not deleted")
	}
	v, answered := ev.Undeclared[ref]
	if r.Token != "" && (!answered || v.State == gitlab.TokenAlive) {
		if answered && v.Creds.ID != 0 && r.ID != 0 && v.Creds.ID != r.ID {
			return unproven(fmt.Sprintf("the token it carries is runner %d's, not runner %d's", v.Creds.ID, r.ID))
		}
		if f := ev.Runners[ref]; f != nil && f.Unreadable != "" {
			// Whether another host uses it is unknown: a delete by its
			// token would take the runner from that host too.
			s.Fault = fmt.Sprintf("reading runner %d's managers, to make sure no other host uses it, failed (%s); the removal stays pending and the next run tries again", r.ID, f.Unreadable)
			return with(RowPendingUnknown, ByToken, "")
		}
		if row, why := ev.claim(ref, false, false); row.Claim == Shared {
			return with(RowPendingShared, ByToken, why+", so only this host's runner manager is removed")
		}
		return with(RowPendingToken, ByToken, "")
	}
	f := ev.Runners[ref]
	if f == nil {
		f = &RunnerFacts{}
	}
	switch {
	case r.ID == 0:
		return with(RowPendingGone, Nothing, "it names no runner id")
	case !ev.hasPAT(ref.ClientKey):
		return unproven("its token does not work, and without a personal access token the runner cannot be read")
	case f.Unreadable != "":
		s.Fault = fmt.Sprintf("reading runner %d to make sure it is this host's failed (%s); the removal stays pending and the next run tries again", r.ID, f.Unreadable)
		return with(RowPendingUnknown, ByID, "")
	case f.Forbidden:
		s.Fault = fmt.Sprintf("the personal access token may not read runner %d (403) to make sure it is this host's; the removal stays pending", r.ID)
		return with(RowPendingUnknown, ByID, "")
	case f.Gone:
		return with(RowPendingGone, Nothing, "the runner is already gone from GitLab")
	case o.SystemID == "" || r.Name == "":
		return unproven("it was recorded without this host's system id and the runner's description")
	case o.SystemID != ev.SystemID:
		return unproven(fmt.Sprintf("it was recorded by another host (system id %s)", o.SystemID))
	case f.Details == nil || !f.ManagersRead:
		return unproven("the runner and its managers could not both be read")
	case f.Details.Description != r.Name:
		return unproven(fmt.Sprintf("GitLab describes runner %d as %q, not %q", r.ID, f.Details.Description, r.Name))
	}
	switch row, why := ev.claim(ref, false, true); row {
	case OwnOtherHost:
		return unproven(why)
	case OwnManaged:
		s.Fault = ev.mayNotDelete(ref)
		return with(RowPendingProven, ByID, "")
	}
	return unproven("no runner manager carries this host's system id")
}

// undeclared decides an entry of this host's config whose executor is no
// longer declared.
func (b *builder) undeclared(o OwnedRunner) Step {
	ev := b.ev
	ref := o.Ref()
	r := o.Runner
	s := Step{Action: Delete, Name: o.Name, ClientKey: ref.ClientKey, URL: r.URL, ID: r.ID, Prev: &r, Reason: "executor no longer declared"}
	with := func(row Row, via Via) Step {
		s.Action, s.Rule, s.Via = row.Then, row.Name, via
		return s
	}
	f := ev.Runners[ref]
	if f == nil {
		f = &RunnerFacts{}
	}
	v, answered := ev.Undeclared[ref]
	if r.Token != "" && (!answered || v.State == gitlab.TokenAlive) {
		if r.ID == 0 && answered && v.Creds.ID != 0 {
			s.ID = v.Creds.ID // an entry written without its id: verify names it
		}
		if f.Unreadable != "" {
			// Whether another host uses it is unknown: a delete by its
			// token would take the runner from that host too.
			s.Fault = fmt.Sprintf("reading runner %d's managers, to make sure no other host uses it, failed (%s); it stays in the config and the next run tries again", s.ID, f.Unreadable)
			return with(RowUndeclaredUnknown, ByToken)
		}
		if row, why := ev.claim(ref, true, true); row.Claim == Shared {
			s.Reason = "executor no longer declared; " + why + ", so only this host's runner manager is removed"
			return with(RowUndeclaredShared, ByToken)
		}
		return with(RowUndeclared, ByToken)
	}
	pat := ev.hasPAT(ref.ClientKey)
	switch {
	case r.ID == 0:
		s.Reason = "executor no longer declared; the entry has no runner id"
		return with(RowUndeclaredGone, Nothing)
	case r.Token != "" && !pat:
		b.leave(ref, r.URL, r.Name, "its token is rejected, and without a personal access token it can be neither checked nor removed")
		s.Reason = "executor no longer declared; its token is rejected and there is no personal access token to check the runner"
		return with(RowUndeclaredLeft, Nothing)
	case !pat:
		s.Fault = fmt.Sprintf("cannot delete runner %d without its token or a personal access token", r.ID)
		return with(RowUndeclaredUnknown, ByID)
	case f.Unreadable != "":
		s.Fault = fmt.Sprintf("reading runner %d to make sure it is this host's failed (%s); it stays in the config and the next run tries again", r.ID, f.Unreadable)
		return with(RowUndeclaredUnknown, ByID)
	case f.Forbidden:
		s.Fault = fmt.Sprintf("the personal access token may not read runner %d (403) to make sure it is this host's; it stays in the config", r.ID)
		return with(RowUndeclaredUnknown, ByID)
	case f.Gone:
		s.Reason = "executor no longer declared; the runner is already gone from GitLab"
		return with(RowUndeclaredGone, Nothing)
	}
	row, why := ev.claim(ref, true, true)
	if row.Claim == Mine {
		s.Fault = ev.mayNotDelete(ref)
		return with(RowUndeclaredMine, ByID)
	}
	b.leave(ref, r.URL, r.Name, why)
	s.Reason = "executor no longer declared; its runner is not this host's to delete"
	return with(RowUndeclaredLeft, Nothing)
}

// leftovers are runners GitLab lists with this host's and instance's
// identity whose executor is not declared.
func (b *builder) leftovers(claimed, deleted map[Ref]bool) []Step {
	ev := b.ev
	pat := config.IdentityPattern(ev.Desired.Hostname, ev.Desired.Layout.Instance)
	declared := map[string]bool{}
	for _, e := range ev.Desired.Executors {
		declared[e.Name] = true
	}
	for _, sk := range ev.Desired.Skipped {
		declared[sk.Name] = true // still declared, only not served this run
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
			if row, why := ev.claim(ref, false, true); row.Claim != Mine && row.Claim != Reclaimable {
				b.leave(ref, url, s.Description, why)
				continue
			}
			out = append(out, Step{Action: Delete, Rule: RowLeftover.Name, Via: ByID, Name: m[1], ClientKey: key, URL: url, ID: s.ID,
				Reason: "runner of this host and instance whose executor is no longer declared", Fault: ev.mayNotDelete(ref)})
		}
	}
	return out
}

// mayNotDelete is the fault of a delete by id the token's known scopes do
// not allow.
func (ev Evidence) mayNotDelete(ref Ref) string {
	if c := ev.Tokens[ref.ClientKey]; !c.May(scopesManage...) {
		return fmt.Sprintf("the personal access token for %s may not delete runner %d (it needs one of the scopes %v; it has %v)", ref.ClientKey, ref.ID, scopesManage, c.Scopes)
	}
	return ""
}

func (ev Evidence) hasPAT(key string) bool {
	for _, c := range ev.Desired.Clients {
		if c.Key == key {
			return c.PAT != ""
		}
	}
	return false
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

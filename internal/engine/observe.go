package engine

import (
	"context"
	"fmt"
	"sort"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/config"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/gitlab"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/plan"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/tags"
)

// observe gathers, with read-only requests, the evidence the plan needs:
// one verify per token on disk; lookups, runner reads and manager reads
// only when something is missing, rejected, removed, or refresh asks for
// it. In steady state it makes exactly one request per executor and none
// with the PAT. It decides nothing: plan.Build does.
func (en *engine) observe(ctx context.Context, ev *plan.Evidence) error {
	if err := en.verifyAll(ctx, ev); err != nil {
		return err
	}
	w := en.wants(ev)
	var err error
	if ev.Found, ev.ListDenied, err = en.lookup(ctx, w.lookups()); err != nil {
		return err
	}
	// Runners found with this host's identity may be adopted or deleted by
	// id: their managers tell whether they are this host's. Candidates of
	// an executor to adopt are read too, so an adopt that changes nothing
	// sends no PUT.
	// Their details tell when they were last contacted: a runner nobody
	// used for longer than GitLab's stale window may be taken back.
	for key, list := range ev.Found {
		for _, s := range list {
			ref := plan.Ref{ClientKey: key, ID: s.ID}
			if _, ok := en.identityOf(key, s.Description); !ok || w.kept[ref] {
				continue
			}
			w.managers[ref], w.details[ref] = true, true
		}
	}
	en.readRunners(ctx, w.details, w.managers, ev)
	en.readWhereNoManagers(ctx, ev)
	return nil
}

// readWhereNoManagers reads the runners whose GitLab has no managers
// route (before 17.1): their details are then all there is to know.
func (en *engine) readWhereNoManagers(ctx context.Context, ev *plan.Evidence) {
	details := map[plan.Ref]bool{}
	for ref, f := range ev.Runners {
		if f.NoManagers && f.Details == nil && !f.Gone && !f.Forbidden && f.Unreadable == "" {
			details[ref] = true
		}
	}
	if len(details) > 0 {
		en.readRunners(ctx, details, nil, ev)
	}
}

// wanted is what observe reads beyond the verifies.
type wanted struct {
	scopes   map[lookupScope]bool
	details  map[plan.Ref]bool
	managers map[plan.Ref]bool
	kept     map[plan.Ref]bool // runners whose token verified: this host's by token
}

func (w wanted) lookups() []lookupScope {
	out := make([]lookupScope, 0, len(w.scopes))
	for s := range w.scopes {
		out = append(out, s)
	}
	return out
}

// wants decides which reads with the PAT the evidence still lacks.
func (en *engine) wants(ev *plan.Evidence) wanted {
	w := wanted{scopes: map[lookupScope]bool{}, details: map[plan.Ref]bool{}, managers: map[plan.Ref]bool{},
		kept: map[plan.Ref]bool{}}
	// After an interrupted run, the pass that follows the one that obtained
	// tokens lists where they were made: a late create of that run shows.
	for _, sc := range en.hints.lookups {
		w.scopes[sc] = true
	}
	for _, e := range en.d.Executors {
		if e.Client.PAT == "" {
			if en.o.Refresh {
				en.warn("refreshing needs a personal_access_token for %s; %s was not read from GitLab", e.Client.URL, e.Name)
			}
			continue
		}
		p := ev.Prev.ByName[e.Name]
		v, verified := ev.Verified[e.Name]
		alive := p != nil && verified && v.State == gitlab.TokenAlive
		if !alive || en.o.Refresh {
			w.scopes[scopeOf(e)] = true
		}
		switch {
		case p != nil && !alive && v.State != gitlab.TokenOrphaned:
			ref := plan.Ref{ClientKey: e.Client.Key, ID: p.ID}
			w.details[ref], w.managers[ref] = true, true
		case p == nil:
			// The runner the state file names for it is healed by id when
			// it exists and no other host uses it.
			if sr, ok := ev.State.Runners[e.Name]; ok && sr.Key() == e.Client.Key && sr.ID != 0 {
				ref := plan.Ref{ClientKey: e.Client.Key, ID: sr.ID}
				w.details[ref], w.managers[ref] = true, true
			}
		case alive:
			id := p.ID
			if v.Creds.ID != 0 {
				id = v.Creds.ID
			}
			ref := plan.Ref{ClientKey: e.Client.Key, ID: id}
			w.kept[ref] = true
			sr, ok := ev.State.Runners[e.Name]
			if en.o.Refresh || !ok || sr.ID != id || sr.Key() != e.Client.Key || sr.Applied == nil {
				w.details[ref] = true
			}
		}
	}
	// An entry no longer declared: its managers tell whether another host
	// uses the runner (then only this host's manager goes) and, when its
	// token is dead, whether it still exists.
	// A removal an earlier run recorded whose token is dead or missing is
	// made by id only when a read by id bears out its proof: the
	// description it recorded and a manager with this host's system id.
	for _, o := range ev.Prev.Owned {
		if ref := o.Ref(); ref.ID != 0 && en.hasPAT(ref.ClientKey) {
			w.managers[ref] = true
			if v, answered := ev.Undeclared[ref]; o.Pending && (o.Runner.Token == "" || (answered && v.State != gitlab.TokenAlive)) {
				w.details[ref] = true
			}
		}
	}
	return w
}

func (en *engine) hasPAT(key string) bool {
	for _, c := range en.d.Clients {
		if c.Key == key {
			return c.PAT != ""
		}
	}
	return false
}

// verifyAll verifies every token on disk, in parallel: the declared
// executors', the last good entries of executors whose file is invalid
// (held), and those of entries no longer declared. Even when one fails,
// what was answered is kept: a degraded start must know whether any token
// was seen rejected. A token of an undeclared or held entry that gets no
// answer is left unverified: its delete tries again, the entry stays.
func (en *engine) verifyAll(ctx context.Context, ev *plan.Evidence) error {
	type target struct {
		name  string // declared executor, or "" for an undeclared entry
		held  string // or the executor of a held entry (its file is invalid)
		ref   plan.Ref
		token string
	}
	var targets []target
	for _, e := range en.d.Executors {
		if p := ev.Prev.ByName[e.Name]; p != nil {
			targets = append(targets, target{name: e.Name, ref: plan.Ref{ClientKey: e.Client.Key, ID: p.ID}, token: p.Token})
		}
	}
	for _, o := range ev.Prev.Owned {
		if o.Runner.Token != "" {
			targets = append(targets, target{ref: o.Ref(), token: o.Runner.Token})
		}
	}
	for _, h := range ev.Prev.Held {
		if h.Runner.Token != "" {
			targets = append(targets, target{held: h.Name, ref: h.Ref(), token: h.Runner.Token})
		}
	}
	answers := make([]*gitlab.Verification, len(targets))
	err := en.each(ctx, len(targets), func(i int) error {
		t := targets[i]
		c, err := en.gitlabFor(t.ref.ClientKey)
		if err != nil {
			return err
		}
		v, err := c.Verify(ctx, t.token, en.systemID)
		if err != nil {
			if t.name == "" {
				return nil
			}
			return fmt.Errorf("verifying %s: %w", t.name, err)
		}
		answers[i] = &v
		return nil
	})
	for i, t := range targets {
		switch {
		case answers[i] == nil:
		case t.name != "":
			ev.Verified[t.name] = *answers[i]
		case t.held != "":
			ev.HeldVerified[t.held] = *answers[i]
		default:
			ev.Undeclared[t.ref] = *answers[i]
		}
	}
	return err
}

// identityOf tells whether a runner description is this host's and
// instance's: an executor's declared description on that GitLab, or the
// default description of any executor name. It returns the executor name.
func (en *engine) identityOf(key, description string) (string, bool) {
	for _, e := range en.d.Executors {
		if e.Client.Key == key && e.Description == description {
			return e.Name, true
		}
	}
	if en.identity == nil {
		en.identity = config.IdentityPattern(en.d.Hostname, en.d.Layout.Instance)
	}
	if m := en.identity.FindStringSubmatch(description); m != nil {
		return m[1], true
	}
	return "", false
}

// readRunners reads runners (GET /runners/:id) and their managers
// (GET /runners/:id/managers) in parallel into the evidence.
func (en *engine) readRunners(ctx context.Context, details, managers map[plan.Ref]bool, ev *plan.Evidence) {
	type job struct {
		ref      plan.Ref
		managers bool
	}
	var jobs []job
	for ref := range details {
		jobs = append(jobs, job{ref, false})
	}
	for ref := range managers {
		jobs = append(jobs, job{ref, true})
	}
	sort.Slice(jobs, func(i, j int) bool {
		a, b := jobs[i], jobs[j]
		if a.ref != b.ref {
			return a.ref.ClientKey < b.ref.ClientKey || (a.ref.ClientKey == b.ref.ClientKey && a.ref.ID < b.ref.ID)
		}
		return !a.managers && b.managers
	})
	type answer struct {
		runner   gitlab.Runner
		managers []gitlab.Manager
		found    gitlab.Presence
		err      error
	}
	answers := make([]answer, len(jobs))
	_ = en.each(ctx, len(jobs), func(i int) error {
		j, a := jobs[i], &answers[i]
		c, err := en.gitlabFor(j.ref.ClientKey)
		if err != nil {
			a.err = err
			return nil
		}
		if j.managers {
			a.managers, a.found, a.err = c.ReadManagers(ctx, j.ref.ID)
		} else {
			a.runner, a.found, a.err = c.ReadRunner(ctx, j.ref.ID)
		}
		return nil
	})
	for i, j := range jobs {
		a, f := answers[i], ev.Facts(j.ref)
		switch {
		case a.err != nil:
			// Unknown: the plan then never resets or deletes it.
			f.Unreadable = en.o.Secrets.Redact(a.err.Error())
			en.warn("cannot read runner %d on %s (%s); not touching it", j.ref.ID, j.ref.ClientKey, f.Unreadable)
		case a.found == gitlab.Forbidden:
			f.Forbidden = true
			if !j.managers {
				en.warn("cannot read runner %d on %s with this personal access token (403)", j.ref.ID, j.ref.ClientKey)
			}
		case a.found == gitlab.Unsupported:
			f.NoManagers = true
		case a.found == gitlab.Gone:
			f.Gone = true
		case j.managers:
			f.Managers, f.ManagersRead = a.managers, true
		default:
			r := a.runner
			f.Details = &r
		}
	}
}

// lookupScope is one list request: a GitLab and the runner scope to list.
type lookupScope struct {
	clientKey  string
	runnerType string
	groupID    int64
	projectID  int64
}

// scopeOf is the list request that finds e's runner.
func scopeOf(e *config.Executor) lookupScope {
	return lookupScope{e.Client.Key, e.RunnerType, e.GroupID, e.ProjectID}
}

// lookup lists the runners tagged with this host and instance (the
// identity tags the run adds: with both families omitted, every runner of
// the scope, matched by description alone, as always). A list the token
// may not make is reported per client (denied), with what the token lacks:
// the plan decides what that blocks.
func (en *engine) lookup(ctx context.Context, scopes []lookupScope) (found map[string][]gitlab.Summary, denied map[string]string, err error) {
	sort.Slice(scopes, func(i, j int) bool { return fmt.Sprint(scopes[i]) < fmt.Sprint(scopes[j]) })
	lists := make([][]gitlab.Summary, len(scopes))
	denials := make([]*gitlab.Denial, len(scopes))
	identity := tags.IdentityTags(en.d.Hostname, en.d.Layout.Instance, en.o.Tags.Omit)
	err = en.each(ctx, len(scopes), func(i int) error {
		s := scopes[i]
		c, err := en.gitlabFor(s.clientKey)
		if err != nil {
			return err
		}
		lists[i], denials[i], err = c.ListRunners(ctx, gitlab.ListOptions{RunnerType: s.runnerType, GroupID: s.groupID, ProjectID: s.projectID, Tags: identity})
		if err != nil {
			return fmt.Errorf("looking for this host's runners: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	found, denied = map[string][]gitlab.Summary{}, map[string]string{}
	for i, s := range scopes {
		if d := denials[i]; d != nil {
			denied[s.clientKey] = d.Missing
			en.warn("cannot list runners on %s with this personal access token: %s; runners missing from the config cannot be adopted and leftovers cannot be cleaned up", s.clientKey, d.Missing)
			continue
		}
		found[s.clientKey] = append(found[s.clientKey], lists[i]...)
	}
	for k, list := range found {
		found[k] = dedupeSummaries(list)
	}
	return found, denied, nil
}

func dedupeSummaries(in []gitlab.Summary) []gitlab.Summary {
	seen := map[int64]bool{}
	var out []gitlab.Summary
	for _, s := range in {
		if !seen[s.ID] {
			seen[s.ID] = true
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

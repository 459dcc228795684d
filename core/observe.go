package core

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/config"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/gitlab"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/hostfs"
)

// observe makes the read-only requests the plan needs: one verify per
// executor with a token; lookups, GETs and manager reads only when
// something is missing, rejected, or refresh asks for it. In steady state
// it makes exactly one request per executor and none with the PAT.
func (en *engine) observe(ctx context.Context, prev Previous, st *hostfs.State, interrupted bool) (Observation, error) {
	obs := newObservation()
	obs.Interrupted = interrupted
	d := en.d
	if err := en.verifyAll(ctx, prev, &obs); err != nil {
		return obs, err
	}

	// What needs a PAT: lookups per client, GETs per runner.
	lookups := map[lookupScope]bool{}
	details := map[RunnerRef]bool{}
	owners := map[RunnerRef]bool{}
	needsAdoption := map[string]bool{} // executor names with no live token
	kept := map[RunnerRef]bool{}       // runners whose token verified: ours by token
	for _, e := range d.Executors {
		if e.Client.PAT == "" {
			if en.o.Refresh {
				en.warn("refreshing needs a personal_access_token for %s; %s was not read from GitLab", e.Client.URL, e.Name)
			}
			continue
		}
		p := prev.ByName[e.Name]
		v, verified := obs.Verified[e.Name]
		alive := p != nil && verified && v.Alive
		if !alive || en.o.Refresh {
			lookups[scopeOf(e)] = true
		}
		switch {
		case p != nil && !alive && !v.Orphaned:
			ref := RunnerRef{e.Client.Key, p.ID}
			details[ref], owners[ref] = true, true
			needsAdoption[e.Name] = true
		case p == nil:
			needsAdoption[e.Name] = true
		case alive:
			id := p.ID
			if v.Creds.ID != 0 {
				id = v.Creds.ID
			}
			kept[RunnerRef{e.Client.Key, id}] = true
			sr, ok := st.Runners[e.Name]
			if en.o.Refresh || !ok || sr.ID != id || sr.Key() != e.Client.Key || sr.Applied == nil {
				details[RunnerRef{e.Client.Key, id}] = true
			}
		}
	}
	scopes := make([]lookupScope, 0, len(lookups))
	for s := range lookups {
		scopes = append(scopes, s)
	}
	var err error
	if obs.Found, obs.ListForbidden, err = en.lookup(ctx, scopes); err != nil {
		return obs, err
	}

	// Runners found with this host's identity may be adopted or deleted by
	// id: GitLab's managers must show they are this host's. Candidates of
	// an executor to adopt are read too, so an adopt that changes nothing
	// sends no PUT.
	for key, list := range obs.Found {
		for _, s := range list {
			name, ok := en.identityOf(key, s.Description)
			if !ok {
				continue
			}
			ref := RunnerRef{key, s.ID}
			if kept[ref] {
				continue
			}
			owners[ref] = true
			if needsAdoption[name] {
				details[ref] = true
			}
		}
	}
	en.readRunners(ctx, details, owners, &obs)
	return obs, nil
}

// verifyAll verifies every token on disk, in parallel. Even when one fails,
// what was answered is kept: a degraded start must know whether any token
// was seen rejected.
func (en *engine) verifyAll(ctx context.Context, prev Previous, obs *Observation) error {
	var toVerify []*config.Executor
	for _, e := range en.d.Executors {
		if prev.ByName[e.Name] != nil {
			toVerify = append(toVerify, e)
		}
	}
	results := make([]VerifyOutcome, len(toVerify))
	answered := make([]bool, len(toVerify))
	err := en.parallel(len(toVerify), func(i int) error {
		e := toVerify[i]
		c, _, err := en.gitlabFor(e.Client.Key)
		if err != nil {
			return err
		}
		creds, err := c.Verify(ctx, prev.ByName[e.Name].Token, en.systemID)
		switch {
		case err == nil:
			results[i] = VerifyOutcome{Alive: true, Creds: creds}
		case gitlab.IsForbidden(err):
			results[i] = VerifyOutcome{}
		case gitlab.IsUnprocessable(err):
			results[i] = VerifyOutcome{Orphaned: true}
		default:
			return fmt.Errorf("verifying %s: %w", e.Name, err)
		}
		answered[i] = true
		return nil
	})
	for i, e := range toVerify {
		if answered[i] {
			obs.Verified[e.Name] = results[i]
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
// (GET /runners/:id/managers) in parallel. A 404 leaves no entry (gone);
// a 403 marks the runner Forbidden — never gone.
func (en *engine) readRunners(ctx context.Context, details, owners map[RunnerRef]bool, obs *Observation) {
	type job struct {
		ref      RunnerRef
		managers bool
	}
	var jobs []job
	for ref := range details {
		jobs = append(jobs, job{ref, false})
	}
	for ref := range owners {
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
		runner     *gitlab.Runner
		ownership  Ownership
		forbidden  bool
		unreadable string
	}
	answers := make([]answer, len(jobs))
	// Reads that fail for other reasons leave the runner unknown: the plan
	// then never resets or deletes it.
	_ = en.parallel(len(jobs), func(i int) error {
		j := jobs[i]
		c, _, err := en.gitlabFor(j.ref.ClientKey)
		if err != nil {
			return nil
		}
		if j.managers {
			ms, err := c.RunnerManagers(ctx, j.ref.ID)
			switch {
			case err == nil:
				answers[i].ownership = en.ownership(ms)
			case gitlab.IsForbidden(err):
				answers[i].forbidden = true
			case !gitlab.IsNotFound(err):
				answers[i].unreadable = err.Error()
			}
			return nil
		}
		r, err := c.GetRunner(ctx, j.ref.ID)
		switch {
		case err == nil:
			answers[i].runner = &r
		case gitlab.IsForbidden(err):
			answers[i].forbidden = true
			en.warn("cannot read runner %d on %s with this personal access token (%v)", j.ref.ID, j.ref.ClientKey, err)
		case !gitlab.IsNotFound(err):
			answers[i].unreadable = err.Error()
		}
		return nil
	})
	for i, j := range jobs {
		a := answers[i]
		switch {
		case a.unreadable != "":
			obs.Unreadable[j.ref] = a.unreadable
			en.warn("cannot read runner %d on %s (%s); not touching it", j.ref.ID, j.ref.ClientKey, a.unreadable)
		case a.forbidden:
			obs.Forbidden[j.ref] = true
		case a.runner != nil:
			obs.Details[j.ref] = *a.runner
		case a.ownership != 0:
			obs.Owners[j.ref] = a.ownership
		}
	}
}

// ownership reads GitLab's runner managers: the hosts that used the
// runner's token, each with gitlab-runner's system id.
func (en *engine) ownership(ms []gitlab.Manager) Ownership {
	if len(ms) == 0 {
		return OwnerNone
	}
	for _, m := range ms {
		if m.SystemID == en.systemID {
			return OwnerThisHost
		}
	}
	return OwnerOtherHost
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

// lookupScope is one list request: a GitLab and the runner scope to list.
type lookupScope struct {
	clientKey  string
	runnerType string
	groupID    int64
	projectID  int64
}

// lookupScope is the list request that finds e's runner.
func scopeOf(e *config.Executor) lookupScope {
	return lookupScope{e.Client.Key, e.RunnerType, e.GroupID, e.ProjectID}
}

// lookup lists the runners tagged with this host and instance. A list the
// token may not make is reported per client (forbidden), with what the
// token lacks: the plan decides what that blocks.
func (en *engine) lookup(ctx context.Context, scopes []lookupScope) (found map[string][]gitlab.Summary, forbidden map[string]string, err error) {
	sort.Slice(scopes, func(i, j int) bool { return fmt.Sprint(scopes[i]) < fmt.Sprint(scopes[j]) })
	lists := make([][]gitlab.Summary, len(scopes))
	denied := make([]string, len(scopes))
	tags := []string{en.d.Hostname, en.d.Layout.Instance}
	err = en.parallel(len(scopes), func(i int) error {
		s := scopes[i]
		c, _, err := en.gitlabFor(s.clientKey)
		if err != nil {
			return err
		}
		list, err := c.ListRunners(ctx, gitlab.ListOptions{RunnerType: s.runnerType, GroupID: s.groupID, ProjectID: s.projectID, Tags: tags})
		switch {
		case err == nil:
			lists[i] = list
		case gitlab.IsInsufficientScope(err):
			denied[i] = "listing runners needs the read_api or api scope; manage_runner is not enough"
		case gitlab.IsForbidden(err):
			denied[i] = listPermission(s.runnerType)
		case gitlab.StatusOf(err) == 401:
			denied[i] = "GitLab rejected the token (401): it is revoked or expired"
		case gitlab.IsNotFound(err) && s.runnerType != "instance_type":
			// GitLab answers 404 for a group or project the token cannot see.
			denied[i] = fmt.Sprintf("GitLab says the %s does not exist or this token cannot see it", strings.TrimSuffix(s.runnerType, "_type"))
		default:
			return fmt.Errorf("looking for this host's runners: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	found, forbidden = map[string][]gitlab.Summary{}, map[string]string{}
	for i, s := range scopes {
		if denied[i] != "" {
			forbidden[s.clientKey] = denied[i]
			en.warn("cannot list runners on %s with this personal access token: %s; runners missing from the config cannot be adopted and leftovers cannot be cleaned up", s.clientKey, denied[i])
			continue
		}
		found[s.clientKey] = append(found[s.clientKey], lists[i]...)
	}
	for k, list := range found {
		found[k] = dedupeSummaries(list)
	}
	return found, forbidden, nil
}

// listPermission says who may list runners of a scope (403 without a
// scope problem).
func listPermission(runnerType string) string {
	switch runnerType {
	case "group_type":
		return "listing a group's runners needs the Owner role in that group"
	case "project_type":
		return "listing a project's runners needs the Maintainer role in that project"
	}
	return "listing instance runners needs an administrator's token (with Admin Mode on, also the admin_mode scope)"
}

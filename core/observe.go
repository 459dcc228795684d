package core

import (
	"context"
	"fmt"
	"sort"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/gitlab"
)

// observe makes the read-only requests the plan needs: one verify per
// executor with a token; lookups and GETs only when something is missing,
// rejected, or --refresh asks for it.
func (en *engine) observe(ctx context.Context, prev Previous, st *State) (Observation, error) {
	obs := newObservation()
	d := en.d
	var toVerify []*Executor
	for _, e := range d.Executors {
		if p := prev.ByName[e.Name]; p != nil {
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
			results[i] = VerifyOutcome{Alive: false}
		default:
			return fmt.Errorf("verifying %s: %w", e.Name, err)
		}
		answered[i] = true
		return nil
	})
	// Even on failure, what was answered is returned: a degraded start
	// must know whether any token was seen rejected.
	for i, e := range toVerify {
		if answered[i] {
			obs.Verified[e.Name] = results[i]
		}
	}
	if err != nil {
		return obs, err
	}

	// What needs a PAT: lookups per client, GETs per runner id.
	lookups := map[lookupScope]bool{}
	var gets []int64
	getSet := map[int64]bool{}
	addGet := func(id int64) {
		if id != 0 && !getSet[id] {
			getSet[id] = true
			gets = append(gets, id)
		}
	}
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
			lookups[e.lookupScope()] = true
		}
		switch {
		case p != nil && !alive:
			addGet(p.ID)
		case alive:
			id := p.ID
			if v.Creds.ID != 0 {
				id = v.Creds.ID
			}
			sr, ok := st.Runners[e.Name]
			if en.o.Refresh || !ok || sr.ID != id || sr.Applied == nil {
				addGet(id)
			}
		}
	}
	scopes := make([]lookupScope, 0, len(lookups))
	for s := range lookups {
		scopes = append(scopes, s)
	}
	if obs.Found, err = en.lookup(ctx, scopes); err != nil {
		return obs, err
	}

	// GET each runner whose state is needed, and each found candidate of an
	// executor being adopted is read later by apply (PUT answers it).
	details := make([]*gitlab.Runner, len(gets))
	keyOf := map[int64]string{}
	for _, e := range d.Executors {
		if p := prev.ByName[e.Name]; p != nil {
			keyOf[p.ID] = e.Client.Key
			if v := obs.Verified[e.Name]; v.Creds.ID != 0 {
				keyOf[v.Creds.ID] = e.Client.Key
			}
		}
	}
	err = en.parallel(len(gets), func(i int) error {
		c, _, err := en.gitlabFor(keyOf[gets[i]])
		if err != nil {
			return err
		}
		r, err := c.GetRunner(ctx, gets[i])
		switch {
		case err == nil:
			details[i] = &r
		case gitlab.IsNotFound(err):
			// Gone: the plan replaces it (no entry in Details).
		case gitlab.IsForbidden(err):
			en.warn("cannot read runner %d on %s with this personal access token (%v); assuming its settings are as last applied", gets[i], keyOf[gets[i]], err)
		default:
			return fmt.Errorf("reading runner %d: %w", gets[i], err)
		}
		return nil
	})
	if err != nil {
		return obs, err
	}
	for i, id := range gets {
		if details[i] != nil {
			obs.Details[id] = *details[i]
		}
	}
	return obs, nil
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
func (e *Executor) lookupScope() lookupScope {
	return lookupScope{e.Client.Key, e.RunnerType, e.GroupID, e.ProjectID}
}

// lookup lists the runners tagged with this host and instance. A PAT that
// may not list is a warning (nothing can be adopted), not a failure.
func (en *engine) lookup(ctx context.Context, scopes []lookupScope) (map[string][]gitlab.Summary, error) {
	sort.Slice(scopes, func(i, j int) bool { return fmt.Sprint(scopes[i]) < fmt.Sprint(scopes[j]) })
	found := make([][]gitlab.Summary, len(scopes))
	listedOK := make([]bool, len(scopes))
	tags := []string{en.d.Hostname, en.d.Layout.Instance}
	err := en.parallel(len(scopes), func(i int) error {
		s := scopes[i]
		c, _, err := en.gitlabFor(s.clientKey)
		if err != nil {
			return err
		}
		list, err := c.ListRunners(ctx, gitlab.ListOptions{RunnerType: s.runnerType, GroupID: s.groupID, ProjectID: s.projectID, Tags: tags})
		if err != nil {
			if gitlab.IsForbidden(err) {
				en.warn("cannot list runners on %s with this personal access token (%v); runners missing from the config cannot be adopted and leftovers cannot be cleaned up: give it read_api or manage_runner (and administrator rights for instance runners)", s.clientKey, err)
				return nil
			}
			return fmt.Errorf("looking for this host's runners: %w", err)
		}
		found[i] = list
		listedOK[i] = true
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := map[string][]gitlab.Summary{}
	for i, s := range scopes {
		if listedOK[i] {
			out[s.clientKey] = append(out[s.clientKey], found[i]...)
		}
	}
	for k, list := range out {
		out[k] = dedupeSummaries(list)
	}
	return out, nil
}

package core

import (
	"context"
	"fmt"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/gitlab"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/plan"
)

// settle re-checks the work of a run that follows an interrupted one (the
// .incomplete marker was left behind). A run killed (or failed) just before
// this one may have left a request that GitLab was still carrying out (a
// create, a token reset) when this run observed it; its effect then lands
// during this run. So, once, after apply:
//   - every token obtained by adopting an existing runner is verified
//     again; one that a late reset made invalid is reset once more, so the
//     config never holds a dead token (new runners cannot be reset by a
//     request older than they are);
//   - with a PAT, this host's runners are listed again, their managers
//     read, and plan.LateDuplicates decides which runners carrying an
//     executor's identity but not kept are a late create's: those are
//     deleted, so a late create never leaves a duplicate.
//
// It costs nothing in steady state: it runs only after an interrupted run,
// and only when tokens were obtained.
func (en *engine) settle(ctx context.Context, p plan.Plan, outcomes []plan.Outcome, base plan.Evidence) []RunnerResult {
	var obtained []int
	for i, s := range p.Steps {
		if s.Executor != nil && outcomes[i].Creds != nil {
			obtained = append(obtained, i)
		}
	}
	if len(obtained) == 0 {
		return nil
	}
	en.reverify(ctx, p, outcomes, obtained)

	// Duplicates: only where a PAT can list.
	kept := map[plan.Ref]bool{}
	for i, s := range p.Steps {
		if s.Executor == nil {
			continue
		}
		if id := outcomes[i].ID; id != 0 {
			kept[plan.Ref{ClientKey: s.ClientKey, ID: id}] = true
		}
		if c := outcomes[i].Creds; c != nil && c.ID != 0 {
			kept[plan.Ref{ClientKey: s.ClientKey, ID: c.ID}] = true
		}
	}
	scopes := map[lookupScope]bool{}
	for _, i := range obtained {
		e := p.Steps[i].Executor
		if e.Client.PAT != "" && (p.Steps[i].Action == plan.Create || p.Steps[i].Action == plan.Replace) {
			scopes[scopeOf(e)] = true
		}
	}
	if len(scopes) == 0 {
		return nil
	}
	ev := plan.NewEvidence()
	ev.Desired, ev.SystemID, ev.Interrupted = base.Desired, base.SystemID, true
	list := make([]lookupScope, 0, len(scopes))
	for sc := range scopes {
		list = append(list, sc)
	}
	var err error
	if ev.Found, _, err = en.lookup(ctx, list); err != nil {
		en.warn("could not check for duplicate runners after creating runners: %v", err)
		return nil
	}
	managers := map[plan.Ref]bool{}
	for key, found := range ev.Found {
		for _, s := range found {
			if ref := (plan.Ref{ClientKey: key, ID: s.ID}); !kept[ref] {
				managers[ref] = true
			}
		}
	}
	en.readRunners(ctx, nil, managers, &ev)
	dups, left := plan.LateDuplicates(ev, kept)
	en.leftBehind(left)
	res := make([]RunnerResult, len(dups))
	_ = en.each(ctx, len(dups), func(j int) error {
		oc := en.applyStep(ctx, dups[j])
		res[j] = RunnerResult{Name: dups[j].Name, ID: dups[j].ID, URL: dups[j].URL, Action: plan.Delete, Reason: dups[j].Reason}
		if oc.Err != nil {
			res[j].Error = fmt.Sprintf("delete %s: %v", dups[j].Name, oc.Err)
		}
		return nil
	})
	return res
}

// reverify checks the tokens adopted by resetting once more, and resets
// again one that a late reset of the interrupted run invalidated.
func (en *engine) reverify(ctx context.Context, p plan.Plan, outcomes []plan.Outcome, obtained []int) {
	var adopted []int
	for _, i := range obtained {
		if p.Steps[i].Action == plan.Adopt {
			adopted = append(adopted, i)
		}
	}
	_ = en.each(ctx, len(adopted), func(j int) error {
		i := adopted[j]
		s, oc := p.Steps[i], &outcomes[i]
		c, err := en.gitlabFor(s.ClientKey)
		if err != nil || !c.HasPAT() {
			return nil
		}
		if v, err := c.Verify(ctx, oc.Creds.Token, en.systemID); err != nil || v.State != gitlab.TokenRejected {
			return nil
		}
		id := oc.Creds.ID
		if id == 0 {
			id = s.ID
		}
		creds, found, err := c.ResetToken(ctx, id)
		if err == nil && found != gitlab.Found {
			err = fmt.Errorf("GitLab answered that runner %d is %s", id, map[gitlab.Presence]string{gitlab.Gone: "gone", gitlab.Forbidden: "not the token's to reset"}[found])
		}
		if err != nil {
			en.warn("the token of %s (id %d) was reset by another request during this run and resetting it again failed: %v; the next run heals it", s.Name, id, err)
			return nil
		}
		en.o.Secrets.Add(creds.Token)
		creds.ID = id
		oc.Creds = &creds
		return nil
	})
}

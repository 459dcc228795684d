package core

import (
	"context"
	"fmt"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/gitlab"
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
//   - with a PAT, this host's runners are listed again and any runner that
//     carries an executor's identity but is not the one kept is deleted, so
//     a late create never leaves a duplicate.
//
// It costs nothing in steady state: it runs only after an interrupted run,
// and only when tokens were obtained.
func (en *engine) settle(ctx context.Context, plan Plan, outcomes []Outcome) []RunnerResult {
	var idx []int
	for i, s := range plan.Steps {
		if s.Executor != nil && outcomes[i].Creds != nil {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		return nil
	}
	var adopted []int
	for _, i := range idx {
		if plan.Steps[i].Action == Adopt {
			adopted = append(adopted, i)
		}
	}
	_ = en.parallel(len(adopted), func(j int) error {
		i := adopted[j]
		s, oc := plan.Steps[i], &outcomes[i]
		c, _, err := en.gitlabFor(s.ClientKey)
		if err != nil {
			return nil
		}
		if _, err := c.Verify(ctx, oc.Creds.Token, en.systemID); !gitlab.IsForbidden(err) || !c.HasPAT() {
			return nil
		}
		id := oc.Creds.ID
		if id == 0 {
			id = s.ID
		}
		creds, err := c.ResetToken(ctx, id)
		if err != nil {
			en.warn("the token of %s (id %d) was reset by another request during this run and resetting it again failed: %v; the next run heals it", s.Name, id, err)
			return nil
		}
		en.o.Secrets.Add(creds.Token)
		creds.ID = id
		oc.Creds = &creds
		return nil
	})

	// Duplicates: only where a PAT can list.
	kept := map[RunnerRef]bool{}
	for i, s := range plan.Steps {
		if s.Executor == nil {
			continue
		}
		if id := outcomes[i].ID; id != 0 {
			kept[RunnerRef{s.ClientKey, id}] = true
		}
		if c := outcomes[i].Creds; c != nil && c.ID != 0 {
			kept[RunnerRef{s.ClientKey, c.ID}] = true
		}
	}
	scopes := map[lookupScope]bool{}
	for _, i := range idx {
		e := plan.Steps[i].Executor
		if e.Client.PAT != "" && (plan.Steps[i].Action == Create || plan.Steps[i].Action == Replace) {
			scopes[scopeOf(e)] = true
		}
	}
	if len(scopes) == 0 {
		return nil
	}
	list := make([]lookupScope, 0, len(scopes))
	for sc := range scopes {
		list = append(list, sc)
	}
	found, _, err := en.lookup(ctx, list)
	if err != nil {
		en.warn("could not check for duplicate runners after creating runners: %v", err)
		return nil
	}
	index := indexFound(found)
	var dups []Step
	for _, i := range idx {
		e := plan.Steps[i].Executor
		for _, id := range candidates(e, en.d, index) {
			if ref := (RunnerRef{e.Client.Key, id}); !kept[ref] {
				kept[ref] = true
				// Not proven yet: apply checks its managers before deleting.
				dups = append(dups, Step{Action: Delete, Name: e.Name, ClientKey: e.Client.Key, URL: e.Client.URL, ID: id,
					Reason: "duplicate runner of this executor, created by a request of an interrupted run that GitLab finished late"})
			}
		}
	}
	if len(dups) == 0 {
		return nil
	}
	res := make([]RunnerResult, len(dups))
	_ = en.parallel(len(dups), func(j int) error {
		oc := en.applyStep(ctx, dups[j])
		res[j] = RunnerResult{Name: dups[j].Name, ID: dups[j].ID, URL: dups[j].URL, Action: Delete, Reason: dups[j].Reason}
		if oc.Err != nil {
			res[j].Error = fmt.Sprintf("delete %s: %v", dups[j].Name, oc.Err)
		}
		return nil
	})
	return res
}

package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/gitlab"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/hostfs"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/plan"
)

// A run reconciles in passes, as a controller-runtime reconciler
// requeues: each pass observes (read-only), plans (plan.Build) and applies
// exactly that plan, and asks for another pass when it left something to
// one. Pass one creates, adopts and updates, writes the config without the
// runners that leave it — recording their removals, and a replaced
// runner's, as pending in the state file — and has gitlab-runner take the
// config; the next pass is an ordinary run in which the existing rows
// decide (pending removals; after an interrupted run, late duplicates and
// tokens a late reset invalidated). Check mode shows pass one, and says
// what the next pass would do. A steady state is one pass: one verify per
// executor, nothing else.

// maxPasses bounds a run's passes.
const maxPasses = 3

// passHints are what a pass asks the next to look at.
type passHints struct {
	// again: the pass left removals to the next one.
	again bool
	// interrupted: the run follows an interrupted one and obtained tokens:
	// the next pass takes runners without a manager for that run's
	// (OwnInterrupted), and lists the scopes where this pass created.
	interrupted bool
	lookups     []lookupScope
	// replaced: the runners replaced by this pass (by runnerKey), whose
	// deletion the next pass carries out as part of the replace.
	replaced map[string]bool
}

func (h passHints) requeue() bool { return h.again || h.interrupted }

// Planned is one pass's plan together with the evidence it was made from.
// Check mode shows it (preview); apply carries out exactly this value.
type Planned struct {
	Plan plan.Plan
	// Degraded: GitLab could not be reached, but every declared executor
	// has a token on disk and nothing needs GitLab (no create, adopt or
	// delete): every step keeps its token unverified, so gitlab-runner can
	// start with what it has and retry GitLab by itself.
	Degraded bool

	ev plan.Evidence
	// live is the config the plan works from (the identity's: empty for a
	// clone).
	live *hostfs.LiveConfig
	// tokens: the personal access tokens' records for the state file.
	tokens map[string]hostfs.TokenRecord
	// host is the host the state file is written for.
	host hostfs.HostRecord
}

// reconcile runs the passes of a sync, or of a removal of the instance.
func reconcile(ctx context.Context, o Options) (*Result, error) {
	en, res, err := start(ctx, &o)
	defer en.finish()
	if err != nil {
		return res, err
	}
	makePlan := (*engine).planSync
	if en.o.Remove != "" {
		makePlan = (*engine).planRemoval
	}
	// A later pass decides everything again from what it observes: the
	// run's failures are its last pass's (a create that failed in pass
	// one and succeeded in pass two is no failure), and so are the
	// executors it did not serve.
	var failed error
	var last *Planned
	for pass := 1; ; pass++ {
		before := en.skipped
		en.skipped = nil
		p, err := makePlan(en, ctx)
		if err != nil {
			if pass > 1 {
				en.skipped = before // what the last pass made says
			}
			failed = errors.Join(failed, err)
			break
		}
		if en.o.Check {
			return en.preview(p, res)
		}
		out, next, err := en.apply(ctx, p)
		res, failed, last = merge(res, out, pass, en.hints.replaced), err, p
		if !next.requeue() || pass == maxPasses {
			break
		}
		en.hints = next
	}
	// What every pass warned of, and the runners any left alone.
	res.Warnings, res.LeftBehind, res.Skipped = en.warnings, en.left, en.skippedResults(last)
	return res, failed
}

// merge adds a later pass's result to the run's: a removal an earlier
// pass left to it takes its outcome (keeping the reason it was made for),
// the deletion of a runner an earlier pass replaced is part of that
// replace (reported only when it failed), what else it changed is added;
// its keeps were reported already.
func merge(run, pass *Result, n int, replaced map[string]bool) *Result {
	if n == 1 {
		pass.Passes = 1
		return pass
	}
	run.Passes = n
	at := map[string]int{}
	for i, r := range run.Runners {
		at[runnerKey(r)] = i
	}
	for _, r := range pass.Runners {
		key := runnerKey(r)
		i, seen := at[key]
		switch {
		case replaced[key] && r.Error == "":
		case seen && run.Runners[i].Deferred:
			was := run.Runners[i]
			was.Action, was.Error, was.Pending, was.Deferred = r.Action, r.Error, r.Pending, false
			run.Runners[i] = was
		case seen && r.Action != plan.Keep:
			run.Runners[i] = r
		case !seen && r.Action != plan.Keep:
			run.Runners = append(run.Runners, r)
		}
	}
	run.Changed = run.Changed || pass.Changed
	run.ConfigChanged = run.ConfigChanged || pass.ConfigChanged
	run.ConfigRemoved = run.ConfigRemoved || pass.ConfigRemoved
	if pass.Reload != nil && run.Reload == nil {
		run.Reload = pass.Reload
	}
	if pass.After != "" {
		run.After = pass.After
	}
	return run
}

// runnerKey identifies a runner in results: an executor by its name, a
// removal by its GitLab and id.
func runnerKey(r RunnerResult) string {
	if r.Executor != "" && r.Action != plan.Delete && r.Action != plan.Detach && r.Action != plan.Forget {
		return "executor\x00" + r.Name
	}
	return removalKey(r.URL, r.ID)
}

// removalKey is runnerKey's key of a removal.
func removalKey(url string, id int64) string {
	key, _ := gitlab.NormalizeURL(url)
	return fmt.Sprintf("runner\x00%s\x00%d", key, id)
}

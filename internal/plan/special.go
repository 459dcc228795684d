package plan

import "github.com/gitlab-runner-auth/gitlab-runner-auth/internal/gitlab"

// CanStartDegraded says whether a run whose GitLab did not answer may
// still let gitlab-runner start: every declared executor has a token on
// disk that has not expired (token_expires_at), none was seen rejected,
// and no runner waits to be deleted. A host back from weeks off with
// expired tokens needs GitLab: starting would only poll with dead tokens.
func CanStartDegraded(ev Evidence) bool {
	if len(ev.Prev.Owned) > 0 {
		return false
	}
	for _, e := range ev.Desired.Executors {
		p := ev.Prev.ByName[e.Name]
		if p == nil || (!p.TokenExpiresAt.IsZero() && !ev.Now.IsZero() && !p.TokenExpiresAt.After(ev.Now)) {
			return false
		}
		if v, ok := ev.Verified[e.Name]; ok && v.State != gitlab.TokenAlive {
			return false
		}
	}
	return true
}

// Late is a declared executor that cannot start without GitLab, and why.
type Late struct {
	Name, Why string
}

// NeedGitLab are the declared executors that cannot start without GitLab:
// no token on disk (a new executor, or a lost config), a token expired
// (token_expires_at), or one GitLab was seen to reject.
func NeedGitLab(ev Evidence) []Late {
	var out []Late
	for _, e := range ev.Desired.Executors {
		p := ev.Prev.ByName[e.Name]
		switch v, verified := ev.Verified[e.Name]; {
		case p == nil:
			out = append(out, Late{e.Name, "new executor (no token on disk), needs GitLab to register"})
		case !p.TokenExpiresAt.IsZero() && !ev.Now.IsZero() && !p.TokenExpiresAt.After(ev.Now):
			out = append(out, Late{e.Name, "its token expired at " + p.TokenExpiresAt.UTC().Format("2006-01-02 15:04") + " UTC, needs GitLab for a new one"})
		case verified && v.State != gitlab.TokenAlive:
			out = append(out, Late{e.Name, "GitLab rejected its token, needs GitLab for a new one"})
		}
	}
	return out
}

// KeepUnverified is the plan of a degraded start: every executor keeps
// the token on disk, unverified (the last good entry of one whose file is
// invalid too); an entry no longer declared leaves the config, its
// removal pending until GitLab answers.
func KeepUnverified(ev Evidence) Plan {
	var p Plan
	for _, e := range ev.Desired.Executors {
		prev := ev.Prev.ByName[e.Name]
		p.Steps = append(p.Steps, Step{Action: Keep, Rule: "degraded", Name: e.Name, Executor: e, ClientKey: e.Client.Key, URL: e.Client.URL,
			ID: prev.ID, Prev: prev, Settings: e.Settings(), Unverified: true,
			Reason: "GitLab unreachable; keeping the token on disk, not verified"})
	}
	p.Steps = byName(p.Steps, heldSteps(ev, true))
	for _, o := range ev.Prev.Owned {
		r, ref := o.Runner, o.Ref()
		via := ByToken
		if r.Token == "" {
			via = ByID
		}
		p.Steps = append(p.Steps, Step{Action: Delete, Rule: "degraded", Via: via, Name: o.Name, ClientKey: ref.ClientKey, URL: r.URL, ID: r.ID, Prev: &r,
			Waits:  "GitLab did not answer; the removal waits for it",
			Reason: "executor no longer declared; GitLab unreachable, so the entry leaves the config and the runner's removal waits for GitLab"})
	}
	p.Host = ev.HostSteps
	return p.withFailures(ev.Policy)
}

// CanDegrade decides a pass whose GitLab did not answer: ok when gitlab-runner may start with the tokens
// on disk — every executor has one and nothing needs GitLab, or, serving
// what can be served, at least one does — and late lists the executors
// that need GitLab (skipped when ok; named in the failure otherwise).
// --strict (Policy.Strict) never starts degraded.
func CanDegrade(ev Evidence) (late []Late, ok bool) {
	late = NeedGitLab(ev)
	tolerable := ev.Policy.Serve && len(late) < len(ev.Desired.Executors)
	return late, !ev.Policy.Strict && (tolerable || CanStartDegraded(ev))
}

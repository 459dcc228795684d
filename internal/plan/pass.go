package plan

import (
	"time"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/gitlab"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/hostfs"
)

// A run reconciles in passes: a pass carries out its plan, but leaves to
// the next the removals gitlab-runner must first stop polling for. What
// a pass leaves, records and asks for is decided here, from the plan and
// its outcomes.

// Deferred tells a removal the pass leaves to the next: a runner in the
// config whose token works (deleted with it, or only this host's manager
// detached), so gitlab-runner may still poll with it until it has taken
// the config without it. A runner whose token is dead is deleted by id at
// once: nothing polls with it. (On a degraded start every removal waits
// for later runs: Step.Waits.)
func (s Step) Deferred() bool {
	if s.Executor != nil || s.Fault != "" || s.Waits != "" || s.Held || s.Prev == nil {
		return false
	}
	return s.Prev.Table != nil && (s.Action == Detach || (s.Action == Delete && s.Via == ByToken))
}

// Replaces tells a replace whose old runner leaves the config with this
// pass's write, in which its successor arrives (make before break): the
// next pass deletes it.
func (s Step) Replaces() bool {
	return s.Action == Replace && s.DeleteOld && s.Prev != nil && s.Fault == ""
}

// Replaced are the steps whose replace succeeded (their new runner's
// token obtained): their old runners leave with this pass's write.
func Replaced(p Plan, outcomes []Outcome) map[int]bool {
	out := map[int]bool{}
	for i, s := range p.Steps {
		if s.Replaces() && outcomes[i].Creds != nil {
			out[i] = true
		}
	}
	return out
}

// NextPass lists the runners a pass of this plan leaves to the next one:
// to delete, and to remove this host's manager from (none: no next pass
// for them).
func NextPass(p Plan) (deletes, detaches []int64) {
	for _, s := range p.Steps {
		switch {
		case s.Deferred() && s.Action == Detach:
			detaches = append(detaches, s.ID)
		case s.Deferred():
			deletes = append(deletes, s.ID)
		case s.Replaces():
			deletes = append(deletes, s.Prev.ID)
		}
	}
	return deletes, detaches
}

// InDoubt: a create or token reset got no answer, so GitLab may have
// carried it out unseen (the run's marker stays).
func InDoubt(p Plan, outcomes []Outcome) bool {
	for i, oc := range outcomes {
		a := p.Steps[i].Action
		if oc.Err != nil && oc.Creds == nil && (a == Create || a == Replace || a == Adopt) && gitlab.KindOf(oc.Err) == gitlab.Unreachable {
			return true
		}
	}
	return false
}

// Pending are the removals a pass records in the state file: those it
// left to the next pass, a replaced runner's, and those GitLab did not
// confirm, each with GitLab's last answer (said) and its proof that the
// runner is this host's — its token (from the config as it is now, fresh:
// gitlab-runner may have rotated it), this host's system id and the
// runner's description, for when the token is dead. A removal recorded by
// an earlier run keeps the proof and the time it was recorded with.
func Pending(ev Evidence, p Plan, outcomes []Outcome, replaced map[int]bool, fresh map[Ref]hostfs.LiveRunner, say func(error) string) []hostfs.PendingRemoval {
	recorded := map[Ref]hostfs.PendingRemoval{}
	for _, pr := range ev.State.Pending {
		key, _ := gitlab.NormalizeURL(pr.URL)
		recorded[Ref{ClientKey: key, ID: pr.ID}] = pr
	}
	now := ev.Now.UTC().Truncate(time.Second)
	record := func(action Action, name, url string, id int64, prev *hostfs.LiveRunner, err error) hostfs.PendingRemoval {
		key, _ := gitlab.NormalizeURL(url)
		ref := Ref{ClientKey: key, ID: id}
		token, description := "", listedDescription(ev, key, id)
		if prev != nil {
			token, description = prev.Token, prev.Name
		}
		if f, ok := fresh[ref]; ok && id != 0 && f.Token != "" {
			token = f.Token
		}
		pr := hostfs.PendingRemoval{Action: string(action), Name: name, URL: url, ID: id, Token: token,
			SystemID: ev.SystemID, Description: description, Since: now}
		old, ok := recorded[ref]
		if ok && prev != nil && prev.Table == nil {
			// Not in the config: the proof it was recorded with, never one
			// made up now.
			pr.SystemID, pr.Description = old.SystemID, old.Description
		}
		if ok && !old.Since.IsZero() {
			pr.Since = old.Since
		}
		if err != nil {
			pr.LastError = say(err)
		}
		return pr
	}
	var out []hostfs.PendingRemoval
	for i, s := range p.Steps {
		oc := outcomes[i]
		switch {
		case replaced[i]:
			out = append(out, record(Delete, s.Prev.Name, s.Prev.URL, s.Prev.ID, s.Prev, nil))
		case s.Executor != nil || s.Held || s.Prev == nil:
		case oc.Deferred, oc.Deleted && oc.Err != nil:
			// Left to the next pass, or not confirmed: its entry has left.
			out = append(out, record(s.Action, s.Name, s.URL, s.ID, s.Prev, oc.Err))
		case s.Prev.Table == nil && (oc.Err != nil || s.Fault != ""):
			// A pending removal the plan cannot make yet: it stays pending.
			out = append(out, record(s.Action, s.Name, s.URL, s.ID, s.Prev, oc.Err))
		}
	}
	return out
}

// listedDescription is the description of a runner found by listing,
// which has no entry.
func listedDescription(ev Evidence, key string, id int64) string {
	for _, s := range ev.Found[key] {
		if s.ID == id {
			return s.Description
		}
	}
	return ""
}

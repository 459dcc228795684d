package plan

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/config"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/gitlab"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/hostfs"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/table"
)

// A removal is left to the next pass only when gitlab-runner may still
// poll with its token: an entry of the config, deleted by token or
// detached. A dead token's runner goes by id at once; a removal from the
// state file, a held entry, a faulted step and a degraded start's removal
// are never left to a next pass.
func TestDeferred(t *testing.T) {
	inConfig := &hostfs.LiveRunner{Name: "old", URL: gl, ID: 4, Token: "t", Table: table.New()}
	recorded := &hostfs.LiveRunner{Name: "old", URL: gl, ID: 4, Token: "t"}
	for _, tc := range []struct {
		name string
		s    Step
		want bool
	}{
		{"in the config, by token", Step{Action: Delete, Via: ByToken, Prev: inConfig}, true},
		{"in the config, detached", Step{Action: Detach, Via: ByToken, Prev: inConfig}, true},
		{"in the config, by id (token dead)", Step{Action: Delete, Via: ByID, Prev: inConfig}, false},
		{"recorded pending, not in the config", Step{Action: Delete, Via: ByToken, Prev: recorded}, false},
		{"held", Step{Action: Forget, Prev: inConfig, Held: true}, false},
		{"faulted", Step{Action: Delete, Via: ByToken, Prev: inConfig, Fault: "no"}, false},
		{"degraded: waits for later runs", Step{Action: Delete, Via: ByToken, Prev: inConfig, Waits: "down"}, false},
		{"a declared executor", Step{Action: Delete, Via: ByToken, Prev: inConfig, Executor: &config.Executor{}}, false},
	} {
		if got := tc.s.Deferred(); got != tc.want {
			t.Errorf("%s: deferred %v, want %v", tc.name, got, tc.want)
		}
	}
}

// The next pass deletes the deferred removals and the replaced runners,
// and what a pass records pending carries its proof: a removal recorded
// by an earlier run keeps the proof and the time it was recorded with,
// a token gitlab-runner rotated meanwhile is taken from the config as it
// is now, and a removal GitLab did not confirm keeps its last answer.
func TestNextPassAndPending(t *testing.T) {
	then := now.Add(-48 * time.Hour)
	ev := NewEvidence()
	ev.SystemID, ev.Now = "s_this", now
	ev.State.Pending = []hostfs.PendingRemoval{{Action: "delete", Name: "older", URL: gl, ID: 9, SystemID: "s_before", Description: "node1 main older Runner", Since: then}}
	cfg := func(name string, id int64) *hostfs.LiveRunner {
		return &hostfs.LiveRunner{Name: "node1 main " + name + " Runner", URL: gl, ID: id, Token: "t-" + name, Table: table.New()}
	}
	p := Plan{Steps: []Step{
		{Action: Replace, DeleteOld: true, Name: "a", Executor: &config.Executor{Name: "a"}, Prev: cfg("a", 1), ID: 1},
		{Action: Delete, Via: ByToken, Name: "b", Prev: cfg("b", 2), ID: 2, URL: gl},
		{Action: Delete, Via: ByID, Name: "c", Prev: cfg("c", 3), ID: 3, URL: gl},
		{Action: Delete, Via: ByID, Name: "older", Prev: &hostfs.LiveRunner{Name: "node1 main older Runner", URL: gl, ID: 9}, ID: 9, URL: gl},
	}}
	if got, detached := NextPass(p); !slices.Equal(got, []int64{1, 2}) || len(detached) != 0 {
		t.Fatalf("next pass deletes %v and detaches %v, want [1 2] and none", got, detached)
	}
	refused := errors.New("502")
	outcomes := []Outcome{{ID: 5, Creds: &gitlab.Credentials{ID: 5}}, {ID: 2, Deleted: true, Deferred: true}, {ID: 3, Deleted: true}, {ID: 9, Deleted: true, Err: refused}}
	replaced := Replaced(p, outcomes)
	fresh := map[Ref]hostfs.LiveRunner{{gl, 2}: {Token: "t-b-rotated"}}
	got := Pending(ev, p, outcomes, replaced, fresh, func(err error) string { return "said: " + err.Error() })
	byID := map[int64]hostfs.PendingRemoval{}
	for _, pr := range got {
		byID[pr.ID] = pr
	}
	if len(got) != 3 || byID[3].ID != 0 {
		t.Fatalf("pending %+v, want the replaced 1, the deferred 2 and the refused 9 (3 is deleted)", got)
	}
	if pr := byID[1]; pr.Token != "t-a" || pr.Description != "node1 main a Runner" || pr.SystemID != "s_this" || !pr.Since.Equal(now) {
		t.Errorf("replaced runner's record %+v", pr)
	}
	if pr := byID[2]; pr.Token != "t-b-rotated" || pr.LastError != "" {
		t.Errorf("deferred runner's record %+v, want the rotated token and no error", pr)
	}
	if pr := byID[9]; pr.SystemID != "s_before" || !pr.Since.Equal(then) || pr.LastError != "said: 502" {
		t.Errorf("earlier record %+v, want its own proof and time, and GitLab's last answer", pr)
	}
}

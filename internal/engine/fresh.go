package engine

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"time"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/hostfs"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/plan"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/redact"
)

// engineFiles are the files the engine writes itself in the prefix (the
// generated config, state file, marker, system id and lock), with those
// that did not exist before a task: a failed task on a host that had no
// config removes what its run created, so the prefix is left as it was.
type engineFiles struct {
	l       hostfs.Layout
	missing map[string]bool
}

func engineFilesBefore(l hostfs.Layout) engineFiles {
	ef := engineFiles{l: l, missing: map[string]bool{}}
	for _, p := range []string{l.ConfigPath(), l.StatePath(), l.IncompletePath(), l.SystemIDPath(), l.LockPath()} {
		if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
			ef.missing[p] = true
		}
	}
	return ef
}

// undo runs after a failed task. On a host that had no config, when the
// run changed nothing in GitLab that it knows of and the config it wrote
// holds no runner (so no token is lost), it removes
// every file the run created, holding the instance's lock: the lock file
// goes last, while held. The marker stays when a create may have been
// carried out without the run seeing the answer: the next run then looks
// for that runner. undone reports that the files were removed; kept that
// the marker stayed. Nothing is removed while another run holds the lock.
func (ef engineFiles) undo(res *Result, sec *redact.Redactor) (undone, kept bool) {
	l := ef.l
	if !ef.missing[l.ConfigPath()] || changedGitLab(res) {
		return false, false
	}
	live, err := hostfs.ReadLiveConfig(l, sec)
	if err != nil || len(live.Runners) > 0 {
		return false, false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	fl, err := hostfs.Lock(ctx, l, 2*time.Second)
	if err != nil {
		return false, false
	}
	defer fl.Close()
	_, markerErr := os.Lstat(l.IncompletePath())
	kept = ef.missing[l.IncompletePath()] && markerErr == nil
	for _, p := range []string{l.ConfigPath(), l.StatePath(), l.IncompletePath(), l.SystemIDPath(), l.LockPath()} {
		if !ef.missing[p] || (kept && p == l.IncompletePath()) {
			continue
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return false, kept
		}
	}
	return true, kept
}

// changedGitLab reports a runner the run created, changed or deleted (or
// created before another step of it failed).
func changedGitLab(res *Result) bool {
	for _, r := range res.Runners {
		switch {
		case r.Action == plan.Keep || r.Action == plan.Forget:
		case r.Error == "":
			return true
		case (r.Action == plan.Create || r.Action == plan.Replace) && r.ID != 0:
			return true
		}
	}
	return false
}

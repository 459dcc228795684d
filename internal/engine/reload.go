package engine

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/hostfs"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/input"
)

// DefaultReloadWait is how long a run gives gitlab-runner to take a new
// config after SIGHUP before it deletes the runners that left it.
const DefaultReloadWait = 2 * time.Second

// selfCheckInterval is how often gitlab-runner looks at its config file
// by itself (common.ReloadConfigInterval, 3 s; commands/multi.go,
// updateConfig): a gitlab-runner that cannot be signalled still takes a
// new config within it.
const selfCheckInterval = 3 * time.Second

// Reload says how a run had the running gitlab-runner take the new config
// before removing the runners that left it.
type Reload struct {
	// PIDs are the gitlab-runner processes sent SIGHUP: --runner-pid, and
	// every gitlab-runner found running this instance's config.
	PIDs []int `json:"pids,omitempty"`
	// Waited is how long the removals then waited (a Go duration).
	Waited string `json:"waited,omitempty"`
	// Refused is a --runner-pid that is not a gitlab-runner process: it
	// was not signalled.
	Refused *RefusedPID `json:"refused,omitempty"`
}

// RefusedPID is a process a run would not signal, and why.
type RefusedPID struct {
	PID int    `json:"pid"`
	Exe string `json:"exe,omitempty"`
	Why string `json:"why"`
}

// checkRunnerPID checks the gitlab-runner a front end named
// (Options.RunnerPID, systemd's $MAINPID): only a gitlab-runner process is
// ever signalled. A refusal is a warning, said once per run.
func (en *engine) checkRunnerPID() {
	pid := en.o.Runner.PID
	if pid <= 0 {
		return
	}
	p, err := hostfs.InspectProcess(pid)
	switch {
	case err != nil:
		en.refused = &RefusedPID{PID: pid, Why: err.Error()}
	case !hostfs.IsRunnerExe(p.Exe):
		en.refused = &RefusedPID{PID: pid, Exe: p.Exe, Why: "not a gitlab-runner process"}
	default:
		return
	}
	en.warn("%s %d: %s (%s); it is not signalled: runners that leave the config are deleted once every gitlab-runner running %s has taken it",
		en.o.Names(input.RunnerPID), pid, en.refused.Why, orNone(en.refused.Exe), en.l.ConfigPath())
}

func orNone(exe string) string {
	if exe == "" {
		return "executable unknown"
	}
	return exe
}

// reloadRunner has the running gitlab-runner take the config just
// written: every gitlab-runner process running this instance's config
// (the one --runner-pid names, and those found in /proc) gets SIGHUP.
// With removals to follow, it then waits ReloadWait, so that no
// gitlab-runner asks for jobs with a token already deleted; when none
// runs this config, nothing polls with those tokens and the removals go
// at once.
func (en *engine) reloadRunner(ctx context.Context, removals bool) *Reload {
	r := &Reload{Refused: en.refused}
	if en.o.Runner.PID > 0 && en.refused == nil {
		r.PIDs = append(r.PIDs, en.o.Runner.PID)
	}
	if removals {
		for _, p := range hostfs.FindRunners(en.l.ConfigPath()) {
			if p.PID != en.o.Runner.PID {
				r.PIDs = append(r.PIDs, p.PID)
			}
		}
	}
	if len(r.PIDs) == 0 {
		if r.Refused == nil {
			return nil
		}
		return r
	}
	wait := en.o.Runner.Wait
	signalled := r.PIDs[:0]
	for _, pid := range r.PIDs {
		err := syscall.Kill(pid, syscall.SIGHUP)
		switch {
		case err == nil:
			signalled = append(signalled, pid)
		case errors.Is(err, syscall.ESRCH):
			// Gone meanwhile: it polls no more.
		default:
			en.warn("could not signal gitlab-runner (pid %d) to take the new config (%v); waiting for it to notice the change by itself", pid, err)
			wait = max(wait, selfCheckInterval+en.o.Runner.Wait)
		}
	}
	r.PIDs = signalled
	if !removals {
		return r
	}
	select {
	case <-time.After(wait):
		r.Waited = wait.String()
	case <-ctx.Done():
		r.Waited = fmt.Sprintf("%s (cut short: %v)", wait, ctx.Err())
	}
	return r
}

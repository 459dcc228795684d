package reliability

import (
	"context"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// TestCrashSweep kills register-runner with SIGKILL at varied points of a
// slow sync (every request takes 25 ms): the config must always be the old
// or the new complete file, and the next run must converge without a
// duplicate runner (adopting what a killed run created).
//
// The kill points are requests, not times: iteration i kills the run when
// its (i/2)-th request reaches GitLab (GitLab has it, the client waits),
// or, for odd i, once GitLab has answered it (the client holds the answer
// and has not written it down yet). Point 0 kills before the first request.
func TestCrashSweep(t *testing.T) {
	iterations := 24
	if stress() {
		iterations = 200
	}
	killedMidway := 0
	for i := 0; i < iterations; i++ {
		n := (i / 2) % 12
		answered := i%2 == 1
		if stress() {
			n = (i / 2) % 16
		}
		w := baseline(t)
		w.sim.SetLatency(25 * time.Millisecond)
		watch := w.sim.Watch(t)
		point := watch.Arrived(n)
		what := "request %d reached GitLab"
		if answered {
			point = watch.Completed(n)
			what = "GitLab answered request %d"
		}
		cmd := exec.Command(binary, w.cliArgs()...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		var err error
		select {
		case <-point:
			_ = cmd.Process.Signal(syscall.SIGKILL)
			err = <-exited
		case err = <-exited:
		}
		if ee, ok := err.(*exec.ExitError); ok && !ee.Exited() {
			killedMidway++
		}
		// Old or new, but complete.
		entries, ok := w.config(t)
		if !ok || len(entries) < 4 {
			t.Fatalf("iteration %d (killed when "+what+"): config missing or lost entries: %d", i, n, len(entries))
		}
		w.sim.SetLatency(0)
		// GitLab finishes every request it already received even when the
		// client died (the simulator does too), and a restart comes after
		// that (systemd waits RestartSec). Late effects that land during the
		// next run are caught by its next pass (the ownership table's interrupted
		// row; see internal/engine/reconcile.go).
		watch.WaitClosed(t)
		if _, err := w.sync(t, context.Background()); err != nil {
			t.Fatalf("iteration %d (killed when "+what+"): the next run failed: %v", i, n, err)
		}
		w.converged(t, declared)
		if t.Failed() {
			t.Fatalf("iteration %d (killed when "+what+") broke the invariants", i, n)
		}
	}
	reportf(t, "crash sweep: %d SIGKILLs (%d in the middle of a run), every next run converged without duplicates", iterations, killedMidway)
	if killedMidway < iterations/2 {
		t.Fatalf("only %d of %d kills hit a running sync; the sweep is not testing anything", killedMidway, iterations)
	}
}

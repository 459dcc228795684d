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
func TestCrashSweep(t *testing.T) {
	iterations := 24
	if stress() {
		iterations = 200
	}
	killedMidway := 0
	for i := 0; i < iterations; i++ {
		w := baseline(t)
		w.sim.SetLatency(25 * time.Millisecond)
		// Spread the kill points over the whole run (about 130 ms), including
		// before the first request and after the last.
		delay := time.Duration(i%24) * 5 * time.Millisecond
		if stress() {
			delay += time.Duration(i/24) * time.Millisecond
		}
		cmd := exec.Command(binary, w.cliArgs()...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(delay)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		err := cmd.Wait()
		if ee, ok := err.(*exec.ExitError); ok && !ee.Exited() {
			killedMidway++
		}
		// Old or new, but complete.
		entries, ok := w.config(t)
		if !ok || len(entries) < 4 {
			t.Fatalf("iteration %d (kill after %s): config missing or lost entries: %d", i, delay, len(entries))
		}
		w.sim.SetLatency(0)
		// GitLab finishes a request it already received even when the client
		// died (the simulator does too); a restart comes after that (systemd
		// waits RestartSec, 100 ms by default). Late effects that land during
		// the next run are caught by its settle step; see core/settle.go.
		time.Sleep(50 * time.Millisecond)
		if _, err := w.sync(t, context.Background()); err != nil {
			t.Fatalf("iteration %d (kill after %s): the next run failed: %v", i, delay, err)
		}
		w.converged(t, declared)
		if t.Failed() {
			t.Fatalf("iteration %d (kill after %s) broke the invariants", i, delay)
		}
	}
	reportf(t, "crash sweep: %d SIGKILLs (%d in the middle of a run), every next run converged without duplicates", iterations, killedMidway)
	if killedMidway < iterations/2 {
		t.Fatalf("only %d of %d kills hit a running sync; the sweep is not testing anything", killedMidway, iterations)
	}
}

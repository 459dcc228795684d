package main

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// The run has one time limit, --timeout, on the whole of it: no step,
// command or wait has one of its own, so a machine that is slow (a loaded
// 2-core machine, each nsenter command taking seconds) makes the run slow,
// never failed. Whatever is running when the limit strikes is killed and
// says what it was waiting for; long waits say so as they go.

// progressEvery is how often a wait or a command still running says so.
const progressEvery = 30 * time.Second

// ranOut explains why ctx ended: the run's limit, or an interrupt.
func ranOut(ctx context.Context) string {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return "the run's time limit (--timeout) ran out"
	}
	return "the run was interrupted"
}

// waitFor polls cond until it holds, logging what it waits for every
// progressEvery. It ends early only when the run ends, and then says what
// it was waiting for and what it last saw.
func waitFor(ctx context.Context, what string, cond func() (bool, string)) error {
	start, told := time.Now(), time.Now()
	for {
		ok, seen := cond()
		if ok {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s after %.0fs, while waiting for %s; last seen: %s", ranOut(ctx), time.Since(start).Seconds(), what, seen)
		}
		if time.Since(told) >= progressEvery {
			logf("still waiting (%.0fs) for %s; last seen: %s", time.Since(start).Seconds(), what, seen)
			told = time.Now()
		}
		select {
		case <-ctx.Done():
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// running logs, every progressEvery until stop is closed, that what is
// still running and where it is (at()).
func running(what string, at func() string) (stop func()) {
	done := make(chan struct{})
	start := time.Now()
	go func() {
		for {
			select {
			case <-done:
				return
			case <-time.After(progressEvery):
				logf("still running (%.0fs): %s%s", time.Since(start).Seconds(), what, at())
			}
		}
	}()
	return func() { close(done) }
}

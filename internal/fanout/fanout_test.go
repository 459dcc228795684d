package fanout

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
)

// At most limit calls run at once, every call runs, and the errors come
// back in index order.
func TestEachBoundsAndJoins(t *testing.T) {
	var running, peak, calls atomic.Int64
	release := make(chan struct{})
	errA, errB := errors.New("a"), errors.New("b")
	done := make(chan error)
	go func() {
		done <- Each(context.Background(), 10, 3, func(i int) error {
			calls.Add(1)
			n := running.Add(1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			<-release
			running.Add(-1)
			switch i {
			case 7:
				return errB
			case 2:
				return errA
			}
			return nil
		})
	}()
	close(release)
	err := <-done
	if calls.Load() != 10 || peak.Load() > 3 {
		t.Fatalf("%d calls, %d at once", calls.Load(), peak.Load())
	}
	var j interface{ Unwrap() []error }
	if !errors.As(err, &j) || len(j.Unwrap()) != 2 || j.Unwrap()[0] != errA || j.Unwrap()[1] != errB {
		t.Fatalf("errors %v", err)
	}
}

// Once the context is done, calls not started yet are not started.
func TestEachStopsStartingWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var calls atomic.Int64
	err := Each(ctx, 100, 1, func(i int) error {
		if calls.Add(1) == 5 {
			cancel()
		}
		return nil
	})
	if n := calls.Load(); n >= 100 || n < 5 {
		t.Fatalf("%d calls after cancelling at the 5th", n)
	}
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
}

package coretest

import (
	"net"
	"net/http"
	"sync"
	"testing"
	"time"
)

// Watch follows what reaches the simulator from the moment it is called,
// so a test can act at an exact point of a run (the n-th request) and wait
// for a condition (every connection closed) instead of for time.
type Watch struct {
	w *watcher
}

// watcher is wrapped around the simulator's handler and connection states.
type watcher struct {
	mu        sync.Mutex
	arrived   int // requests that reached the handler since Watch
	completed int // requests whose answer was written since Watch
	conns     map[net.Conn]bool
	changed   chan struct{} // closed and replaced on every change
}

// Watch starts counting requests and connections anew.
func (s *Sim) Watch(t testing.TB) *Watch {
	t.Helper()
	if s.w == nil {
		t.Fatal("coretest: Watch needs a simulator started by NewSim or NewTLSSim")
	}
	s.w.mu.Lock()
	s.w.arrived, s.w.completed = 0, 0
	s.w.conns = map[net.Conn]bool{}
	s.w.mu.Unlock()
	return &Watch{s.w}
}

func (w *watcher) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w.update(func() { w.arrived++ })
		h.ServeHTTP(rw, r)
		w.update(func() { w.completed++ })
	})
}

func (w *watcher) connState(c net.Conn, st http.ConnState) {
	w.update(func() {
		if w.conns == nil {
			return
		}
		switch st {
		case http.StateNew:
			w.conns[c] = true
		case http.StateClosed, http.StateHijacked:
			if _, ok := w.conns[c]; ok {
				w.conns[c] = false
			}
		}
	})
}

func (w *watcher) update(f func()) {
	w.mu.Lock()
	f()
	if w.changed != nil {
		close(w.changed)
		w.changed = nil
	}
	w.mu.Unlock()
}

// until returns a channel closed once cond holds (checked under the lock
// after every change).
func (w *watcher) until(cond func() bool) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		for {
			w.mu.Lock()
			ok := cond()
			if w.changed == nil {
				w.changed = make(chan struct{})
			}
			ch := w.changed
			w.mu.Unlock()
			if ok {
				close(done)
				return
			}
			<-ch
		}
	}()
	return done
}

// Arrived is closed once n requests have reached the simulator, before it
// handles the n-th (n = 0: at once).
func (w *Watch) Arrived(n int) <-chan struct{} {
	return w.w.until(func() bool { return w.w.arrived >= n })
}

// Completed is closed once the simulator has answered n requests.
func (w *Watch) Completed(n int) <-chan struct{} {
	return w.w.until(func() bool { return w.w.completed >= n })
}

// WaitClosed waits until every connection opened since Watch has been
// closed: its client is gone and every request it sent has been handled
// (GitLab finishes a request even when the client died). It fails the
// test only when that never comes (five minutes: a hang, not a slow machine).
func (w *Watch) WaitClosed(t testing.TB) {
	t.Helper()
	const timeout = 5 * time.Minute // a hang guard, far beyond a loaded machine
	done := w.w.until(func() bool {
		for _, open := range w.w.conns {
			if open {
				return false
			}
		}
		return true
	})
	select {
	case <-done:
	case <-time.After(timeout):
		t.Fatalf("connections to the simulator still open after %s", timeout)
	}
}

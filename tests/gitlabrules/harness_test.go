// Package gitlabrules checks the engine against GitLab's own rules, as
// the simulator serves them from GitLab's source: ids per GitLab,
// ownership by runner manager, scopes and permissions as GitLab enforces
// them, 403 that never means gone, throttling, make before break. Each
// test drives the engine over real HTTP against the simulator; none needs
// a real GitLab.
package gitlabrules

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/engine"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/plan"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/testkit/coretest"
)

// host is one runner host: a prefix, a host name and gitlab-runner's
// system id.
type host struct {
	t    *testing.T
	p    *coretest.Prefix
	name string
}

func newHost(t *testing.T, name, systemID string) *host {
	t.Helper()
	p := coretest.NewPrefix(t, "main")
	p.Write(".runner_system_id", systemID+"\n")
	return &host{t: t, p: p, name: name}
}

type runOpt func(*engine.Options)

func withTimeout(d time.Duration) runOpt { return func(o *engine.Options) { o.Limits.Timeout = d } }
func unregister() runOpt                 { return func(o *engine.Options) { o.Remove = engine.Unregister } }

// run syncs the host in-process (coretest.Run: everything it reports is
// checked for secrets and recorded for the sweep at the end of make test).
func (h *host) run(opts ...runOpt) (*engine.Result, error) {
	h.t.Helper()
	o := engine.Options{Prefix: h.p.Dir, Instance: "main", Hostname: h.name, Limits: engine.Limits{Concurrency: engine.DefaultConcurrency, Request: coretest.Patient.Request, RetryBudget: time.Second, MaxAttempts: 2, Lock: coretest.Patient.Lock, Timeout: 5 * time.Minute}}
	for _, f := range opts {
		f(&o)
	}
	oc := coretest.Run(h.t, context.Background(), o)
	return oc.Res, oc.Err
}

func (h *host) mustRun(opts ...runOpt) *engine.Result {
	h.t.Helper()
	res, err := h.run(opts...)
	if err != nil {
		h.t.Fatalf("%s: run failed: %v", h.name, err)
	}
	return res
}

func (h *host) config() []coretest.Entry {
	h.t.Helper()
	if _, err := os.Stat(h.p.ConfigPath()); err != nil {
		h.t.Fatal(err)
	}
	return h.p.Entries(h.t)
}

func (h *host) loseConfig() {
	h.t.Helper()
	for _, f := range []string{h.p.ConfigPath(), filepath.Join(h.p.Dir, ".gitlab-runner-auth.main.json")} {
		if err := os.Remove(f); err != nil && !os.IsNotExist(err) {
			h.t.Fatal(err)
		}
	}
}

func actions(res *engine.Result) map[string]plan.Action {
	m := map[string]plan.Action{}
	for _, r := range res.Runners {
		m[r.Name] = r.Action
	}
	return m
}

// failedAlone reports whether the run failed for the runner name with a
// fault the plan found (plan.Fault: nothing was sent for it), the
// runner's result saying so.
func failedAlone(res *engine.Result, err error, name string) bool {
	var f plan.Fault
	if !errors.As(err, &f) || res == nil {
		return false
	}
	for _, r := range res.Runners {
		if r.Name == name {
			return r.Error != ""
		}
	}
	return false
}

// warned reports whether some warning contains every part: the scope,
// date or phrase it must name.
func warned(res *engine.Result, parts ...string) bool {
	for _, w := range res.Warnings {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(w, p)
		}
		if all {
			return true
		}
	}
	return false
}

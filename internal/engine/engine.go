package engine

import (
	"context"
	"fmt"
	"regexp"
	"sync"

	"github.com/gofrs/flock"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/config"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/fanout"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/gitlab"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/hostfs"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/input"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/plan"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/version"
)

// engine holds what one run shares: clients, the bound on parallel
// requests, warnings.
type engine struct {
	o        Options
	l        hostfs.Layout
	lock     *flock.Flock
	d        *config.Desired
	systemID string
	// identity matches this host's and instance's default descriptions
	// (compiled once, on first use).
	identity *regexp.Regexp
	mu       sync.Mutex
	clients  map[string]*gitlab.Client
	warnings []string
	left     []LeftRunner
	// skipped are the declared executors this run does not serve.
	skipped []SkippedExecutor
	// refused: Options.Runner.PID is not a gitlab-runner process.
	refused *RefusedPID
	// hints are what the previous pass asks this one to look at.
	hints passHints
}

// policy is the run's failure policy.
func (en *engine) policy() plan.Policy { return en.o.Policy }

// warn says something once per run (a later pass that finds the same
// thing says nothing more).
func (en *engine) warn(format string, args ...any) {
	msg := en.o.Secrets.Redact(fmt.Sprintf(format, args...))
	en.mu.Lock()
	for _, w := range en.warnings {
		if w == msg {
			en.mu.Unlock()
			return
		}
	}
	en.warnings = append(en.warnings, msg)
	en.mu.Unlock()
	if en.o.Log != nil {
		en.o.Log("warning: " + msg)
	}
}

// gitlabFor returns the GitLab client for a normalised URL. A URL no
// client entry declares any more (a runner left behind) gets a client
// without PAT.
func (en *engine) gitlabFor(key string) (*gitlab.Client, error) {
	en.mu.Lock()
	defer en.mu.Unlock()
	if c, ok := en.clients[key]; ok {
		return c, nil
	}
	cc := en.clientConfig(key)
	c, err := gitlab.New(gitlab.Config{URL: cc.URL, PAT: cc.PAT, CAFile: cc.TLSCAFile, CAPEM: cc.TLSCA, Scrub: en.o.Secrets.Redact,
		RequestTimeout: en.o.Limits.Request, RetryBudget: en.o.Limits.RetryBudget, MaxAttempts: en.o.Limits.MaxAttempts,
		MaxConns: en.o.Limits.Concurrency, UserAgent: version.UserAgent()})
	if err != nil {
		return nil, input.Errorf(en.l.Rel(en.l.TemplatePath()), fmt.Sprintf("client_configs[%d].tls_ca_file", cc.Index), "%v", err)
	}
	en.clients[key] = c
	return c, nil
}

// clientConfig is the declared client of a GitLab, or a bare one.
func (en *engine) clientConfig(key string) *config.ClientConfig {
	if en.d != nil {
		for _, c := range en.d.Clients {
			if c.Key == key {
				return c
			}
		}
	}
	return &config.ClientConfig{URL: key, Key: key}
}

// warnPlainHTTP warns, once per run, of every GitLab reached over plain
// http on another host: its PAT, registration token and runner tokens
// cross the network unencrypted. It is a warning, not a refusal: a
// private network may be trusted; docs/security.md says so.
func (en *engine) warnPlainHTTP(d *config.Desired) {
	for _, c := range d.Clients {
		if gitlab.PlainHTTPRemote(c.Key) {
			en.warn("GitLab %s is reached over plain http: the personal access token, registration token and runner tokens cross the network unencrypted; use https", c.URL)
		}
	}
}

// finish closes connections and releases the lock.
func (en *engine) finish() {
	for _, c := range en.clients {
		c.Close()
	}
	if en.lock != nil {
		_ = en.lock.Unlock()
	}
}

// each runs fn for 0..n-1, at most Concurrency at once (the run's bound
// on parallel GitLab requests), and joins the errors in index order.
func (en *engine) each(ctx context.Context, n int, fn func(i int) error) error {
	return fanout.Each(ctx, n, en.o.Limits.Concurrency, fn)
}

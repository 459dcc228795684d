package gitlab

import (
	"context"
	"errors"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/testkit/gitlabsim"
)

const pat = "glpat-SECRETclientTest-12345"

// setup serves a simulator and a client for it. Its requests wait for
// the simulator however loaded the machine (a minute); a test that wants
// a request cut short gives its own limit (setupWith).
func setup(t *testing.T) (*gitlabsim.Sim, *Client) {
	t.Helper()
	return setupWith(t, time.Minute)
}

func setupWith(t *testing.T, requestTimeout time.Duration) (*gitlabsim.Sim, *Client) {
	t.Helper()
	s := gitlabsim.New(gitlabsim.Options{PATs: []gitlabsim.PAT{{Name: "admin", Value: pat, Scopes: []string{"api"}, Admin: true}}})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	c, err := New(Config{URL: srv.URL, PAT: pat, RequestTimeout: requestTimeout, RetryBudget: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return s, c
}

func TestRetryAfterIsHonoured(t *testing.T) {
	s, c := setup(t)
	s.InjectFault(gitlabsim.Fault{Kind: "verify", Type: gitlabsim.FaultRateLimit, RetryAfter: 1})
	start := time.Now()
	v, err := c.Verify(context.Background(), "glrt-nope", "s_1")
	if err != nil || v.State != TokenRejected {
		t.Fatalf("want the real answer (403: rejected) after the retry, got %v, %v", v.State, err)
	}
	if el := time.Since(start); el < time.Second {
		t.Fatalf("retried after %s, sooner than Retry-After: 1", el)
	}
	reqs := s.Requests()
	if len(reqs) != 2 || reqs[1].Start.Sub(reqs[0].End) < time.Second {
		t.Fatalf("requests %+v", reqs)
	}
}

func TestIdempotentCallsRetry5xxAndDrops(t *testing.T) {
	s, c := setup(t)
	s.InjectFault(gitlabsim.Fault{Kind: "list", Type: gitlabsim.FaultStatus, Status: 502})
	s.InjectFault(gitlabsim.Fault{Kind: "list", Type: gitlabsim.FaultDrop})
	if _, _, err := c.ListRunners(context.Background(), ListOptions{RunnerType: "instance_type"}); err != nil {
		t.Fatalf("list after a 502 and a dropped connection: %v", err)
	}
	if n := len(s.Requests()); n != 3 {
		t.Fatalf("%d attempts, want 3", n)
	}
}

func TestCreateIsNotRetriedAfterALostAnswer(t *testing.T) {
	s, c := setup(t)
	s.InjectFault(gitlabsim.Fault{Kind: "create", Type: gitlabsim.FaultDrop, After: true})
	_, err := c.CreateRunner(context.Background(), CreateRequest{RunnerType: "instance_type", Settings: Settings{TagList: []string{"t"}}})
	var ne *NetError
	if !errors.As(err, &ne) {
		t.Fatalf("want a NetError, got %v", err)
	}
	if n := len(s.Runners()); n != 1 {
		t.Fatalf("%d runners: a create must never be repeated blindly", n)
	}
	if strings.Contains(err.Error(), pat) {
		t.Fatal("error quotes the PAT")
	}
	// 429 means GitLab did not act: retrying the create is safe.
	s.InjectFault(gitlabsim.Fault{Kind: "create", Type: gitlabsim.FaultRateLimit, RetryAfter: 0})
	if _, err := c.CreateRunner(context.Background(), CreateRequest{RunnerType: "instance_type", Settings: Settings{TagList: []string{"t"}}}); err != nil {
		t.Fatalf("create after 429: %v", err)
	}
}

func TestTimeoutIsBoundedAndErrorsHoldNoSecret(t *testing.T) {
	s, c := setupWith(t, 300*time.Millisecond)
	// GitLab holds every request (far longer than any test runs): only
	// the client's request timeout can end them.
	const held = 10 * time.Minute
	s.InjectFault(gitlabsim.Fault{Type: gitlabsim.FaultTimeout, Delay: held, Times: -1})
	c.cfg.MaxAttempts = 2
	_, err := c.Verify(context.Background(), "glrt-SECRETrunnerToken12345", "s_1")
	if err == nil {
		t.Fatal("no error although GitLab never answered")
	}
	var ne *NetError
	if !errors.As(err, &ne) || !isTimeout(ne.Err) || ne.Attempts != 2 || strings.Contains(err.Error(), "SECRET") {
		t.Fatalf("error %q: want no answer, timed out after 2 attempts, quoting no secret", err)
	}
	// The bound is read from the simulator's log, not the test's clock: two
	// attempts (MaxAttempts), each given up by the client after its
	// RequestTimeout (300 ms at least; more on a loaded machine), long
	// before GitLab would have answered.
	reqs := waitRequests(t, s, 2)
	if len(reqs) != 2 {
		t.Fatalf("%d attempts, want 2 (MaxAttempts)", len(reqs))
	}
	for _, r := range reqs {
		if d := r.End.Sub(r.Start); d < 200*time.Millisecond || d >= held {
			t.Errorf("attempt %d held %s: want it cut by the 300 ms request timeout", r.Seq, d)
		}
	}
}

// waitRequests waits until the simulator has logged n requests (it logs a
// request once it is done with it, which may be just after the client gave
// up) and returns the log. The bound only ends a wait for requests that
// never come.
func waitRequests(t *testing.T, s *gitlabsim.Sim, n int) []gitlabsim.Entry {
	t.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for len(s.Requests()) < n && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	return s.Requests()
}

func TestInsufficientScopeIsRecognised(t *testing.T) {
	s, c := setup(t)
	s.AddPAT(gitlabsim.PAT{Name: "admin", Value: pat, Scopes: []string{"read_api"}, Admin: true})
	_, err := c.CreateRunner(context.Background(), CreateRequest{RunnerType: "instance_type", Settings: Settings{TagList: []string{"t"}}})
	var ae *APIError
	if !isInsufficientScope(err) || !errors.As(err, &ae) || !slices.Contains(strings.Fields(ae.Scope), "create_runner") {
		t.Fatalf("got %v, want insufficient_scope naming create_runner", err)
	}
}

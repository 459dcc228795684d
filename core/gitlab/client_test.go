package gitlab

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/gitlabsim"
)

const pat = "glpat-SECRETclientTest-12345"

func setup(t *testing.T) (*gitlabsim.Sim, *Client) {
	t.Helper()
	s := gitlabsim.New(gitlabsim.Options{PATs: []gitlabsim.PAT{{Name: "admin", Value: pat, Scopes: []string{"api"}, Admin: true}}})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	c, err := New(Config{URL: srv.URL, PAT: pat, RequestTimeout: 300 * time.Millisecond, RetryBudget: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return s, c
}

func TestRetryAfterIsHonoured(t *testing.T) {
	s, c := setup(t)
	s.InjectFault(gitlabsim.Fault{Kind: "verify", Type: gitlabsim.FaultRateLimit, RetryAfter: 1})
	start := time.Now()
	_, err := c.Verify(context.Background(), "glrt-nope", "s_1")
	if StatusOf(err) != 403 {
		t.Fatalf("want the real answer (403) after the retry, got %v", err)
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
	if _, err := c.ListRunners(context.Background(), ListOptions{RunnerType: "instance_type"}); err != nil {
		t.Fatalf("list after a 502 and a dropped connection: %v", err)
	}
	if n := len(s.Requests()); n != 3 {
		t.Fatalf("%d attempts, want 3", n)
	}
}

func TestCreateIsNotRetriedAfterALostAnswer(t *testing.T) {
	s, c := setup(t)
	s.InjectFault(gitlabsim.Fault{Kind: "create", Type: gitlabsim.FaultDrop, After: true})
	_, err := c.CreateRunner(context.Background(), CreateOptions{RunnerType: "instance_type", Settings: Settings{TagList: []string{"t"}}})
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
	if _, err := c.CreateRunner(context.Background(), CreateOptions{RunnerType: "instance_type", Settings: Settings{TagList: []string{"t"}}}); err != nil {
		t.Fatalf("create after 429: %v", err)
	}
}

func TestTimeoutIsBoundedAndErrorsHoldNoSecret(t *testing.T) {
	s, c := setup(t)
	s.InjectFault(gitlabsim.Fault{Type: gitlabsim.FaultTimeout, Delay: 2 * time.Second, Times: -1})
	c.cfg.MaxAttempts = 2
	start := time.Now()
	_, err := c.Verify(context.Background(), "glrt-SECRETrunnerToken12345", "s_1")
	if err == nil || time.Since(start) > 1500*time.Millisecond {
		t.Fatalf("err %v after %s", err, time.Since(start))
	}
	if !strings.Contains(err.Error(), "timed out") || strings.Contains(err.Error(), "SECRET") {
		t.Fatalf("error %q", err)
	}
}

func TestInsufficientScopeIsRecognised(t *testing.T) {
	s, c := setup(t)
	s.AddPAT(gitlabsim.PAT{Name: "admin", Value: pat, Scopes: []string{"read_api"}, Admin: true})
	_, err := c.CreateRunner(context.Background(), CreateOptions{RunnerType: "instance_type", Settings: Settings{TagList: []string{"t"}}})
	if !IsInsufficientScope(err) || !strings.Contains(err.Error(), "create_runner") {
		t.Fatalf("got %v", err)
	}
}

package gitlab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/testkit/gitlabsim"
)

// The decisions of the retry loop, each alone.

func TestCheckRetry(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	transport := func(err error) error {
		return &url.Error{Op: "Post", URL: "https://gitlab.example.com/api/v4/runners", Err: err}
	}
	refused := transport(&net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED})
	reset := transport(&net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET})
	timedOut := transport(context.DeadlineExceeded)
	cutShort := io.ErrUnexpectedEOF
	cases := []struct {
		name       string
		ctx        context.Context
		idempotent bool
		answer     answer
		err        error
		want       retry
	}{
		{"success", nil, true, answer{status: 200}, nil, final},
		{"created", nil, false, answer{status: 201}, nil, final},
		{"redirect: never followed, never retried", nil, true, answer{status: 301}, nil, final},
		{"400", nil, true, answer{status: 400}, nil, final},
		{"401", nil, true, answer{status: 401}, nil, final},
		{"403", nil, true, answer{status: 403}, nil, final},
		{"404", nil, true, answer{status: 404}, nil, final},
		{"410", nil, false, answer{status: 410}, nil, final},
		{"422", nil, true, answer{status: 422}, nil, final},
		{"500, idempotent", nil, true, answer{status: 500}, nil, retryFailed},
		{"502, idempotent", nil, true, answer{status: 502}, nil, retryFailed},
		{"503, idempotent", nil, true, answer{status: 503}, nil, retryFailed},
		{"500 to a create: GitLab may have created it", nil, false, answer{status: 500}, nil, final},
		{"429, idempotent", nil, true, answer{status: 429}, nil, retryThrottled},
		{"429 to a create: GitLab did nothing", nil, false, answer{status: 429}, nil, retryThrottled},
		{"an answer larger than any of GitLab's", nil, true, answer{status: 502, tooLarge: true}, nil, final},
		{"refused dial, idempotent", nil, true, answer{}, refused, retryFailed},
		{"refused dial to a create: never sent", nil, false, answer{}, refused, retryFailed},
		{"connection reset, idempotent", nil, true, answer{}, reset, retryFailed},
		{"connection reset on a create: it may have been made", nil, false, answer{}, reset, final},
		{"timed out, idempotent", nil, true, answer{}, timedOut, retryFailed},
		{"timed out on a create", nil, false, answer{}, timedOut, final},
		{"answer cut short, idempotent", nil, true, answer{status: 200}, cutShort, retryFailed},
		{"answer cut short to a create: it was made", nil, false, answer{status: 201}, cutShort, final},
		{"the run ended: no more attempts", cancelled, true, answer{status: 503}, nil, final},
		{"the run ended, throttled", cancelled, true, answer{status: 429}, nil, final},
		{"the run ended, no answer", cancelled, true, answer{}, refused, final},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := tc.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			if got := checkRetry(ctx, tc.idempotent, tc.answer, tc.err); got != tc.want {
				t.Errorf("checkRetry = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	const ms = time.Millisecond
	cases := []struct {
		attempt    int
		retryAfter time.Duration
		jitter     float64
		want       time.Duration
	}{
		// Jittered down by at most half.
		{1, 0, 0, 100 * ms},
		{1, 0, 0.5, 150 * ms},
		// Doubling with each attempt.
		{2, 0, 0, 200 * ms},
		{3, 0, 0, 400 * ms},
		{4, 0, 0, 800 * ms},
		{5, 0, 0, 1600 * ms},
		// Up to maxBackoff, however many attempts (429s do not count
		// against MaxAttempts: there may be many).
		{6, 0, 0, 2500 * ms},
		{7, 0, 0, 2500 * ms},
		{64, 0, 0, 2500 * ms},
		{1 << 20, 0, 0.5, 3750 * ms},
		// Never sooner than GitLab asked.
		{1, time.Second, 0.99, time.Second},
		{1, 60 * time.Second, 0, 60 * time.Second},
		{6, 3 * time.Second, 0, 3 * time.Second},
		// A Retry-After of 0: the backoff alone.
		{3, 0, 0.5, 600 * ms},
	}
	for _, tc := range cases {
		if got := backoff(tc.attempt, tc.retryAfter, tc.jitter); got != tc.want {
			t.Errorf("backoff(%d, %s, %v) = %s, want %s", tc.attempt, tc.retryAfter, tc.jitter, got, tc.want)
		}
	}
	// The jitter never takes the pause past the un-jittered one.
	for attempt := 1; attempt < 10; attempt++ {
		if got, ceiling := backoff(attempt, 0, 0.9999999), min(minBackoff<<(attempt-1), maxBackoff); got > ceiling {
			t.Errorf("attempt %d: %s, more than %s", attempt, got, ceiling)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	date := func(d time.Duration) string { return now.Add(d).Format(http.TimeFormat) }
	cases := []struct {
		value string
		want  time.Duration
		ok    bool
	}{
		{"", time.Second, true},
		{"0", 0, true},
		{"1", time.Second, true},
		{" 7 ", 7 * time.Second, true},
		{"-5", 0, true},
		{"60", time.Minute, true},
		{"86400", 24 * time.Hour, true},
		// Absurd: more than a day, or overflowing, refused (never a
		// negative wait).
		{"86401", 0, false},
		{"9223372037", 0, false},
		{"99999999999999999999", 0, false},
		// An HTTP date: rounded up to whole seconds.
		{date(30 * time.Second), 31 * time.Second, true},
		{date(-time.Minute), 0, true},
		{date(25 * time.Hour), 0, false},
		// Unreadable: a second.
		{"soon", time.Second, true},
	}
	for _, tc := range cases {
		got, ok := retryAfter(tc.value, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("retryAfter(%q) = %s, %v; want %s, %v", tc.value, got, ok, tc.want, tc.ok)
		}
	}
}

func TestKindOf(t *testing.T) {
	api := func(status int) error { return &APIError{Method: "GET", Path: "/api/v4/runners/1", Status: status} }
	net := &NetError{Host: "gitlab.example.com", Method: "POST", Path: "/api/v4/runners/verify", Attempts: 5, Err: syscall.ECONNREFUSED}
	other := errors.New("reading config.main.toml: permission denied")
	cases := []struct {
		name string
		err  error
		want Kind
	}{
		{"nil", nil, 0},
		{"not the client's", other, 0},
		{"no answer", net, Unreachable},
		{"500", api(500), Unreachable},
		{"503", api(503), Unreachable},
		{"429 that outlasted the retries", api(429), Unreachable},
		{"400", api(400), Refused},
		{"401", api(401), Refused},
		{"403", api(403), Refused},
		{"404", api(404), Refused},
		{"redirect", api(301), Refused},
		{"a listing past its bounds", &ListTooLargeError{Host: "gitlab.example.com", Path: "/api/v4/runners/all", Bound: BoundPages}, Refused},
		{"wrapped", fmt.Errorf("verifying docker: %w", api(502)), Unreachable},
		{"all unreachable", errors.Join(api(502), net), Unreachable},
		{"one refused", errors.Join(api(502), api(403)), Refused},
		{"one not the client's", errors.Join(api(502), other), 0},
	}
	for _, tc := range cases {
		if got := KindOf(tc.err); got != tc.want {
			t.Errorf("%s: KindOf = %d, want %d", tc.name, got, tc.want)
		}
	}
}

// The loop, over HTTP.

// TestRetriesKeepTheirRequestID: every attempt of a call carries the same
// X-Request-Id, and every call its own.
func TestRetriesKeepTheirRequestID(t *testing.T) {
	s, c := setup(t)
	s.InjectFault(gitlabsim.Fault{Kind: "list", Type: gitlabsim.FaultStatus, Status: 502})
	s.InjectFault(gitlabsim.Fault{Kind: "list", Type: gitlabsim.FaultDrop})
	for range 2 {
		if _, _, err := c.ListRunners(context.Background(), ListOptions{RunnerType: "instance_type"}); err != nil {
			t.Fatal(err)
		}
	}
	reqs := waitRequests(t, s, 4)
	// The log is in the order the simulator was done with each request;
	// Seq is the order they came in.
	slices.SortFunc(reqs, func(a, b gitlabsim.Entry) int { return a.Seq - b.Seq })
	if len(reqs) != 4 {
		t.Fatalf("%d requests, want 3 attempts of the first call and 1 of the second: %+v", len(reqs), reqs)
	}
	first := reqs[0].RequestID
	if !strings.HasPrefix(first, "gra-") || reqs[1].RequestID != first || reqs[2].RequestID != first {
		t.Errorf("attempts of one call carry %q, %q, %q: want one id", first, reqs[1].RequestID, reqs[2].RequestID)
	}
	if reqs[3].RequestID == first || !strings.HasPrefix(reqs[3].RequestID, "gra-") {
		t.Errorf("a second call carries %q, the first's %q: want its own", reqs[3].RequestID, first)
	}
}

// cutShort serves answers whose body is cut short (the connection closes
// mid-body) to the first n requests, then GitLab's whole answer.
func cutShort(t *testing.T, n int64, status int, whole string) (*Client, *atomic.Int64) {
	t.Helper()
	var served atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if served.Add(1) > n {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			_, _ = io.WriteString(w, whole)
			return
		}
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		fmt.Fprintf(buf, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", status, http.StatusText(status), len(whole), whole[:len(whole)/2])
		_ = buf.Flush()
	}))
	t.Cleanup(srv.Close)
	c, err := New(Config{URL: srv.URL, PAT: pat, RequestTimeout: time.Minute, RetryBudget: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c, &served
}

// TestAnswerCutShortIsNoAnswer: an answer whose body breaks off is no
// answer, never a success with nothing in it (a token lost): idempotent
// calls ask again, a create is not repeated and says GitLab may have made
// the runner.
func TestAnswerCutShortIsNoAnswer(t *testing.T) {
	const token = "glrt-SECRETcutShort12345"
	whole := fmt.Sprintf(`{"id":42,"token":%q,"token_expires_at":null}`, token)

	c, served := cutShort(t, 1, http.StatusOK, whole)
	v, err := c.Verify(context.Background(), token, "s_1")
	if err != nil || v.State != TokenAlive || v.Creds.ID != 42 || served.Load() != 2 {
		t.Fatalf("verify: %+v, %v after %d requests; want runner 42, read whole on the second", v, err, served.Load())
	}
	c, served = cutShort(t, 1, http.StatusCreated, whole)
	creds, found, err := c.ResetToken(context.Background(), 42)
	if err != nil || found != Found || creds.Token != token || served.Load() != 2 {
		t.Fatalf("reset: %v, %v after %d requests; want the new token, read whole on the second", found, err, served.Load())
	}

	c, served = cutShort(t, 1, http.StatusCreated, whole)
	made, err := c.CreateRunner(context.Background(), CreateRequest{RunnerType: "instance_type", Settings: Settings{TagList: []string{"t"}}})
	var ne *NetError
	if !errors.As(err, &ne) || KindOf(err) != Unreachable || made.Token != "" || served.Load() != 1 {
		t.Fatalf("create: %+v, %v after %d requests; want no answer, not asked again", made, err, served.Load())
	}
	if strings.Contains(err.Error(), "SECRET") || strings.Contains(err.Error(), pat) {
		t.Fatalf("the error quotes a secret: %v", err)
	}
}

// TestRemovalOutcomes: what each removal's answers mean, over the
// simulator.
func TestRemovalOutcomes(t *testing.T) {
	s, c := setup(t)
	ctx := context.Background()
	create := func() Credentials {
		t.Helper()
		made, err := c.CreateRunner(ctx, CreateRequest{RunnerType: "instance_type", Settings: Settings{TagList: []string{"t"}}})
		if err != nil {
			t.Fatal(err)
		}
		return made.Credentials
	}
	expect := func(what string, got Removal, err error, want Removal) {
		t.Helper()
		if err != nil || got != want {
			t.Errorf("%s: %d, %v; want %d", what, got, err, want)
		}
	}

	a := create()
	if v, err := c.Verify(ctx, a.Token, "s_000000000001"); err != nil || v.State != TokenAlive {
		t.Fatalf("verify: %v, %v", v.State, err)
	}
	r, err := c.RemoveManager(ctx, a.Token, "s_000000000001")
	expect("removing this host's manager", r, err, Removed)
	r, err = c.RemoveManager(ctx, a.Token, "s_000000000001")
	expect("removing it again", r, err, AlreadyGone)
	r, err = c.RemoveManager(ctx, "glrt-notAToken", "s_000000000001")
	expect("removing a manager with a dead token", r, err, Rejected)
	if _, ok := s.Runner(a.ID); !ok {
		t.Fatal("removing a manager removed the runner")
	}

	r, err = c.RemoveByToken(ctx, "glrt-notAToken")
	expect("removing by a dead token", r, err, Rejected)
	r, err = c.RemoveByToken(ctx, a.Token)
	expect("removing by token", r, err, Removed)
	r, err = c.RemoveByID(ctx, a.ID)
	expect("removing by id a runner already gone", r, err, AlreadyGone)

	b := create()
	r, err = c.RemoveByID(ctx, b.ID)
	expect("removing by id", r, err, Removed)
	if n := len(s.Runners()); n != 0 {
		t.Fatalf("%d runners left", n)
	}
}

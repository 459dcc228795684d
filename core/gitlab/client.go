// Package gitlab is the client of GitLab's runner REST API used by the sync
// engine: one method per endpoint, bounded retries that honour Retry-After,
// and errors that never quote a secret.
package gitlab

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/go-resty/resty/v2"
)

// Config configures a Client.
type Config struct {
	// URL is GitLab's base URL, for example https://gitlab.example.com.
	URL string
	// PAT is the personal access token sent as PRIVATE-TOKEN (may be empty).
	PAT string
	// CAPEM is an extra PEM bundle trusted for this GitLab, read from
	// CAFile (named in messages) by the caller.
	CAFile string
	CAPEM  []byte
	// Scrub removes secrets from GitLab's messages before they are cut to
	// length, so that no piece of a secret survives the cut.
	Scrub func(string) string
	// RequestTimeout bounds one attempt (default 20s).
	RequestTimeout time.Duration
	// RetryBudget bounds all attempts of one call, waits included (default 60s).
	RetryBudget time.Duration
	// MaxAttempts bounds attempts of one call that failed (default 5). 429
	// answers do not count: GitLab said when to come back, so those are
	// bounded by RetryBudget alone.
	MaxAttempts int
	// MaxConns is the number of connections kept open to GitLab (default 16).
	MaxConns int
	// UserAgent is sent with every request.
	UserAgent string
}

// Client talks to one GitLab instance.
type Client struct {
	base string
	host string // for messages: which GitLab did not answer
	pat  string
	cfg  Config
	hc   *resty.Client

	clockMu sync.Mutex
	// date is the Date of GitLab's latest answer, at received (local).
	date, received time.Time
}

// New builds a client. TLS verification is always on.
func New(cfg Config) (*Client, error) {
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 20 * time.Second
	}
	if cfg.RetryBudget <= 0 {
		cfg.RetryBudget = 60 * time.Second
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 5
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = 16
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "gitlab-runner-auth"
	}
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" || len(cfg.CAPEM) > 0 {
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(cfg.CAPEM) {
			return nil, fmt.Errorf("tls_ca_file %s: no PEM certificate found; give a PEM CA bundle", cfg.CAFile)
		}
		tlsCfg.RootCAs = pool
	}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          cfg.MaxConns * 2,
		MaxIdleConnsPerHost:   cfg.MaxConns,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		TLSClientConfig:       tlsCfg,
	}
	hc := resty.NewWithClient(&http.Client{Transport: tr, Timeout: cfg.RequestTimeout})
	hc.SetLogger(quietLogger{})
	// Lists come in pages of 100 runners: no answer of GitLab's is near
	// this, and a larger one must not be held in memory.
	hc.SetResponseBodyLimit(MaxResponseBody)
	hc.SetHeader("User-Agent", cfg.UserAgent)
	hc.SetHeader("Accept", "application/json")
	// Redirects could carry PRIVATE-TOKEN to another host: never follow
	// them; the answer is the redirect itself, named to the administrator.
	hc.SetRedirectPolicy(resty.RedirectPolicyFunc(func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }))
	// Each call's retry condition decides (see attempt): resty counts no
	// attempts of its own, and waits exactly what the condition chose.
	hc.SetRetryCount(1 << 16).SetRetryWaitTime(time.Nanosecond).SetRetryMaxWaitTime(maxRetryAfter + time.Minute).
		SetRetryAfter(waitHook)
	base := strings.TrimRight(cfg.URL, "/")
	host := base
	if u, err := url.Parse(base); err == nil && u.Host != "" {
		host = u.Host
	}
	c := &Client{base: base, host: host, pat: cfg.PAT, cfg: cfg, hc: hc}
	hc.OnAfterResponse(func(_ *resty.Client, r *resty.Response) error {
		if t, err := http.ParseTime(r.Header().Get("Date")); err == nil {
			c.clockMu.Lock()
			c.date, c.received = t, time.Now()
			c.clockMu.Unlock()
		}
		return nil
	})
	return c, nil
}

// Now is GitLab's clock: the Date of its latest answer plus the time
// since it came (false before any answer with a Date). Ages GitLab
// reports (contacted_at) are measured on it, so that a host's wrong clock
// cannot make a runner look idle.
func (c *Client) Now() (time.Time, bool) {
	c.clockMu.Lock()
	defer c.clockMu.Unlock()
	if c.date.IsZero() {
		return time.Time{}, false
	}
	return c.date.Add(time.Since(c.received)), true
}

// MaxResponseBody bounds every answer read from GitLab.
const MaxResponseBody = 4 << 20

// HasPAT reports whether calls that need a personal access token can be made.
func (c *Client) HasPAT() bool { return c.pat != "" }

// Close releases idle connections.
func (c *Client) Close() { c.hc.GetClient().CloseIdleConnections() }

type quietLogger struct{}

func (quietLogger) Errorf(string, ...any) {}
func (quietLogger) Warnf(string, ...any)  {}
func (quietLogger) Debugf(string, ...any) {}

// APIError is an error answer from GitLab. It holds what GitLab said, never
// the request's parameters.
type APIError struct {
	Method  string
	Path    string
	Status  int
	Message string
	// Code is the OAuth-style error code GitLab returns for token problems,
	// for example "insufficient_scope".
	Code string
	// Scope lists the scopes GitLab wanted (insufficient_scope only).
	Scope string
	// Location is where a redirect (3xx) points, without credentials or query.
	Location   string
	RetryAfter time.Duration
}

func (e *APIError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	s := fmt.Sprintf("GitLab %s %s: %s", e.Method, e.Path, msg)
	if e.Code == "insufficient_scope" && e.Scope != "" {
		s += fmt.Sprintf(" (the personal access token needs one of the scopes: %s)", e.Scope)
	}
	return s
}

// NetError is a call that got no answer from GitLab.
type NetError struct {
	Host     string
	Method   string
	Path     string
	Attempts int
	Err      error
}

func (e *NetError) Error() string {
	return fmt.Sprintf("GitLab %s %s %s: no answer after %d attempt(s): %s", e.Host, e.Method, e.Path, e.Attempts, describeNetErr(e.Err))
}

func (e *NetError) Unwrap() error { return e.Err }

func describeNetErr(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var uae x509.UnknownAuthorityError
	var hie x509.HostnameError
	var cie x509.CertificateInvalidError
	switch {
	case errors.As(err, &uae):
		return "TLS certificate signed by an unknown authority; set tls_ca_file for this GitLab to its CA bundle"
	case errors.As(err, &hie):
		return "TLS certificate is not valid for this host name: " + hie.Error()
	case errors.As(err, &cie):
		return "TLS certificate is not valid: " + cie.Error()
	case isTimeout(err):
		return "request timed out"
	}
	return err.Error()
}

// StatusOf returns the HTTP status of an APIError, or 0.
func StatusOf(err error) int {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Status
	}
	return 0
}

// IsNotFound reports a 404 answer: the runner (or, on an old GitLab, the
// endpoint) does not exist.
func IsNotFound(err error) bool { return StatusOf(err) == http.StatusNotFound }

// IsForbidden reports a 403 answer. For a runner token it means the token
// is revoked or expired; for a PAT, a missing scope or permission. It never
// means the runner is gone.
func IsForbidden(err error) bool { return StatusOf(err) == http.StatusForbidden }

// IsUnreachable reports a call that GitLab did not carry out for reasons
// of its own: no answer (refused, timed out, dropped), a 5xx or a 429 that
// outlasted the retries. Every error in a joined error must be one.
func IsUnreachable(err error) bool {
	if err == nil {
		return false
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			if e != nil && !IsUnreachable(e) {
				return false
			}
		}
		return true
	}
	var ne *NetError
	if errors.As(err, &ne) {
		return true
	}
	st := StatusOf(err)
	return st >= 500 || st == http.StatusTooManyRequests
}

// IsGone reports a 410 answer: registration tokens are disabled.
func IsGone(err error) bool { return StatusOf(err) == http.StatusGone }

// IsInsufficientScope reports a 403 insufficient_scope answer.
func IsInsufficientScope(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == 403 && ae.Code == "insufficient_scope"
}

type authKind int

const (
	authNone authKind = iota
	authPAT
)

type call struct {
	method string
	path   string
	query  url.Values
	body   any
	auth   authKind
	// idempotent calls are retried after connection errors and 5xx; the
	// others only when GitLab cannot have seen them (429, refused dial).
	idempotent bool
	out        any
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// neverSent reports errors that prove the request did not reach GitLab.
func neverSent(err error) bool {
	if errors.Is(err, syscall.ECONNREFUSED) {
		return true
	}
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "dial"
}

// do makes one call. resty carries the attempts: its retry condition
// (attempt.retry) decides whether to try again and how long to wait, its
// RetryAfter hook hands that wait over, SetResult and SetError decode the
// answers. One id (X-Request-Id) for all attempts of a call: GitLab's logs
// (and the simulator's) can tell retries from new calls.
func (c *Client) do(ctx context.Context, cl call) error {
	if cl.auth == authPAT && c.pat == "" {
		return &APIError{Method: cl.method, Path: cl.path, Status: 401, Message: "no personal access token configured"}
	}
	st := &attempt{call: cl, budget: time.Now().Add(c.cfg.RetryBudget), maxFailures: c.cfg.MaxAttempts, backoff: 200 * time.Millisecond}
	req := c.hc.R().SetContext(context.WithValue(ctx, attemptKey{}, st)).
		SetHeader("X-Request-Id", fmt.Sprintf("gra-%016x", rand.Uint64())).
		ForceContentType("application/json").
		SetError(&map[string]any{}).
		AddRetryCondition(st.retry)
	if cl.auth == authPAT {
		req.SetHeader("PRIVATE-TOKEN", c.pat)
	}
	if cl.body != nil {
		req.SetHeader("Content-Type", "application/json").SetBody(cl.body)
	}
	if cl.out != nil {
		req.SetResult(cl.out)
	}
	u := c.base + cl.path
	if len(cl.query) > 0 {
		u += "?" + cl.query.Encode()
	}
	resp, err := req.Execute(cl.method, u)
	return c.outcome(ctx, cl, st, resp, err)
}

// outcome turns the last attempt into the call's answer.
func (c *Client) outcome(ctx context.Context, cl call, st *attempt, resp *resty.Response, err error) error {
	attempts := 1
	if resp != nil && resp.Request != nil {
		attempts = max(resp.Request.Attempt, 1)
	}
	answered := resp != nil && resp.RawResponse != nil
	switch {
	case errors.Is(err, resty.ErrResponseBodyTooLarge):
		return &APIError{Method: cl.method, Path: cl.path, Message: fmt.Sprintf(
			"the answer of GitLab %s is larger than %d MiB, which no answer of GitLab's API is; check that url names your GitLab", c.host, MaxResponseBody>>20)}
	case err != nil && ctx.Err() != nil:
		return &NetError{Host: c.host, Method: cl.method, Path: cl.path, Attempts: attempts, Err: ctx.Err()}
	case err != nil && answered && resp.StatusCode() < 400 && len(resp.Body()) > 0:
		return &APIError{Method: cl.method, Path: cl.path, Status: resp.StatusCode(), Message: "answer is not the JSON GitLab sends: " + err.Error()}
	case err != nil && !answered:
		return &NetError{Host: c.host, Method: cl.method, Path: cl.path, Attempts: attempts, Err: err}
	}
	status := resp.StatusCode()
	if status >= 300 && status < 400 {
		// An http:// URL for an https GitLab, or a moved GitLab: GitLab
		// answered, and said where it is; retrying would not change that.
		return &APIError{Method: cl.method, Path: cl.path, Status: status, Location: SafeURL(resp.Header().Get("Location")),
			Message: fmt.Sprintf("GitLab answered %d %s and points to %s; set url to the address GitLab is served at (the tool never follows redirects: they could carry the token elsewhere)",
				status, http.StatusText(status), SafeURL(resp.Header().Get("Location")))}
	}
	if status < 400 {
		if h, ok := cl.out.(interface{ setHeaders(http.Header) }); ok {
			h.setHeaders(resp.Header())
		}
		return nil
	}
	body, _ := resp.Error().(*map[string]any)
	apiErr := parseError(cl.method, cl.path, status, body, c.scrub)
	if status == http.StatusTooManyRequests {
		apiErr.RetryAfter = st.retryAfter
		if st.absurd != "" {
			apiErr.Message = fmt.Sprintf("rate limited by GitLab (429), which asked to wait %q before retrying: longer than any run may take", cut(c.scrub(st.absurd), 40))
		} else {
			apiErr.Message = fmt.Sprintf("rate limited by GitLab (429) after %d attempt(s); it asked to wait %s, beyond what is left of this run's time bound (raise the run timeout)", attempts, st.retryAfter)
		}
	}
	return apiErr
}

// attemptKey finds a call's attempt state in its request's context.
type attemptKey struct{}

// attempt is one call's retry state.
type attempt struct {
	call call
	// budget bounds the retries of failures (RetryBudget); 429s may wait
	// up to the run's own deadline instead.
	budget      time.Time
	failures    int
	maxFailures int
	backoff     time.Duration
	// wait is the pause before the next attempt, as retry decided it.
	wait time.Duration
	// retryAfter is what GitLab last asked for; absurd a Retry-After
	// refused (more than a day, or overflowing).
	retryAfter time.Duration
	absurd     string
}

// retry is resty's retry condition: whether to try again, and after
// which wait (handed to resty by waitHook).
func (a *attempt) retry(resp *resty.Response, err error) bool {
	if resp == nil || resp.Request.Context().Err() != nil {
		return false
	}
	defer func() { a.backoff = min(a.backoff*2, 5*time.Second) }()
	if err != nil {
		// No answer: idempotent calls retry; the others only when GitLab
		// cannot have seen them (a refused dial). A create retried after
		// a lost answer would create a second runner.
		if resp.RawResponse != nil || errors.Is(err, resty.ErrResponseBodyTooLarge) || (!a.call.idempotent && !neverSent(err)) {
			return false
		}
		return a.failed()
	}
	switch status := resp.StatusCode(); {
	case status == http.StatusTooManyRequests:
		// Never sooner than GitLab asked, for as long as the run's own
		// bound (the context's deadline) allows; a 429 does not count as
		// a failed attempt.
		ra, ok := retryAfter(resp.Header().Get("Retry-After"))
		if !ok {
			a.absurd = resp.Header().Get("Retry-After")
			return false
		}
		a.retryAfter, a.wait = ra, max(ra, jitter(a.backoff))
		bound := a.budget
		if dl, has := resp.Request.Context().Deadline(); has {
			bound = dl
		}
		return !time.Now().Add(a.wait).After(bound)
	case status >= 500 && a.call.idempotent:
		return a.failed()
	}
	return false
}

// failed counts a failed attempt and says whether another one fits.
func (a *attempt) failed() bool {
	a.failures++
	a.wait = jitter(a.backoff)
	return a.failures < a.maxFailures && !time.Now().Add(a.wait).After(a.budget)
}

// waitHook hands resty the wait the retry condition chose.
func waitHook(_ *resty.Client, resp *resty.Response) (time.Duration, error) {
	if a, ok := resp.Request.Context().Value(attemptKey{}).(*attempt); ok && a.wait > 0 {
		return a.wait, nil
	}
	return 0, nil
}

func jitter(d time.Duration) time.Duration {
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

// maxRetryAfter is the longest wait a Retry-After may ask for; longer (or
// overflowing) values are refused, never turned into a negative wait.
const maxRetryAfter = 24 * time.Hour

// retryAfter parses Retry-After (seconds or an HTTP date); ok is false
// when GitLab asks for more than maxRetryAfter.
func retryAfter(v string) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return time.Second, true
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil || errors.Is(err, strconv.ErrRange) {
		if err != nil || n > int64(maxRetryAfter/time.Second) {
			return 0, false
		}
		return time.Duration(max(n, 0)) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		d := time.Until(t)
		if d > maxRetryAfter {
			return 0, false
		}
		if d > 0 {
			return d + time.Second, true // round up: HTTP dates have one-second resolution
		}
		return 0, true
	}
	return time.Second, true
}

// scrub removes secrets from text GitLab sent, before it is cut.
func (c *Client) scrub(s string) string {
	if c.cfg.Scrub == nil {
		return s
	}
	return c.cfg.Scrub(s)
}

// cut shortens s to at most n bytes (whole runes) and marks the cut. Only
// text already scrubbed may be cut: a secret cut in two is no longer
// recognised.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}

// parseError reads GitLab's error answer (decoded by resty; nil when it
// was not JSON): message, OAuth-style error code and scopes.
func parseError(method, path string, status int, body *map[string]any, scrub func(string) string) *APIError {
	e := &APIError{Method: method, Path: path, Status: status}
	if body != nil {
		m := *body
		var parts []string
		if v, ok := m["message"]; ok {
			parts = append(parts, flatten(v))
		}
		if v, ok := m["error"].(string); ok {
			e.Code = v
			parts = append(parts, v)
		}
		if v, ok := m["error_description"].(string); ok {
			parts = append(parts, v)
		}
		if v, ok := m["reason"].(string); ok {
			parts = append(parts, v)
		}
		if v, ok := m["scope"].(string); ok {
			e.Scope = cut(scrub(v), 300)
		}
		e.Message = strings.Join(parts, ": ")
	}
	if e.Message == "" {
		e.Message = fmt.Sprintf("%d %s", status, http.StatusText(status))
	}
	e.Message = cut(scrub(e.Message), 300)
	return e
}

func flatten(v any) string {
	switch t := v.(type) {
	case string:
		return t
	case map[string]any, []any:
		b, _ := json.Marshal(t)
		return string(b)
	}
	return fmt.Sprint(v)
}

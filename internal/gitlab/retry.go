package gitlab

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-resty/resty/v2"
)

// The attempts of one call are one loop (do), as go-retryablehttp's
// Client.Do: send makes each attempt, a single request with net/http;
// checkRetry says whether its result may be tried again, backoff how long
// to wait first, and the loop bounds both (MaxAttempts, RetryBudget, the
// run's deadline).

type authKind int

const (
	authNone authKind = iota
	authPAT
)

// call is one request to GitLab, as an operation describes it.
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

// retry is checkRetry's verdict on one attempt.
type retry int

const (
	// final: the attempt's result is the call's.
	final retry = iota
	// retryFailed: a failure worth another attempt; it counts against
	// MaxAttempts and waits within RetryBudget.
	retryFailed
	// retryThrottled: 429, GitLab did nothing and said when to come back;
	// it does not count against MaxAttempts and may wait as long as the
	// run's own deadline allows.
	retryThrottled
)

// checkRetry judges one attempt: the call's context, whether the call is
// idempotent, GitLab's answer, and the error when there was no (whole)
// answer.
func checkRetry(ctx context.Context, idempotent bool, a answer, err error) retry {
	switch {
	case ctx.Err() != nil:
		return final
	case err != nil:
		// No answer, or one cut short: idempotent calls retry; the others
		// only when GitLab cannot have seen them (a refused dial). A
		// create retried after a lost answer would create a second runner.
		if idempotent || neverSent(err) {
			return retryFailed
		}
		return final
	case a.tooLarge:
		// No answer of GitLab's is that large: asking again would get the
		// same.
		return final
	case a.status == http.StatusTooManyRequests:
		return retryThrottled
	case a.status >= 500 && idempotent:
		return retryFailed
	}
	return final
}

// The pause between attempts grows from minBackoff, doubling with each
// attempt, to maxBackoff.
const (
	minBackoff = 200 * time.Millisecond
	maxBackoff = 5 * time.Second
)

// backoff is the pause after the attempt-th attempt (from 1): exponential
// from minBackoff to maxBackoff, jittered down by up to half (jitter, in
// [0, 1), says how far), and never shorter than the Retry-After GitLab
// asked for.
func backoff(attempt int, retryAfter time.Duration, jitter float64) time.Duration {
	d := maxBackoff
	if attempt >= 1 && attempt <= 6 {
		d = min(minBackoff<<(attempt-1), maxBackoff)
	}
	d = d/2 + time.Duration(jitter*float64(d/2))
	return max(d, retryAfter)
}

// maxRetryAfter is the longest wait a Retry-After may ask for; longer (or
// overflowing) values are refused, never turned into a negative wait.
const maxRetryAfter = 24 * time.Hour

// retryAfter reads Retry-After (seconds or an HTTP date) at now; ok is
// false when GitLab asks for more than maxRetryAfter. Without a value
// (or an unreadable one) it is a second.
func retryAfter(v string, now time.Time) (time.Duration, bool) {
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
		d := t.Sub(now)
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

// neverSent reports errors that prove the request did not reach GitLab.
func neverSent(err error) bool {
	if errors.Is(err, syscall.ECONNREFUSED) {
		return true
	}
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "dial"
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// tally is what the attempts of one call add up to, for its error.
type tally struct {
	attempts int
	// retryAfter is what GitLab last asked for; absurd a Retry-After
	// refused (more than a day, or overflowing).
	retryAfter time.Duration
	absurd     string
}

// do makes one call: attempts until one is final, the retries of
// failures bounded by MaxAttempts and RetryBudget, those of 429s by the
// run's own deadline. Every attempt carries the call's one X-Request-Id:
// GitLab's logs (and the simulator's) can tell retries from new calls.
func (c *Client) do(ctx context.Context, cl call) error {
	if cl.auth == authPAT && c.pat == "" {
		return &APIError{Method: cl.method, Path: cl.path, Status: 401, Message: "no personal access token configured"}
	}
	var body []byte
	if cl.body != nil {
		var err error
		if body, err = marshal(cl.body); err != nil {
			return fmt.Errorf("GitLab %s %s: %w", cl.method, cl.path, err)
		}
	}
	u := c.base + cl.path
	if len(cl.query) > 0 {
		u += "?" + cl.query.Encode()
	}
	id := requestID()
	budget := time.Now().Add(c.cfg.RetryBudget)
	patience := budget
	if dl, ok := ctx.Deadline(); ok {
		patience = dl
	}
	var t tally
	failures := 0
	for {
		t.attempts++
		a, err := c.send(c.request(ctx, cl, u, body, id))
		var wait time.Duration
		bound := budget
		switch checkRetry(ctx, cl.idempotent, a, err) {
		case final:
			return c.outcome(ctx, cl, t, a, err)
		case retryFailed:
			if failures++; failures >= c.cfg.MaxAttempts {
				return c.outcome(ctx, cl, t, a, err)
			}
			wait = backoff(t.attempts, 0, rand.Float64())
		case retryThrottled:
			asked, ok := retryAfter(a.header.Get("Retry-After"), time.Now())
			if !ok {
				t.absurd = a.header.Get("Retry-After")
				return c.outcome(ctx, cl, t, a, err)
			}
			t.retryAfter = asked
			wait, bound = backoff(t.attempts, asked, rand.Float64()), patience
		}
		if time.Now().Add(wait).After(bound) {
			return c.outcome(ctx, cl, t, a, err)
		}
		if err := sleep(ctx, wait); err != nil {
			return &NetError{Host: c.host, Method: cl.method, Path: cl.path, Attempts: t.attempts, Err: err}
		}
	}
}

// answer is GitLab's answer to one attempt, read whole.
type answer struct {
	status int
	header http.Header
	body   []byte
	// tooLarge: the answer is larger than MaxResponseBody (body unread).
	tooLarge bool
}

// request is one attempt's request, built by resty: the call's body
// (JSON) and headers, its X-Request-Id among them. resty makes single
// requests only (no retries of its own, redirects not followed); the loop
// above decides, and send reads the answer itself.
func (c *Client) request(ctx context.Context, cl call, u string, body []byte, id string) *resty.Request {
	r := c.rc.R().SetContext(ctx).SetDoNotParseResponse(true).
		SetHeader("X-Request-Id", id).SetHeader("Accept", "application/json")
	r.URL, r.Method = u, cl.method
	if cl.auth == authPAT {
		r.SetHeader("Private-Token", c.pat)
	}
	if body != nil {
		r.SetHeader("Content-Type", "application/json").SetBody(body)
	}
	return r
}

// send makes one attempt: a single request, its answer read within
// MaxResponseBody. The error is the transport's when there is no answer,
// or one cut short (dropped, or past RequestTimeout, while it was read):
// the body is read here, to its end, never taken as complete when the
// connection broke off (an empty "success" would lose a created runner's
// token).
func (c *Client) send(r *resty.Request) (answer, error) {
	resp, err := r.Send()
	if err != nil {
		if resp != nil && resp.RawBody() != nil {
			resp.RawBody().Close()
		}
		return answer{}, err
	}
	raw := resp.RawResponse
	defer raw.Body.Close()
	c.sawDate(raw.Header)
	a := answer{status: raw.StatusCode, header: raw.Header}
	a.body, a.tooLarge, err = readBody(raw)
	return a, err
}

// readBody reads an answer's body, up to MaxResponseBody.
func readBody(resp *http.Response) (body []byte, tooLarge bool, err error) {
	var b bytes.Buffer
	if n := resp.ContentLength; n > 0 && n <= MaxResponseBody {
		b.Grow(int(n) + 1) // +1: the read that finds the end
	}
	if _, err := b.ReadFrom(io.LimitReader(resp.Body, MaxResponseBody+1)); err != nil {
		return nil, false, err
	}
	if b.Len() > MaxResponseBody {
		return nil, true, nil
	}
	return b.Bytes(), false, nil
}

// marshal encodes a request's body, as GitLab reads it (no HTML escapes:
// the text sent is the text given).
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// sleep waits d, or until ctx ends (its error).
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// requestID is a new call's X-Request-Id.
func requestID() string {
	var b [4 + 16]byte
	copy(b[:], "gra-")
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], rand.Uint64())
	hex.Encode(b[4:], n[:])
	return string(b[:])
}

// outcome turns the last attempt into the call's answer: nil (the answer
// decoded into cl.out), or an error that says what GitLab did.
func (c *Client) outcome(ctx context.Context, cl call, t tally, a answer, err error) error {
	switch {
	case err != nil && ctx.Err() != nil:
		return &NetError{Host: c.host, Method: cl.method, Path: cl.path, Attempts: t.attempts, Err: ctx.Err()}
	case err != nil:
		return &NetError{Host: c.host, Method: cl.method, Path: cl.path, Attempts: t.attempts, Err: err}
	case a.tooLarge:
		return &APIError{Method: cl.method, Path: cl.path, Message: fmt.Sprintf(
			"the answer of GitLab %s is larger than %d MiB, which no answer of GitLab's API is; check that url names your GitLab", c.host, MaxResponseBody>>20)}
	}
	status := a.status
	if status >= 300 && status < 400 {
		// An http:// URL for an https GitLab, or a moved GitLab: GitLab
		// answered, and said where it is; retrying would not change that.
		where := SafeURL(a.header.Get("Location"))
		return &APIError{Method: cl.method, Path: cl.path, Status: status, Location: where,
			Message: fmt.Sprintf("GitLab answered %d %s and points to %s; set url to the address GitLab is served at (the tool never follows redirects: they could carry the token elsewhere)",
				status, http.StatusText(status), where)}
	}
	if status < 400 {
		// An empty answer (204, or a 200 without body) decodes to nothing.
		if cl.out != nil && len(a.body) > 0 && status != http.StatusNoContent {
			if err := json.Unmarshal(a.body, cl.out); err != nil {
				return &APIError{Method: cl.method, Path: cl.path, Status: status, Message: "answer is not the JSON GitLab sends: " + err.Error()}
			}
		}
		if h, ok := cl.out.(interface{ setHeaders(http.Header) }); ok {
			h.setHeaders(a.header)
		}
		return nil
	}
	apiErr := parseError(cl.method, cl.path, status, a.body, c.scrub)
	if status == http.StatusTooManyRequests {
		apiErr.RetryAfter = t.retryAfter
		if t.absurd != "" {
			apiErr.Message = fmt.Sprintf("rate limited by GitLab (429), which asked to wait %q before retrying: longer than any run may take", cut(c.scrub(t.absurd), 40))
		} else {
			apiErr.Message = fmt.Sprintf("rate limited by GitLab (429) after %d attempt(s); it asked to wait %s, beyond what is left of this run's time bound (raise the run timeout)", t.attempts, t.retryAfter)
		}
	}
	return apiErr
}

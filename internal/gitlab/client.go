// Package gitlab is the client of GitLab's runner REST API used by the sync
// engine: one method per operation, each with a typed outcome (what
// GitLab's answer means, decided here once: the engine never compares
// statuses); bounded retries that honour Retry-After (retry.go); and
// errors that never quote a secret.
package gitlab

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
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
	// bounded by the run's deadline (the call's context; RetryBudget
	// without one).
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
	hc   *http.Client
	// rc sends single requests over hc (retries are the loop's, in do).
	rc *resty.Client

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
	hc := &http.Client{Transport: tr, Timeout: cfg.RequestTimeout,
		// Redirects could carry PRIVATE-TOKEN to another host: never
		// follow them; the answer is the redirect itself, named to the
		// administrator.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	base := strings.TrimRight(cfg.URL, "/")
	host := base
	if u, err := url.Parse(base); err == nil && u.Host != "" {
		host = u.Host
	}
	// Redirects are never followed (hc's policy, which resty keeps): the
	// answer is the redirect itself.
	rc := resty.NewWithClient(hc).SetLogger(quietLogger{}).SetHeader("User-Agent", cfg.UserAgent).SetRetryCount(0).
		SetRedirectPolicy(resty.RedirectPolicyFunc(func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }))
	return &Client{base: base, host: host, pat: cfg.PAT, cfg: cfg, hc: hc, rc: rc}, nil
}

// quietLogger keeps resty from logging: the loop reports every failure,
// redacted.
type quietLogger struct{}

func (quietLogger) Errorf(string, ...any) {}
func (quietLogger) Warnf(string, ...any)  {}
func (quietLogger) Debugf(string, ...any) {}

// sawDate sets GitLab's clock from an answer's Date.
func (c *Client) sawDate(h http.Header) {
	if t, err := http.ParseTime(h.Get("Date")); err == nil {
		c.clockMu.Lock()
		c.date, c.received = t, time.Now()
		c.clockMu.Unlock()
	}
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

// MaxResponseBody bounds every answer read from GitLab. Lists come in
// pages of 100 runners: no answer of GitLab's is near this, and a larger
// one must not be held in memory.
const MaxResponseBody = 4 << 20

// HasPAT reports whether calls that need a personal access token can be made.
func (c *Client) HasPAT() bool { return c.pat != "" }

// Close releases idle connections.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

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

// Kind is what a failed call says of GitLab, as the client judges it: the
// engine asks it instead of comparing statuses.
type Kind int

// The kinds of failure.
const (
	// Refused: GitLab (or what answers at its url) answered, and the
	// answer stands: a 4xx, a redirect, an answer no GitLab gives, a
	// listing past its bounds. Asking again would not change it.
	Refused Kind = iota + 1
	// Unreachable: GitLab did not carry out the call for reasons of its
	// own: no answer (refused, timed out, dropped), a 5xx, or a 429 that
	// outlasted the retries. A later run may succeed; a create or token
	// reset may have been carried out unseen.
	Unreachable
)

// KindOf says what err tells of GitLab: 0 for nil or an error that is not
// the client's. A joined error is only what all its errors are: it is
// Unreachable only when every one of them is.
func KindOf(err error) Kind {
	if err == nil {
		return 0
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		kind := Unreachable
		for _, e := range j.Unwrap() {
			if e != nil {
				kind = min(kind, KindOf(e))
			}
		}
		return kind
	}
	var ne *NetError
	var ae *APIError
	var tl *ListTooLargeError
	switch {
	case errors.As(err, &ne):
		return Unreachable
	case errors.As(err, &ae):
		if ae.Status >= 500 || ae.Status == http.StatusTooManyRequests {
			return Unreachable
		}
		return Refused
	case errors.As(err, &tl):
		return Refused
	}
	return 0
}

// statusOf returns the HTTP status of an APIError, or 0.
func statusOf(err error) int {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Status
	}
	return 0
}

// isInsufficientScope reports a 403 insufficient_scope answer: the PAT
// lacks a scope (its Scope names which).
func isInsufficientScope(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == http.StatusForbidden && ae.Code == "insufficient_scope"
}

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

// parseError reads GitLab's error answer (JSON; anything else says
// nothing): message, OAuth-style error code and scopes.
func parseError(method, path string, status int, body []byte, scrub func(string) string) *APIError {
	e := &APIError{Method: method, Path: path, Status: status}
	var m map[string]any
	if json.Unmarshal(body, &m) == nil {
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

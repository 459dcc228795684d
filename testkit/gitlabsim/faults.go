package gitlabsim

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// FaultType is what an injected fault does.
type FaultType string

const (
	// FaultStatus answers with Status (for example 500 or 502).
	FaultStatus FaultType = "status"
	// FaultDrop closes the connection without an answer.
	FaultDrop FaultType = "drop"
	// FaultTimeout holds the request for Delay, then closes the connection.
	FaultTimeout FaultType = "timeout"
	// FaultRateLimit answers 429 as Rack::Attack does (lib/gitlab/rack_attack.rb):
	// a plain-text "Retry later" with Retry-After and RateLimit-* headers.
	FaultRateLimit FaultType = "ratelimit"
	// FaultBackoff answers 429 as the runner endpoints do during database
	// migrations (lib/api/ci/helpers/runner.rb `check_if_backoff_required!`):
	// JSON message and Retry-After: 60 unless RetryAfter says otherwise.
	FaultBackoff FaultType = "backoff"
	// FaultEcho answers Status (default 400) with an error message that
	// quotes the request, headers and body included, as a misbehaving
	// proxy might: the client must not pass the secrets in it on.
	FaultEcho FaultType = "echo"
)

// Fault makes matching requests fail.
type Fault struct {
	// Method and Path restrict which requests match (empty: any). Path
	// matches as a prefix of the URL path; Kind matches Entry.Kind().
	Method string    `json:"method,omitempty"`
	Path   string    `json:"path,omitempty"`
	Kind   string    `json:"kind,omitempty"`
	Type   FaultType `json:"type"`
	// Skip lets this many matching requests through before failing.
	Skip int `json:"skip,omitempty"`
	// Times is how many matching requests fail; 0 means 1, -1 means all.
	Times int `json:"times,omitempty"`
	// Every fails only every Nth matching request (after Skip); 0 or 1: each.
	Every  int `json:"every,omitempty"`
	Status int `json:"status,omitempty"`
	// RetryAfter is the Retry-After header in seconds; any value goes, for
	// clients that must survive absurd ones (9223372037).
	RetryAfter int64 `json:"retry_after,omitempty"`
	// RetryAfterHeader, when set, is sent verbatim instead (an HTTP date,
	// "Fri, 31 Dec 9999 23:59:59 GMT", or garbage).
	RetryAfterHeader string        `json:"retry_after_header,omitempty"`
	Delay            time.Duration `json:"delay,omitempty"`
	// After makes GitLab carry the request out and then lose the answer.
	After bool `json:"after,omitempty"`

	seen  int
	fired int
	body  string
}

// InjectFault adds a fault rule; rules are checked in order.
func (s *Sim) InjectFault(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := f
	s.faults = append(s.faults, &c)
}

// ClearFaults removes every fault rule.
func (s *Sim) ClearFaults() {
	s.mu.Lock()
	s.faults = nil
	s.mu.Unlock()
}

// FaultsFired counts how many requests were failed on purpose.
func (s *Sim) FaultsFired() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, f := range s.faults {
		n += f.fired
	}
	return n
}

func (s *Sim) takeFault(method, path, kind string) *Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range s.faults {
		if f.Method != "" && !strings.EqualFold(f.Method, method) {
			continue
		}
		if f.Path != "" && !strings.HasPrefix(path, f.Path) {
			continue
		}
		if f.Kind != "" && f.Kind != kind {
			continue
		}
		f.seen++
		if f.seen <= f.Skip {
			continue
		}
		times := f.Times
		if times == 0 {
			times = 1
		}
		if times > 0 && f.fired >= times {
			continue
		}
		if f.Every > 1 && (f.seen-f.Skip-1)%f.Every != 0 {
			continue
		}
		f.fired++
		c := *f
		return &c
	}
	return nil
}

func (f *Fault) describe() string {
	switch f.Type {
	case FaultStatus:
		return fmt.Sprintf("status %d", f.Status)
	case FaultRateLimit, FaultBackoff:
		return fmt.Sprintf("429 %s retry-after %s", f.Type, f.retryAfter())
	}
	if f.After {
		return string(f.Type) + " after"
	}
	return string(f.Type)
}

func (f *Fault) retryAfter() string {
	switch {
	case f.RetryAfterHeader != "":
		return f.RetryAfterHeader
	case f.RetryAfter == 0 && f.Type == FaultBackoff:
		return "60"
	}
	return strconv.FormatInt(f.RetryAfter, 10)
}

// inject writes the fault and returns the status logged (0: no answer).
func (f *Fault) inject(w http.ResponseWriter, r *http.Request, now time.Time) int {
	switch f.Type {
	case FaultRateLimit:
		tooManyRequestsText(w, f.retryAfter(), now, 600)
		return http.StatusTooManyRequests
	case FaultBackoff:
		w.Header().Set("Retry-After", f.retryAfter())
		apiError(w, http.StatusTooManyRequests, migrationBackoffMessage)
		return http.StatusTooManyRequests
	case FaultDrop:
		hijackClose(w)
		return 0
	case FaultEcho:
		st := f.Status
		if st == 0 {
			st = 400
		}
		var hdr []string
		for k, v := range r.Header {
			hdr = append(hdr, k+": "+strings.Join(v, ","))
		}
		apiError(w, st, fmt.Sprintf("%d Bad request - could not process %s %s (headers %s; body %s)", st, r.Method, r.URL.String(), strings.Join(hdr, "; "), f.body))
		return st
	case FaultTimeout:
		d := f.Delay
		if d == 0 {
			d = 30 * time.Second
		}
		select {
		case <-time.After(d):
		case <-r.Context().Done():
		}
		hijackClose(w)
		return 0
	default:
		st := f.Status
		if st == 0 {
			st = 500
		}
		apiError(w, st, fmt.Sprintf("%d %s", st, http.StatusText(st)))
		return st
	}
}

func hijackClose(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
			return
		}
	}
	// HTTP/2 or a recorder: abort the handler, which resets the stream.
	panic(http.ErrAbortHandler)
}

// parseSeconds reads a Retry-After given in seconds.
func parseSeconds(v string) (int64, bool) {
	n, err := strconv.ParseInt(v, 10, 64)
	return n, err == nil && n >= 0
}

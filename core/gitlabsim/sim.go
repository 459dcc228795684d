// Package gitlabsim is an in-process simulator of GitLab's runner REST API
// (the endpoints gitlab-runner-auth uses), with GitLab's status codes, error
// bodies, pagination, PAT scopes, token expiry and revocation, fault
// injection and a request log that tests can assert on.
//
// It is an http.Handler, used like net/http/httptest:
//
//	sim := gitlabsim.New(gitlabsim.Options{...})
//	srv := httptest.NewServer(sim)
package gitlabsim

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"
)

// PAT is a personal access token known to the simulator.
type PAT struct {
	// Name identifies the token in the request log (the value never appears there).
	Name   string
	Value  string
	Scopes []string
	// Admin makes the token's user an instance administrator.
	Admin   bool
	Revoked bool
}

// Options configure a simulator.
type Options struct {
	PATs []PAT
	// RegistrationToken enables the legacy POST /api/v4/runners workflow.
	RegistrationToken string
	// RegistrationDisabled makes POST /api/v4/runners answer 410 Gone, as
	// GitLab 17+ does when registration tokens are switched off.
	RegistrationDisabled bool
	// Latency is added to every API request.
	Latency time.Duration
	// TokenLifetime gives new runner tokens an expiry; zero means no expiry.
	TokenLifetime time.Duration
	// Now overrides the clock (tests).
	Now func() time.Time
}

// Runner is the simulator's record of one runner.
type Runner struct {
	ID              int64
	Description     string
	RunnerType      string
	GroupID         int64
	ProjectID       int64
	TagList         []string
	RunUntagged     bool
	Locked          bool
	Paused          bool
	AccessLevel     string
	MaximumTimeout  int64
	MaintenanceNote string
	Token           string
	TokenExpiresAt  time.Time // zero: never
	CreatedAt       time.Time
	// Legacy is true for runners registered with a registration token.
	Legacy bool
	// Managers maps system_id -> last contact, like GitLab's runner managers.
	Managers map[string]time.Time
}

func (r *Runner) clone() Runner {
	c := *r
	c.TagList = append([]string(nil), r.TagList...)
	c.Managers = make(map[string]time.Time, len(r.Managers))
	for k, v := range r.Managers {
		c.Managers[k] = v
	}
	return c
}

// Entry is one request in the simulator's log. It never holds a secret.
type Entry struct {
	Seq      int
	Method   string
	Path     string
	Query    string
	Status   int
	Auth     string // "pat:<name>", "runner-token", "registration-token" or ""
	Mutating bool
	SystemID string
	// RequestID is the client's X-Request-Id (the same for retries of a call).
	RequestID string
	Fault     string
	Start     time.Time
	End       time.Time
}

// Kind names the request for counting: "verify", "create", "register",
// "list", "get", "update", "reset", "delete-token", "delete-id", ...
func (e Entry) Kind() string { return kindOf(e.Method, e.Path) }

// Sim is the simulator. All methods are safe for concurrent use.
type Sim struct {
	mu       sync.Mutex
	opts     Options
	runners  map[int64]*Runner
	nextID   int64
	log      []Entry
	seq      int
	faults   []*Fault
	inflight int
	maxIn    int
	control  bool
	hooks    []hook
}

type hook struct {
	kind  string
	after bool
	fn    func(Entry)
}

// OnRequest runs fn for every API request of the given kind (Entry.Kind),
// before GitLab handles it or, with after, once it has. Tests use it to make
// something happen at an exact point of a run (for example a request of a
// killed run that GitLab finishes late).
func (s *Sim) OnRequest(kind string, after bool, fn func(Entry)) {
	s.mu.Lock()
	s.hooks = append(s.hooks, hook{kind, after, fn})
	s.mu.Unlock()
}

func (s *Sim) runHooks(e Entry, after bool) {
	s.mu.Lock()
	var fns []func(Entry)
	for _, h := range s.hooks {
		if h.after == after && h.kind == e.Kind() {
			fns = append(fns, h.fn)
		}
	}
	s.mu.Unlock()
	for _, fn := range fns {
		fn(e)
	}
}

// New returns a simulator.
func New(opts Options) *Sim {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Sim{opts: opts, runners: map[int64]*Runner{}, nextID: 1}
}

func (s *Sim) now() time.Time { return s.opts.Now().UTC() }

// SetLatency changes the per-request latency.
func (s *Sim) SetLatency(d time.Duration) {
	s.mu.Lock()
	s.opts.Latency = d
	s.mu.Unlock()
}

// SetRegistrationDisabled switches the legacy registration endpoint to 410.
func (s *Sim) SetRegistrationDisabled(v bool) {
	s.mu.Lock()
	s.opts.RegistrationDisabled = v
	s.mu.Unlock()
}

// AddPAT adds (or replaces, by name) a personal access token.
func (s *Sim) AddPAT(p PAT) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.opts.PATs {
		if s.opts.PATs[i].Name == p.Name {
			s.opts.PATs[i] = p
			return
		}
	}
	s.opts.PATs = append(s.opts.PATs, p)
}

// Runners returns a copy of every runner, sorted by id.
func (s *Sim) Runners() []Runner {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Runner, 0, len(s.runners))
	for _, r := range s.runners {
		out = append(out, r.clone())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Runner returns a copy of one runner.
func (s *Sim) Runner(id int64) (Runner, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.runners[id]
	if !ok {
		return Runner{}, false
	}
	return r.clone(), true
}

// AddRunner inserts a runner (for example one that belongs to another host)
// and returns its id. A token is generated when r.Token is empty.
func (s *Sim) AddRunner(r Runner) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	r.ID = s.nextID
	s.nextID++
	if r.Token == "" {
		r.Token = newToken()
	}
	if r.RunnerType == "" {
		r.RunnerType = "instance_type"
	}
	if r.AccessLevel == "" {
		r.AccessLevel = "not_protected"
	}
	if r.CreatedAt.IsZero() {
		r.CreatedAt = s.now()
	}
	r.Managers = map[string]time.Time{}
	s.runners[r.ID] = &r
	return r.ID
}

// DeleteRunner removes a runner as an administrator would in the UI.
func (s *Sim) DeleteRunner(id int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.runners[id]
	delete(s.runners, id)
	return ok
}

// RevokeToken replaces a runner's token with one nobody knows, as a reset
// done elsewhere would.
func (s *Sim) RevokeToken(id int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.runners[id]
	if ok {
		r.Token = newToken()
	}
	return ok
}

// ExpireToken makes a runner's token expired.
func (s *Sim) ExpireToken(id int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.runners[id]
	if ok {
		r.TokenExpiresAt = s.now().Add(-time.Minute)
	}
	return ok
}

// RotateToken does what gitlab-runner does when a token nears expiry
// (POST /runners/reset_authentication_token) and returns the new token.
func (s *Sim) RotateToken(id int64) (string, time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.runners[id]
	if !ok {
		return "", time.Time{}, false
	}
	s.resetToken(r)
	return r.Token, r.TokenExpiresAt, true
}

// UpdateRunner edits a runner as a human would in the UI.
func (s *Sim) UpdateRunner(id int64, edit func(r *Runner)) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.runners[id]
	if ok {
		edit(r)
	}
	return ok
}

// VerifyToken reports whether a runner token is currently valid.
func (s *Sim) VerifyToken(token string) (int64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.byToken(token)
	if r == nil {
		return 0, false
	}
	return r.ID, true
}

// Requests returns a copy of the request log.
func (s *Sim) Requests() []Entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Entry(nil), s.log...)
}

// ResetLog clears the request log and the in-flight high-water mark.
func (s *Sim) ResetLog() {
	s.mu.Lock()
	s.log = nil
	s.maxIn = 0
	s.mu.Unlock()
}

// MaxInFlight is the highest number of API requests handled at once since
// the last ResetLog.
func (s *Sim) MaxInFlight() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maxIn
}

// Counts summarises the log by request kind.
func (s *Sim) Counts() map[string]int {
	out := map[string]int{}
	for _, e := range s.Requests() {
		out[e.Kind()]++
	}
	return out
}

// MutatingRequests counts logged requests that change GitLab's state.
func (s *Sim) MutatingRequests() int {
	n := 0
	for _, e := range s.Requests() {
		if e.Mutating {
			n++
		}
	}
	return n
}

func (s *Sim) byToken(token string) *Runner {
	if token == "" {
		return nil
	}
	now := s.now()
	for _, r := range s.runners {
		if r.Token == token {
			if !r.TokenExpiresAt.IsZero() && !now.Before(r.TokenExpiresAt) {
				return nil
			}
			return r
		}
	}
	return nil
}

func (s *Sim) resetToken(r *Runner) {
	r.Token = newToken()
	r.TokenExpiresAt = time.Time{}
	if s.opts.TokenLifetime > 0 {
		r.TokenExpiresAt = s.now().Add(s.opts.TokenLifetime)
	}
}

const tokenAlphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"

// newToken returns a runner authentication token in GitLab's glrt- format.
func newToken() string {
	return "glrt-" + randomString(tokenAlphabet, 20)
}

func randomString(alphabet string, n int) string {
	var b strings.Builder
	max := big.NewInt(int64(len(alphabet)))
	for i := 0; i < n; i++ {
		v, err := rand.Int(rand.Reader, max)
		if err != nil {
			panic(err)
		}
		b.WriteByte(alphabet[v.Int64()])
	}
	return b.String()
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// apiError writes GitLab's usual {"message": "..."} error body.
func apiError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]any{"message": msg})
}

func kindOf(method, path string) string {
	p := strings.TrimPrefix(path, "/api/v4")
	switch {
	case method == "POST" && p == "/runners/verify":
		return "verify"
	case method == "POST" && p == "/user/runners":
		return "create"
	case method == "POST" && p == "/runners":
		return "register"
	case method == "DELETE" && p == "/runners":
		return "delete-token"
	case method == "POST" && p == "/runners/reset_authentication_token":
		return "rotate"
	case method == "POST" && strings.HasSuffix(p, "/reset_authentication_token"):
		return "reset"
	case method == "GET" && (p == "/runners" || p == "/runners/all" || strings.HasSuffix(p, "/runners")):
		return "list"
	case method == "GET" && strings.HasPrefix(p, "/runners/"):
		return "get"
	case method == "PUT" && strings.HasPrefix(p, "/runners/"):
		return "update"
	case method == "DELETE" && strings.HasPrefix(p, "/runners/"):
		return "delete-id"
	}
	return fmt.Sprintf("%s %s", method, p)
}

package gitlabsim

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"
)

// Options configure a simulator.
type Options struct {
	Users    []User
	Groups   []Group
	Projects []Project
	PATs     []PAT
	// RegistrationToken is the instance-wide legacy registration token
	// (POST /api/v4/runners registers an instance runner with it).
	RegistrationToken string
	// RegistrationDisabled makes legacy registration answer 410 Gone, as
	// GitLab 17+ does when registration tokens are switched off.
	RegistrationDisabled bool
	// AdminMode is GitLab's "Admin Mode" setting: an administrator's token
	// then needs the admin_mode scope to act as an administrator.
	AdminMode bool
	// MigrationBackoff makes the runner endpoints answer 429 with
	// Retry-After: 60, as during database migrations.
	MigrationBackoff bool
	// RoutableTokens hands out runner tokens in the routable format
	// (glrt-t1_<base64url>.<len><crc>).
	RoutableTokens bool
	// Latency is added to every API request.
	Latency time.Duration
	// TokenLifetime gives new runner tokens an expiry; zero means no expiry.
	TokenLifetime time.Duration
	// Now overrides the clock (tests).
	Now func() time.Time
	// RequestLog, when set, gets one line per API request, built from the
	// log Entry and so free of secrets.
	RequestLog io.Writer
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
	kind      string
}

// Kind names the request for counting: "verify", "create", "register",
// "list", "get", "update", "reset", "delete-token", "delete-id",
// "managers", "jobs-request", ... (the route table's kinds).
func (e Entry) Kind() string {
	if e.kind != "" {
		return e.kind
	}
	return kindOf(e.Method, e.Path)
}

// RequestCounts is the request log in numbers, the answer of GET /-/sim/counts.
type RequestCounts struct {
	Total       int            `json:"total"`
	Mutating    int            `json:"mutating"`
	ByKind      map[string]int `json:"by_kind"`
	MaxInFlight int            `json:"max_in_flight"`
}

// Sim is the simulator. All methods are safe for concurrent use.
type Sim struct {
	mu       sync.Mutex
	opts     Options
	users    map[string]*User
	groups   map[int64]*Group
	projects map[int64]*Project
	pats     []*PAT
	runners  map[int64]*Runner
	nextID   int64
	nextMgr  int64
	nextUser int64
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

// New returns a simulator.
func New(opts Options) *Sim {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Sim{runners: map[int64]*Runner{}, nextID: 1, users: map[string]*User{},
		groups: map[int64]*Group{}, projects: map[int64]*Project{}}
	users, groups, projects, pats := opts.Users, opts.Groups, opts.Projects, opts.PATs
	opts.Users, opts.Groups, opts.Projects, opts.PATs = nil, nil, nil, nil
	s.opts = opts
	for _, u := range users {
		s.AddUser(u)
	}
	for _, g := range groups {
		s.AddGroup(g)
	}
	for _, p := range projects {
		s.AddProject(p)
	}
	for _, p := range pats {
		s.AddPAT(p)
	}
	return s
}

func (s *Sim) now() time.Time { return s.opts.Now().UTC() }

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

// SetAdminMode switches GitLab's Admin Mode setting.
func (s *Sim) SetAdminMode(v bool) {
	s.mu.Lock()
	s.opts.AdminMode = v
	s.mu.Unlock()
}

// SetMigrationBackoff makes the runner endpoints answer 429 (Retry-After: 60).
func (s *Sim) SetMigrationBackoff(v bool) {
	s.mu.Lock()
	s.opts.MigrationBackoff = v
	s.mu.Unlock()
}

// AddUser adds (or replaces, by username) a user and returns its id.
func (s *Sim) AddUser(u User) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addUserLocked(u)
}

func (s *Sim) addUserLocked(u User) int64 {
	if old, ok := s.users[u.Username]; ok && u.ID == 0 {
		u.ID = old.ID
	}
	if u.ID == 0 {
		s.nextUser++
		u.ID = s.nextUser
	}
	if u.ID > s.nextUser {
		s.nextUser = u.ID
	}
	s.users[u.Username] = &u
	return u.ID
}

// AddGroup adds (or replaces, by full path) a group and returns its id.
// Ids are given by the caller or counted from 100.
func (s *Sim) AddGroup(g Group) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	g.FullPath = strings.Trim(g.FullPath, "/")
	if old := s.groupByPath(g.FullPath); old != nil && g.ID == 0 {
		g.ID = old.ID
	}
	if g.ID == 0 {
		g.ID = s.freeNamespaceID()
	}
	g.Members = copyMembers(g.Members)
	s.groups[g.ID] = &g
	return g.ID
}

// AddProject adds (or replaces, by full path) a project and returns its id.
func (s *Sim) AddProject(p Project) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	p.FullPath = strings.Trim(p.FullPath, "/")
	if old := s.projectByPath(p.FullPath); old != nil && p.ID == 0 {
		p.ID = old.ID
	}
	if p.ID == 0 {
		p.ID = s.freeNamespaceID()
	}
	p.Members = copyMembers(p.Members)
	s.projects[p.ID] = &p
	return p.ID
}

func (s *Sim) freeNamespaceID() int64 {
	id := int64(100)
	for s.groups[id] != nil || s.projects[id] != nil {
		id++
	}
	return id
}

func copyMembers(m map[string]AccessLevel) map[string]AccessLevel {
	out := make(map[string]AccessLevel, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// SetMember gives a user a role in a group or project (found by full path);
// level 0 removes the membership.
func (s *Sim) SetMember(fullPath, username string, level AccessLevel) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	var members map[string]AccessLevel
	if g := s.groupByPath(fullPath); g != nil {
		members = g.Members
	} else if p := s.projectByPath(fullPath); p != nil {
		members = p.Members
	} else {
		return false
	}
	if level == 0 {
		delete(members, username)
	} else {
		members[username] = level
	}
	return true
}

// AddPAT adds (or replaces, by name) a personal access token.
func (s *Sim) AddPAT(p PAT) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.User == "" {
		p.User = p.Name
		s.addUserLocked(User{Username: p.Name, Admin: p.Admin})
	} else if _, ok := s.users[p.User]; !ok {
		s.addUserLocked(User{Username: p.User})
	}
	p.createdAt = s.now()
	for i, old := range s.pats {
		if old.Name == p.Name {
			p.id = old.id
			s.pats[i] = &p
			return
		}
	}
	p.id = int64(len(s.pats) + 1)
	s.pats = append(s.pats, &p)
}

// RevokePAT revokes a personal access token by name.
func (s *Sim) RevokePAT(name string) bool {
	return s.editPAT(name, func(p *PAT) { p.Revoked = true })
}

// ExpirePAT makes a personal access token expired (expires_at yesterday).
func (s *Sim) ExpirePAT(name string) bool {
	return s.editPAT(name, func(p *PAT) { p.ExpiresAt = s.now().AddDate(0, 0, -1) })
}

// SetPATScopes replaces a personal access token's scopes.
func (s *Sim) SetPATScopes(name string, scopes []string) bool {
	return s.editPAT(name, func(p *PAT) { p.Scopes = append([]string(nil), scopes...) })
}

func (s *Sim) editPAT(name string, edit func(*PAT)) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.pats {
		if p.Name == name {
			edit(p)
			return true
		}
	}
	return false
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
// and returns its id. A token of the runner's shape is generated when
// r.Token is empty; r.Managers, when given, are kept.
func (s *Sim) AddRunner(r Runner) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.RunnerType == "" {
		r.RunnerType = "instance_type"
	}
	if r.AccessLevel == "" {
		r.AccessLevel = "not_protected"
	}
	if r.CreatedAt.IsZero() {
		r.CreatedAt = s.now()
	}
	managers := r.Managers
	r.Managers = map[string]Manager{}
	r.ID = s.nextID
	s.nextID++
	if r.Token == "" {
		r.Token = runnerToken(r.RunnerType, r.Legacy, s.opts.RoutableTokens)
	}
	for sid, m := range managers {
		s.nextMgr++
		m.ID, m.SystemID = s.nextMgr, sid
		if m.CreatedAt.IsZero() {
			m.CreatedAt = s.now()
		}
		r.Managers[sid] = m
	}
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
	return s.UpdateRunner(id, func(r *Runner) { r.Token = runnerToken(r.RunnerType, r.Legacy, s.opts.RoutableTokens) })
}

// ExpireToken makes a runner's token expired.
func (s *Sim) ExpireToken(id int64) bool {
	return s.UpdateRunner(id, func(r *Runner) { r.TokenExpiresAt = s.now().Add(-time.Minute) })
}

// OrphanRunner makes a group or project runner lose its owner, as when its
// group or project is deleted: verify then answers 422 "Runner is orphaned".
func (s *Sim) OrphanRunner(id int64) bool {
	return s.UpdateRunner(id, func(r *Runner) { r.Orphaned = true })
}

// AddManager records a runner manager for system id, as a verify from
// another host with the same token would.
func (s *Sim) AddManager(id int64, systemID string) bool {
	return s.UpdateRunner(id, func(r *Runner) { s.ensureManager(r, systemID) })
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
func (s *Sim) Counts() map[string]int { return s.RequestCounts().ByKind }

// RequestCounts summarises the log: totals, mutating requests, by kind.
func (s *Sim) RequestCounts() RequestCounts {
	c := RequestCounts{ByKind: map[string]int{}, MaxInFlight: s.MaxInFlight()}
	for _, e := range s.Requests() {
		c.ByKind[e.Kind()]++
		c.Total++
		if e.Mutating {
			c.Mutating++
		}
	}
	return c
}

// MutatingRequests counts logged requests that change GitLab's state.
func (s *Sim) MutatingRequests() int { return s.RequestCounts().Mutating }

// byToken finds the runner a valid (not expired) token belongs to.
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
	r.Token = runnerToken(r.RunnerType, r.Legacy, s.opts.RoutableTokens)
	r.TokenExpiresAt = time.Time{}
	if s.opts.TokenLifetime > 0 {
		r.TokenExpiresAt = s.now().Add(s.opts.TokenLifetime)
	}
}

func (s *Sim) insert(r *Runner) {
	r.ID = s.nextID
	s.nextID++
	r.CreatedAt = s.now()
	r.Managers = map[string]Manager{}
	s.resetToken(r)
	s.runners[r.ID] = r
}

// ensureManager is Ci::Runner#ensure_manager: find or create the manager of
// this system id ("<legacy>" when the runner sent none).
func (s *Sim) ensureManager(r *Runner, systemID string) {
	if systemID == "" {
		systemID = legacySystemID
	}
	if _, ok := r.Managers[systemID]; !ok {
		s.nextMgr++
		r.Managers[systemID] = Manager{ID: s.nextMgr, SystemID: systemID, CreatedAt: s.now()}
	}
}

// legacySystemID is API::Ci::Helpers::Runner::LEGACY_SYSTEM_XID.
const legacySystemID = "<legacy>"

func itoa(i int64) string { return fmt.Sprint(i) }

package gitlabsim

import (
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
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
	// Version selects the GitLab release the simulator imitates (a named
	// profile: "16.11", "17.0", "17.9", "18.5"); empty: the newest. New
	// panics on a version it has no profile for (LookupProfile).
	Version string
	// Profile, when its Version is set, is used instead: a named profile
	// with switches changed (a release in between, a feature flag).
	Profile Profile
	// RegistrationToken is the instance-wide legacy registration token
	// (POST /api/v4/runners registers an instance runner with it).
	RegistrationToken string
	// RegistrationTokensAllowed turns on the instance setting
	// allow_runner_registration_token ("Allow members of projects and groups
	// to create runners with runner registration tokens"), which is off by
	// default since 17.0 (Profile.RegistrationTokensByDefault).
	RegistrationTokensAllowed bool
	// RegistrationDisabled turns that setting off whatever the profile's
	// default: legacy registration answers 410 Gone.
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
	// It is the instance setting runner_token_expiration_interval
	// (Ci::Runner#compute_token_expiration).
	TokenLifetime time.Duration
	// Now is the clock the simulator's own time is an offset from (default
	// time.Now); Advance and SetNow move the simulator's time (clock.go).
	Now func() time.Time
	// Seed seeds the random 40–55 minute interval after which GitLab writes
	// a contact to the database (clock.go); the same seed and the same
	// requests give the same times.
	Seed uint64
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
	Auth     string // "pat:<name>", "runner-token", "registration-token", "job-token" or ""
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
	mu      sync.Mutex
	opts    Options
	profile Profile
	// regTokens is the instance setting allow_runner_registration_token.
	regTokens bool
	offset    time.Duration
	started   time.Time
	rng       *rand.Rand
	cronLast  map[string]time.Time
	cronNext  time.Time
	cronRuns  []HousekeepingRun
	users     map[string]*User
	groups    map[int64]*Group
	projects  map[int64]*Project
	pats      []*PAT
	runners   map[int64]*Runner
	nextID    int64
	nextMgr   int64
	nextUser  int64
	log       []Entry
	seq       int
	faults    []*Fault
	inflight  int
	maxIn     int
	control   bool
	hooks     []hook
	jobs      map[int64]*Job
	nextJob   int64
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
	profile := NewestProfile()
	switch {
	case opts.Profile.Version != "":
		profile = opts.Profile
	case opts.Version != "":
		p, ok := LookupProfile(opts.Version)
		if !ok {
			panic(fmt.Sprintf("gitlabsim: no profile for GitLab %q (have %s)", opts.Version, strings.Join(ProfileVersions(), ", ")))
		}
		profile = p
	}
	s := &Sim{runners: map[int64]*Runner{}, nextID: 1, users: map[string]*User{},
		groups: map[int64]*Group{}, projects: map[int64]*Project{}, profile: profile,
		regTokens: (profile.RegistrationTokensByDefault || opts.RegistrationTokensAllowed) && !opts.RegistrationDisabled,
		rng:       rand.New(rand.NewPCG(opts.Seed, 0x9e3779b97f4a7c15))}
	users, groups, projects, pats := opts.Users, opts.Groups, opts.Projects, opts.PATs
	opts.Users, opts.Groups, opts.Projects, opts.PATs = nil, nil, nil, nil
	s.opts = opts
	s.started = s.now()
	s.housekeep()
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

// SetRegistrationDisabled switches the legacy registration endpoint to 410
// (true) or allows registration tokens (false): the instance setting
// allow_runner_registration_token, inverted.
func (s *Sim) SetRegistrationDisabled(v bool) { s.SetRegistrationTokensAllowed(!v) }

// SetRegistrationTokensAllowed sets the instance setting
// allow_runner_registration_token.
func (s *Sim) SetRegistrationTokensAllowed(v bool) {
	s.mu.Lock()
	s.regTokens = v
	s.mu.Unlock()
}

// Profile returns the profile the simulator imitates.
func (s *Sim) Profile() Profile {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.profile
}

// SetProfile makes the simulator imitate another release from now on, as
// an upgrade (or a feature flag) would: routes appear or go, new tokens
// take the new shape, state stays. Upgrading across 17.0 turns registration
// tokens off, as that release's migration does on every instance (MR 150648).
func (s *Sim) SetProfile(p Profile) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.housekeep()
	if s.profile.RegistrationTokensByDefault && !p.RegistrationTokensByDefault {
		s.regTokens = false
	}
	s.profile = p
}

// SetVersion is SetProfile with a named profile.
func (s *Sim) SetVersion(version string) error {
	p, ok := LookupProfile(version)
	if !ok {
		return fmt.Errorf("no profile for GitLab %q (have %s)", version, strings.Join(ProfileVersions(), ", "))
	}
	s.SetProfile(p)
	return nil
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

// UpdateGroup edits a group (found by full path), for example its settings.
func (s *Sim) UpdateGroup(fullPath string, edit func(g *Group)) bool {
	s.lockState()
	defer s.mu.Unlock()
	g := s.groupByPath(strings.Trim(fullPath, "/"))
	if g == nil {
		return false
	}
	id, path := g.ID, g.FullPath
	edit(g)
	g.ID, g.FullPath = id, path
	return true
}

// AddProject adds (or replaces, by full path) a project and returns its id.
func (s *Sim) AddProject(p Project) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	p.FullPath = strings.Trim(p.FullPath, "/")
	p.createdAt = s.now()
	if old := s.projectByPath(p.FullPath); old != nil && p.ID == 0 {
		p.ID, p.createdAt = old.ID, old.createdAt
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

// lockState takes the lock for a read or change of GitLab's state, after
// running the scheduled jobs due by now, and returns now.
func (s *Sim) lockState() time.Time {
	s.mu.Lock()
	s.housekeep()
	return s.now()
}

// Runners returns a copy of every runner, sorted by id, contact times as
// the API shows them now.
func (s *Sim) Runners() []Runner {
	now := s.lockState()
	defer s.mu.Unlock()
	out := make([]Runner, 0, len(s.runners))
	for _, r := range s.runners {
		out = append(out, r.view(now))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Runner returns a copy of one runner, as Runners does.
func (s *Sim) Runner(id int64) (Runner, bool) {
	now := s.lockState()
	defer s.mu.Unlock()
	r, ok := s.runners[id]
	if !ok {
		return Runner{}, false
	}
	return r.view(now), true
}

// AddRunner inserts a runner (for example one that belongs to another host)
// and returns its id. A token of the runner's shape is generated when
// r.Token is empty; r.Managers, when given, are kept. Contact times given
// count as written to GitLab's database; a zero CreatedAt is now.
func (s *Sim) AddRunner(r Runner) int64 {
	now := s.lockState()
	defer s.mu.Unlock()
	if r.RunnerType == "" {
		r.RunnerType = "instance_type"
	}
	if r.AccessLevel == "" {
		r.AccessLevel = "not_protected"
	}
	if r.CreatedAt.IsZero() {
		r.CreatedAt = now
	}
	managers := r.Managers
	r.Managers = map[string]Manager{}
	r.ID = s.nextID
	s.nextID++
	if r.Token == "" {
		r.Token = s.newToken(&r)
	}
	r.contactedDB = r.ContactedAt
	for sid, m := range managers {
		s.nextMgr++
		m.ID, m.SystemID = s.nextMgr, sid
		if m.CreatedAt.IsZero() {
			m.CreatedAt = now
		}
		m.contactedDB = m.ContactedAt
		r.Managers[sid] = m
	}
	s.runners[r.ID] = &r
	return r.ID
}

// DeleteRunner removes a runner as an administrator would in the UI.
func (s *Sim) DeleteRunner(id int64) bool {
	s.lockState()
	defer s.mu.Unlock()
	_, ok := s.runners[id]
	delete(s.runners, id)
	return ok
}

// RevokeToken replaces a runner's token with one nobody knows, as a reset
// done elsewhere would.
func (s *Sim) RevokeToken(id int64) bool {
	return s.UpdateRunner(id, func(r *Runner) { r.Token = s.newToken(r) })
}

// ExpireToken makes a runner's token expired.
func (s *Sim) ExpireToken(id int64) bool {
	return s.UpdateRunner(id, func(r *Runner) { r.TokenExpiresAt = s.now().Add(-time.Minute) })
}

// OrphanRunner makes a group or project runner lose its owner, as when its
// group or project is deleted; how the runner API then answers its token
// is Profile.OrphanedRunner.
func (s *Sim) OrphanRunner(id int64) bool {
	return s.UpdateRunner(id, func(r *Runner) { r.Orphaned = true })
}

// AddManager records a runner manager for system id, as a verify from
// another host with the same token would (created now, never contacted).
func (s *Sim) AddManager(id int64, systemID string) bool {
	return s.UpdateRunner(id, func(r *Runner) { s.ensureManager(r, systemID) })
}

// AssignRunner assigns a project runner to one more project, as a
// maintainer of both would with POST /projects/:id/runners (a new
// ci_runner_projects row). It reports false for a runner or project that
// does not exist, a runner that is not a project runner, or one already
// assigned there.
func (s *Sim) AssignRunner(id, projectID int64) bool {
	s.lockState()
	defer s.mu.Unlock()
	r, ok := s.runners[id]
	if !ok || s.projects[projectID] == nil || r.RunnerType != "project_type" || slices.Contains(r.projectIDs(), projectID) {
		return false
	}
	r.AssignedProjectIDs = append(r.AssignedProjectIDs, projectID)
	return true
}

// RotateToken does what gitlab-runner does when a token nears expiry
// (POST /runners/reset_authentication_token) and returns the new token.
func (s *Sim) RotateToken(id int64) (string, time.Time, bool) {
	s.lockState()
	defer s.mu.Unlock()
	r, ok := s.runners[id]
	if !ok {
		return "", time.Time{}, false
	}
	s.resetToken(r)
	return r.Token, r.TokenExpiresAt, true
}

// UpdateRunner edits a runner as a human would in the UI. The runner edit
// gets holds the last contact times (not the API's view); contact times
// it changes, and managers it adds, count as written to GitLab's database.
func (s *Sim) UpdateRunner(id int64, edit func(r *Runner)) bool {
	now := s.lockState()
	defer s.mu.Unlock()
	r, ok := s.runners[id]
	if !ok {
		return false
	}
	before := r.clone()
	edit(r)
	if !r.ContactedAt.Equal(before.ContactedAt) {
		r.contactedDB = r.ContactedAt
	}
	if r.Managers == nil {
		r.Managers = map[string]Manager{}
	}
	for sid, m := range r.Managers {
		old, had := before.Managers[sid]
		switch {
		case !had || m.ID == 0:
			if m.ID == 0 {
				s.nextMgr++
				m.ID = s.nextMgr
			}
			if m.CreatedAt.IsZero() {
				m.CreatedAt = now
			}
			m.SystemID, m.contactedDB = sid, m.ContactedAt
		case !m.ContactedAt.Equal(old.ContactedAt):
			m.contactedDB = m.ContactedAt
		}
		r.Managers[sid] = m
	}
	return true
}

// VerifyToken reports whether a runner token is currently valid.
func (s *Sim) VerifyToken(token string) (int64, bool) {
	s.lockState()
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

// byToken finds the runner a valid (not expired) token belongs to. A token
// expires only once its expiry is past: `token_expires_at >= NOW()` still
// finds it (TokenAuthenticatableStrategies::Base#not_expired, and
// #expired? is `exp.past?`, i.e. exp < now), so a token is valid at the
// very instant of token_expires_at.
func (s *Sim) byToken(token string) *Runner {
	if token == "" {
		return nil
	}
	now := s.now()
	for _, r := range s.runners {
		if r.Token == token {
			if !r.TokenExpiresAt.IsZero() && now.After(r.TokenExpiresAt) {
				return nil
			}
			return r
		}
	}
	return nil
}

// newToken is a token of the shape this release gives the runner.
func (s *Sim) newToken(r *Runner) string {
	return runnerToken(r.RunnerType, r.Legacy, s.profile.PartitionTokenPrefix, s.opts.RoutableTokens)
}

func (s *Sim) resetToken(r *Runner) {
	r.Token = s.newToken(r)
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
// this system id ("<legacy>" when the runner sent none), and return its key.
func (s *Sim) ensureManager(r *Runner, systemID string) string {
	if systemID == "" {
		systemID = legacySystemID
	}
	if _, ok := r.Managers[systemID]; !ok {
		s.nextMgr++
		r.Managers[systemID] = Manager{ID: s.nextMgr, SystemID: systemID, CreatedAt: s.now()}
	}
	return systemID
}

// legacySystemID is API::Ci::Helpers::Runner::LEGACY_SYSTEM_XID.
const legacySystemID = "<legacy>"

func itoa(i int64) string { return fmt.Sprint(i) }

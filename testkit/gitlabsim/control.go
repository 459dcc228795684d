package gitlabsim

import (
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// EnableControl turns on the /-/sim/ control API that the standalone
// simulator offers to tests in other processes (Molecule verify steps,
// benchmarks). It is not part of GitLab's API, is never logged, and never
// returns a token.
//
//	GET    /-/sim/runners                  every runner (RunnerView)
//	POST   /-/sim/runners                  add a runner (RunnerView; system_ids become managers)
//	DELETE /-/sim/runners/{id}             delete it as an administrator would
//	POST   /-/sim/runners/{id}/revoke      give it a token nobody knows
//	POST   /-/sim/runners/{id}/expire      expire its token
//	POST   /-/sim/runners/{id}/orphan      make it lose its group or project
//	POST   /-/sim/runners/{id}/managers    record a manager {"system_id": "..."}
//	POST   /-/sim/runners/{id}/projects    assign a project runner to one more project {"project_id": n}
//	POST   /-/sim/verify                   {"token": "..."} -> {"valid": bool, "id": n}
//	POST   /-/sim/jobs                     queue a CI job (JobSpec: script, runner_id, ...) -> {"id": n}
//	GET    /-/sim/jobs, /-/sim/jobs/{id}   the jobs (JobView: status, failure_reason, exit_code, trace, times)
//	GET    /-/sim/requests, /-/sim/counts  the request log, RequestCounts
//	POST   /-/sim/reset-log
//	POST   /-/sim/faults, DELETE /-/sim/faults
//	PUT    /-/sim/settings                 ControlSettings
//	GET    /-/sim/clock                    ClockView: now, the profile's version, the next housekeeping run
//	POST   /-/sim/clock                    ClockChange {"advance": "240h"}, {"rewind": "192h"} and/or {"set": RFC 3339} -> ClockView
//	GET    /-/sim/housekeeping             the runs of GitLab's scheduled jobs that deleted something
//	GET    /-/sim/profile                  the Profile in use
//	PUT    /-/sim/profile                  {"version": "16.11"} selects a named profile (an upgrade
//	                                       mid-life); other Profile fields given change those switches
//	POST   /-/sim/users                    add or replace a User
//	POST   /-/sim/groups, /-/sim/projects  add or replace a Group / Project -> {"id": n}
//	POST   /-/sim/members                  {"path": "a/b", "username": "u", "access_level": 50}
//	POST   /-/sim/pats                     add or replace a token (PATSpec)
//	POST   /-/sim/pats/{name}/revoke, /expire
//	PUT    /-/sim/pats/{name}/scopes       {"scopes": ["read_api"]}
func (s *Sim) EnableControl() {
	s.mu.Lock()
	s.control = true
	s.mu.Unlock()
}

var (
	reControlRunner = regexp.MustCompile(`^/-/sim/runners/(\d+)(/revoke|/expire|/orphan|/managers|/projects)?$`)
	reControlPAT    = regexp.MustCompile(`^/-/sim/pats/([^/]+)/(revoke|expire|scopes)$`)
	reControlJob    = regexp.MustCompile(`^/-/sim/jobs/(\d+)$`)
)

// RunnerView is a runner as the control API shows it (no token).
type RunnerView struct {
	ID              int64    `json:"id"`
	Description     string   `json:"description"`
	RunnerType      string   `json:"runner_type"`
	GroupID         int64    `json:"group_id,omitempty"`
	ProjectID       int64    `json:"project_id,omitempty"`
	TagList         []string `json:"tag_list"`
	RunUntagged     bool     `json:"run_untagged"`
	Locked          bool     `json:"locked"`
	Paused          bool     `json:"paused"`
	AccessLevel     string   `json:"access_level"`
	MaximumTimeout  int64    `json:"maximum_timeout,omitempty"`
	MaintenanceNote string   `json:"maintenance_note,omitempty"`
	Legacy          bool     `json:"legacy"`
	Orphaned        bool     `json:"orphaned,omitempty"`
	SystemIDs       []string `json:"system_ids"`
	// ContactedAt and Managers are read-only: as the API shows them.
	ContactedAt time.Time     `json:"contacted_at,omitzero"`
	Managers    []ManagerView `json:"managers,omitempty"`
	// AssignedProjectIDs are the projects a project runner was assigned
	// to besides its owner; read-only too (POST .../projects assigns).
	AssignedProjectIDs []int64 `json:"assigned_project_ids,omitempty"`
}

// ManagerView is a runner manager as the control API shows it.
type ManagerView struct {
	ID          int64     `json:"id"`
	SystemID    string    `json:"system_id"`
	CreatedAt   time.Time `json:"created_at"`
	ContactedAt time.Time `json:"contacted_at,omitzero"`
}

// View returns the control API's view of a runner.
func (r Runner) View() RunnerView {
	v := RunnerView{ID: r.ID, Description: r.Description, RunnerType: r.RunnerType, GroupID: r.GroupID,
		ProjectID: r.ProjectID, AssignedProjectIDs: append([]int64(nil), r.AssignedProjectIDs...),
		TagList: append([]string{}, r.TagList...), RunUntagged: r.RunUntagged,
		Locked: r.Locked, Paused: r.Paused, AccessLevel: r.AccessLevel, MaximumTimeout: r.MaximumTimeout,
		MaintenanceNote: r.MaintenanceNote, Legacy: r.Legacy, Orphaned: r.Orphaned, SystemIDs: []string{},
		ContactedAt: r.ContactedAt}
	for sid, m := range r.Managers {
		v.SystemIDs = append(v.SystemIDs, sid)
		v.Managers = append(v.Managers, ManagerView{ID: m.ID, SystemID: sid, CreatedAt: m.CreatedAt, ContactedAt: m.ContactedAt})
	}
	sort.Strings(v.SystemIDs)
	sort.Slice(v.Managers, func(i, j int) bool { return v.Managers[i].ID < v.Managers[j].ID })
	return v
}

// ClockChange is the body of POST /-/sim/clock: set the clock (optional),
// then advance it (optional, a Go duration: "240h", "90m").
type ClockChange struct {
	Set     time.Time `json:"set,omitzero"`
	Advance string    `json:"advance,omitempty"`
	// Rewind moves the clock back (no scheduled job runs): a scenario that
	// must end at the wall clock — a clean-up compares GitLab's clock with
	// the controller's — starts its history that long ago.
	Rewind string `json:"rewind,omitempty"`
}

// ClockView is the answer of GET and POST /-/sim/clock.
type ClockView struct {
	Now     time.Time `json:"now"`
	Version string    `json:"version"`
}

// ControlSettings are the simulator-wide knobs PUT /-/sim/settings changes;
// absent fields stay as they are.
type ControlSettings struct {
	LatencyMS            *int  `json:"latency_ms,omitempty"`
	RegistrationDisabled *bool `json:"registration_disabled,omitempty"`
	// RegistrationTokensAllowed is allow_runner_registration_token.
	RegistrationTokensAllowed *bool `json:"registration_tokens_allowed,omitempty"`
	AdminMode                 *bool `json:"admin_mode,omitempty"`
	MigrationBackoff          *bool `json:"migration_backoff,omitempty"`
}

// PATSpec is a personal access token as POST /-/sim/pats takes it.
type PATSpec struct {
	Name      string    `json:"name"`
	Value     string    `json:"value"`
	Scopes    []string  `json:"scopes"`
	User      string    `json:"user,omitempty"`
	Admin     bool      `json:"admin,omitempty"`
	Revoked   bool      `json:"revoked,omitempty"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		apiError(w, http.StatusBadRequest, err.Error())
		return false
	}
	return true
}

func (s *Sim) serveControl(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	enabled := s.control
	s.mu.Unlock()
	if !enabled {
		writeJSON(w, http.StatusNotFound, map[string]any{"error": "404 Not Found"})
		return
	}
	p, m := r.URL.Path, r.Method
	done := func(ok bool) {
		if !ok {
			apiError(w, http.StatusNotFound, "404 Not Found")
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
	switch {
	case p == "/-/sim/runners" && m == http.MethodGet:
		views := []RunnerView{}
		for _, rr := range s.Runners() {
			views = append(views, rr.View())
		}
		writeJSON(w, http.StatusOK, views)
	case p == "/-/sim/runners" && m == http.MethodPost:
		var v RunnerView
		if !decode(w, r, &v) {
			return
		}
		managers := map[string]Manager{}
		for _, sid := range v.SystemIDs {
			managers[sid] = Manager{}
		}
		id := s.AddRunner(Runner{Description: v.Description, RunnerType: v.RunnerType, GroupID: v.GroupID,
			ProjectID: v.ProjectID, TagList: v.TagList, RunUntagged: v.RunUntagged, Locked: v.Locked,
			Paused: v.Paused, AccessLevel: v.AccessLevel, MaximumTimeout: v.MaximumTimeout,
			MaintenanceNote: v.MaintenanceNote, Legacy: v.Legacy, Orphaned: v.Orphaned, Managers: managers})
		writeJSON(w, http.StatusCreated, map[string]any{"id": id})
	case reControlRunner.MatchString(p):
		sub := reControlRunner.FindStringSubmatch(p)
		id, _ := strconv.ParseInt(sub[1], 10, 64)
		switch {
		case sub[2] == "" && m == http.MethodDelete:
			done(s.DeleteRunner(id))
		case sub[2] == "/revoke" && m == http.MethodPost:
			done(s.RevokeToken(id))
		case sub[2] == "/expire" && m == http.MethodPost:
			done(s.ExpireToken(id))
		case sub[2] == "/orphan" && m == http.MethodPost:
			done(s.OrphanRunner(id))
		case sub[2] == "/managers" && m == http.MethodPost:
			var body struct {
				SystemID string `json:"system_id"`
			}
			if decode(w, r, &body) {
				done(s.AddManager(id, body.SystemID))
			}
		case sub[2] == "/projects" && m == http.MethodPost:
			var body struct {
				ProjectID int64 `json:"project_id"`
			}
			if decode(w, r, &body) {
				done(s.AssignRunner(id, body.ProjectID))
			}
		default:
			apiError(w, http.StatusMethodNotAllowed, "405 Method Not Allowed")
		}
	case p == "/-/sim/verify" && m == http.MethodPost:
		var body struct {
			Token string `json:"token"`
		}
		if decode(w, r, &body) {
			id, ok := s.VerifyToken(body.Token)
			writeJSON(w, http.StatusOK, map[string]any{"valid": ok, "id": id})
		}
	case p == "/-/sim/jobs" && m == http.MethodPost:
		var spec JobSpec
		if !decode(w, r, &spec) {
			return
		}
		if len(spec.Script) == 0 {
			apiError(w, http.StatusBadRequest, "script: want at least one command")
			return
		}
		writeJSON(w, http.StatusCreated, map[string]any{"id": s.EnqueueJob(spec)})
	case p == "/-/sim/jobs" && m == http.MethodGet:
		views := []JobView{}
		for _, j := range s.Jobs() {
			views = append(views, j.View())
		}
		writeJSON(w, http.StatusOK, views)
	case reControlJob.MatchString(p) && m == http.MethodGet:
		id, _ := strconv.ParseInt(reControlJob.FindStringSubmatch(p)[1], 10, 64)
		j, ok := s.Job(id)
		if !ok {
			apiError(w, http.StatusNotFound, "404 Job Not Found")
			return
		}
		writeJSON(w, http.StatusOK, j.View())
	case p == "/-/sim/requests" && m == http.MethodGet:
		writeJSON(w, http.StatusOK, s.Requests())
	case p == "/-/sim/counts" && m == http.MethodGet:
		writeJSON(w, http.StatusOK, s.RequestCounts())
	case p == "/-/sim/reset-log" && m == http.MethodPost:
		s.ResetLog()
		w.WriteHeader(http.StatusNoContent)
	case p == "/-/sim/faults" && m == http.MethodPost:
		var f Fault
		if decode(w, r, &f) {
			s.InjectFault(f)
			w.WriteHeader(http.StatusNoContent)
		}
	case p == "/-/sim/faults" && m == http.MethodDelete:
		s.ClearFaults()
		w.WriteHeader(http.StatusNoContent)
	case p == "/-/sim/settings" && (m == http.MethodPut || m == http.MethodPost):
		var st ControlSettings
		if !decode(w, r, &st) {
			return
		}
		if st.LatencyMS != nil {
			s.SetLatency(time.Duration(*st.LatencyMS) * time.Millisecond)
		}
		if st.RegistrationDisabled != nil {
			s.SetRegistrationDisabled(*st.RegistrationDisabled)
		}
		if st.RegistrationTokensAllowed != nil {
			s.SetRegistrationTokensAllowed(*st.RegistrationTokensAllowed)
		}
		if st.AdminMode != nil {
			s.SetAdminMode(*st.AdminMode)
		}
		if st.MigrationBackoff != nil {
			s.SetMigrationBackoff(*st.MigrationBackoff)
		}
		w.WriteHeader(http.StatusNoContent)
	case p == "/-/sim/clock" && m == http.MethodGet:
		writeJSON(w, http.StatusOK, ClockView{Now: s.Now(), Version: s.Profile().Version})
	case p == "/-/sim/clock" && m == http.MethodPost:
		var ch ClockChange
		if !decode(w, r, &ch) {
			return
		}
		var d time.Duration
		if ch.Advance != "" {
			var err error
			if d, err = time.ParseDuration(ch.Advance); err != nil || d < 0 {
				apiError(w, http.StatusBadRequest, "advance: want a positive Go duration such as 240h")
				return
			}
		}
		if ch.Rewind != "" {
			back, err := time.ParseDuration(ch.Rewind)
			if err != nil || back < 0 {
				apiError(w, http.StatusBadRequest, "rewind: want a positive Go duration such as 192h")
				return
			}
			s.SetNow(s.Now().Add(-back))
		}
		if !ch.Set.IsZero() {
			s.SetNow(ch.Set)
		}
		s.Advance(d)
		writeJSON(w, http.StatusOK, ClockView{Now: s.Now(), Version: s.Profile().Version})
	case p == "/-/sim/housekeeping" && m == http.MethodGet:
		writeJSON(w, http.StatusOK, s.Housekeeping())
	case p == "/-/sim/profile" && m == http.MethodGet:
		writeJSON(w, http.StatusOK, s.Profile())
	case p == "/-/sim/profile" && (m == http.MethodPut || m == http.MethodPost):
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<16))
		if err != nil {
			apiError(w, http.StatusBadRequest, err.Error())
			return
		}
		var sel struct {
			Version string `json:"version"`
		}
		if err := json.Unmarshal(body, &sel); err != nil {
			apiError(w, http.StatusBadRequest, err.Error())
			return
		}
		prof := s.Profile()
		if sel.Version != "" {
			named, ok := LookupProfile(sel.Version)
			if !ok {
				apiError(w, http.StatusBadRequest, "no profile for GitLab "+sel.Version+" (have "+strings.Join(ProfileVersions(), ", ")+")")
				return
			}
			prof = named
		}
		if err := json.Unmarshal(body, &prof); err != nil {
			apiError(w, http.StatusBadRequest, err.Error())
			return
		}
		s.SetProfile(prof)
		writeJSON(w, http.StatusOK, prof)
	case p == "/-/sim/users" && m == http.MethodPost:
		var u User
		if decode(w, r, &u) {
			writeJSON(w, http.StatusCreated, map[string]any{"id": s.AddUser(u)})
		}
	case p == "/-/sim/groups" && m == http.MethodPost:
		var g Group
		if decode(w, r, &g) {
			writeJSON(w, http.StatusCreated, map[string]any{"id": s.AddGroup(g)})
		}
	case p == "/-/sim/projects" && m == http.MethodPost:
		var pj Project
		if decode(w, r, &pj) {
			writeJSON(w, http.StatusCreated, map[string]any{"id": s.AddProject(pj)})
		}
	case p == "/-/sim/members" && m == http.MethodPost:
		var body struct {
			Path        string      `json:"path"`
			Username    string      `json:"username"`
			AccessLevel AccessLevel `json:"access_level"`
		}
		if decode(w, r, &body) {
			done(s.SetMember(body.Path, body.Username, body.AccessLevel))
		}
	case p == "/-/sim/pats" && m == http.MethodPost:
		var ps PATSpec
		if decode(w, r, &ps) {
			s.AddPAT(PAT{Name: ps.Name, Value: ps.Value, Scopes: ps.Scopes, User: ps.User, Admin: ps.Admin,
				Revoked: ps.Revoked, ExpiresAt: ps.ExpiresAt})
			w.WriteHeader(http.StatusNoContent)
		}
	case reControlPAT.MatchString(p):
		sub := reControlPAT.FindStringSubmatch(p)
		switch {
		case sub[2] == "revoke" && m == http.MethodPost:
			done(s.RevokePAT(sub[1]))
		case sub[2] == "expire" && m == http.MethodPost:
			done(s.ExpirePAT(sub[1]))
		case sub[2] == "scopes" && m == http.MethodPut:
			var body struct {
				Scopes []string `json:"scopes"`
			}
			if decode(w, r, &body) {
				done(s.SetPATScopes(sub[1], body.Scopes))
			}
		default:
			apiError(w, http.StatusMethodNotAllowed, "405 Method Not Allowed")
		}
	default:
		apiError(w, http.StatusNotFound, "404 Not Found: "+strings.TrimPrefix(p, "/-/sim/"))
	}
}

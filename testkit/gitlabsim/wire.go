package gitlabsim

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

// This file writes GitLab's wire format: entities (lib/api/entities/...) and
// error bodies. Errors come in four shapes, depending on which layer of
// GitLab answers:
//
//	{"message": "403 Forbidden - reason"}    render_api_error! and friends (lib/api/helpers.rb)
//	{"message": {"attr": ["msg"]}}           render_validation_error! (model validations)
//	{"error": "token is missing"}            Grape parameter validation (lib/api/api.rb rescue_from Grape::Exceptions::Base)
//	{"error": "invalid_token", ...}          the OAuth2 guard (lib/api/api_guard.rb)
//
// and one plain-text body: Rack::Attack's 429 "Retry later\n".

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// apiError is render_api_error!(message, status): {"message": "..."}.
func apiError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]any{"message": msg})
}

// forbidden is forbidden!(reason): "403 Forbidden" or "403 Forbidden - reason".
func forbidden(w http.ResponseWriter, reason string) {
	apiError(w, http.StatusForbidden, withReason("403 Forbidden", reason))
}

// badRequest is bad_request!(reason): "400 Bad request - reason".
func badRequest(w http.ResponseWriter, reason string) {
	apiError(w, http.StatusBadRequest, withReason("400 Bad request", reason))
}

func withReason(msg, reason string) string {
	if reason == "" {
		return msg
	}
	return msg + " - " + reason
}

// notFound is not_found!(resource): "404 Group Not Found". Runners are the
// exception: get_runner uses Ci::Runner.find, whose RecordNotFound is
// rescued in lib/api/api.rb as "404 Not found" (lower-case f; see
// Profile.RunnerNotFound).
func notFound(w http.ResponseWriter, resource string) {
	apiError(w, http.StatusNotFound, "404 "+resource+" Not Found")
}

// unknownRoute is API::API's catch-all route: Grape's error!('404 Not Found', 404)
// with the default JSON error formatter.
func unknownRoute(w http.ResponseWriter) {
	writeJSON(w, http.StatusNotFound, map[string]any{"error": "404 Not Found"})
}

// paramError is a Grape validation failure: {"error": "<param> is missing"}.
func paramError(w http.ResponseWriter, msg string) {
	writeJSON(w, http.StatusBadRequest, map[string]any{"error": msg})
}

// validationError is render_validation_error!(model): the model's errors by
// attribute, e.g. {"message": {"maximum_timeout": ["needs to be at least 10 minutes"]}}.
func validationError(w http.ResponseWriter, errs fieldErrors) {
	writeJSON(w, http.StatusBadRequest, map[string]any{"message": errs})
}

// tooManyRequestsText is Rack::Attack's throttled response as GitLab
// configures it (lib/gitlab/rack_attack.rb `throttled_response`): plain text
// Gitlab::Throttle.rate_limiting_response_text ("Retry later" + "\n") and the
// RateLimit-* headers of `throttled_response_headers`.
func tooManyRequestsText(w http.ResponseWriter, retryAfter string, now time.Time, limit int) {
	h := w.Header()
	h.Set("Content-Type", "text/plain")
	h.Set("RateLimit-Name", "throttle_authenticated_api")
	h.Set("RateLimit-Limit", itoa(int64(limit)))
	h.Set("RateLimit-Observed", itoa(int64(limit+1)))
	h.Set("RateLimit-Remaining", "0")
	if secs, ok := parseSeconds(retryAfter); ok && secs < 1<<31 {
		reset := now.Add(time.Duration(secs) * time.Second)
		h.Set("RateLimit-Reset", itoa(reset.Unix()))
		h.Set("RateLimit-ResetTime", reset.UTC().Format(http.TimeFormat))
	}
	h.Set("Retry-After", retryAfter)
	w.WriteHeader(http.StatusTooManyRequests)
	_, _ = w.Write([]byte("Retry later\n"))
}

func timeJSON(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

// registrationDetails is Entities::Ci::RunnerRegistrationDetails
// (id, token, token_expires_at), the answer of create, register and verify.
func registrationDetails(r *Runner) map[string]any {
	return map[string]any{"id": r.ID, "token": r.Token, "token_expires_at": timeJSON(r.TokenExpiresAt)}
}

// tokenResult is Entities::Ci::ResetTokenResult.
func tokenResult(r *Runner) map[string]any {
	return map[string]any{"token": r.Token, "token_expires_at": timeJSON(r.TokenExpiresAt)}
}

// onlineContactTimeout is Ci::Runner::ONLINE_CONTACT_TIMEOUT, which
// Ci::RunnerManager shares (online_contact_time_deadline).
const onlineContactTimeout = 2 * time.Hour

// restStatus is Ci::Runner#deprecated_rest_status, what the REST `status`
// field holds: stale when both created_at and contacted_at (as the API
// reads it) are at least Profile.RunnerStaleAfter old (stale?).
func (s *Sim) restStatus(r *Runner, now time.Time) string {
	contacted := seen(r.ContactedAt, r.contactedDB, now)
	switch {
	case !later(r.CreatedAt, contacted).After(s.profile.RunnerStaleAfter.Before(now)):
		return "stale"
	case contacted.IsZero():
		return "never_contacted"
	case r.Paused:
		return "paused"
	case online(contacted, now):
		return "online"
	}
	return "offline"
}

func online(t, now time.Time) bool { return !t.IsZero() && now.Sub(t) < onlineContactTimeout }

// runnerEntity is Entities::Ci::Runner (lib/api/entities/ci/runner.rb),
// the list entity: no tag_list, no settings, no contacted_at (only
// RunnerDetails has it). What differs between releases are profile
// switches: ip_address (Profile.RunnerIPAddress), created_by and
// created_at (Profile.RunnerCreatedBy, Profile.RunnerCreatedAt),
// job_execution_status (Profile.JobExecutionStatus). The key sets each
// release sends are the table of keysets_test.go.
func (s *Sim) runnerEntity(r *Runner, now time.Time) map[string]any {
	m := map[string]any{
		"id":          r.ID,
		"description": r.Description,
		"ip_address":  nil,
		"active":      !r.Paused,
		"paused":      r.Paused,
		"is_shared":   r.RunnerType == "instance_type",
		"runner_type": r.RunnerType,
		"name":        nullable(r.Name),
		"online":      online(seen(r.ContactedAt, r.contactedDB, now), now),
		"status":      s.restStatus(r, now),
	}
	if s.profile.RunnerIPAddress {
		m["ip_address"] = nullable(r.IPAddress)
	}
	// `if: Ability.allowed?(current_user, :read_user, runner.creator)`: any
	// signed-in user may read a user; a runner without a creator (legacy
	// registration, or its creator deleted) has a nil subject, which no
	// policy allows, so no key at all.
	if u := s.userByID(r.CreatorID); s.profile.RunnerCreatedBy && u != nil {
		m["created_by"] = s.userBasicEntity(u)
	}
	if s.profile.RunnerCreatedAt {
		m["created_at"] = timeJSON(r.CreatedAt)
	}
	if s.profile.JobExecutionStatus {
		m["job_execution_status"] = s.jobExecutionStatus(r.ID, "")
	}
	return m
}

// runnerDetailsEntity is Entities::Ci::RunnerDetails
// (lib/api/entities/ci/runner_details.rb): the list entity plus the
// settings, version & co (from the most recently contacted manager, or the
// runner's own columns: Profile.DetailsInfoFromManager), contacted_at,
// maintenance_note (null for readers who may not update the runner where
// Profile.MaintenanceNoteToUpdaters), projects as BasicProjectDetails and
// groups as BasicGroupDetails — for administrators all of them, for
// others those they are a member of.
func (s *Sim) runnerDetailsEntity(r *Runner, a actor, now time.Time) map[string]any {
	m := s.runnerEntity(r, now)
	m["tag_list"] = append([]string{}, r.TagList...)
	m["run_untagged"] = r.RunUntagged
	m["locked"] = r.Locked
	m["access_level"] = r.AccessLevel
	m["maximum_timeout"] = nil
	if r.MaximumTimeout > 0 {
		m["maximum_timeout"] = r.MaximumTimeout
	}
	m["maintenance_note"] = nil
	if (!s.profile.MaintenanceNoteToUpdaters || s.canUpdateRunner(a, r)) && r.MaintenanceNote != "" {
		m["maintenance_note"] = r.MaintenanceNote
	}
	if s.profile.DetailsInfoFromManager {
		// latest_runner_manager: order_contacted_at_desc (NULLs last) on the column.
		var latest *Manager
		for _, mg := range r.Managers {
			if latest == nil || mg.contactedDB.After(latest.contactedDB) ||
				(mg.contactedDB.Equal(latest.contactedDB) && mg.ID > latest.ID) {
				mg := mg
				latest = &mg
			}
		}
		for _, k := range []string{"version", "revision", "platform", "architecture"} {
			m[k] = nil
		}
		if latest != nil {
			m["version"], m["revision"], m["platform"], m["architecture"] = nullable(latest.Version), nullable(latest.Revision), nullable(latest.Platform), nullable(latest.Architecture)
		}
	} else {
		m["version"], m["revision"], m["platform"], m["architecture"] = nullable(r.Version), nullable(r.Revision), nullable(r.Platform), nullable(r.Architecture)
	}
	m["contacted_at"] = timeJSON(seen(r.ContactedAt, r.contactedDB, now))
	projects := []any{}
	for _, id := range r.projectIDs() {
		// `can_read_all_resources?` ? runner.projects :
		// current_user.authorized_projects.where(id: runner's projects).
		if p := s.projects[id]; p != nil && (a.admin || s.projectAccess(a.user, p) > 0) {
			projects = append(projects, s.basicProjectDetails(p, a))
		}
	}
	m["projects"] = projects
	groups := []any{}
	if g := s.groupByID(r.GroupID); g != nil && (a.admin || s.groupAccess(a.user, g) > 0) {
		groups = append(groups, map[string]any{"id": g.ID, "web_url": s.webURL("groups/" + g.FullPath), "name": groupName(g)})
	}
	m["groups"] = groups
	return m
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// managerEntity is Entities::Ci::RunnerManager; status is
// Ci::HasRunnerStatus#status: stale when created_at and contacted_at are
// both at least Ci::RunnerManager::STALE_TIMEOUT (7 days) old, else
// never_contacted, online (contact within 2 hours) or offline.
// job_execution_status only where Profile.JobExecutionStatus.
func (s *Sim) managerEntity(r *Runner, m Manager, now time.Time) map[string]any {
	contacted := seen(m.ContactedAt, m.contactedDB, now)
	status := "offline"
	switch {
	case !later(m.CreatedAt, contacted).After(now.Add(-managerStaleAfter)):
		status = "stale"
	case contacted.IsZero():
		status = "never_contacted"
	case online(contacted, now):
		status = "online"
	}
	e := map[string]any{
		"id":           m.ID,
		"system_id":    m.SystemID,
		"version":      nullable(m.Version),
		"revision":     nullable(m.Revision),
		"platform":     nullable(m.Platform),
		"architecture": nullable(m.Architecture),
		"created_at":   timeJSON(m.CreatedAt),
		"contacted_at": timeJSON(contacted),
		"ip_address":   nullable(m.IPAddress),
		"status":       status,
	}
	if s.profile.JobExecutionStatus {
		e["job_execution_status"] = s.jobExecutionStatus(r.ID, m.SystemID)
	}
	return e
}

// basicProjectDetails is Entities::BasicProjectDetails
// (lib/api/entities/basic_project_details.rb) of a project the caller may
// see: Entities::ProjectIdentity's keys, default_branch, readme_url and
// forks_count when the caller may :read_code (Reporter and up),
// repository_storage for administrators (:change_repository_storage),
// namespace as Entities::NamespaceBasic. license and custom_attributes
// are only sent on request, which runner details never make. The
// simulator's projects have empty repositories: no README, no topics,
// no stars, no forks.
func (s *Sim) basicProjectDetails(p *Project, a actor) map[string]any {
	name := p.Name
	if name == "" {
		name = lastSegment(p.FullPath)
	}
	withNamespace := name
	var ns any
	if g := s.groupByPath(p.parentPath()); g != nil {
		withNamespace = s.groupFullName(g) + " / " + name
		var parent any
		if pg := s.groupByPath(g.parentPath()); pg != nil {
			parent = pg.ID
		}
		ns = map[string]any{"id": g.ID, "name": groupName(g), "path": lastSegment(g.FullPath), "kind": "group",
			"full_path": g.FullPath, "parent_id": parent, "avatar_url": nil, "web_url": s.webURL("groups/" + g.FullPath)}
	}
	e := map[string]any{
		"id": p.ID, "description": nil, "name": name, "name_with_namespace": withNamespace,
		"path": lastSegment(p.FullPath), "path_with_namespace": p.FullPath, "created_at": timeJSON(p.createdAt),
		"tag_list": []string{}, "topics": []string{},
		"ssh_url_to_repo":  "git@gitlab.example.com:" + p.FullPath + ".git",
		"http_url_to_repo": s.webURL(p.FullPath + ".git"),
		"web_url":          s.webURL(p.FullPath),
		"avatar_url":       nil, "star_count": 0, "last_activity_at": timeJSON(p.createdAt),
		"namespace": ns,
	}
	if a.admin || s.projectAccess(a.user, p) >= Reporter {
		e["default_branch"] = "main"
		e["readme_url"] = nil
		e["forks_count"] = 0
	}
	if a.admin {
		e["repository_storage"] = "default"
	}
	return e
}

// groupFullName is Namespace#full_name (human_name): the names of the
// group's ancestors and its own, joined by " / ".
func (s *Sim) groupFullName(g *Group) string {
	var names []string
	for ; g != nil; g = s.groupByPath(g.parentPath()) {
		names = append([]string{groupName(g)}, names...)
	}
	return strings.Join(names, " / ")
}

// userBasicEntity is Entities::UserBasic as GitLab 18 sends it (a runner's
// created_by): UserSafe's id, username, public_email and name, then state,
// locked, avatar_url and web_url.
func (s *Sim) userBasicEntity(u *User) map[string]any {
	name := u.Name
	if name == "" {
		name = u.Username
	}
	return map[string]any{"id": u.ID, "username": u.Username, "public_email": nil, "name": name,
		"state": "active", "locked": false, "avatar_url": nil, "web_url": s.webURL(u.Username)}
}

// patEntity is Entities::PersonalAccessTokenWithLastUsedIps; expires_at is
// a date, not a time (lib/api/entities/personal_access_token.rb).
func patEntity(p PAT, userID int64, now time.Time) map[string]any {
	var expires any
	if !p.ExpiresAt.IsZero() {
		expires = p.ExpiresAt.UTC().Format("2006-01-02")
	}
	scopes := append([]string{}, p.Scopes...)
	return map[string]any{
		"id":            p.id,
		"name":          p.Name,
		"revoked":       p.Revoked,
		"created_at":    timeJSON(p.createdAt),
		"description":   nil,
		"scopes":        scopes,
		"user_id":       userID,
		"last_used_at":  timeJSON(now),
		"active":        !p.Revoked && !patExpired(p, now),
		"expires_at":    expires,
		"last_used_ips": []string{"127.0.0.1"},
	}
}

// groupEntity is the part of Entities::Group a client needs to resolve a path.
func (s *Sim) groupEntity(g *Group) map[string]any {
	var parent any
	if p := s.groupByPath(g.parentPath()); p != nil {
		parent = p.ID
	}
	return map[string]any{
		"id": g.ID, "name": groupName(g), "path": lastSegment(g.FullPath), "full_path": g.FullPath,
		"full_name": strings.ReplaceAll(g.FullPath, "/", " / "), "parent_id": parent,
		"visibility": "private", "web_url": s.webURL("groups/" + g.FullPath),
	}
}

// projectEntity is the part of Entities::Project a client needs. Projects
// have path_with_namespace, not full_path; the namespace carries full_path.
func (s *Sim) projectEntity(p *Project) map[string]any {
	var ns any
	if g := s.groupByPath(p.parentPath()); g != nil {
		ns = map[string]any{"id": g.ID, "name": groupName(g), "path": lastSegment(g.FullPath), "kind": "group", "full_path": g.FullPath}
	}
	name := p.Name
	if name == "" {
		name = lastSegment(p.FullPath)
	}
	return map[string]any{
		"id": p.ID, "name": name, "path": lastSegment(p.FullPath), "path_with_namespace": p.FullPath,
		"namespace": ns, "visibility": "private", "web_url": s.webURL(p.FullPath),
	}
}

func groupName(g *Group) string {
	if g.Name != "" {
		return g.Name
	}
	return lastSegment(g.FullPath)
}

func (s *Sim) webURL(p string) string { return "http://gitlab.example.com/" + p }

// userEntity is Entities::UserPublic, or Entities::UserWithAdmin (adds
// is_admin) for administrators (lib/api/users.rb `get :user`).
func userEntity(u *User, asAdmin bool) map[string]any {
	name := u.Name
	if name == "" {
		name = u.Username
	}
	m := map[string]any{"id": u.ID, "username": u.Username, "name": name, "state": "active", "locked": false,
		"web_url": "http://gitlab.example.com/" + u.Username}
	if asAdmin {
		m["is_admin"] = u.Admin
	}
	return m
}

package gitlabsim

import (
	"net"
	"net/http"
	"time"
)

// Endpoints authenticated by a runner's own token or a registration token
// (lib/api/ci/runner.rb with the helpers of lib/api/ci/helpers/runner.rb).
// Every one of them first passes `before { check_if_backoff_required! }`,
// which dispatch applies.

// migrationBackoffMessage is check_if_backoff_required!'s 429 message
// (too_many_requests! with retry_after: 1.minute).
const migrationBackoffMessage = "Executing database migrations. Please retry later."

// backoff answers 429 while the migration backoff is on.
func (s *Sim) backoff(c *call) bool {
	s.mu.Lock()
	on := s.opts.MigrationBackoff
	s.mu.Unlock()
	if on {
		c.w.Header().Set("Retry-After", "60")
		apiError(c.w, http.StatusTooManyRequests, migrationBackoffMessage)
	}
	return on
}

// runnerFromToken is authenticate_runner!: 400 when the token parameter is
// missing (Grape `requires :token`), 403 when no runner has it.
// It returns with s.mu held when it found the runner.
func (s *Sim) runnerFromToken(c *call) (*Runner, bool) {
	token, ok := c.params["token"].(string)
	if !ok {
		paramError(c.w, "token is missing")
		return nil, false
	}
	s.mu.Lock()
	r := s.byToken(token)
	if r == nil {
		s.mu.Unlock()
		forbidden(c.w, "")
		return nil, false
	}
	return r, true
}

// heartbeat is what authenticate_runner! records (lib/api/ci/helpers/runner.rb):
// the runner's contact (Ci::Runner#heartbeat) when contacted, and, with
// withManager, the manager of the request's system_id ("<legacy>" without
// one; Ci::Runner#ensure_manager) filled with the runner's info (version,
// revision, platform, architecture) and address, and contacted when
// contacted (Ci::RunnerManager#heartbeat). Contacts go through touch
// (clock.go). The runner's own info and address are recorded too, whether
// contacted or not: 16.x's `current_runner.heartbeat(runner_details,
// update_contacted_at:)` merges them into the runner's cache on every
// authenticate_runner!; later releases no longer do (the values then
// simply stay unread: Profile.RunnerIPAddress, Profile.DetailsInfoFromManager).
// Callers hold s.mu.
func (s *Sim) heartbeat(c *call, r *Runner, withManager, contacted bool) {
	now := s.now()
	setInfo(c, &r.Version, &r.Revision, &r.Platform, &r.Architecture, &r.IPAddress)
	if contacted {
		s.touch(&r.ContactedAt, &r.contactedDB, now)
	}
	if !withManager {
		return
	}
	sid, _ := c.params["system_id"].(string)
	sid = s.ensureManager(r, sid)
	m := r.Managers[sid]
	setInfo(c, &m.Version, &m.Revision, &m.Platform, &m.Architecture, &m.IPAddress)
	if contacted {
		s.touch(&m.ContactedAt, &m.contactedDB, now)
	}
	r.Managers[sid] = m
}

// setInfo copies the request's runner details (get_runner_details_from_request:
// info's version, revision, platform and architecture, and the address the
// request came from) into the fields given.
func setInfo(c *call, version, revision, platform, architecture, ip *string) {
	if info, ok := c.params["info"].(map[string]any); ok {
		for key, dst := range map[string]*string{"version": version, "revision": revision, "platform": platform, "architecture": architecture} {
			if v, ok := info[key].(string); ok {
				*dst = v
			}
		}
	}
	if host, _, err := net.SplitHostPort(c.r.RemoteAddr); err == nil {
		*ip = host
	}
}

// orphanedMessage is the reason GitLab gives for a runner without an owner.
const orphanedMessage = "Runner is orphaned"

// refuseOrphan answers for a group or project runner that lost its owner,
// at the start of every runner-token endpoint, when the release checks
// there (Profile.OrphanedRunner OrphanForbidden: authenticate_runner!'s
// forbidden!('Runner is orphaned')). Callers hold s.mu.
func (s *Sim) refuseOrphan(c *call, r *Runner) bool {
	if orphaned(r) && s.profile.OrphanedRunner == OrphanForbidden {
		forbidden(c.w, orphanedMessage)
		return true
	}
	return false
}

func orphaned(r *Runner) bool { return r.Orphaned && r.RunnerType != "instance_type" }

// unknownOwner tells whether current_runner_manager raises
// UnknownRunnerOwnerError for the runner (Profile.OrphanedRunner
// OrphanUnprocessable).
func (s *Sim) unknownOwner(r *Runner) bool {
	return orphaned(r) && s.profile.OrphanedRunner == OrphanUnprocessable
}

// register is the legacy registration (POST /runners). The registration
// token decides the runner type (app/services/ci/runners/register_runner_service.rb
// `attrs_from_token`): the instance token makes an instance runner, a
// project's a project runner, a group's a group runner. Each needs
// registration tokens allowed (`registration_token_allowed?`): by the
// instance setting allow_runner_registration_token, and for group and
// project tokens by their top-level group's too. Not allowed: 410 "410 Gone
// - runner registration disallowed", also for any unknown non-empty token
// while the instance setting is off; an unknown token otherwise is 403
// "403 Forbidden - invalid token supplied".
func (s *Sim) register(c *call) {
	token, ok := c.params["token"].(string)
	if !ok {
		paramError(c.w, "token is missing")
		return
	}
	if msg := exclusive(c.params, "active", "paused"); msg != "" {
		paramError(c.w, msg)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := &Runner{AccessLevel: "not_protected", Legacy: true, RunUntagged: true}
	// `attributes_for_keys(%w[name], params['info'])`: the runner's name.
	if info, ok := c.params["info"].(map[string]any); ok {
		r.Name, _ = info["name"].(string)
	}
	allowed := s.regTokens
	switch {
	case token != "" && token == s.opts.RegistrationToken:
		r.RunnerType = "instance_type"
	case token != "" && s.projectByToken(token) != nil:
		p := s.projectByToken(token)
		r.RunnerType, r.ProjectID = "project_type", p.ID
		allowed = allowed && s.rootAllowsRegistrationTokens(s.groupByPath(p.parentPath()))
	case token != "" && s.groupByToken(token) != nil:
		g := s.groupByToken(token)
		r.RunnerType, r.GroupID = "group_type", g.ID
		allowed = allowed && s.rootAllowsRegistrationTokens(g)
	case token != "" && !s.regTokens:
		allowed = false
	default:
		forbidden(c.w, "invalid token supplied")
		return
	}
	if !allowed {
		apiError(c.w, http.StatusGone, "410 Gone - runner registration disallowed")
		return
	}
	if perr, errs := applySettings(r, c.params, true); perr != "" {
		paramError(c.w, string(perr))
		return
	} else if len(errs) > 0 {
		validationError(c.w, errs)
		return
	}
	s.insert(r)
	writeJSON(c.w, http.StatusCreated, registrationDetails(r))
}

// rootAllowsRegistrationTokens is the top-level group's
// allow_runner_registration_token (NamespaceSetting#allow_runner_registration_token?).
func (s *Sim) rootAllowsRegistrationTokens(g *Group) bool {
	for g != nil {
		if parent := s.groupByPath(g.parentPath()); parent != nil {
			g = parent
			continue
		}
		return !g.RegistrationTokensDisallowed
	}
	return true
}

func (s *Sim) groupByToken(token string) *Group {
	for _, g := range s.groups {
		if g.RegistrationToken != "" && g.RegistrationToken == token {
			return g
		}
	}
	return nil
}

func (s *Sim) projectByToken(token string) *Project {
	for _, p := range s.projects {
		if p.RegistrationToken != "" && p.RegistrationToken == token {
			return p
		}
	}
	return nil
}

// verify checks a runner token (POST /runners/verify) and answers
// RunnerRegistrationDetails. It records a runner manager for the system_id
// (authenticate_runner! ensures one), but, unless Profile.VerifyContacts,
// a runner created in the UI (glrt- token) is contacted neither as runner
// (MR 113753) nor as manager (MR 133858) until it polls for jobs:
// `authenticate_runner!(update_contacted_at: !registering_created_runner)`.
// An orphaned runner gets Profile.OrphanedRunner's answer.
func (s *Sim) verify(c *call) {
	r, ok := s.runnerFromToken(c)
	if !ok {
		return
	}
	defer s.mu.Unlock()
	if s.refuseOrphan(c, r) {
		return
	}
	contacted := !createdRunnerToken(r.Token) || s.profile.VerifyContacts
	if s.unknownOwner(r) {
		// current_runner.heartbeat runs before current_runner_manager raises.
		s.heartbeat(c, r, false, contacted)
		apiError(c.w, http.StatusUnprocessableEntity, orphanedMessage)
		return
	}
	s.heartbeat(c, r, true, contacted)
	writeJSON(c.w, http.StatusOK, registrationDetails(r))
}

// rotate is gitlab-runner's own token rotation
// (POST /runners/reset_authentication_token).
func (s *Sim) rotate(c *call) {
	r, ok := s.runnerFromToken(c)
	if !ok {
		return
	}
	defer s.mu.Unlock()
	if s.refuseOrphan(c, r) {
		return
	}
	if s.unknownOwner(r) {
		// Only verify and jobs/request rescue UnknownRunnerOwnerError.
		apiError(c.w, http.StatusInternalServerError, "500 Internal Server Error")
		return
	}
	s.heartbeat(c, r, true, true)
	s.resetToken(r)
	writeJSON(c.w, http.StatusCreated, tokenResult(r))
}

// deleteByToken unregisters a runner with its own token (DELETE /runners):
// no manager is recorded and nothing contacted
// (`authenticate_runner!(ensure_runner_manager: false, update_contacted_at: false)`).
func (s *Sim) deleteByToken(c *call) {
	r, ok := s.runnerFromToken(c)
	if !ok {
		return
	}
	defer s.mu.Unlock()
	if s.refuseOrphan(c, r) {
		return
	}
	delete(s.runners, r.ID)
	c.w.WriteHeader(http.StatusNoContent)
}

// deleteManager is DELETE /runners/managers (MR 118212, 16.0): gitlab-runner's
// unregister of one host (token + system_id) from a runner shared by
// several hosts. `authenticate_runner!(ensure_runner_manager: false)`
// contacts the runner, not a manager. A system id the runner has no
// manager for is `not_found!('Runner manager not found')`, which GitLab
// words "404 Runner manager not found Not Found". When the runner's last
// manager goes, GitLab clears the runner's contacted_at, cache and column
// (Ci::Runners::UnregisterRunnerManagerService: `runner.clear_heartbeat if
// runner.runner_managers.empty?`, MR 140572, every supported release): the
// runner then reads as never contacted.
func (s *Sim) deleteManager(c *call) {
	if _, ok := c.params["token"].(string); ok {
		if _, ok := c.params["system_id"].(string); !ok {
			paramError(c.w, "system_id is missing")
			return
		}
	}
	r, ok := s.runnerFromToken(c)
	if !ok {
		return
	}
	defer s.mu.Unlock()
	if s.refuseOrphan(c, r) {
		return
	}
	s.heartbeat(c, r, false, true)
	sid := c.params["system_id"].(string)
	if _, ok := r.Managers[sid]; !ok {
		notFound(c.w, "Runner manager not found")
		return
	}
	delete(r.Managers, sid)
	if len(r.Managers) == 0 {
		// Ci::Runner#clear_heartbeat: merge_cache_attributes and
		// update_columns of contacted_at: nil, at once.
		r.ContactedAt, r.contactedDB = time.Time{}, time.Time{}
	}
	c.w.WriteHeader(http.StatusNoContent)
}

// requestJob is gitlab-runner's job poll (POST /jobs/request): a contact of
// the runner and of its manager. A paused runner, or one that sends the
// queue value it was last given (last_update) while its queue has not
// ticked since (Ci::Runner#runner_queue_value_latest?), gets 204 at once;
// otherwise the oldest job it may take is handed out with 201 (jobs_api.go),
// or 204 when there is none. Every 204 carries the X-GitLab-Last-Update
// header gitlab-runner sends back as last_update (network/gitlab.go
// RequestJob treats 204 as "nothing to do").
func (s *Sim) requestJob(c *call) {
	r, ok := s.runnerFromToken(c)
	if !ok {
		return
	}
	defer s.mu.Unlock()
	if s.refuseOrphan(c, r) {
		return
	}
	if s.unknownOwner(r) {
		s.heartbeat(c, r, false, true)
		apiError(c.w, http.StatusUnprocessableEntity, orphanedMessage)
		return
	}
	s.heartbeat(c, r, true, true)
	if r.queueValue == "" {
		r.queueValue = newQueueValue()
	}
	last, _ := c.params["last_update"].(string)
	if !r.Paused && last != r.queueValue && s.takeJob(c, r) {
		return
	}
	c.w.Header().Set("X-GitLab-Last-Update", r.queueValue)
	c.w.WriteHeader(http.StatusNoContent)
}

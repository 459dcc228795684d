package gitlabsim

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/http"
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

// heartbeat records a runner's contact. ensureManager is Ci::Runner#ensure_manager
// for the request's system_id ("<legacy>" without one), filled with the
// runner's info (version, revision, platform, architecture) and address.
// Callers hold s.mu.
func (s *Sim) heartbeat(c *call, r *Runner, ensureManager, contacted bool) {
	now := s.now()
	if contacted {
		r.ContactedAt = now
	}
	if !ensureManager {
		return
	}
	sid, _ := c.params["system_id"].(string)
	s.ensureManager(r, sid)
	if sid == "" {
		sid = legacySystemID
	}
	m := r.Managers[sid]
	if info, ok := c.params["info"].(map[string]any); ok {
		for key, dst := range map[string]*string{"version": &m.Version, "revision": &m.Revision, "platform": &m.Platform, "architecture": &m.Architecture} {
			if v, ok := info[key].(string); ok {
				*dst = v
			}
		}
	}
	if host, _, err := net.SplitHostPort(c.r.RemoteAddr); err == nil {
		m.IPAddress = host
	}
	if contacted {
		m.ContactedAt = now
	}
	r.Managers[sid] = m
}

// register is the legacy registration (POST /runners). The registration
// token decides the runner type (app/services/ci/runners/register_runner_service.rb
// `attrs_from_token`): the instance token makes an instance runner, a
// project's a project runner, a group's a group runner. With registration
// tokens switched off any token gets 410 "410 Gone - runner registration
// disallowed"; an unknown token 403 "403 Forbidden - invalid token supplied".
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
	switch {
	case token != "" && token == s.opts.RegistrationToken:
		r.RunnerType = "instance_type"
	case token != "" && s.projectByToken(token) != nil:
		r.RunnerType, r.ProjectID = "project_type", s.projectByToken(token).ID
	case token != "" && s.groupByToken(token) != nil:
		r.RunnerType, r.GroupID = "group_type", s.groupByToken(token).ID
	case token != "" && s.opts.RegistrationDisabled:
		apiError(c.w, http.StatusGone, "410 Gone - runner registration disallowed")
		return
	default:
		forbidden(c.w, "invalid token supplied")
		return
	}
	if s.opts.RegistrationDisabled {
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
// (authenticate_runner! ensures one), but a runner created in the UI
// (glrt- token) is not "contacted" until it polls for jobs. An orphaned
// runner gets 422 "Runner is orphaned" (UnknownRunnerOwnerError, with the
// reject_orphaned_runners flag at its default, off).
func (s *Sim) verify(c *call) {
	r, ok := s.runnerFromToken(c)
	if !ok {
		return
	}
	defer s.mu.Unlock()
	if r.Orphaned && r.RunnerType != "instance_type" {
		apiError(c.w, http.StatusUnprocessableEntity, "Runner is orphaned")
		return
	}
	s.heartbeat(c, r, true, !createdRunnerToken(r.Token))
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
	if r.Orphaned && r.RunnerType != "instance_type" {
		// Only verify and jobs/request rescue UnknownRunnerOwnerError.
		apiError(c.w, http.StatusInternalServerError, "500 Internal Server Error")
		return
	}
	s.heartbeat(c, r, true, true)
	s.resetToken(r)
	writeJSON(c.w, http.StatusCreated, tokenResult(r))
}

// deleteByToken unregisters a runner with its own token (DELETE /runners):
// no manager is recorded (ensure_runner_manager: false).
func (s *Sim) deleteByToken(c *call) {
	r, ok := s.runnerFromToken(c)
	if !ok {
		return
	}
	defer s.mu.Unlock()
	delete(s.runners, r.ID)
	c.w.WriteHeader(http.StatusNoContent)
}

// deleteManager is DELETE /runners/managers (MR 118212, 16.0): gitlab-runner's
// unregister of one host (token + system_id) from a runner shared by
// several hosts. `authenticate_runner!(ensure_runner_manager: false)`
// contacts the runner, not a manager. A system id the runner has no
// manager for is `not_found!('Runner manager not found')`, which GitLab
// words "404 Runner manager not found Not Found".
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
	s.heartbeat(c, r, false, true)
	sid := c.params["system_id"].(string)
	if _, ok := r.Managers[sid]; !ok {
		notFound(c.w, "Runner manager not found")
		return
	}
	delete(r.Managers, sid)
	c.w.WriteHeader(http.StatusNoContent)
}

// requestJob is gitlab-runner's job poll (POST /jobs/request). The
// simulator has no jobs: a valid runner always gets 204 and the
// X-GitLab-Last-Update header gitlab-runner sends back as last_update
// (network/gitlab.go RequestJob treats 204 as "nothing to do").
func (s *Sim) requestJob(c *call) {
	r, ok := s.runnerFromToken(c)
	if !ok {
		return
	}
	defer s.mu.Unlock()
	if r.Orphaned && r.RunnerType != "instance_type" {
		apiError(c.w, http.StatusUnprocessableEntity, "Runner is orphaned")
		return
	}
	s.heartbeat(c, r, true, true)
	if r.queueValue == "" {
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		r.queueValue = hex.EncodeToString(b)
	}
	c.w.Header().Set("X-GitLab-Last-Update", r.queueValue)
	c.w.WriteHeader(http.StatusNoContent)
}

package gitlabsim

import (
	"net/http"
	"slices"
	"sort"
	"strconv"
	"time"
)

// Endpoints authenticated by a personal access token: runner creation
// (lib/api/user_runners.rb) and the runners API (lib/api/ci/runners.rb).
// Grape runs, in order: authentication and scopes (before filter), parameter
// validation (400 {"error":...}), then the endpoint, which finds the runner
// (404) before it checks permissions (403) — so a runner the user may not
// touch is 403, never 404.

// runnerID parses the :id of /runners/:id (Grape `requires :id, type: Integer`).
func runnerID(c *call) (int64, bool) {
	id, err := strconv.ParseInt(c.seg, 10, 64)
	if err != nil {
		paramError(c.w, "id is invalid")
		return 0, false
	}
	return id, true
}

// findRunner is get_runner: Ci::Runner.find, whose RecordNotFound becomes
// {"message":"404 Not found"} (lib/api/api.rb), not not_found!('Runner')
// (Profile.RunnerNotFound). It returns with s.mu held when it found the runner.
func (s *Sim) findRunner(c *call) (*Runner, bool) {
	id, ok := runnerID(c)
	if !ok {
		return nil, false
	}
	s.mu.Lock()
	r, ok := s.runners[id]
	if !ok {
		msg := s.profile.RunnerNotFound
		s.mu.Unlock()
		apiError(c.w, http.StatusNotFound, msg)
		return nil, false
	}
	return r, true
}

// createUserRunner is POST /user/runners (runner creation workflow).
func (s *Sim) createUserRunner(c *call) {
	p := c.params
	rt, ok := p["runner_type"].(string)
	switch {
	case !ok:
		paramError(c.w, "runner_type is missing")
		return
	case rt != "instance_type" && rt != "group_type" && rt != "project_type":
		paramError(c.w, "runner_type does not have a valid value")
		return
	}
	var scopeID int64
	if key := map[string]string{"group_type": "group_id", "project_type": "project_id"}[rt]; key != "" {
		if _, present := p[key]; !present {
			paramError(c.w, key+" is missing")
			return
		}
		if scopeID, ok = intParam(p, key); !ok {
			paramError(c.w, key+" is invalid")
			return
		}
	}
	// Defaults of lib/api/user_runners.rb: locked false, run_untagged true.
	r := &Runner{RunnerType: rt, AccessLevel: "not_protected", RunUntagged: true}
	perr, errs := applySettings(r, p, true)
	if perr != "" {
		paramError(c.w, string(perr))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// Group.find_by_id / Project.find_by_id: no visibility check here, so an
	// existing group the user cannot see is 403, a missing one 400.
	var g *Group
	var pj *Project
	switch rt {
	case "group_type":
		if g = s.groupByID(scopeID); g == nil {
			badRequest(c.w, "Missing/invalid group")
			return
		}
		r.GroupID = g.ID
	case "project_type":
		if pj = s.projects[scopeID]; pj == nil {
			badRequest(c.w, "Missing/invalid project")
			return
		}
		r.ProjectID = pj.ID
	}
	if !s.canCreateRunner(c.actor, rt, g, pj) {
		forbidden(c.w, "Insufficient permissions")
		return
	}
	if len(errs) > 0 {
		badRequest(c.w, errs.sentence())
		return
	}
	r.CreatorID = c.actor.user.ID
	s.insert(r)
	writeJSON(c.w, http.StatusCreated, registrationDetails(r))
}

// getRunner is GET /runners/:id (authenticate_show_runner!).
func (s *Sim) getRunner(c *call) {
	r, ok := s.findRunner(c)
	if !ok {
		return
	}
	defer s.mu.Unlock()
	if !c.actor.admin && !s.canReadRunner(c.actor, r) {
		forbidden(c.w, "No access granted")
		return
	}
	writeJSON(c.w, http.StatusOK, s.runnerDetailsEntity(r, c.actor, s.now()))
}

// listManagers is GET /runners/:id/managers (17.1, MR 153715): the runner
// managers GitLab recorded, one per system_id that verified or polled with
// the token, as Entities::Ci::RunnerManager (not paginated). Same
// permission as GET /runners/:id; read_api or manage_runner suffice.
func (s *Sim) listManagers(c *call) {
	r, ok := s.findRunner(c)
	if !ok {
		return
	}
	defer s.mu.Unlock()
	if !c.actor.admin && !s.canReadRunner(c.actor, r) {
		forbidden(c.w, "No access granted")
		return
	}
	var ms []Manager
	for _, m := range r.Managers {
		ms = append(ms, m)
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].ID < ms[j].ID })
	now := s.now()
	out := []map[string]any{}
	for _, m := range ms {
		out = append(out, s.managerEntity(r, m, now))
	}
	writeJSON(c.w, http.StatusOK, out)
}

// updateRunner is PUT /runners/:id: Grape checks at_least_one_of and
// mutually_exclusive :active, :paused (400 {"error":...}) before it looks
// for the runner; the model's validations answer 400 {"message":{attr:[...]}}.
func (s *Sim) updateRunner(c *call) {
	if _, ok := runnerID(c); !ok {
		return
	}
	if msg := atLeastOne(c.params, settingKeys...); msg != "" {
		paramError(c.w, msg)
		return
	}
	if msg := exclusive(c.params, "active", "paused"); msg != "" {
		paramError(c.w, msg)
		return
	}
	r, ok := s.findRunner(c)
	if !ok {
		return
	}
	defer s.mu.Unlock()
	if !s.canUpdateRunner(c.actor, r) {
		forbidden(c.w, "No access granted")
		return
	}
	edited := r.clone()
	perr, errs := applySettings(&edited, c.params, false)
	switch {
	case perr != "":
		paramError(c.w, string(perr))
		return
	case len(errs) > 0:
		validationError(c.w, errs)
		return
	}
	edited.queueValue = r.queueValue
	*r = edited
	writeJSON(c.w, http.StatusOK, s.runnerDetailsEntity(r, c.actor, s.now()))
}

// deleteByID is DELETE /runners/:id (authenticate_delete_runner!, then
// Ci::Runners::UnregisterRunnerService: the runner goes for every project
// it is assigned to).
func (s *Sim) deleteByID(c *call) {
	r, ok := s.findRunner(c)
	if !ok {
		return
	}
	defer s.mu.Unlock()
	if reason := s.deleteRefusal(c.actor, r); reason != "" {
		forbidden(c.w, reason)
		return
	}
	delete(s.runners, r.ID)
	c.w.WriteHeader(http.StatusNoContent)
}

// resetByID is POST /runners/:id/reset_authentication_token
// (authenticate_update_runner!).
func (s *Sim) resetByID(c *call) {
	r, ok := s.findRunner(c)
	if !ok {
		return
	}
	defer s.mu.Unlock()
	if !s.canUpdateRunner(c.actor, r) {
		forbidden(c.w, "No access granted")
		return
	}
	s.resetToken(r)
	writeJSON(c.w, http.StatusCreated, tokenResult(r))
}

// listOwned is GET /runners: User#ci_owned_runners, never instance runners.
func (s *Sim) listOwned(c *call) {
	s.list(c, func(r *Runner) bool { return s.ownedRunner(c.actor, r) })
}

// listAll is GET /runners/all: `authenticated_as_admin!` (403 "403 Forbidden").
func (s *Sim) listAll(c *call) {
	if !c.actor.admin {
		forbidden(c.w, "")
		return
	}
	s.list(c, func(*Runner) bool { return true })
}

// listGroupRunners is GET /groups/:id/runners: Ci::Runner.group_or_instance_wide,
// the group runners of the group and its ancestors plus instance runners.
// The group must be visible (else 404 "404 Group Not Found") and the user
// allowed :read_group_runners (else 403 "403 Forbidden"), which
// group_policy.rb gives maintainers and owners since 16.4 (MR 128607,
// flag removed by MR 130500): every supported release.
func (s *Sim) listGroupRunners(c *call) {
	s.mu.Lock()
	g := s.findGroup(c.actor, c.seg)
	if g == nil {
		s.mu.Unlock()
		notFound(c.w, "Group")
		return
	}
	if !c.actor.admin && s.groupAccess(c.actor.user, g) < Maintainer {
		s.mu.Unlock()
		forbidden(c.w, "")
		return
	}
	ids := s.groupAndAncestors(g)
	s.mu.Unlock()
	s.list(c, func(r *Runner) bool {
		return r.RunnerType == "instance_type" || (r.RunnerType == "group_type" && ids[r.GroupID])
	})
}

// listProjectRunners is GET /projects/:id/runners: Ci::Runner.owned_or_instance_wide,
// every project runner assigned to the project (`belonging_to_project`,
// ci_runner_projects: also runners another project owns), the runners of
// the project's group and its ancestors, and instance runners (group and
// shared runners are enabled on every simulated project). Needs
// :read_project_runners, which project_policy.rb gives maintainers.
func (s *Sim) listProjectRunners(c *call) {
	s.mu.Lock()
	p, ok := s.projectForRunners(c)
	if !ok {
		s.mu.Unlock()
		return
	}
	ids := s.groupAndAncestors(s.groupByPath(p.parentPath()))
	s.mu.Unlock()
	s.list(c, func(r *Runner) bool {
		switch r.RunnerType {
		case "project_type":
			return slices.Contains(r.projectIDs(), p.ID)
		case "group_type":
			return ids[r.GroupID]
		}
		return true
	})
}

// projectForRunners is the before filter of lib/api/ci/runners.rb's
// projects resource: find_project! (404 "404 Project Not Found") and
// `authorize! :read_project_runners` (maintainers; 403 "403 Forbidden").
// Callers hold s.mu.
func (s *Sim) projectForRunners(c *call) (*Project, bool) {
	p := s.findProject(c.actor, c.seg)
	if p == nil {
		notFound(c.w, "Project")
		return nil, false
	}
	if !c.actor.admin && s.projectAccess(c.actor.user, p) < Maintainer {
		forbidden(c.w, "")
		return nil, false
	}
	return p, true
}

// assignRunner is POST /projects/:id/runners (lib/api/ci/runners.rb,
// "Assign a runner to project"): after the resource's before filter,
// Grape's `requires :runner_id, type: Integer`, `authorize! :create_runner,
// user_project` (maintainers, as :read_project_runners), get_runner (404
// "404 Not found"), then authenticate_enable_runner!: a group runner is 403
// "Runner is a group runner"; administrators pass; otherwise a locked
// runner is 403 "Runner is locked" and one the user may not assign 403 "No
// access granted". Ci::Runners::AssignRunnerService then adds the
// ci_runner_projects row (Ci::Runner#assign_to); its errors are
// render_api_error_with_reason!(:bad_request, message, reason). The answer
// is 201 with the runner as Entities::Ci::Runner.
func (s *Sim) assignRunner(c *call) {
	s.mu.Lock()
	p, ok := s.projectForRunners(c)
	if !ok {
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	if _, present := c.params["runner_id"]; !present {
		paramError(c.w, "runner_id is missing")
		return
	}
	id, ok := intParam(c.params, "runner_id")
	if !ok {
		paramError(c.w, "runner_id is invalid")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.runners[id]
	if !ok {
		apiError(c.w, http.StatusNotFound, s.profile.RunnerNotFound)
		return
	}
	switch {
	case r.RunnerType == "group_type":
		forbidden(c.w, "Runner is a group runner")
		return
	case c.actor.admin:
	case r.Locked:
		forbidden(c.w, "Runner is locked")
		return
	case !s.assignable(c.actor, r):
		forbidden(c.w, "No access granted")
		return
	}
	switch {
	case r.RunnerType == "instance_type":
		// Ci::Runner#assign_to raises ArgumentError ("Transitioning an
		// instance runner to a project runner is not supported"), which
		// nothing rescues.
		apiError(c.w, http.StatusInternalServerError, "500 Internal Server Error")
		return
	case slices.Contains(r.projectIDs(), p.ID):
		// Ci::RunnerProject's uniqueness validation fails inside assign_to,
		// which adds the message to errors[:assign_to] (wording inferred,
		// not run).
		apiError(c.w, http.StatusBadRequest, "Assign to Validation failed: Runner has already been taken - runner_error")
		return
	}
	r.AssignedProjectIDs = append(r.AssignedProjectIDs, p.ID)
	writeJSON(c.w, http.StatusCreated, s.runnerEntity(r, s.now()))
}

var (
	runnerTypes    = []string{"instance_type", "group_type", "project_type"}
	runnerStatuses = []string{"active", "paused", "online", "offline", "never_contacted", "stale"}
)

// list answers a runner list with the :filter_params of lib/api/ci/runners.rb
// (type, status, paused, tag_list — every tag must match, exact case) and
// offset pagination.
func (s *Sim) list(c *call, visible func(*Runner) bool) {
	q := c.r.URL.Query()
	typ, status := q.Get("type"), q.Get("status")
	if typ != "" && !slices.Contains(runnerTypes, typ) {
		paramError(c.w, "type does not have a valid value")
		return
	}
	if status != "" && !slices.Contains(runnerStatuses, status) {
		paramError(c.w, "status does not have a valid value")
		return
	}
	var paused *bool
	if v, ok := q["paused"]; ok {
		b, ok := boolParam(v[len(v)-1])
		if !ok {
			paramError(c.w, "paused is invalid")
			return
		}
		paused = &b
	}
	var tags []string
	if v, ok := q["tag_list"]; ok {
		tags, _ = coerceTags(anySlice(v))
	}
	pg, ok := readPage(c)
	if !ok {
		return
	}

	s.mu.Lock()
	now := s.now()
	var matched []*Runner
	for _, r := range s.runners {
		switch {
		case !visible(r), typ != "" && r.RunnerType != typ, paused != nil && r.Paused != *paused,
			status != "" && !s.hasStatus(r, status, now), !hasAllTags(r.TagList, tags):
			continue
		}
		matched = append(matched, r)
	}
	sort.Slice(matched, func(i, j int) bool { return matched[i].ID < matched[j].ID })
	from, to := pg.window(len(matched))
	items := make([]map[string]any, 0, to-from)
	for _, r := range matched[from:to] {
		items = append(items, s.runnerEntity(r, now))
	}
	s.mu.Unlock()

	pg.headers(c, len(matched))
	writeJSON(c.w, http.StatusOK, items)
}

func anySlice(v []string) []any {
	out := make([]any, len(v))
	for i, s := range v {
		out[i] = s
	}
	return out
}

// hasStatus is the status filter: SQL scopes on the contacted_at column
// (Ci::HasRunnerStatus online/offline/never_contacted, Ci::Runner.stale),
// not the cached value the entity shows.
func (s *Sim) hasStatus(r *Runner, status string, now time.Time) bool {
	switch status {
	case "active":
		return !r.Paused
	case "paused":
		return r.Paused
	case "never_contacted":
		return r.contactedDB.IsZero()
	case "online":
		return online(r.contactedDB, now)
	case "offline":
		return !r.contactedDB.IsZero() && !online(r.contactedDB, now)
	case "stale":
		deadline := s.profile.RunnerStaleAfter.Before(now)
		return !r.CreatedAt.After(deadline) && !r.contactedDB.After(deadline)
	}
	return false
}

// hasAllTags is Ci::Runner.tagged_with: every requested tag, compared as
// stored (case-sensitive).
func hasAllTags(have, want []string) bool {
	for _, t := range want {
		if !slices.Contains(have, t) {
			return false
		}
	}
	return true
}

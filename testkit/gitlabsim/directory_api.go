package gitlabsim

import (
	"net/http"
	"strconv"
)

// Read-only look-ups around runners: the token itself, its user, and
// groups and projects by id or URL-encoded full path. Callers of find* hold s.mu.

// findGroup is find_group!: by numeric id or full path ("a%2Fb" arrives
// decoded as "a/b"); a group the user may not see is nil, like a missing one.
func (s *Sim) findGroup(a actor, idOrPath string) *Group {
	g := s.groupByPath(idOrPath)
	if id, err := strconv.ParseInt(idOrPath, 10, 64); err == nil {
		g = s.groupByID(id)
	}
	if g == nil || !s.canReadGroup(a, g) {
		return nil
	}
	return g
}

// findProject is find_project!, with the same rules.
func (s *Sim) findProject(a actor, idOrPath string) *Project {
	p := s.projectByPath(idOrPath)
	if id, err := strconv.ParseInt(idOrPath, 10, 64); err == nil {
		p = s.projects[id]
	}
	if p == nil || !s.canReadProject(a, p) {
		return nil
	}
	return p
}

// getGroup is GET /groups/:id (lib/api/groups.rb): 404 "404 Group Not Found"
// for a group that does not exist or that the user cannot see.
func (s *Sim) getGroup(c *call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.findGroup(c.actor, c.seg)
	if g == nil {
		notFound(c.w, "Group")
		return
	}
	writeJSON(c.w, http.StatusOK, s.groupEntity(g))
}

// getProject is GET /projects/:id (lib/api/projects.rb): 404 "404 Project Not Found".
func (s *Sim) getProject(c *call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.findProject(c.actor, c.seg)
	if p == nil {
		notFound(c.w, "Project")
		return
	}
	writeJSON(c.w, http.StatusOK, s.projectEntity(p))
}

// patSelf is GET /personal_access_tokens/self: any scope may read its own
// token. Revoked and expired tokens never get here: the guard answers 401.
func (s *Sim) patSelf(c *call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	writeJSON(c.w, http.StatusOK, patEntity(*c.actor.pat, c.actor.user.ID, s.now()))
}

// currentUser is GET /user: administrators get Entities::UserWithAdmin
// (with is_admin), everyone else UserPublic (no is_admin). lib/api/users.rb
// decides by `current_user.admin?`, the account flag, so under Admin Mode an
// administrator's token without admin_mode still reads is_admin: true.
func (s *Sim) currentUser(c *call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	writeJSON(c.w, http.StatusOK, userEntity(c.actor.user, c.actor.user.Admin))
}

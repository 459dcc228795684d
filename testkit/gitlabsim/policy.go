package gitlabsim

import "strings"

// This file decides who may do what, after GitLab's policies. Callers hold s.mu.

// actor is the user behind a request's personal access token. admin is
// true only when the user may act as an administrator on this request:
// under Admin Mode an API request is admin only after
// `CurrentUserMode.bypass_session!`, which lib/api/api_guard.rb does when
// `bypass_session_for_admin_mode?` — the token has the admin_mode scope.
type actor struct {
	user  *User
	pat   *PAT
	admin bool
}

// userByID finds a user by id (nil for 0 or a user that no longer exists).
func (s *Sim) userByID(id int64) *User {
	if id == 0 {
		return nil
	}
	for _, u := range s.users {
		if u.ID == id {
			return u
		}
	}
	return nil
}

func (s *Sim) groupByID(id int64) *Group {
	if id == 0 {
		return nil
	}
	return s.groups[id]
}

func (s *Sim) groupByPath(full string) *Group {
	if full == "" {
		return nil
	}
	for _, g := range s.groups {
		if strings.EqualFold(g.FullPath, full) {
			return g
		}
	}
	return nil
}

func (s *Sim) projectByPath(full string) *Project {
	if full == "" {
		return nil
	}
	for _, p := range s.projects {
		if strings.EqualFold(p.FullPath, full) {
			return p
		}
	}
	return nil
}

// groupAccess is the user's role in a group, inherited from its ancestors
// (GitLab's memberships flow down the hierarchy).
func (s *Sim) groupAccess(u *User, g *Group) AccessLevel {
	var best AccessLevel
	for g != nil {
		best = max(best, g.Members[u.Username])
		g = s.groupByPath(g.parentPath())
	}
	return best
}

// projectAccess is the user's role in a project: its own membership or
// the one inherited from the project's groups.
func (s *Sim) projectAccess(u *User, p *Project) AccessLevel {
	return max(p.Members[u.Username], s.groupAccess(u, s.groupByPath(p.parentPath())))
}

// canReadGroup: groups are private here, so only members (of the group, an
// ancestor, or something inside it) and administrators see them; anyone
// else gets 404, never 403 (find_group! in lib/api/helpers.rb).
func (s *Sim) canReadGroup(a actor, g *Group) bool {
	if a.admin || s.groupAccess(a.user, g) > 0 {
		return true
	}
	prefix := g.FullPath + "/"
	for _, sub := range s.groups {
		if strings.HasPrefix(sub.FullPath, prefix) && sub.Members[a.user.Username] > 0 {
			return true
		}
	}
	for _, p := range s.projects {
		if strings.HasPrefix(p.FullPath, prefix) && p.Members[a.user.Username] > 0 {
			return true
		}
	}
	return false
}

func (s *Sim) canReadProject(a actor, p *Project) bool {
	return a.admin || s.projectAccess(a.user, p) > 0
}

// canAdminRunner is RunnerPolicy's can_admin_runner (app/policies/ci/runner_policy.rb):
// `can?(:admin_runners, runner.owner)` — the group's owners, the owner
// project's maintainers (a project runner's owner is the first project it
// was assigned to); instance runners only administrators.
func (s *Sim) canAdminRunner(a actor, r *Runner) bool {
	if a.admin {
		return true
	}
	switch r.RunnerType {
	case "group_type":
		g := s.groupByID(r.GroupID)
		return g != nil && s.groupAccess(a.user, g) >= Owner
	case "project_type":
		p := s.projects[r.ProjectID]
		return p != nil && s.projectAccess(a.user, p) >= Maintainer
	}
	return false
}

// maintainsAnyProject is RunnerPolicy's maintainer_in_any_associated_projects:
// the user maintains one of the projects the runner is assigned to.
func (s *Sim) maintainsAnyProject(a actor, r *Runner) bool {
	for _, id := range r.projectIDs() {
		if p := s.projects[id]; p != nil && s.projectAccess(a.user, p) >= Maintainer {
			return true
		}
	}
	return false
}

// canReadRunner is RunnerPolicy's read_runner: instance runners for every
// signed-in user; group runners for maintainers of the group; project
// runners for maintainers of any project the runner is assigned to; plus
// can_admin_runner. lib/api/ci/runners.rb `authenticate_show_runner!` uses
// it for GET /runners/:id and /runners/:id/managers.
func (s *Sim) canReadRunner(a actor, r *Runner) bool {
	switch {
	case r.RunnerType == "instance_type", s.canAdminRunner(a, r):
		return true
	case r.RunnerType == "group_type":
		g := s.groupByID(r.GroupID)
		return g != nil && s.groupAccess(a.user, g) >= Maintainer
	case r.RunnerType == "project_type":
		return s.maintainsAnyProject(a, r)
	}
	return false
}

// canUpdateRunner is update_runner (`authenticate_update_runner!`, also
// used by reset_authentication_token): administrators and
// can_admin_runner, and for a runner assigned to several projects the
// maintainers of any of them (`is_project_runner &
// belongs_to_multiple_projects & runner_available`; runner_available,
// User#ci_available_project_runners, is approximated by that membership).
func (s *Sim) canUpdateRunner(a actor, r *Runner) bool {
	return s.canAdminRunner(a, r) || (r.multiProject() && s.maintainsAnyProject(a, r))
}

// assignable is assign_runner: the same as update_runner, and prevented
// for non-administrators on a locked runner (`rule { ~admin & locked
// }.prevent :assign_runner`; authenticate_enable_runner! checks the lock
// first with its own message).
func (s *Sim) assignable(a actor, r *Runner) bool { return s.canUpdateRunner(a, r) }

// deleteRefusal is authenticate_delete_runner! (lib/api/ci/runners.rb):
// an administrator (`can_admin_all_resources?`) deletes any runner, for
// all its projects; anyone else is refused a runner assigned to several
// projects ("Runner associated with more than one project"), then without
// delete_runner ("No access granted", = can_admin_runner). It returns the
// 403 reason, or "" when the delete may go on.
func (s *Sim) deleteRefusal(a actor, r *Runner) string {
	switch {
	case a.admin:
		return ""
	case r.multiProject():
		return "Runner associated with more than one project"
	case !s.canAdminRunner(a, r):
		return "No access granted"
	}
	return ""
}

// ownedRunner is User#ci_owned_runners, what GET /runners lists: group
// runners of groups the user owns (and their subgroups) and runners
// assigned to projects the user maintains (`belonging_to_project`, through
// ci_runner_projects). Instance runners are never "owned".
func (s *Sim) ownedRunner(a actor, r *Runner) bool {
	switch r.RunnerType {
	case "group_type":
		g := s.groupByID(r.GroupID)
		return g != nil && s.groupAccess(a.user, g) >= Owner
	case "project_type":
		return s.maintainsAnyProject(a, r)
	}
	return false
}

// canCreateRunner is the runner creation strategies' `authorized_user?`
// (app/services/ci/runners/runner_creation_strategies/*.rb): instance
// runners need an administrator, group runners `create_runner` on the
// group (owners, unless the group or an ancestor turned runner
// registration off: group_policy.rb `rule { ~admin &
// ~group_runner_registration_allowed }`), project runners on the project
// (maintainers).
func (s *Sim) canCreateRunner(a actor, rt string, g *Group, p *Project) bool {
	switch {
	case a.admin:
		return true
	case rt == "group_type":
		return s.groupAccess(a.user, g) >= Owner && s.groupRegistrationEnabled(g)
	case rt == "project_type":
		return s.projectAccess(a.user, p) >= Maintainer
	}
	return false
}

// groupRegistrationEnabled is NamespaceSetting#runner_registration_enabled?:
// the group's setting and every ancestor's.
func (s *Sim) groupRegistrationEnabled(g *Group) bool {
	for ; g != nil; g = s.groupByPath(g.parentPath()) {
		if g.RunnerRegistrationDisabled {
			return false
		}
	}
	return true
}

// groupAndAncestors lists the ids of a group and of every group above it.
func (s *Sim) groupAndAncestors(g *Group) map[int64]bool {
	ids := map[int64]bool{}
	for g != nil {
		ids[g.ID] = true
		g = s.groupByPath(g.parentPath())
	}
	return ids
}

package gitlabsim

import (
	"path"
	"time"
)

// AccessLevel is a member's role, with GitLab's numbers (lib/gitlab/access.rb).
type AccessLevel int

// Roles that matter for runners: maintainers read group runners and own
// project runners; owners administer group runners.
const (
	Guest      AccessLevel = 10
	Reporter   AccessLevel = 20
	Developer  AccessLevel = 30
	Maintainer AccessLevel = 40
	Owner      AccessLevel = 50
)

// User is a GitLab account. Personal access tokens act as their user.
type User struct {
	ID       int64  `json:"id"`
	Username string `json:"username"`
	Name     string `json:"name,omitempty"`
	// Admin makes the user an instance administrator. Under Admin Mode
	// (Options.AdminMode) a token only acts as one with the admin_mode scope.
	Admin bool `json:"admin,omitempty"`
}

// Group is a (sub)group. Its parent is the group whose full path is this
// one's minus the last segment; memberships are inherited by subgroups and
// projects, as in GitLab.
type Group struct {
	ID       int64  `json:"id"`
	FullPath string `json:"full_path"`
	Name     string `json:"name,omitempty"`
	// Members maps a username to its role in this group.
	Members map[string]AccessLevel `json:"members,omitempty"`
	// RegistrationToken registers group runners through the legacy
	// POST /api/v4/runners (empty: none).
	RegistrationToken string `json:"registration_token,omitempty"`
	// RunnerRegistrationDisabled is the group setting "New group runners can
	// be registered" turned off (namespace_settings.runner_registration_enabled
	// = false; it holds for subgroups too, NamespaceSetting#runner_registration_enabled?).
	// Only administrators may then create runners for the group: group_policy.rb
	// `rule { ~admin & ~group_runner_registration_allowed }` prevents
	// :create_runner, so POST /user/runners answers an Owner 403
	// "Insufficient permissions".
	RunnerRegistrationDisabled bool `json:"runner_registration_disabled,omitempty"`
	// RegistrationTokensDisallowed is the top-level group's setting
	// allow_runner_registration_token turned off: its group and project
	// registration tokens answer 410 even where the instance allows them
	// (NamespaceSetting#allow_runner_registration_token? reads the root
	// ancestor's).
	RegistrationTokensDisallowed bool `json:"registration_tokens_disallowed,omitempty"`
	// StaleRunnerPruning is the group setting "Enable stale runner cleanup"
	// (namespace_ci_cd_settings.allow_stale_runner_pruning, Ultimate): an
	// hourly job deletes this group's own stale runners (clock.go).
	StaleRunnerPruning bool `json:"stale_runner_pruning,omitempty"`
}

// Project is a project inside a group (FullPath "group/sub/project").
type Project struct {
	ID                int64                  `json:"id"`
	FullPath          string                 `json:"full_path"`
	Name              string                 `json:"name,omitempty"`
	Members           map[string]AccessLevel `json:"members,omitempty"`
	RegistrationToken string                 `json:"registration_token,omitempty"`

	createdAt time.Time
}

func (g Group) parentPath() string   { return parentOf(g.FullPath) }
func (p Project) parentPath() string { return parentOf(p.FullPath) }

func parentOf(full string) string {
	d := path.Dir(full)
	if d == "." || d == "/" {
		return ""
	}
	return d
}

func lastSegment(full string) string { return path.Base(full) }

// PAT is a personal access token known to the simulator.
type PAT struct {
	// Name identifies the token in the request log (the value never appears there).
	Name   string
	Value  string
	Scopes []string
	// User is the username the token belongs to. Empty: the token has a user
	// of its own, named after the token, who is an administrator when Admin
	// is set.
	User    string
	Admin   bool
	Revoked bool
	// ExpiresAt is the first day the token no longer works (zero: never).
	ExpiresAt time.Time

	id        int64
	createdAt time.Time
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
	// AssignedProjectIDs are the projects a project runner was assigned
	// to after ProjectID, its owner (the first of its ci_runner_projects
	// rows, Ci::Runner#owner_project): POST /projects/:id/runners or
	// AssignRunner, in order.
	AssignedProjectIDs []int64
	// ContactedAt is the runner's last heartbeat (zero: never contacted).
	// The copies Runner and Runners return hold it as GitLab's API shows
	// it at that moment: the last heartbeat for 24 hours, then the value
	// GitLab had written to its database, up to 55 minutes older (clock.go).
	ContactedAt time.Time
	// CreatorID is the user who created the runner (runner creation workflow).
	CreatorID int64
	// Name is ci_runners.name: the info[name] a legacy registration
	// (POST /runners) sent, else empty.
	Name string
	// IPAddress, Version, Revision, Platform and Architecture are the
	// runner's own cached columns, which Ci::Runner#heartbeat(values) of
	// 16.x fills from every runner-token request (the request's address
	// and its info). Profile.RunnerIPAddress and
	// Profile.DetailsInfoFromManager say whether the API shows them.
	IPAddress, Version, Revision, Platform, Architecture string
	// Legacy is true for runners registered with a registration token.
	Legacy bool
	// Orphaned runners lost the group or project that owned them (a nil
	// sharding key in GitLab): verify and jobs/request answer 422.
	Orphaned bool
	// Managers maps system_id to the runner manager GitLab records for
	// every host that verifies or polls with the runner's token.
	Managers map[string]Manager

	queueValue  string
	contactedDB time.Time
}

// Manager is a runner manager (ci_runner_machines): one per system id that
// used a runner's token.
type Manager struct {
	ID           int64
	SystemID     string
	Version      string
	Revision     string
	Platform     string
	Architecture string
	IPAddress    string
	CreatedAt    time.Time
	// ContactedAt is as on Runner: the last contact, shown by copies as the
	// API shows it (zero: never).
	ContactedAt time.Time

	contactedDB time.Time
}

func (r *Runner) clone() Runner {
	c := *r
	c.TagList = append([]string(nil), r.TagList...)
	c.AssignedProjectIDs = append([]int64(nil), r.AssignedProjectIDs...)
	c.Managers = make(map[string]Manager, len(r.Managers))
	for k, v := range r.Managers {
		c.Managers[k] = v
	}
	return c
}

// view is the copy tests get: contact times as the API shows them at now.
func (r *Runner) view(now time.Time) Runner {
	c := r.clone()
	c.ContactedAt = seen(r.ContactedAt, r.contactedDB, now)
	for k, m := range c.Managers {
		m.ContactedAt = seen(m.ContactedAt, m.contactedDB, now)
		c.Managers[k] = m
	}
	return c
}

// projectIDs lists the projects a project runner is assigned to, its owner
// first (runner.runner_projects); none for other runners.
func (r *Runner) projectIDs() []int64 {
	if r.RunnerType != "project_type" || r.ProjectID == 0 {
		return nil
	}
	return append([]int64{r.ProjectID}, r.AssignedProjectIDs...)
}

// multiProject is Ci::Runner#belongs_to_more_than_one_project?.
func (r *Runner) multiProject() bool { return len(r.projectIDs()) > 1 }

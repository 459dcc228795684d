package gitlabsim

import (
	"fmt"
	"strings"
	"time"
)

// A Profile is one GitLab release, told by the behaviours this simulator
// imitates that differ between the releases it supports. Each switch says
// where GitLab decides the behaviour and when that changed; handlers ask
// the profile, never the version. Behaviours that are the same in every
// supported release are not switches (docs/simulator.md, "Version profiles").
//
// Profiles returns the named ones; a test may copy one and change a switch
// to imitate an in-between release or a feature flag (SetProfile).
type Profile struct {
	// Version is the release the profile stands for ("17.9").
	Version string `json:"version"`

	// ManagersRoute: GET /runners/:id/managers exists. It arrived in 17.1
	// (MR 153715, lib/api/ci/runners.rb `get ':id/managers'`). Before, the
	// path falls to API::API's catch-all `route :any, '*path'`, which
	// answers 404 {"error":"404 Not Found"} (lib/api/api.rb).
	ManagersRoute bool `json:"managers_route"`

	// ManageRunnerScope: the manage_runner token scope exists and opens the
	// /runners/:id routes (17.1, MR 153285; lib/api/ci/runners.rb
	// `allow_access_with_scope :manage_runner`). Before, it grants nothing
	// and the 403 insufficient_scope body names only api and read_api.
	ManageRunnerScope bool `json:"manage_runner_scope"`

	// RegistrationTokensByDefault is the default of the instance setting
	// allow_runner_registration_token. 17.0 turned it off on every
	// self-managed instance, new or upgraded (MR 150648, issue 413957);
	// an administrator may turn it back on. Off, POST /runners answers
	// 410 "410 Gone - runner registration disallowed"
	// (app/services/ci/runners/register_runner_service.rb).
	RegistrationTokensByDefault bool `json:"registration_tokens_by_default"`

	// OrphanedRunner is how the runner-token endpoints answer a group or
	// project runner whose group or project is gone (no sharding key).
	OrphanedRunner OrphanAnswer `json:"orphaned_runner"`

	// RunnerStaleAfter is Ci::Runner::STALE_TIMEOUT (app/models/ci/runner.rb):
	// 3 months until MR 155795 (17.1/17.2) made it 7 days. It decides the
	// REST status "stale" and which runners GitLab's stale group runner
	// pruning deletes. (Runner managers go stale after 7 days in every
	// supported release: Ci::RunnerManager::STALE_TIMEOUT.)
	RunnerStaleAfter Period `json:"runner_stale_after"`

	// PartitionTokenPrefix: runner tokens carry the partition prefix t1_,
	// t2_ or t3_ after glrt- (or alone, for runners registered with a
	// registration token): MR 168017 (17.6), Ci::Runner#prefix_for_new_and_legacy_runner.
	// Before, glrt- tokens have no t<n>_ and legacy tokens no prefix at all.
	PartitionTokenPrefix bool `json:"partition_token_prefix"`

	// RunnerNotFound is the 404 message of /runners/:id routes for a runner
	// that does not exist. get_runner's Ci::Runner.find raises
	// RecordNotFound, rescued in lib/api/api.rb as "404 Not found"; GitLab's
	// current master uses find_by_id and not_found!('Runner'), "404 Runner
	// Not Found" (from a release not identified here: no named profile).
	RunnerNotFound string `json:"runner_not_found"`

	// RunnerCreatedAt: the runner entities (Entities::Ci::Runner, so the
	// lists and RunnerDetails) expose created_at. Absent up to 17.9: the
	// stored lib/api/entities/ci/runner.rb is unchanged from snapshot
	// fc0d8fd4 through the 17.9 snapshot 800235cc; it appears in the
	// version first stored at snapshot dbabd9d3 (≈18.2, before 2025-10-09),
	// so 18.5 has it. The MR was not identified.
	RunnerCreatedAt bool `json:"runner_created_at"`

	// RunnerCreatedBy: the runner entities expose created_by, the creator
	// as Entities::UserBasic, `if: Ability.allowed?(current_user,
	// :read_user, runner.creator)`: only runners created by a user (POST
	// /user/runners) whose creator still exists; a runner registered with a
	// registration token has no creator and so no key. Same file, same
	// snapshots as RunnerCreatedAt.
	RunnerCreatedBy bool `json:"runner_created_by"`

	// JobExecutionStatus: the runner entities and Entities::Ci::RunnerManager
	// expose job_execution_status, "active" while the runner (the manager)
	// has an executing build, running or canceling, else "idle"
	// (lib/api/ci/helpers/runner_job_execution_status_helper.rb,
	// `with_executing_builds`). Introduced with RunnerCreatedAt (snapshot
	// dbabd9d3, ≈18.2); the 17.1–17.9 RunnerManager entity has 10 keys.
	JobExecutionStatus bool `json:"job_execution_status"`

	// RunnerIPAddress: the list entity's ip_address is the runner's last
	// address (16.x: `expose :ip_address`, cached_attr_reader of
	// Ci::Runner, set by every authenticate_runner! heartbeat). Off, it is
	// always null: `expose(:ip_address) { nil }` (lib/api/entities/ci/runner.rb,
	// snapshot fc0d8fd4; the API docs announce the change for 17.0). The
	// key is sent in every release.
	RunnerIPAddress bool `json:"runner_ip_address"`

	// DetailsInfoFromManager: RunnerDetails' version, revision, platform
	// and architecture come from the most recently contacted runner
	// manager (`runner.runner_managers.order_contacted_at_desc.first`,
	// lib/api/entities/ci/runner_details.rb at the 17.0 snapshot 58340cfe,
	// issue 457128). Off (16.x), they are the runner's own cached columns,
	// which Ci::Runner#heartbeat(values, update_contacted_at:) fills on
	// every authenticate_runner!, a glrt- verify included
	// (lib/api/ci/helpers/runner.rb, 16.x).
	DetailsInfoFromManager bool `json:"details_info_from_manager"`

	// MaintenanceNoteToUpdaters: RunnerDetails' maintenance_note is null
	// for readers who may not update the runner (`runner.maintenance_note
	// if options[:current_user].can?(:update_runner, runner)`, the fix of
	// security issue 551957, reported 2025-06-01). Off, every reader of the
	// details gets the note (`expose :maintenance_note`, 17.0 snapshot
	// 58340cfe, 17.9 snapshot 800235cc; exposed since 16.10, MR 144482).
	// On for 18.5 as PROBABLE, not verified: the fix is in the 18.6
	// development snapshot 0286e4c6, the 18.5 release was not pinned.
	MaintenanceNoteToUpdaters bool `json:"maintenance_note_to_updaters"`

	// VerifyContacts: POST /runners/verify of a glrt- token contacts the
	// runner and its manager like any other authenticate_runner!. Off
	// (15.10–17.9), a runner created in the UI is contacted only when it
	// polls: `authenticate_runner!(update_contacted_at:
	// !registering_created_runner)` (lib/api/ci/runner.rb, MR 113753;
	// manager side MR 133858). At snapshot dbabd9d3 (≈18.2, before
	// 2025-10-09) Ci::Runner#heartbeat has lost its update_contacted_at
	// switch and the verify spec replaced "does not update contacted_at"
	// by "does not update creation_state"; the newest lib/api/ci/runner.rb
	// calls a bare authenticate_runner!. On for 18.5 as PROBABLE (bracketed
	// between 17.9 and ≈18.2 snapshots; the MR was not found).
	VerifyContacts bool `json:"verify_contacts"`

	// PATSelf: GET /personal_access_tokens/self exists
	// (lib/api/personal_access_tokens/self_information.rb). It does in every
	// named profile; off, the path is an unknown route (404), as an older
	// GitLab or a filtering proxy answers.
	PATSelf bool `json:"pat_self"`
}

// OrphanAnswer is how GitLab answers a runner token whose group or project
// runner lost its owner.
type OrphanAnswer string

const (
	// OrphanServed: the runner works as any other (16.11 and 17.0: nothing
	// checks the owner on the runner API; the releases from 17.5, when
	// runners got a sharding key, to 17.8 are not modelled).
	OrphanServed OrphanAnswer = "served"
	// OrphanUnprocessable: POST /runners/verify and /jobs/request answer
	// 422 "Runner is orphaned" (UnknownRunnerOwnerError raised by
	// current_runner_manager, rescued only there); POST
	// /runners/reset_authentication_token fails with 500; DELETE /runners
	// and /runners/managers work. This is 17.9 with the
	// reject_orphaned_runners flag off (MR 180163), a state GitLab.com
	// passed through; the flag was removed in the same milestone
	// (MR 180918), so no named profile uses it.
	OrphanUnprocessable OrphanAnswer = "422"
	// OrphanForbidden: every runner-token endpoint answers 403
	// "403 Forbidden - Runner is orphaned" before it does anything
	// (authenticate_runner! in lib/api/ci/helpers/runner.rb, 17.9 onwards:
	// MR 180163 behind reject_orphaned_runners, unconditional after MR 180918).
	OrphanForbidden OrphanAnswer = "403"
)

// Period is a duration as Rails counts it: calendar months, then days
// (`3.months.ago`, `7.days.ago`).
type Period struct {
	Months int `json:"months,omitempty"`
	Days   int `json:"days,omitempty"`
}

// Before is t minus the period, as ActiveSupport's Time#advance does it: a
// day that does not exist in the target month becomes its last day.
func (p Period) Before(t time.Time) time.Time {
	return addMonths(t, -p.Months).AddDate(0, 0, -p.Days)
}

// After is t plus the period.
func (p Period) After(t time.Time) time.Time {
	return addMonths(t, p.Months).AddDate(0, 0, p.Days)
}

func (p Period) String() string {
	var parts []string
	if p.Months != 0 {
		parts = append(parts, fmt.Sprintf("%d months", p.Months))
	}
	if p.Days != 0 || p.Months == 0 {
		parts = append(parts, fmt.Sprintf("%d days", p.Days))
	}
	return strings.Join(parts, " ")
}

func addMonths(t time.Time, n int) time.Time {
	if n == 0 {
		return t
	}
	y, m, d := t.Date()
	first := time.Date(y, m, 1, t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), t.Location()).AddDate(0, n, 0)
	last := first.AddDate(0, 1, -1).Day()
	return first.AddDate(0, 0, min(d, last)-1)
}

// The named profiles, oldest first. The profile table of docs/simulator.md is built
// from the same facts; conformance_test.go runs each row against the
// profiles it applies to.
var profiles = []Profile{
	{
		Version:                     "16.11",
		RegistrationTokensByDefault: true,
		RunnerIPAddress:             true,
		OrphanedRunner:              OrphanServed,
		RunnerStaleAfter:            Period{Months: 3},
		RunnerNotFound:              "404 Not found",
		PATSelf:                     true,
	},
	{
		Version:                "17.0",
		OrphanedRunner:         OrphanServed,
		RunnerStaleAfter:       Period{Months: 3},
		DetailsInfoFromManager: true,
		RunnerNotFound:         "404 Not found",
		PATSelf:                true,
	},
	{
		Version:                "17.9",
		ManagersRoute:          true,
		ManageRunnerScope:      true,
		OrphanedRunner:         OrphanForbidden,
		RunnerStaleAfter:       Period{Days: 7},
		PartitionTokenPrefix:   true,
		DetailsInfoFromManager: true,
		RunnerNotFound:         "404 Not found",
		PATSelf:                true,
	},
	{
		Version:                   "18.5",
		ManagersRoute:             true,
		ManageRunnerScope:         true,
		OrphanedRunner:            OrphanForbidden,
		RunnerStaleAfter:          Period{Days: 7},
		PartitionTokenPrefix:      true,
		RunnerCreatedAt:           true,
		RunnerCreatedBy:           true,
		JobExecutionStatus:        true,
		DetailsInfoFromManager:    true,
		MaintenanceNoteToUpdaters: true,
		VerifyContacts:            true,
		RunnerNotFound:            "404 Not found",
		PATSelf:                   true,
	},
}

// Profiles returns the named profiles, oldest first.
func Profiles() []Profile { return append([]Profile(nil), profiles...) }

// NewestProfile is the profile a simulator uses unless told otherwise.
func NewestProfile() Profile { return profiles[len(profiles)-1] }

// LookupProfile finds a named profile by version ("17.9").
func LookupProfile(version string) (Profile, bool) {
	for _, p := range profiles {
		if p.Version == version {
			return p, true
		}
	}
	return Profile{}, false
}

// ProfileVersions lists the named versions, oldest first.
func ProfileVersions() []string {
	var out []string
	for _, p := range profiles {
		out = append(out, p.Version)
	}
	return out
}

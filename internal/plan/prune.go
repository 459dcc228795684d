package plan

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/fleet"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/gitlab"
)

// The clean-up deletes only what is provably the fleet's and provably
// idle:
//
//   - the fleet's: the runner's details, read by id, carry the fleet's mark
//     (package fleet), which only the fleet's own sync writes; tags and the
//     description pattern narrow the listing, they prove nothing;
//   - in the scope asked for: an instance runner for the instance, a runner
//     of exactly that group (GitLab lists its ancestors' too), or of exactly
//     that project (an administrator may delete a runner shared by several
//     projects for all of them: authenticate_delete_runner! skips the check
//     for administrators);
//   - idle: its age is known — its own contacted_at or created_at, a
//     manager's, or the controller's record of when it first saw the runner
//     — and old enough on GitLab's clock and on the controller's, which
//     agree within ClockTolerance. An unknown age is never idle.

// MinIdleFloor is the shortest min_idle: GitLab writes a runner's
// contacted_at to its database at most once per hour or so (the cached
// heartbeat, Ci::Runner::UPDATE_CONTACT_COLUMN_EVERY), and calls a runner
// online for two hours after its last contact
// (Ci::Runner::ONLINE_CONTACT_TIMEOUT = 2.hours) for that reason.
const MinIdleFloor = 2 * time.Hour

// ClockTolerance is how far GitLab's clock (its answers' Date) and the
// controller's may differ before the clean-up deletes nothing.
const ClockTolerance = time.Hour

// PruneScope is the part of GitLab the clean-up works on.
type PruneScope struct {
	// RunnerType is instance_type, group_type (GroupID) or project_type
	// (ProjectID).
	RunnerType         string
	GroupID, ProjectID int64
}

// Sighting is when the controller first saw a runner that GitLab gives no
// age for: on GitLab's clock and on its own.
type Sighting struct {
	GitLab time.Time `json:"gitlab"`
	Local  time.Time `json:"local"`
}

// PruneEvidence is what the fleet clean-up knows: the runners GitLab
// lists in the scope, read by id, and what the play reported.
type PruneEvidence struct {
	// Listed are the runners GitLab listed (filtered by tags); a runner
	// listed twice (pages that shifted) is decided once.
	Listed []gitlab.Summary
	// Details are the runners read by id; Managers their managers (absent:
	// not read; NoManagersRoute: the GitLab has no such route, before
	// 17.1). Unreadable says why a read failed (5xx, 403, no answer), Gone
	// that GitLab answered 404.
	Details         map[int64]gitlab.Runner
	Managers        map[int64][]gitlab.Manager
	NoManagersRoute bool
	Unreadable      map[int64]string
	Gone            map[int64]bool
	Scope           PruneScope
	// Fleet is the fleet whose marks prove membership; IncludeUnmarked
	// also takes a runner with no mark at all (what versions before marks
	// left) for the fleet's, for a one-time clean-up.
	Fleet           string
	IncludeUnmarked bool
	// Tags every fleet runner carries, and Pattern its description (nil:
	// any): checked on the listing and again on the details.
	Tags    []string
	Pattern *regexp.Regexp
	// Keep are the runner ids the fleet's hosts reported in this play.
	Keep map[int64]bool
	// Missing are the hosts expected in the play that did not report
	// (unreachable, or their sync failed): their runners are kept.
	Missing map[string]bool
	MinIdle time.Duration
	// GitLabNow is GitLab's clock (zero: no answer carried a Date), Now
	// the controller's.
	GitLabNow, Now time.Time
	// FirstSeen are the controller's records of when it first saw runners
	// GitLab gives no age for.
	FirstSeen map[int64]Sighting
}

// PruneRow is one row of the clean-up's table.
type PruneRow struct {
	Name   string
	When   string
	Delete bool
}

// The clean-up's table, in the order rows are tried.
var (
	PruneForeign    = PruneRow{"not the fleet's shape", "its description does not match the fleet's pattern in the listing (which GitLab filters by the fleet's tags)", false}
	PruneReported   = PruneRow{"reported", "a host of the play reported it (the keep list)", false}
	PruneMissing    = PruneRow{"host missing", "its mark (or, unmarked, its description or a tag) names a host expected in the play that did not report (unreachable, or its sync failed)", false}
	PruneGone       = PruneRow{"gone", "GitLab no longer has it (404 on the read by id)", false}
	PruneUnreadable = PruneRow{"unreadable", "GitLab could not tell about it or its managers (5xx, no answer, 403)", false}
	PruneOutOfScope = PruneRow{"other scope", "its details show another scope: not an instance runner for the instance, a runner of another group or of an ancestor group, a runner of another project or of several projects", false}
	PruneDisagrees  = PruneRow{"details disagree", "its details do not carry the fleet's tags or description pattern, although the listing did", false}
	PruneOtherFleet = PruneRow{"another fleet's", "its mark names another fleet", false}
	PruneUnmarked   = PruneRow{"unmarked", "it carries no fleet mark: it looks like the fleet's, but nothing proves it (include_unmarked takes it, once, for a clean-up of what versions before marks left)", false}
	PruneAgeUnknown = PruneRow{"age unknown", "GitLab gives no age for it (never contacted, no created_at, no manager left) and the controller's record of when it first saw it never contacted is younger than min_idle, or absent (it is recorded now)", false}
	PruneContacted  = PruneRow{"recent", "it was contacted (or, never contacted, created or first seen) within min_idle, on GitLab's clock or the controller's", false}
	PruneManaged    = PruneRow{"manager seen", "a runner manager of it was seen (or created) within min_idle", false}
	PruneClockSkew  = PruneRow{"clocks disagree", "GitLab's clock (its Date) and the controller's differ by more than an hour, or GitLab sent no Date: nothing is deleted", false}
	PruneIdle       = PruneRow{"idle", "it carries the fleet's mark, no host claims it, and its known age is min_idle or more on both clocks", true}
)

// PruneTable is the clean-up's table in the order rows are tried.
var PruneTable = []PruneRow{PruneForeign, PruneReported, PruneMissing, PruneGone, PruneUnreadable, PruneOutOfScope,
	PruneDisagrees, PruneOtherFleet, PruneUnmarked, PruneAgeUnknown, PruneContacted, PruneManaged, PruneClockSkew, PruneIdle}

// PruneDecision is what the clean-up decides for one listed runner.
type PruneDecision struct {
	ID          int64
	Description string
	Tags        []string
	// Mark is the runner's fleet mark (zero: none, or not read).
	Mark        fleet.Mark
	LastContact time.Time
	Managers    []gitlab.Manager
	Row         PruneRow
	Reason      string
	// NeedsManagers: the decision waits for the runner's managers (read
	// them and decide again). Sighted: a runner of the fleet nobody has
	// contacted, whose first sighting the controller records — its age
	// when GitLab gives none (before 17.1, or once GitLab dropped its
	// managers); Contacted: it has a contacted_at, and needs no record.
	NeedsManagers, Sighted, Contacted bool
}

// Prune decides, for every runner listed, whether the fleet clean-up
// deletes it. It is pure: no request, nothing but ev.
func Prune(ev PruneEvidence) []PruneDecision {
	out := make([]PruneDecision, 0, len(ev.Listed))
	seen := make(map[int64]bool, len(ev.Listed))
	for _, s := range ev.Listed {
		if seen[s.ID] {
			continue
		}
		seen[s.ID] = true
		out = append(out, ev.decide(s))
	}
	return out
}

// SkewOf is how far apart the two clocks are (false: GitLab's is unknown).
func (ev PruneEvidence) SkewOf() (time.Duration, bool) {
	if ev.GitLabNow.IsZero() {
		return 0, false
	}
	d := ev.GitLabNow.Sub(ev.Now)
	if d < 0 {
		d = -d
	}
	return d, true
}

func (ev PruneEvidence) decide(s gitlab.Summary) PruneDecision {
	d := PruneDecision{ID: s.ID, Description: s.Description}
	r, read := ev.Details[s.ID]
	if read {
		d.Tags = append([]string(nil), r.TagList...)
		sort.Strings(d.Tags)
		if r.MaintenanceNote != nil {
			d.Mark, _, _ = fleet.Parse(*r.MaintenanceNote)
		}
	}
	ms, managersRead := ev.Managers[s.ID]
	d.Managers = ms
	d.LastContact = lastUse(r, ms)
	d.Row, d.Reason = ev.row(s, &d, r, read, managersRead || ev.NoManagersRoute)
	return d
}

func (ev PruneEvidence) row(s gitlab.Summary, d *PruneDecision, r gitlab.Runner, read, managersRead bool) (PruneRow, string) {
	switch {
	case ev.Pattern != nil && !ev.Pattern.MatchString(s.Description):
		return PruneForeign, "its description does not match " + ev.Pattern.String()
	case ev.Keep[s.ID]:
		return PruneReported, "a host reported it in this play"
	}
	if host, ok := ev.hostOf(s, d); ok {
		return PruneMissing, fmt.Sprintf("its host %s is expected in the play but did not report", host)
	}
	switch why, bad := ev.Unreadable[s.ID]; {
	case ev.Gone[s.ID]:
		return PruneGone, "GitLab no longer has it"
	case bad:
		return PruneUnreadable, "it could not be read (" + why + ")"
	case !read:
		return PruneUnreadable, "it was not read"
	}
	if why, ok := ev.inScope(r); !ok {
		return PruneOutOfScope, why
	}
	if why, ok := ev.agrees(r); !ok {
		return PruneDisagrees, why
	}
	switch {
	case d.Mark.Fleet != "" && d.Mark.Fleet != ev.Fleet:
		return PruneOtherFleet, fmt.Sprintf("its mark names fleet %s, not %s", d.Mark.Fleet, ev.Fleet)
	case d.Mark.Fleet == "" && !ev.IncludeUnmarked:
		return PruneUnmarked, "it carries no fleet mark, so nothing proves it is fleet " + ev.Fleet + "'s"
	}
	if !managersRead {
		d.NeedsManagers = true
		return PruneUnreadable, "its managers were not read"
	}
	return ev.age(s, d, r)
}

// age decides a runner of the fleet in scope by its known age.
func (ev PruneEvidence) age(s gitlab.Summary, d *PruneDecision, r gitlab.Runner) (PruneRow, string) {
	since := func(t time.Time, clock time.Time) string { return clock.Sub(t).Truncate(time.Minute).String() }
	last, what := d.LastContact, "last contact"
	d.Contacted, d.Sighted = r.ContactedAt != nil, r.ContactedAt == nil
	if r.ContactedAt == nil {
		what = "created"
	}
	if last.IsZero() {
		sight, ok := ev.FirstSeen[s.ID]
		if !ok {
			return PruneAgeUnknown, "GitLab gives no age for it (never contacted, no created_at, no manager); first seen now, so min_idle counts from now"
		}
		// Each clock measures from its own reading of the first sighting.
		if g, l := ev.GitLabNow.Sub(sight.GitLab), ev.Now.Sub(sight.Local); (!ev.GitLabNow.IsZero() && g < ev.MinIdle) || l < ev.MinIdle {
			return PruneAgeUnknown, fmt.Sprintf("GitLab gives no age for it; first seen by the controller %s ago, less than min_idle", since(sight.Local, ev.Now))
		}
		if why, skewed := ev.skewed(); skewed {
			return PruneClockSkew, why
		}
		return PruneIdle, fmt.Sprintf("no host of the play claims it; never contacted, first seen by the controller %s ago", since(sight.Local, ev.Now))
	}
	for _, t := range []*time.Time{r.ContactedAt, r.CreatedAt} {
		if t != nil {
			if ev.recent(*t) {
				return PruneContacted, fmt.Sprintf("%s %s ago", what, since(*t, ev.Now))
			}
			break // created_at is never later than contacted_at
		}
	}
	for _, m := range d.Managers {
		for _, t := range []*time.Time{m.ContactedAt, m.CreatedAt} {
			if t != nil && ev.recent(*t) {
				return PruneManaged, fmt.Sprintf("its manager %s was seen %s ago", m.SystemID, since(*t, ev.Now))
			}
		}
	}
	if why, skewed := ev.skewed(); skewed {
		return PruneClockSkew, why
	}
	return PruneIdle, fmt.Sprintf("no host of the play claims it; last use %s ago", since(last, ev.Now))
}

// recent: t is within min_idle on either clock (GitLab's, when known, and
// the controller's).
func (ev PruneEvidence) recent(t time.Time) bool {
	return ev.Now.Sub(t) < ev.MinIdle || (!ev.GitLabNow.IsZero() && ev.GitLabNow.Sub(t) < ev.MinIdle)
}

func (ev PruneEvidence) skewed() (string, bool) {
	skew, known := ev.SkewOf()
	switch {
	case !known:
		return "GitLab sent no Date, so its clock cannot be checked against the controller's", true
	case skew > ClockTolerance:
		return fmt.Sprintf("GitLab's clock and the controller's differ by %s", skew.Truncate(time.Second)), true
	}
	return "", false
}

// lastUse is the latest time anything says the runner was used or made.
func lastUse(r gitlab.Runner, ms []gitlab.Manager) time.Time {
	var out time.Time
	for _, t := range []*time.Time{r.ContactedAt, r.CreatedAt} {
		if t != nil && t.After(out) {
			out = *t
		}
	}
	for _, m := range ms {
		for _, t := range []*time.Time{m.ContactedAt, m.CreatedAt} {
			if t != nil && t.After(out) {
				out = *t
			}
		}
	}
	return out
}

// inScope checks the details against the scope asked for.
func (ev PruneEvidence) inScope(r gitlab.Runner) (string, bool) {
	sc := ev.Scope
	if sc.RunnerType == "" {
		sc.RunnerType = "instance_type"
	}
	if r.RunnerType != sc.RunnerType {
		return fmt.Sprintf("it is a %s runner, and the clean-up's scope is %s", strings.TrimSuffix(r.RunnerType, "_type"), strings.TrimSuffix(sc.RunnerType, "_type")), false
	}
	only := func(kind string, owners []gitlab.Owner, id int64) (string, bool) {
		if len(owners) == 1 && owners[0].ID == id {
			return "", true
		}
		ids := make([]string, len(owners))
		for i, o := range owners {
			ids[i] = fmt.Sprint(o.ID)
		}
		return fmt.Sprintf("its details name %ss [%s], not %s %d alone", kind, strings.Join(ids, ", "), kind, id), false
	}
	switch sc.RunnerType {
	case "group_type":
		return only("group", r.Groups, sc.GroupID)
	case "project_type":
		return only("project", r.Projects, sc.ProjectID)
	}
	return "", true
}

// agrees checks the details against the listing's narrowing: the fleet's
// tags and description pattern.
func (ev PruneEvidence) agrees(r gitlab.Runner) (string, bool) {
	if ev.Pattern != nil && !ev.Pattern.MatchString(r.Description) {
		return fmt.Sprintf("its description %q does not match %s", r.Description, ev.Pattern), false
	}
	for _, t := range ev.Tags {
		if !slices.Contains(r.TagList, t) {
			return "it does not carry the tag " + t, false
		}
	}
	return "", true
}

// hostOf finds the missing host a runner belongs to: its mark's host, or,
// unmarked (or not read yet), the first word of its description (the tool
// writes "<host> <instance> <name> Runner") or a tag naming the host.
func (ev PruneEvidence) hostOf(s gitlab.Summary, d *PruneDecision) (string, bool) {
	if len(ev.Missing) == 0 {
		return "", false
	}
	if d.Mark.Host != "" && ev.Missing[d.Mark.Host] {
		return d.Mark.Host, true
	}
	if f := strings.Fields(s.Description); len(f) > 0 && ev.Missing[f[0]] {
		return f[0], true
	}
	for _, t := range d.Tags {
		if ev.Missing[t] {
			return t, true
		}
	}
	return "", false
}

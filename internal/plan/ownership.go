package plan

import (
	"fmt"
	"time"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/gitlab"
)

// Claim is what this host may do to a runner, by the ownership table.
type Claim int

// The claims, from the strongest.
const (
	// Unproven: nothing proves the runner is this host's. Left alone and
	// named.
	Unproven Claim = iota
	// Shared: another host uses the runner (a manager with another system
	// id seen within StaleAfter). Never deleted, never reset; this host
	// may remove only its own manager.
	Shared
	// Mine: the runner is this host's: its token may be reset by id, it
	// may be adopted, updated or deleted.
	Mine
	// Reclaimable: nobody has contacted the runner for longer than
	// StaleAfter and it carries this host's and instance's identity: a
	// re-imaged host after a long absence may take it back (adopt it, or
	// delete it when its executor is no longer declared).
	Reclaimable
)

func (c Claim) String() string {
	return [...]string{"unproven", "shared", "mine", "reclaimable"}[c]
}

// OwnershipRow is one row of the ownership table.
type OwnershipRow struct {
	Name  string
	When  string
	Claim Claim
}

// The ownership table, in the order its rows are tried: what this host
// may do to a runner, from the evidence — whether this host's config or
// state file names it, its managers (system ids, last seen), its last
// contact, its identity, the marker of an interrupted run.
var (
	OwnOtherHost = OwnershipRow{"another host uses it",
		"a manager with another system id was seen within 7 days (GitLab's stale window); the `<legacy>` manager GitLab records for calls without a system id (gitlab-runner's own token rotation) names no host and does not count", Shared}
	OwnNamed = OwnershipRow{"named by this host",
		"this host's config or state file names it (its id on that GitLab), and no other host uses it — whatever its managers say (gone stale, or GitLab before 17.1 has no managers route)", Mine}
	OwnManaged = OwnershipRow{"this host's manager",
		"a manager carries this host's system id, and no other host uses it", Mine}
	OwnInterrupted = OwnershipRow{"interrupted run",
		"it has no manager at all and the previous run was interrupted (killed between creating it and recording this host)", Mine}
	OwnIdle = OwnershipRow{"idle, this host's identity",
		"nobody has contacted it for more than 7 days, no manager was seen within 7 days, and its description and tags mark it as this host's and instance's", Reclaimable}
	OwnUnproven = OwnershipRow{"unproven",
		"anything else: another host's manager gone stale but the runner not idle, no manager, managers unreadable", Unproven}
)

// OwnershipTable is the ownership table in the order rows are tried.
var OwnershipTable = []OwnershipRow{OwnOtherHost, OwnNamed, OwnManaged, OwnInterrupted, OwnIdle, OwnUnproven}

// claim decides what this host may do to a runner. named: this host's
// config or state file names it; identity: its description (and, when
// read, tags) mark it as this host's and instance's.
func (ev Evidence) claim(ref Ref, named, identity bool) (OwnershipRow, string) {
	f := ev.Runners[ref]
	if f == nil {
		f = &RunnerFacts{}
	}
	if f.ManagersRead {
		for _, m := range f.Managers {
			if m.SystemID != ev.SystemID && m.SystemID != gitlab.LegacySystemID && ev.recent(m.LastSeen()) {
				return OwnOtherHost, fmt.Sprintf("another host uses it (system id %s, seen %s)", m.SystemID, m.LastSeen().UTC().Format(time.RFC3339))
			}
		}
	}
	if named {
		return OwnNamed, ""
	}
	if f.ManagersRead {
		for _, m := range f.Managers {
			if m.SystemID == ev.SystemID {
				return OwnManaged, ""
			}
		}
		if len(f.Managers) == 0 && ev.Interrupted {
			return OwnInterrupted, ""
		}
	}
	if identity && f.Details != nil && !f.Details.LastSeen().IsZero() && !ev.recent(f.Details.LastSeen()) && (f.ManagersRead || f.NoManagers) {
		return OwnIdle, ""
	}
	why := "its runner managers could not be read"
	switch {
	case f.NoManagers:
		why = "this GitLab cannot tell which hosts use it (no managers route before GitLab 17.1), and it was contacted within 7 days"
	case f.ManagersRead && len(f.Managers) == 0:
		why = "it has no runner manager, so nothing proves it is this host's"
	case f.ManagersRead:
		why = "its runner managers carry another host's system id (another host with the same name, or a host that was cloned or re-imaged)"
	}
	return OwnUnproven, why
}

// recent reports a time within StaleAfter before Now.
func (ev Evidence) recent(t time.Time) bool {
	return !t.IsZero() && ev.Now.Sub(t) < StaleAfter
}

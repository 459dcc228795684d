package plan

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/gitlab"
)

// PruneEvidence is what the fleet clean-up knows: the runners GitLab
// lists in the scope, read by id, and what the play reported.
type PruneEvidence struct {
	// Listed are the runners GitLab listed (already filtered by tags).
	Listed []gitlab.Summary
	// Details and Managers are the runners read by id; Unreadable says why
	// a read failed.
	Details    map[int64]gitlab.Runner
	Managers   map[int64][]gitlab.Manager
	Unreadable map[int64]string
	// Pattern is the description a fleet runner carries (nil: every
	// listed runner is the fleet's).
	Pattern *regexp.Regexp
	// Keep are the runner ids the fleet's hosts reported in this play.
	Keep map[int64]bool
	// Missing are the hosts expected in the play that did not report
	// (unreachable, or their sync failed): their runners are kept.
	Missing map[string]bool
	MinIdle time.Duration
	Now     time.Time
}

// PruneRow is one row of the clean-up's table.
type PruneRow struct {
	Name   string
	When   string
	Delete bool
}

// The clean-up's table, in the order rows are tried.
var (
	PruneForeign    = PruneRow{"not the fleet's", "its description does not match the fleet's pattern", false}
	PruneReported   = PruneRow{"reported", "a host of the play reported it (the keep list)", false}
	PruneMissing    = PruneRow{"host missing", "it carries the name of a host expected in the play that did not report (unreachable, or its sync failed)", false}
	PruneUnreadable = PruneRow{"unreadable", "GitLab could not tell about it (5xx, no answer, 403)", false}
	PruneContacted  = PruneRow{"contacted", "it was contacted (or, never contacted, created) within min_idle", false}
	PruneManaged    = PruneRow{"manager seen", "a runner manager of it was seen within min_idle", false}
	PruneIdle       = PruneRow{"idle", "no host claims it and nobody has used it for min_idle", true}
)

// PruneTable is the clean-up's table in the order rows are tried.
var PruneTable = []PruneRow{PruneForeign, PruneReported, PruneMissing, PruneUnreadable, PruneContacted, PruneManaged, PruneIdle}

// PruneDecision is what the clean-up decides for one listed runner.
type PruneDecision struct {
	ID          int64
	Description string
	Tags        []string
	LastContact time.Time
	Managers    []gitlab.Manager
	Row         PruneRow
	Reason      string
}

// Prune decides, for every runner listed, whether the fleet clean-up
// deletes it. It is pure: no request, nothing but ev.
func Prune(ev PruneEvidence) []PruneDecision {
	out := make([]PruneDecision, 0, len(ev.Listed))
	for _, s := range ev.Listed {
		d := PruneDecision{ID: s.ID, Description: s.Description}
		if r, ok := ev.Details[s.ID]; ok {
			d.Tags, d.LastContact = append([]string(nil), r.TagList...), r.LastSeen()
			sort.Strings(d.Tags)
		}
		d.Managers = ev.Managers[s.ID]
		for _, m := range d.Managers {
			if t := m.LastSeen(); t.After(d.LastContact) {
				d.LastContact = t
			}
		}
		d.Row, d.Reason = ev.decide(s, d)
		out = append(out, d)
	}
	return out
}

func (ev PruneEvidence) decide(s gitlab.Summary, d PruneDecision) (PruneRow, string) {
	idle := func(t time.Time) string { return ev.Now.Sub(t).Truncate(time.Hour).String() }
	switch {
	case ev.Pattern != nil && !ev.Pattern.MatchString(s.Description):
		return PruneForeign, "its description does not match " + ev.Pattern.String()
	case ev.Keep[s.ID]:
		return PruneReported, "a host reported it in this play"
	}
	if host, ok := ev.hostOf(s, d); ok {
		return PruneMissing, fmt.Sprintf("its host %s is expected in the play but did not report", host)
	}
	if why, bad := ev.Unreadable[s.ID]; bad {
		return PruneUnreadable, "it could not be read (" + why + ")"
	}
	r, read := ev.Details[s.ID]
	if !read {
		return PruneUnreadable, "it could not be read"
	}
	if t := r.LastSeen(); !t.IsZero() && ev.Now.Sub(t) < ev.MinIdle {
		if r.ContactedAt == nil {
			return PruneContacted, "created " + idle(t) + " ago, never contacted"
		}
		return PruneContacted, "contacted " + idle(t) + " ago"
	}
	for _, m := range ev.Managers[s.ID] {
		if t := m.LastSeen(); !t.IsZero() && ev.Now.Sub(t) < ev.MinIdle {
			return PruneManaged, fmt.Sprintf("its manager %s was seen %s ago", m.SystemID, idle(t))
		}
	}
	last := "never contacted"
	if !d.LastContact.IsZero() {
		last = "last contact " + idle(d.LastContact) + " ago"
	}
	return PruneIdle, "no host of the play claims it; " + last
}

// hostOf finds the missing host a runner belongs to: the first word of
// its description (the tool writes "<host> <instance> <name> Runner"), or
// a tag naming the host.
func (ev PruneEvidence) hostOf(s gitlab.Summary, d PruneDecision) (string, bool) {
	if len(ev.Missing) == 0 {
		return "", false
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

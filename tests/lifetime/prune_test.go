package lifetime

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/core"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/coretest"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/plan"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/redact"
)

// pruneEvery is how often the controller's play ends with the clean-up.
const pruneEvery = 30

// pruneRow is one monthly clean-up in the report.
type pruneRow struct {
	day                      int
	before, deleted, refused int
	// kept counts the runners no host reported that a rule kept (host
	// missing, contacted, manager seen, unreadable).
	kept map[string]int
	// after are the runners left behind once it ran: in no host's
	// config, idle and claimed by no host of the play. Always 0.
	after int
	err   string
}

// prune is the play's last task, run once a month: the keep list is what
// the hosts that ran today reported, the expected hosts are every host of
// the inventory (those off or failed today did not report).
func (f *fleet) prune() {
	var keep []int64
	var expected, reported []string
	for _, h := range f.hosts {
		if h.gone {
			continue
		}
		expected = append(expected, h.name)
		if h.off(f.day) || h.reportedDay != f.day {
			continue
		}
		keep = append(keep, h.reported...)
		if h.lastOK {
			reported = append(reported, h.name)
		}
	}
	before := f.unclaimed(expected, reported)
	row := pruneRow{day: f.day, before: len(before), kept: map[string]int{}}
	sec := redact.New()
	res, err := core.Prune(context.Background(), core.PruneOptions{URL: f.sim.URL, PAT: f.pat, Tags: []string{"main"},
		Keep: keep, HostsExpected: expected, HostsReported: reported, MinIdle: plan.StaleAfter,
		// A fleet this size loses a host or two a week: a month's
		// leftovers are a few dozen.
		MaxDelete: max(20, f.initial/2), Concurrency: 8, RequestTimeout: coretest.Patient.Request, Timeout: 10 * time.Minute, Secrets: sec})
	var out strings.Builder
	if res != nil {
		for _, r := range res.Runners {
			out.WriteString(r.Reason + " " + r.Error + "\n")
			if r.Action == "delete" {
				continue
			}
			if r.Rule != plan.PruneReported.Name {
				row.kept[r.Rule]++
			}
		}
		row.deleted, row.refused = res.Deleted, len(res.Refused)
		out.WriteString(strings.Join(res.Warnings, "\n"))
	}
	if err != nil {
		row.err = sec.Redact(err.Error())
		out.WriteString(row.err)
		if f.trouble == "" {
			f.violate("the clean-up failed on a day GitLab and its token were fine: %s", row.err)
		}
	}
	f.scan(&fhost{name: "controller"}, out.String())
	f.event("prune", "%d deleted of %d idle and unclaimed", row.deleted, len(before))

	// No runner a host holds, nor another team's, was deleted.
	for _, h := range f.hosts {
		if h.gone {
			continue
		}
		for _, e := range readConfig(h.p) {
			if _, ok := f.sim.Runner(e.ID); !ok {
				f.violate("the clean-up deleted runner %d of %s (off %v, last run ok %v)", e.ID, h.name, h.off(f.day), h.lastOK)
			}
		}
	}
	for id := range f.foreign {
		if _, ok := f.sim.Runner(id); !ok {
			f.violate("the clean-up deleted another team's runner %d", id)
		}
	}
	// What it leaves behind: no runner idle and unclaimed.
	after := f.unclaimed(expected, reported)
	row.after = len(after)
	if err == nil && len(after) > 0 {
		f.violate("after the clean-up, %d runners are idle and claimed by no host: %v", len(after), after)
	}
	f.prunes = append(f.prunes, row)
}

// unclaimed are the runners in no live host's config, not another
// team's, idle for the stale window (runner and managers) and not named
// after a host of the inventory that did not report: what a clean-up
// must remove.
func (f *fleet) unclaimed(expected, reported []string) []string {
	owned := map[int64]bool{}
	for _, h := range f.hosts {
		if !h.gone {
			for _, e := range readConfig(h.p) {
				owned[e.ID] = true
			}
		}
	}
	missing := map[string]bool{}
	for _, n := range expected {
		missing[n] = true
	}
	for _, n := range reported {
		delete(missing, n)
	}
	now := f.sim.Now()
	var out []string
	for _, r := range f.sim.Runners() {
		if owned[r.ID] || f.foreign[r.ID] || missing[firstWord(r.Description)] {
			continue
		}
		last := r.CreatedAt
		if r.ContactedAt.After(last) {
			last = r.ContactedAt
		}
		for _, m := range r.Managers {
			last = later(last, m.CreatedAt, m.ContactedAt)
		}
		if now.Sub(last) >= plan.StaleAfter {
			out = append(out, fmt.Sprintf("%d %q", r.ID, r.Description))
		}
	}
	return out
}

func later(ts ...time.Time) time.Time {
	var out time.Time
	for _, t := range ts {
		if t.After(out) {
			out = t
		}
	}
	return out
}

// pruneReport is the report's table of clean-ups.
func (f *fleet) pruneReport() string {
	var b strings.Builder
	b.WriteString("\n| clean-up (day) | idle and unclaimed before | deleted | kept by a rule | left behind after |\n| ---: | ---: | ---: | --- | ---: |\n")
	for _, p := range f.prunes {
		var kept []string
		for _, k := range sortedKeys(p.kept) {
			kept = append(kept, fmt.Sprintf("%s %d", k, p.kept[k]))
		}
		after := fmt.Sprint(p.after)
		if p.err != "" {
			after += " (failed: GitLab down)"
		}
		fmt.Fprintf(&b, "| %d | %d | %d | %s | %s |\n", p.day+1, p.before, p.deleted, strings.Join(kept, ", "), after)
	}
	return b.String()
}

func firstWord(s string) string {
	if f := strings.Fields(s); len(f) > 0 {
		return f[0]
	}
	return ""
}

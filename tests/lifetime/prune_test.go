package lifetime

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	fleetmark "github.com/gitlab-runner-auth/gitlab-runner-auth/internal/fleet"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/gitlab"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/plan"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/prune"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/redact"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/testkit/coretest"
)

// pruneEvery is how often each fleet's play ends with the clean-up.
const pruneEvery = 30

// The two fleets sharing the GitLab: the same instance name (so the same
// instance tag and description pattern), told apart only by their marks.
const (
	fleetA = "farm"
	fleetB = "team-b"
)

// contactLag is how far GitLab's contacted_at may lag a runner's last
// contact (the cached heartbeat and its database column): an age read
// from GitLab may be that much too old.
const contactLag = time.Hour

// pruneRow is one monthly clean-up of one fleet in the report.
type pruneRow struct {
	day                      int
	fleet                    string
	before, deleted, refused int
	// kept counts the runners no host reported that a rule kept (host
	// missing, contacted, manager seen, unreadable, another fleet's, ...).
	kept map[string]int
	// after are the fleet's runners left behind once it ran: in no
	// host's config, idle, of no missing host, with an age GitLab or the
	// controller's record can prove. Always 0.
	after int
	// waiting are idle leftovers whose age nothing proves yet (never
	// contacted, on a GitLab that gives no age): a later clean-up takes them.
	waiting int
	err     string
}

// prune is the play's last task, run once a month by each fleet's
// controller: the keep list is what the fleet's hosts that ran today
// reported, the expected hosts are every host of its inventory (those off
// or failed today did not report). Fleet A's play races a host being
// provisioned: it syncs minutes before the clean-up, after the play fixed
// its lists.
func (f *fleet) prune() {
	for _, fl := range []string{fleetA, fleetB} {
		var keep []int64
		var expected, reported []string
		for _, h := range f.hosts {
			if h.gone || h.fleet != fl {
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
		if fl == fleetA {
			h := f.addHost()
			h.fleet = fleetA
			f.sync(h)
			f.event("provisioned", "%s during the clean-up", h.name)
		}
		f.pruneFleet(fl, keep, expected, reported)
	}
}

// before is what GitLab holds of a runner just before a clean-up.
type before struct {
	mark     fleetmark.Mark
	marked   bool
	lastUse  time.Time // as GitLab's API shows it, managers included
	provable bool      // GitLab or the controller's record gives its age
}

func (f *fleet) pruneFleet(fl string, keep []int64, expected, reported []string) {
	was := f.snapshot(fl)
	gone := f.unclaimed(fl, expected, reported)
	row := pruneRow{day: f.day, fleet: fl, before: len(gone), kept: map[string]int{}}
	sec := redact.New()
	res, err := prune.Run(context.Background(), prune.Options{URL: f.sim.URL, PAT: f.pat, Fleet: fl, Tags: []string{"main"},
		Keep: keep, HostsExpected: expected, HostsReported: reported, MinIdle: plan.StaleAfter,
		// A fleet this size loses a host or two a week: a month's
		// leftovers are a few dozen.
		MaxDelete: max(20, f.initial/2), Concurrency: 8, RequestTimeout: coretest.Patient.Request, Timeout: 10 * time.Minute, Secrets: sec,
		Now: f.sim.Now, SeenFile: f.seen[fl]})
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
			f.violate("fleet %s: the clean-up failed on a day GitLab and its token were fine: %s", fl, row.err)
		}
	}
	f.scan(&fhost{name: "controller " + fl}, out.String())
	f.event("prune", "fleet %s: %d deleted of %d idle and unclaimed", fl, row.deleted, len(gone))

	// What it deleted: only its own fleet's runners, idle, of a proven age.
	now := f.sim.Now()
	for id, b := range was {
		if _, ok := f.sim.Runner(id); ok {
			continue
		}
		switch {
		case !b.marked || b.mark.Fleet != fl:
			f.violate("fleet %s's clean-up deleted runner %d of fleet %q", fl, id, b.mark.Fleet)
		case now.Sub(b.lastUse) < plan.StaleAfter-contactLag:
			f.violate("fleet %s's clean-up deleted runner %d, used %s ago", fl, id, now.Sub(b.lastUse))
		case !b.provable:
			f.violate("fleet %s's clean-up deleted runner %d, whose age neither GitLab nor its record proved", fl, id)
		}
	}
	// No runner a host holds — off, failed, of either fleet — nor another
	// team's, was deleted.
	for _, h := range f.hosts {
		if h.gone {
			continue
		}
		for _, e := range readConfig(h.p) {
			if _, ok := f.sim.Runner(e.ID); !ok {
				f.violate("fleet %s's clean-up deleted runner %d of %s (fleet %s, off %v, last run ok %v)", fl, e.ID, h.name, h.fleet, h.off(f.day), h.lastOK)
			}
		}
	}
	for id := range f.foreign {
		if _, ok := f.sim.Runner(id); !ok {
			f.violate("the clean-up deleted another team's runner %d", id)
		}
	}
	// What it leaves behind: no runner of the fleet idle, unclaimed and of
	// a proven age.
	after := f.unclaimed(fl, expected, reported)
	for _, a := range after {
		if a.provable {
			row.after++
		} else {
			row.waiting++
		}
	}
	if err == nil && row.after > 0 {
		f.violate("after fleet %s's clean-up, %d of its runners are idle, claimed by no host, of a proven age", fl, row.after)
	}
	f.prunes = append(f.prunes, row)
}

// snapshot is GitLab's view of every runner before a clean-up of fleet fl.
func (f *fleet) snapshot(fl string) map[int64]before {
	prof := f.sim.Profile()
	seen := readSeen(f.seen[fl], f.sim.URL)
	now := f.sim.Now()
	out := map[int64]before{}
	for _, r := range f.sim.Runners() {
		b := before{lastUse: r.ContactedAt}
		b.mark, _, b.marked = fleetmark.Parse(r.MaintenanceNote)
		visible := !r.ContactedAt.IsZero()
		if prof.RunnerCreatedAt {
			b.lastUse, visible = later(b.lastUse, r.CreatedAt), true
		}
		for _, m := range r.Managers {
			if prof.ManagersRoute {
				b.lastUse, visible = later(b.lastUse, m.CreatedAt, m.ContactedAt), true
			}
		}
		if !visible {
			if t, ok := seen[r.ID]; ok && now.Sub(t) >= plan.StaleAfter {
				b.lastUse, visible = t, true
			}
		}
		if b.lastUse.IsZero() {
			b.lastUse = r.CreatedAt
		}
		b.provable = visible
		out[r.ID] = b
	}
	return out
}

// readSeen reads a controller's record of first sightings (its own clock).
func readSeen(path, url string) map[int64]time.Time {
	out := map[int64]time.Time{}
	data, err := os.ReadFile(path)
	if err != nil {
		return out
	}
	var rec struct {
		GitLabs map[string]map[string]plan.Sighting `json:"gitlabs"`
	}
	if json.Unmarshal(data, &rec) != nil {
		return out
	}
	key, _ := gitlab.NormalizeURL(url)
	for k, s := range rec.GitLabs[key] {
		if id, err := strconv.ParseInt(k, 10, 64); err == nil {
			out[id] = s.Local
		}
	}
	return out
}

// unclaimed are the runners of fleet fl in no live host's config, not of
// a host of the inventory that did not report, idle for the stale window
// as GitLab shows it: what a clean-up must remove once their age is
// proven.
func (f *fleet) unclaimed(fl string, expected, reported []string) []before {
	owned := map[int64]bool{}
	for _, h := range f.hosts {
		if !h.gone {
			for _, e := range readConfig(h.p) {
				owned[e.ID] = true
			}
			for _, id := range pendingRemovals(h.p) {
				owned[id] = true
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
	var out []before
	for id, b := range f.snapshot(fl) {
		if owned[id] || !b.marked || b.mark.Fleet != fl || missing[b.mark.Host] {
			continue
		}
		if now.Sub(b.lastUse) >= plan.StaleAfter {
			out = append(out, b)
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
	b.WriteString("\n| clean-up (day) | fleet | idle and unclaimed before | deleted | kept by a rule | left behind after | waiting for a proven age |\n| ---: | --- | ---: | ---: | --- | ---: | ---: |\n")
	for _, p := range f.prunes {
		var kept []string
		for _, k := range sortedKeys(p.kept) {
			kept = append(kept, fmt.Sprintf("%s %d", k, p.kept[k]))
		}
		after := fmt.Sprint(p.after)
		if p.err != "" {
			after += " (failed: GitLab down)"
		}
		fmt.Fprintf(&b, "| %d | %s | %d | %d | %s | %s | %d |\n", p.day+1, p.fleet, p.before, p.deleted, strings.Join(kept, ", "), after, p.waiting)
	}
	return b.String()
}

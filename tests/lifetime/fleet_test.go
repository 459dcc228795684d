// Package lifetime is the fleet lifetime simulation: hundreds of hosts
// living a year of simulated days against the simulator — restarts, hosts
// off for weeks, re-images, clones, renames, executors coming and going,
// token expiry and rotation, PAT rotation and expiry, GitLab outages, 429
// storms, a GitLab upgrade, decommissioned hosts — with the three
// promises checked after every day: every declared executor of every
// host whose run succeeded has a working token for a runner of its own;
// no runner another host uses was deleted or had its token reset; every
// runner in GitLab is some host's, or was named as left behind; no secret
// in any output. Seeded and reproducible: a failure prints the seed and
// the event trace.
//
//	go test ./tests/lifetime -run TestFleetLifetime -args -hosts 200 -days 365 -seed 7
package lifetime

import (
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"
)

var (
	flagHosts = flag.Int("hosts", 16, "hosts in the fleet at the start")
	flagDays  = flag.Int("days", 60, "simulated days")
	flagSeed  = flag.Uint64("seed", 1, "seed of the history")
	flagOut   = flag.String("report", "", "also write the report to this file")
)

// TestFleetLifetime runs the simulation at the size the flags give
// (make test: 16 hosts for 60 days; make soak: 200 hosts for 365 days).
func TestFleetLifetime(t *testing.T) {
	seed := *flagSeed
	f := newFleet(t, seed, *flagHosts, *flagDays)
	start := time.Now()
	f.live()
	rep := f.report(time.Since(start))
	t.Log("\n" + rep)
	if *flagOut != "" {
		if err := os.WriteFile(*flagOut, []byte(rep), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if len(f.violations) > 0 {
		t.Fatalf("%d invariant violations (seed %d); first: %s\nevent trace (last 60 events):\n%s",
			len(f.violations), seed, f.violations[0], strings.Join(tail(f.trace, 400), "\n"))
	}
	if f.hostDays < f.days {
		t.Fatalf("simulated %d host-days in %d days: the fleet died out", f.hostDays, f.days)
	}
}

func tail(s []string, n int) []string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// report is the table the simulation prints.
func (f *fleet) report(wall time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "fleet lifetime: seed %d, %d hosts at the start (%d over the life), %d days, GitLab %s.\n\n",
		f.seed, f.initial, len(f.hosts), f.days, strings.Join(f.versions, " -> "))
	fmt.Fprintf(&b, "| measure | value |\n| --- | ---: |\n")
	fmt.Fprintf(&b, "| host-days simulated | %d |\n", f.hostDays)
	fmt.Fprintf(&b, "| sync runs | %d (%d failed, %d degraded) |\n", f.runs, f.failed, f.degraded)
	fmt.Fprintf(&b, "| requests to GitLab by the tool | %d |\n", f.requests)
	fmt.Fprintf(&b, "| requests per host-day | %.2f |\n", float64(f.requests)/float64(max(f.hostDays, 1)))
	fmt.Fprintf(&b, "| runners in GitLab at the end | %d |\n", f.runnersAtEnd)
	fmt.Fprintf(&b, "| invariant violations | %d |\n", len(f.violations))
	fmt.Fprintf(&b, "| wall time | %s |\n", wall.Round(time.Second))
	b.WriteString("\n| event | count |\n| --- | ---: |\n")
	for _, k := range sortedKeys(f.events) {
		fmt.Fprintf(&b, "| %s | %d |\n", k, f.events[k])
	}
	b.WriteString("\n| runners left behind, at the end | count |\n| --- | ---: |\n")
	left := f.leftBehind()
	if len(left) == 0 {
		b.WriteString("| (none) | 0 |\n")
	}
	for _, k := range sortedKeys(left) {
		fmt.Fprintf(&b, "| %s | %d |\n", k, left[k])
	}
	b.WriteString(f.pruneReport())
	return b.String()
}

func sortedKeys(m map[string]int) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

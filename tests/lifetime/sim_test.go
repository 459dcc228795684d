package lifetime

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/engine"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/fanout"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/hostfs"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/redact"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/testkit/coretest"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/testkit/gitlabsim"
)

const day = 24 * time.Hour

// executorPool are the executor names hosts declare.
var executorPool = []string{"shell", "docker", "gpu", "batch", "k8s", "test"}

// fhost is one machine of the fleet.
type fhost struct {
	name      string
	machine   hostfs.Machine
	p         *coretest.Prefix
	executors []string
	offUntil  int  // off while the day is before it
	gone      bool // decommissioned
	lastOK    bool // its last run succeeded (or started degraded)
	pat       string
	// reimaged: its generated files were lost and no run has succeeded
	// since; the runners they named wait for that run.
	reimaged bool
	// inherited: its files are a copy of another machine's (a clone) and
	// no start has succeeded yet to replace them; gitlab-runner never ran
	// them (ExecStartPre failed, so the unit did not start).
	inherited bool
	// reported are the runner ids its last run reported (what the sync
	// module returns to the play), and reportedDay the day of that run.
	reported    []int64
	reportedDay int
	// fleet is the fleet it belongs to: most hosts are fleetA's; every
	// fifth is fleetB's, another team's fleet in the same GitLab with the
	// same instance name, tags and descriptions.
	fleet string
}

func (h *fhost) off(d int) bool { return d < h.offUntil }

// fleet is one simulation.
type fleet struct {
	t        *testing.T
	seed     uint64
	rng      *rand.Rand
	sim      *coretest.Sim
	days     int
	initial  int
	hosts    []*fhost
	day      int
	versions []string
	upgrades map[int]string
	pat      string // the administrator's current token
	oldPATs  []string
	nextPAT  int
	http     *http.Client

	hostDays, runs, failed, degraded, requests, runnersAtEnd int
	events                                                   map[string]int
	trace                                                    []string
	violations                                               []string
	// named: runners a run named as left behind, and why; retired:
	// runners of decommissioned hosts.
	named   map[int64]string
	retired map[int64]bool
	// lost maps the runners a re-image took out of a host's config to
	// that host: its next successful run adopts or names them.
	lost  map[int64]*fhost
	names int
	// foreign are another team's runners on the same GitLab; prunes are
	// the monthly clean-ups, one line of the report each; seen are the
	// controllers' records of first sightings, a file per fleet.
	foreign map[int64]bool
	prunes  []pruneRow
	seen    map[string]string
	// mu guards the tallies while hosts run at once.
	mu sync.Mutex
	// trouble says why runs may fail today (GitLab down, the token
	// expired); a run that fails on a day without trouble is a violation.
	trouble string
}

func newFleet(t *testing.T, seed uint64, hosts, days int) *fleet {
	o := coretest.SimOptions()
	o.Version = "16.11"
	o.TokenLifetime = 30 * day
	o.Seed = seed
	o.Now = func() time.Time { return time.Date(2026, 1, 1, 6, 0, 0, 0, time.UTC) }
	f := &fleet{t: t, seed: seed, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), days: days, initial: hosts,
		events: map[string]int{}, named: map[int64]string{}, retired: map[int64]bool{}, lost: map[int64]*fhost{}, foreign: map[int64]bool{}, versions: []string{"16.11"},
		seen:     map[string]string{fleetA: filepath.Join(t.TempDir(), "seen-a.json"), fleetB: filepath.Join(t.TempDir(), "seen-b.json")},
		upgrades: map[int]string{days / 4: "17.0", days / 2: "17.9", 3 * days / 4: "18.5"}, http: &http.Client{Timeout: coretest.Patient.Request}}
	f.sim = coretest.NewSim(t, o)
	f.sim.AddUser(gitlabsim.User{Username: "admin-user", Admin: true})
	f.pat = f.newPAT()
	for i := 0; i < hosts; i++ {
		f.addHost()
	}
	// Another team's runners: the same instance tag, not the fleet's
	// description; one never contacted, one idle for months.
	for _, d := range []string{"team-x docker builder", "team-x arm64"} {
		f.foreign[f.sim.AddRunner(gitlabsim.Runner{Description: d, TagList: []string{"main", "team-x"}})] = true
	}
	return f
}

// newPAT issues a new administrator token (api scope).
func (f *fleet) newPAT() string {
	f.nextPAT++
	b := make([]byte, 10)
	for i := range b {
		b[i] = byte(f.rng.IntN(256))
	}
	v := fmt.Sprintf("glpat-fleet%02d%s", f.nextPAT, hex.EncodeToString(b))
	f.sim.AddPAT(gitlabsim.PAT{Name: fmt.Sprintf("fleet-%d", f.nextPAT), Value: v, Scopes: []string{"api"}, User: "admin-user", Admin: true})
	return v
}

func (f *fleet) machineID() string {
	b := make([]byte, 16)
	for i := range b {
		b[i] = byte(f.rng.IntN(256))
	}
	return hex.EncodeToString(b)
}

func (f *fleet) addHost() *fhost {
	f.names++
	h := &fhost{name: fmt.Sprintf("n%04d", f.names), machine: hostfs.Machine{ID: f.machineID(), Hardware: fmt.Sprintf("hw-%d", f.names)}, pat: f.pat, fleet: fleetA}
	if f.names%5 == 0 {
		h.fleet = fleetB
	}
	h.p = coretest.NewPrefix(f.t, "main")
	h.p.Remove(".runner_system_id") // derived from the machine id, as gitlab-runner does
	n := 1 + f.rng.IntN(3)
	h.executors = append([]string(nil), executorPool[:n]...)
	f.provision(h)
	f.hosts = append(f.hosts, h)
	return h
}

// provision is what Ansible keeps on every host it reaches: the template
// with the current token, and one file per declared executor.
func (f *fleet) provision(h *fhost) {
	if h.pat != f.pat || !fileExists(h.p, "config.template.main.toml") {
		h.pat = f.pat
		h.p.Template("concurrent = 2\n", coretest.ClientConfig{URL: f.sim.URL, PAT: h.pat})
	}
	want := map[string]bool{}
	for _, n := range h.executors {
		want[n+".toml"] = true
		if !fileExists(h.p, "main/"+n+".toml") {
			h.p.Executor(n+".toml", "url = \""+f.sim.URL+"\"\nexecutor = \"shell\"\n")
		}
	}
	entries, _ := os.ReadDir(filepath.Join(h.p.Dir, "main"))
	for _, e := range entries {
		if !want[e.Name()] {
			_ = os.Remove(filepath.Join(h.p.Dir, "main", e.Name()))
		}
	}
}

func fileExists(p *coretest.Prefix, rel string) bool {
	_, err := os.Stat(filepath.Join(p.Dir, rel))
	return err == nil
}

func (f *fleet) event(kind, format string, args ...any) {
	f.events[kind]++
	f.trace = append(f.trace, fmt.Sprintf("day %3d %-14s %s", f.day, kind, fmt.Sprintf(format, args...)))
}

// live runs every day of the simulation.
func (f *fleet) live() {
	for f.day = 0; f.day < f.days; f.day++ {
		f.trouble = ""
		f.gitlabEvents()
		f.hostEvents()
		outage := f.trouble == "gitlab down"
		var up []*fhost
		for _, h := range f.hosts {
			if !h.gone && !h.off(f.day) {
				up = append(up, h)
				f.provision(h)
			}
		}
		f.hostDays += len(up)
		// The day's restarts, eight hosts at a time; the log counts only
		// register-runner's requests (gitlab-runner's come after).
		f.sim.ResetLog()
		_ = fanout.Each(context.Background(), len(up), 8, func(i int) error { f.sync(up[i]); return nil })
		f.requests += f.sim.RequestCounts().Total
		f.sim.ClearFaults()
		if !outage {
			for _, h := range f.hosts {
				// A start whose ExecStartPre failed starts no gitlab-runner.
				if !h.gone && !h.off(f.day) && h.lastOK {
					f.gitlabRunner(h)
				}
			}
		}
		f.check()
		if (f.day+1)%pruneEvery == 0 {
			f.prune()
		}
		f.sim.Advance(day)
	}
	f.runnersAtEnd = len(f.sim.Runners())
}

// gitlabEvents: upgrades, outages, 429 storms, token rotation and expiry.
func (f *fleet) gitlabEvents() {
	if v, ok := f.upgrades[f.day]; ok && f.day > 0 {
		f.sim.SetVersion(v)
		f.versions = append(f.versions, v)
		f.event("gitlab upgrade", "to %s", v)
	}
	switch r := f.rng.Float64(); {
	case r < 1.0/40:
		f.sim.InjectFault(gitlabsim.Fault{Type: gitlabsim.FaultDrop, Times: -1})
		f.trouble = "gitlab down"
		f.event("gitlab down", "for the day's restarts")
	case r < 1.0/40+1.0/90:
		f.sim.InjectFault(gitlabsim.Fault{Type: gitlabsim.FaultRateLimit, Every: 4, Times: -1, RetryAfterHeader: "0"})
		f.event("429 storm", "every 4th request")
	}
	switch {
	case f.day > 0 && f.day%90 == 0:
		old := f.pat
		f.pat = f.newPAT()
		f.oldPATs = append(f.oldPATs, old)
		f.event("pat rotated", "new token %d", f.nextPAT)
	case f.day > 0 && f.day%90 == 3 && len(f.oldPATs) > 0:
		f.sim.RevokePAT(fmt.Sprintf("fleet-%d", f.nextPAT-1))
		f.event("pat revoked", "token %d", f.nextPAT-1)
	case f.rng.Float64() < 1.0/200:
		// The token expires before the administrator notices: hosts run
		// with it for three days, then get a new one.
		f.sim.ExpirePAT(fmt.Sprintf("fleet-%d", f.nextPAT))
		f.event("pat expired", "token %d", f.nextPAT)
	}
	if last := f.lastOf("pat expired"); last != "" {
		var d int
		_, _ = fmt.Sscanf(last, "day %d", &d)
		switch {
		case f.day-d == 3:
			f.pat = f.newPAT()
			f.event("pat replaced", "new token %d after expiry", f.nextPAT)
		case f.day-d < 3 && f.trouble == "":
			f.trouble = "token expired"
		}
	}
}

func (f *fleet) lastOf(kind string) string {
	for i := len(f.trace) - 1; i >= 0; i-- {
		if strings.Contains(f.trace[i], kind) {
			return f.trace[i]
		}
	}
	return ""
}

// hostEvents: what happens to machines.
func (f *fleet) hostEvents() {
	if f.day > 0 && f.rng.Float64() < 0.05 {
		h := f.addHost()
		f.event("host added", "%s", h.name)
	}
	for _, h := range append([]*fhost(nil), f.hosts...) {
		if h.gone || h.off(f.day) {
			continue
		}
		switch r := f.rng.Float64(); {
		case r < 0.010:
			h.offUntil = f.day + 1 + f.rng.IntN(30)
			f.event("host off", "%s for %d days", h.name, h.offUntil-f.day)
		case r < 0.013:
			// Re-installed: the generated files are lost, the OS has a new
			// machine id; Ansible puts template and executor files back.
			for _, e := range readConfig(h.p) {
				f.lost[e.ID] = h
			}
			h.reimaged = true
			for _, g := range []string{"config.main.toml", ".gitlab-runner-auth.main.json", ".runner_system_id", ".gitlab-runner-auth.main.incomplete"} {
				_ = os.Remove(filepath.Join(h.p.Dir, g))
			}
			h.machine.ID = f.machineID()
			f.event("re-imaged", "%s", h.name)
		case r < 0.015:
			old := h.name
			f.names++
			h.name = fmt.Sprintf("n%04d", f.names)
			f.event("renamed", "%s to %s", old, h.name)
		case r < 0.025 && len(h.executors) < len(executorPool):
			h.executors = append(h.executors, executorPool[len(h.executors)])
			f.event("executor added", "%s %s", h.name, h.executors[len(h.executors)-1])
		case r < 0.035 && len(h.executors) > 1:
			removed := h.executors[len(h.executors)-1]
			h.executors = h.executors[:len(h.executors)-1]
			f.event("executor removed", "%s %s", h.name, removed)
		case r < 0.0355:
			h.gone = true
			for _, e := range readConfig(h.p) {
				f.retired[e.ID] = true
			}
			for id, lh := range f.lost {
				if lh == h && h.reimaged {
					f.retired[id] = true
				}
			}
			f.event("decommissioned", "%s", h.name)
		case r < 0.0375:
			f.clone(h)
		}
	}
}

// clone makes a new host from h's image: its whole prefix copied, on a
// machine with its own machine id, or (an image with a fixed machine id)
// with h's machine id on other hardware.
func (f *fleet) clone(h *fhost) {
	c := f.addHost()
	c.executors, c.fleet = append([]string(nil), h.executors...), h.fleet
	fixed := f.rng.Float64() < 0.3
	if fixed {
		c.machine.ID = h.machine.ID
	}
	for _, g := range []string{"config.main.toml", ".gitlab-runner-auth.main.json", ".runner_system_id"} {
		if b, err := os.ReadFile(filepath.Join(h.p.Dir, g)); err == nil {
			c.p.Write(g, string(b))
		}
	}
	c.inherited = true
	f.provision(c)
	f.event("cloned", "%s from %s's image (fixed machine id: %v)", c.name, h.name, fixed)
}

// sync is the host's register-runner at (re)start.
func (f *fleet) sync(h *fhost) {
	sec := redact.New()
	res, err := engine.Run(context.Background(), engine.Options{Prefix: h.p.Dir, Instance: "main", Hostname: h.name, Secrets: sec, Machine: &h.machine, Now: f.sim.Now, Fleet: h.fleet, Limits: engine.Limits{Concurrency: 4, Request: coretest.Patient.Request, Lock: coretest.Patient.Lock, RetryBudget: 2 * time.Second, MaxAttempts: 2, Timeout: 10 * time.Minute}})
	f.mu.Lock()
	defer f.mu.Unlock()
	f.runs++
	var out bytes.Buffer
	if res != nil {
		b, _ := json.Marshal(res)
		out.Write(b)
		for _, w := range res.Warnings {
			out.WriteString("\n" + w)
		}
		for _, l := range res.LeftBehind {
			f.named[l.ID] = l.Why
		}
	}
	if err != nil {
		out.WriteString("\n" + sec.Redact(err.Error()))
		if f.trouble == "" {
			f.violate("%s: the run failed on a day GitLab and its token were fine: %s", h.name, sec.Redact(err.Error()))
		}
	}
	f.scan(h, out.String())
	if dbg := os.Getenv("GRA_FLEET_DEBUG"); dbg != "" && strings.Contains(","+dbg+",", ","+h.name+",") {
		f.t.Logf("day %d %s: %s", f.day, h.name, sec.Redact(out.String()))
	}
	h.lastOK = err == nil
	if res != nil {
		h.reported, h.reportedDay = h.reported[:0], f.day
		for _, r := range res.Runners {
			if r.ID != 0 {
				h.reported = append(h.reported, r.ID)
			}
		}
	}
	if h.lastOK {
		h.reimaged, h.inherited = false, false
	}
	switch {
	case err != nil:
		f.failed++
	case res.Degraded:
		f.degraded++
	}
}

// scan fails on any secret in what a run printed.
func (f *fleet) scan(h *fhost, out string) {
	if leak := coretest.FindSecret(out); leak != "" {
		f.violate("%s: output holds a secret (%s)", h.name, leak)
	}
	for _, p := range append([]string{f.pat}, f.oldPATs...) {
		if strings.Contains(out, p) {
			f.violate("%s: output holds a personal access token", h.name)
		}
	}
}

// violate records a broken promise (callers hold f.mu or run alone).
func (f *fleet) violate(format string, args ...any) {
	msg := fmt.Sprintf("day %d: ", f.day) + fmt.Sprintf(format, args...)
	f.violations = append(f.violations, msg)
	f.trace = append(f.trace, "VIOLATION "+msg)
}

type entry struct {
	Name  string `toml:"name"`
	ID    int64  `toml:"id"`
	Token string `toml:"token"`
}

// pendingRemovals are the runners a host's state file still has to
// remove.
func pendingRemovals(p *coretest.Prefix) []int64 {
	st, _, err := hostfs.ReadState(hostfs.Layout{Prefix: p.Dir, Instance: "main"})
	if err != nil {
		return nil
	}
	var ids []int64
	for _, pr := range st.Pending {
		ids = append(ids, pr.ID)
	}
	return ids
}

func readConfig(p *coretest.Prefix) []entry {
	var c struct {
		Runners []entry `toml:"runners"`
	}
	_, _ = toml.Decode(p.Config(), &c)
	return c.Runners
}

// gitlabRunner is what gitlab-runner does on a running host during a day:
// it polls for jobs with each token (GitLab records this host's manager)
// and rotates a token that expires within a week, writing the new one
// into its config.
func (f *fleet) gitlabRunner(h *fhost) {
	sid, err := os.ReadFile(filepath.Join(h.p.Dir, ".runner_system_id"))
	if err != nil {
		return
	}
	cfg := h.p.Config()
	for _, e := range readConfig(h.p) {
		f.post("/api/v4/jobs/request", map[string]any{"token": e.Token, "system_id": strings.TrimSpace(string(sid))}, nil)
		r, ok := f.sim.Runner(e.ID)
		if !ok || r.Token != e.Token || r.TokenExpiresAt.IsZero() || r.TokenExpiresAt.Sub(f.sim.Now()) > 7*day {
			continue
		}
		var out struct {
			Token string `json:"token"`
		}
		if f.post("/api/v4/runners/reset_authentication_token", map[string]any{"token": e.Token}, &out) && out.Token != "" {
			cfg = strings.ReplaceAll(cfg, e.Token, out.Token)
			f.events["token rotated"]++
		}
	}
	if cfg != h.p.Config() {
		h.p.Write("config.main.toml", cfg)
	}
}

func (f *fleet) post(path string, body map[string]any, out any) bool {
	b, _ := json.Marshal(body)
	resp, err := f.http.Post(f.sim.URL+path, "application/json", bytes.NewReader(b))
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	if out != nil {
		_ = json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode < 300
}

// check holds the invariants after a day.
func (f *fleet) check() {
	owned := map[int64]string{}
	for _, h := range f.hosts {
		if h.gone {
			continue
		}
		// A removal GitLab did not confirm is the host's until it does:
		// recorded in its state file, retried by every run.
		for _, id := range pendingRemovals(h.p) {
			owned[id] = h.name
		}
		entries := readConfig(h.p)
		if h.inherited {
			// Another machine's files, copied: that machine's runners,
			// checked there (the first start that succeeds drops them).
			continue
		}
		for _, e := range entries {
			owned[e.ID] = h.name
			r, ok := f.sim.Runner(e.ID)
			switch {
			case !ok:
				f.violate("%s: runner %d in its config is gone from GitLab, and %s did not delete it", h.name, e.ID, h.name)
			case r.Token != e.Token:
				f.violate("%s: runner %d's token was reset by someone else", h.name, e.ID)
			}
		}
		if h.off(f.day) || !h.lastOK {
			continue
		}
		// Every declared executor has a working token for a runner of its own.
		byDesc := map[string]entry{}
		for _, e := range entries {
			byDesc[e.Name] = e
		}
		for _, n := range h.executors {
			desc := h.name + " main " + n + " Runner"
			e, ok := byDesc[desc]
			if !ok {
				f.violate("%s: declared executor %s has no runner in the config after a successful run", h.name, n)
				continue
			}
			if id, ok := f.sim.VerifyToken(e.Token); !ok || id != e.ID {
				f.violate("%s: the token of %s does not verify for runner %d", h.name, n, e.ID)
			}
		}
	}
	for _, r := range f.sim.Runners() {
		if _, ok := owned[r.ID]; ok || f.retired[r.ID] || f.foreign[r.ID] {
			continue
		}
		if h := f.lost[r.ID]; h != nil && (h.reimaged || h.gone) {
			continue // its host has not run since it lost its files
		}
		if _, ok := f.named[r.ID]; !ok {
			f.violate("runner %d (%q) belongs to no host and no run named it: leaked silently", r.ID, r.Description)
		}
	}
}

// leftBehind classifies the runners no host owns at the end.
func (f *fleet) leftBehind() map[string]int {
	owned, pending := map[int64]bool{}, map[int64]bool{}
	for _, h := range f.hosts {
		if !h.gone {
			for _, e := range readConfig(h.p) {
				owned[e.ID] = true
			}
			for _, id := range pendingRemovals(h.p) {
				pending[id] = true
			}
		}
	}
	out := map[string]int{}
	for _, r := range f.sim.Runners() {
		switch {
		case owned[r.ID], f.foreign[r.ID]:
		case pending[r.ID]:
			out["removal pending in a host's state file"]++
		case f.retired[r.ID]:
			out["of a decommissioned host"]++
		default:
			why := f.named[r.ID]
			if i := strings.IndexAny(why, "(,"); i > 0 {
				why = strings.TrimSpace(why[:i])
			}
			out["named: "+why]++
		}
	}
	return out
}

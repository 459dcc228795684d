// Package ownership checks, over HTTP against the simulator with its
// clock and version profiles, that a host's claim on its runners holds
// over time: managers going stale, GitLab versions without the managers
// route, runners shared by several hosts, hosts cloned from one image or
// renamed, and GitLab's smaller divergences.
package ownership

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/engine"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/hostfs"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/plan"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/redact"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/testkit/coretest"
)

// host is one machine with a prefix, a host name and a machine identity.
type host struct {
	t       *testing.T
	sim     *coretest.Sim
	p       *coretest.Prefix
	name    string
	machine hostfs.Machine
	pat     string
	// fleet is the fleet its runners are marked for (testFleet unless a
	// test says otherwise).
	fleet string
}

// testFleet is the fleet the tests' hosts belong to.
const testFleet = "farm"

func newHost(t *testing.T, sim *coretest.Sim, name, machineID, hardware string) *host {
	t.Helper()
	p := coretest.NewPrefix(t, "main")
	p.Remove(".runner_system_id") // derived from the machine id, as gitlab-runner does
	h := &host{t: t, sim: sim, p: p, name: name, machine: hostfs.Machine{ID: machineID, Hardware: hardware}, pat: coretest.AdminPAT, fleet: testFleet}
	h.template()
	return h
}

func (h *host) template() {
	h.p.Template("concurrent = 2\n", coretest.ClientConfig{URL: h.sim.URL, PAT: h.pat})
}

func (h *host) executor(name, extra string) {
	h.p.Executor(name+".toml", "url = \""+h.sim.URL+"\"\nexecutor = \"shell\"\n"+extra)
}

func (h *host) run(mods ...func(*engine.Options)) (*engine.Result, error) {
	h.t.Helper()
	sec := redact.New()
	o := engine.Options{Prefix: h.p.Dir, Instance: "main", Hostname: h.name,
		Secrets: sec, Machine: &h.machine, Now: h.sim.Now, Fleet: h.fleet, Limits: engine.Limits{Concurrency: engine.DefaultConcurrency, Request: coretest.Patient.Request, Lock: coretest.Patient.Lock, RetryBudget: 5 * time.Second, MaxAttempts: 2}}
	for _, m := range mods {
		m(&o)
	}
	res, err := engine.Run(context.Background(), o)
	var out bytes.Buffer
	if res != nil {
		b, _ := json.Marshal(res)
		out.Write(b)
	}
	if err != nil {
		out.WriteString("\n" + sec.Redact(err.Error()))
	}
	coretest.Record(h.t, "result", out.Bytes())
	return res, err
}

func (h *host) mustRun(mods ...func(*engine.Options)) *engine.Result {
	h.t.Helper()
	res, err := h.run(mods...)
	if err != nil {
		h.t.Fatalf("%s: run failed: %v", h.name, err)
	}
	return res
}

// config is the host's config.main.toml.
func (h *host) config() []coretest.Entry {
	h.t.Helper()
	return h.p.Entries(h.t)
}

func (h *host) ids() []int64 {
	var out []int64
	for _, e := range h.config() {
		out = append(out, e.ID)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func (h *host) systemID() string {
	b, err := os.ReadFile(filepath.Join(h.p.Dir, ".runner_system_id"))
	if err != nil {
		h.t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// poll is what gitlab-runner does while it runs: a job request per
// runner, with this host's system id, which GitLab records as a contact
// of the runner's manager for this host.
func (h *host) poll() {
	h.t.Helper()
	sid := h.systemID()
	for _, e := range h.config() {
		body, _ := json.Marshal(map[string]any{"token": e.Token, "system_id": sid})
		resp, err := http.Post(h.sim.URL+"/api/v4/jobs/request", "application/json", bytes.NewReader(body))
		if err != nil {
			h.t.Fatal(err)
		}
		resp.Body.Close()
	}
}

// actions maps runner names to what the result did to them.
func actions(res *engine.Result) map[string]plan.Action {
	out := map[string]plan.Action{}
	for _, r := range res.Runners {
		out[r.Name] = r.Action
	}
	return out
}

func simIDs(sim *coretest.Sim) []int64 {
	var out []int64
	for _, r := range sim.Runners() {
		out = append(out, r.ID)
	}
	return out
}

func readFile(dir, rel string) ([]byte, error) { return os.ReadFile(filepath.Join(dir, rel)) }

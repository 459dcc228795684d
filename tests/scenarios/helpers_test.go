package scenarios

import (
	"context"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/engine"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/testkit/coretest"
)

const host = "node12"

// run calls the engine for the prefix with the options a host would use;
// mod adjusts them. Everything the run reports is checked for secrets.
func run(t *testing.T, p *coretest.Prefix, mod func(*engine.Options)) coretest.Outcome {
	t.Helper()
	o := engine.Options{
		Prefix: p.Dir, Instance: p.Instance, Hostname: host, Limits: engine.Limits{Concurrency: engine.DefaultConcurrency, Request: coretest.Patient.Request, Lock: coretest.Patient.Lock},
	}
	if mod != nil {
		mod(&o)
	}
	return coretest.Run(t, context.Background(), o)
}

// mustRun runs and fails the test on any error.
func mustRun(t *testing.T, p *coretest.Prefix, mod func(*engine.Options)) *engine.Result {
	t.Helper()
	oc := run(t, p, mod)
	if oc.Err != nil {
		t.Fatalf("run failed: %v\nlogs: %q", oc.Err, oc.Logs)
	}
	if oc.Res == nil || oc.Res.Check {
		t.Fatalf("result %+v: want an applied run", oc.Res)
	}
	return oc.Res
}

func check(o *engine.Options)      { o.Check = true }
func refresh(o *engine.Options)    { o.Refresh = true }
func unregister(o *engine.Options) { o.Remove = engine.Unregister }

// both applies several option changes.
func both(mods ...func(*engine.Options)) func(*engine.Options) {
	return func(o *engine.Options) {
		for _, m := range mods {
			if m != nil {
				m(o)
			}
		}
	}
}

// standard lays out three executors (TOML and YAML) against one simulator.
func standard(t *testing.T) (*coretest.Sim, *coretest.Prefix) {
	t.Helper()
	t.Setenv("GRA_TEST_PARTITION", "pbatch")
	return standardLayout(t)
}

// standardLayout is standard for tests that set GRA_TEST_PARTITION
// themselves (parallel subtests may not).
func standardLayout(t *testing.T) (*coretest.Sim, *coretest.Prefix) {
	t.Helper()
	sim := coretest.NewSim(t, coretest.SimOptions())
	p := coretest.NewPrefix(t, "main")
	p.Template("concurrent = 4\ncheck_interval = 0\n\n[session_server]\n  session_timeout = 1800\n",
		coretest.ClientConfig{URL: sim.URL, PAT: coretest.AdminPAT})
	p.Executor("shell.toml", "url = \""+sim.URL+"\"\nexecutor = \"shell\"\ntags = [\"fast\"]\nbuilds_dir = \"/scratch/builds\"\n[cache]\n  Type = \"s3\"\n")
	p.Executor("docker.yaml", "url: "+sim.URL+"\nexecutor: docker\nrun_untagged: false\ndocker:\n  image: alpine:3\n  privileged: false\n")
	p.Executor("gpu.yml", "url: "+sim.URL+"/\nexecutor: custom\ndescription: GPU nodes\nenv_tags: [GRA_TEST_PARTITION, GRA_TEST_UNSET]\ncustom:\n  run_exec: /opt/run.sh\n")
	return sim, p
}

// checkRun runs in check mode and proves it changed nothing: no mutating
// request, no file written or created.
func checkRun(t *testing.T, sim *coretest.Sim, p *coretest.Prefix, mod func(*engine.Options)) coretest.Outcome {
	t.Helper()
	before := coretest.Snapshot(t, p.ConfigPath())
	entries := names(t, p.Dir)
	sim.ResetLog()
	oc := run(t, p, both(mod, check))
	if n := sim.MutatingRequests(); n != 0 {
		t.Fatalf("check mode made %d mutating requests: %+v", n, sim.Requests())
	}
	if !before.Same(coretest.Snapshot(t, p.ConfigPath())) {
		t.Fatalf("check mode touched %s", p.ConfigPath())
	}
	if after := names(t, p.Dir); !reflect.DeepEqual(entries, after) {
		t.Fatalf("check mode created or removed files: %v -> %v", entries, after)
	}
	if oc.Res == nil || !oc.Res.Check {
		t.Fatalf("check-mode result %+v does not say so", oc.Res)
	}
	return oc
}

// mustCheck is checkRun that must succeed.
func mustCheck(t *testing.T, sim *coretest.Sim, p *coretest.Prefix, mod func(*engine.Options)) *engine.Result {
	t.Helper()
	oc := checkRun(t, sim, p, mod)
	if oc.Err != nil {
		t.Fatalf("check failed: %v", oc.Err)
	}
	return oc.Res
}

func names(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

// steps renders each runner of a result as "action name (id N)"; the id is
// left out when it is 0 (a create or replace not carried out yet).
func steps(res *engine.Result) []string {
	var out []string
	for _, r := range res.Runners {
		s := string(r.Action) + " " + r.Name
		if r.ID != 0 {
			s += fmt.Sprintf(" (id %d)", r.ID)
		}
		if r.Error != "" {
			s += " failed: " + r.Error
		}
		out = append(out, s)
	}
	return out
}

// wantSteps fails unless the result has exactly these steps.
func wantSteps(t *testing.T, res *engine.Result, want []string) {
	t.Helper()
	if got := steps(res); !reflect.DeepEqual(got, want) {
		t.Fatalf("steps %q, want %q", got, want)
	}
}

// expect renders "action name (id N)" pairs; an action ending in "!" has no id.
func expect(id map[string]int64, pairs ...string) []string {
	var out []string
	for i := 0; i+1 < len(pairs); i += 2 {
		action, name := pairs[i], pairs[i+1]
		if strings.HasSuffix(action, "!") {
			out = append(out, strings.TrimSuffix(action, "!")+" "+name)
			continue
		}
		out = append(out, fmt.Sprintf("%s %s (id %d)", action, name, id[name]))
	}
	return out
}

type liveRunner struct {
	Name            string    `toml:"name"`
	URL             string    `toml:"url"`
	ID              int64     `toml:"id"`
	Token           string    `toml:"token"`
	TokenObtainedAt time.Time `toml:"token_obtained_at"`
	TokenExpiresAt  time.Time `toml:"token_expires_at"`
	Executor        string    `toml:"executor"`
}

func parseConfig(t *testing.T, p *coretest.Prefix) (map[string]any, []liveRunner) {
	t.Helper()
	var raw map[string]any
	if _, err := toml.Decode(p.Config(), &raw); err != nil {
		t.Fatalf("config does not parse: %v\n%s", err, p.Config())
	}
	var typed struct {
		Runners []liveRunner `toml:"runners"`
	}
	if _, err := toml.Decode(p.Config(), &typed); err != nil {
		t.Fatal(err)
	}
	return raw, typed.Runners
}

func byName(rs []liveRunner) map[string]liveRunner {
	m := map[string]liveRunner{}
	for _, r := range rs {
		m[r.Name] = r
	}
	return m
}

var stdDesc = map[string]string{"docker": "node12 main docker Runner", "gpu": "GPU nodes", "shell": "node12 main shell Runner"}

// ids maps executor names of the standard layout to their runner ids.
func ids(sim *coretest.Sim) map[string]int64 {
	out := map[string]int64{}
	for _, r := range sim.Runners() {
		for n, d := range stdDesc {
			if r.Description == d {
				out[n] = r.ID
			}
		}
	}
	return out
}

func keysOf(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func sorted(list []string) []string {
	out := append([]string(nil), list...)
	sort.Strings(out)
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// warned reports whether some warning of the result contains s.
func warned(res *engine.Result, s string) bool {
	for _, w := range res.Warnings {
		if strings.Contains(w, s) {
			return true
		}
	}
	return false
}

// onlyVerifies fails unless every logged request is a runner-token verify
// (n of them): no read with the PAT, no change.
func onlyVerifies(t *testing.T, sim *coretest.Sim, n int) {
	t.Helper()
	reqs := sim.Requests()
	if len(reqs) != n {
		t.Fatalf("%d requests, want exactly %d verifies: %+v", len(reqs), n, reqs)
	}
	for _, e := range reqs {
		if e.Kind() != "verify" || e.Mutating || strings.HasPrefix(e.Auth, "pat") {
			t.Errorf("unexpected request %s %s (kind %s, auth %s)", e.Method, e.Path, e.Kind(), e.Auth)
		}
	}
}

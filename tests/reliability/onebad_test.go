package reliability

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/config"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/engine"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/hostfs"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/plan"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/testkit/coretest"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/testkit/gitlabsim"
)

// TestOneBadExecutorNeverTakesTheOthersOffline: every case of the bad
// input catalogue whose fault is one executor's file, run as systemd runs
// register-runner (no --strict): the start succeeds, the bad executor is
// skipped — named with its file and cause in the report, the journal
// (stderr) and the state file — its last good entry kept with its token,
// and every other executor served. The catalogue checks the same cases
// fail with --strict.
func TestOneBadExecutorNeverTakesTheOthersOffline(t *testing.T) {
	n := 0
	for _, tc := range badInputs {
		if !strings.HasPrefix(tc.want.file, "main/") || filepath.Ext(tc.want.file) == "" {
			continue // the template, an option, the live config: nothing can be served
		}
		n++
		t.Run(tc.name, func(t *testing.T) {
			w := baseline(t)
			if code, _, stderr := runBinary(t, nil, w.cliArgs()...); code != 0 {
				t.Fatalf("good run failed: %s", stderr)
			}
			before, _ := w.config(t)
			extra := tc.setup(t, w)
			code, stdout, stderr := runBinary(t, nil, w.cliArgs(append(extra, "--output", "json")...)...)
			var r struct {
				Failed  bool                     `json:"failed"`
				Skipped []engine.SkippedExecutor `json:"skipped"`
			}
			if err := json.Unmarshal([]byte(stdout), &r); err != nil {
				t.Fatalf("not JSON: %v\n%s", err, stdout)
			}
			if code != 0 || r.Failed || len(r.Skipped) == 0 {
				t.Fatalf("exit %d, report %s: want the start to succeed with the bad executor skipped", code, stdout)
			}
			skipped := map[string]bool{}
			for _, s := range r.Skipped {
				if s.Reason != config.SkipInvalid || s.Cause == "" || s.File == "" {
					t.Errorf("skipped %+v: want reason invalid, its file and the cause", s)
				}
				if !strings.Contains(stderr, s.File) {
					t.Errorf("stderr does not name %s:\n%s", s.File, stderr)
				}
				skipped[s.Name] = true
			}
			after, _ := w.config(t)
			byName := map[string]entry{}
			for _, e := range after {
				byName[e.Name] = e
			}
			for _, e := range before {
				name := identity.FindStringSubmatch(e.Name)
				if name == nil || !skipped[name[1]] {
					continue
				}
				if byName[e.Name].Token != e.Token {
					t.Errorf("skipped %s: its last good entry was not kept", name[1])
				}
			}
			for _, d := range declared {
				if skipped[d] {
					continue
				}
				e, ok := byName[hostname+" main "+d+" Runner"]
				if !ok {
					t.Errorf("executor %s is not served", d)
					continue
				}
				if id, ok := w.sim.VerifyToken(e.Token); !ok || id != e.ID {
					t.Errorf("executor %s: its token does not verify", d)
				}
			}
			st, _, err := hostfs.ReadState(hostfs.Layout{Prefix: w.p.Dir, Instance: "main"})
			if err != nil {
				t.Fatal(err)
			}
			for name := range skipped {
				if d, ok := st.Degraded[name]; !ok || d.Reason != config.SkipInvalid || d.Since.IsZero() {
					t.Errorf("the state file does not record %s as degraded: %+v", name, st.Degraded)
				}
			}
		})
	}
	if n < 20 {
		t.Fatalf("only %d catalogue cases are about one executor's file", n)
	}
	reportf(t, "one bad executor: %d catalogue cases, each start succeeds with the others served and the bad one named", n)
}

// An executor that worked and whose file is then broken keeps running on
// its last good entry — same runner, same token, not deleted in GitLab —
// until the file is fixed; then it is served again and no longer reported.
func TestBrokenExecutorKeepsItsLastGoodEntry(t *testing.T) {
	w := baseline(t)
	if code, _, stderr := runBinary(t, nil, w.cliArgs()...); code != 0 {
		t.Fatalf("good run failed: %s", stderr)
	}
	a := w.id(t, "a")
	before, _ := w.config(t)
	good := executorFile(w.sim.URL, "a", "")
	w.p.Executor("a.toml", good+"tags = \"not a list\"\n")
	w.sim.ResetLog()
	for i := 0; i < 2; i++ {
		code, stdout, stderr := runBinary(t, nil, w.cliArgs("--output", "json")...)
		if code != 0 {
			t.Fatalf("start %d: exit %d\n%s\n%s", i, code, stdout, stderr)
		}
		var r struct {
			Skipped []engine.SkippedExecutor `json:"skipped"`
		}
		_ = json.Unmarshal([]byte(stdout), &r)
		if len(r.Skipped) != 1 || r.Skipped[0].Name != "a" || !r.Skipped[0].Kept || r.Skipped[0].File != "main/a.toml" {
			t.Fatalf("start %d: skipped %+v, want a, its entry kept", i, r.Skipped)
		}
	}
	after, _ := w.config(t)
	entryOf := func(es []entry) entry {
		for _, e := range es {
			if e.ID == a {
				return e
			}
		}
		return entry{}
	}
	if entryOf(before).Token == "" || entryOf(before) != entryOf(after) {
		t.Fatalf("a's entry changed: %+v -> %+v", entryOf(before), entryOf(after))
	}
	if _, ok := w.sim.Runner(a); !ok || w.sim.RequestCounts().Mutating != 0 {
		t.Fatalf("a's runner deleted (%v) or GitLab changed (%d mutating requests) for a broken file", !ok, w.sim.RequestCounts().Mutating)
	}
	w.p.Executor("a.toml", good)
	code, stdout, _ := runBinary(t, nil, w.cliArgs("--output", "json")...)
	st, _, _ := hostfs.ReadState(hostfs.Layout{Prefix: w.p.Dir, Instance: "main"})
	if code != 0 || strings.Contains(stdout, `"skipped"`) || len(st.Degraded) != 0 {
		t.Fatalf("fixed: exit %d, state degraded %+v\n%s", code, st.Degraded, stdout)
	}
	w.converged(t, declared)
}

// heldReport is what --output json says of a start with a broken
// executor file.
type heldReport struct {
	Runners []engine.RunnerResult    `json:"runners"`
	Skipped []engine.SkippedExecutor `json:"skipped"`
}

func (r heldReport) runner(name string) *engine.RunnerResult {
	for i := range r.Runners {
		if r.Runners[i].Name == name {
			return &r.Runners[i]
		}
	}
	return nil
}

func startWithBrokenA(t *testing.T, w *world, extra ...string) heldReport {
	t.Helper()
	code, stdout, stderr := runBinary(t, nil, w.cliArgs(append(extra, "--output", "json")...)...)
	if code != 0 {
		t.Fatalf("exit %d with a's file broken: want the start to serve what it can\n%s\n%s", code, stdout, stderr)
	}
	var r heldReport
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, stdout)
	}
	if len(r.Skipped) != 1 || r.Skipped[0].Name != "a" || r.Skipped[0].Reason != config.SkipInvalid {
		t.Fatalf("skipped %+v: want a, invalid", r.Skipped)
	}
	return r
}

// While an executor's file is broken its last good entry stays where it
// was, in name order (no rewrite of config.<instance>.toml at all, nor when
// the file is fixed), its token is verified like any other (one verify per
// executor, nothing with the personal access token), and --output json
// lists it among the runners, marked as the last good entry.
func TestBrokenExecutorKeepsItsPlaceAndIsVerified(t *testing.T) {
	w := baseline(t)
	if code, _, stderr := runBinary(t, nil, w.cliArgs()...); code != 0 {
		t.Fatalf("good run failed: %s", stderr)
	}
	a := w.id(t, "a")
	before := coretest.Snapshot(t, w.p.ConfigPath())
	good := executorFile(w.sim.URL, "a", "")
	w.p.Executor("a.toml", good+"tags = \"not a list\"\n")
	w.sim.ResetLog()
	r := startWithBrokenA(t, w)
	if after := coretest.Snapshot(t, w.p.ConfigPath()); !after.Same(before) {
		t.Fatalf("a's file broken: the config was rewritten (entries must stay in name order):\n--- before\n%s--- after\n%s", before.Data, after.Data)
	}
	if ra := r.runner("a"); ra == nil || ra.ID != a || ra.Action != plan.Keep || !ra.LastGood || !r.Skipped[0].Kept {
		t.Fatalf("runners %+v, skipped %+v: want a (id %d) kept from its last good entry", r.Runners, r.Skipped, a)
	}
	if c := w.sim.RequestCounts(); c.Total != len(declared) || c.ByKind["verify"] != len(declared) {
		t.Fatalf("GitLab saw %+v: want one verify per executor (%d), the broken one's included, and nothing else", c, len(declared))
	}
	w.p.Executor("a.toml", good)
	if code, stdout, stderr := runBinary(t, nil, w.cliArgs()...); code != 0 {
		t.Fatalf("fixed: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if after := coretest.Snapshot(t, w.p.ConfigPath()); !after.Same(before) {
		t.Fatalf("a's file fixed: the config was rewritten:\n--- before\n%s--- after\n%s", before.Data, after.Data)
	}
}

// A broken executor whose runner GitLab no longer has (deleted in the UI,
// its token revoked): its last good entry is verified, GitLab rejects the
// token, so the entry leaves the config — gitlab-runner would only ask for
// jobs with a dead token — and the start says so; the state file still
// names the runner, so fixing the file heals the executor. On a degraded
// start (GitLab unreachable) the entry is kept unverified.
func TestBrokenExecutorWithARejectedTokenLeavesTheConfig(t *testing.T) {
	w := baseline(t)
	if code, _, stderr := runBinary(t, nil, w.cliArgs()...); code != 0 {
		t.Fatalf("good run failed: %s", stderr)
	}
	a := w.id(t, "a")
	good := executorFile(w.sim.URL, "a", "")
	w.p.Executor("a.toml", good+"tags = \"not a list\"\n")

	// GitLab down: kept, unverified.
	w.sim.InjectFault(gitlabsim.Fault{Type: gitlabsim.FaultDrop, Times: -1})
	r := startWithBrokenA(t, w, "--timeout", "10m")
	if ra := r.runner("a"); ra == nil || ra.ID != a || ra.Action != plan.Keep || !ra.LastGood || !r.Skipped[0].Kept {
		t.Fatalf("GitLab down: runners %+v, skipped %+v: want a's last good entry kept", r.Runners, r.Skipped)
	}
	w.sim.ClearFaults()

	w.sim.DeleteRunner(a)
	r = startWithBrokenA(t, w)
	if ra := r.runner("a"); ra == nil || ra.ID != a || ra.Action != plan.Forget || !ra.LastGood || r.Skipped[0].Kept {
		t.Fatalf("runners %+v, skipped %+v: want a's last good entry (id %d) forgotten, not kept", r.Runners, r.Skipped, a)
	}
	entries, _ := w.config(t)
	for _, e := range entries {
		if e.ID == a {
			t.Fatalf("the config keeps runner %d, whose token GitLab rejects", a)
		}
		if id, ok := w.sim.VerifyToken(e.Token); !ok || id != e.ID {
			t.Fatalf("config entry %s (id %d): token does not verify", e.Name, e.ID)
		}
	}
	st, _, _ := hostfs.ReadState(hostfs.Layout{Prefix: w.p.Dir, Instance: "main"})
	if st.Runners["a"].ID != a {
		t.Fatalf("the state file no longer names a's runner %d: %+v", a, st.Runners)
	}
	w.p.Executor("a.toml", good)
	if code, stdout, stderr := runBinary(t, nil, w.cliArgs()...); code != 0 {
		t.Fatalf("fixed: exit %d\n%s\n%s", code, stdout, stderr)
	}
	w.converged(t, declared)
}

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/plan"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/prune"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/redact"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/testkit/coretest"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/testkit/gitlabsim"
)

// pruneSetup is a GitLab with one live host's runner (nodea), a
// decommissioned host's (noded), the runner of a host that missed the
// run (nodeg) and another team's, ten days after they were created.
type pruneSetup struct {
	sim                    *coretest.Sim
	patFile                string
	live, gone, missing, x int64
}

func newPruneSetup(t *testing.T) pruneSetup {
	// The controller's record of first sightings goes to a folder of the test's.
	t.Setenv("XDG_STATE_HOME", t.TempDir())
	sim := coretest.NewSim(t, coretest.SimOptions())
	runner := func(host string) gitlabsim.Runner {
		return gitlabsim.Runner{Description: host + " main shell Runner", TagList: []string{"main", "shell"}, MaintenanceNote: coretest.Marked("ci", host)}
	}
	// Created ten days ago; GitLab's clock and this machine's agree.
	ids := sim.AddRunnersAgo(10*24*time.Hour, runner("nodea"), runner("noded"), runner("nodeg"),
		gitlabsim.Runner{Description: "team-x builder", TagList: []string{"main", "shell"}})
	ps := pruneSetup{sim: sim, live: ids[0], gone: ids[1], missing: ids[2], x: ids[3]}
	ps.patFile = filepath.Join(t.TempDir(), "pat")
	if err := os.WriteFile(ps.patFile, []byte(coretest.AdminPAT+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return ps
}

func (ps pruneSetup) run(t *testing.T, extra ...string) result {
	t.Helper()
	args := append([]string{"prune", "--url", ps.sim.URL, "--personal-access-token-file", ps.patFile, "--fleet", "ci", "--tag", "main",
		"--hosts-expected", "nodea,nodeg", "--hosts-reported", "nodea", "--request-timeout", coretest.Patient.Request.String()}, extra...)
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	coretest.Record(t, "stdout", out.Bytes())
	coretest.Record(t, "stderr", errb.Bytes())
	for _, s := range []string{out.String(), errb.String()} {
		if secret := coretest.FindSecret(s); secret != "" {
			t.Fatalf("a secret reached the output: %s", secret)
		}
	}
	return result{code, out.String(), errb.String()}
}

type pruneReport struct {
	prune.Result
	WouldDelete []int64 `json:"-"`
	Failed      bool    `json:"failed"`
	InputError  bool    `json:"input_error"`
	Diff        *struct {
		Before, After string
	} `json:"diff"`
}

func decodePrune(t *testing.T, stdout string) pruneReport {
	t.Helper()
	var r pruneReport
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatalf("--output json: %v\n%s", err, stdout)
	}
	for _, rr := range r.Runners {
		if rr.Action == "delete" {
			r.WouldDelete = append(r.WouldDelete, rr.ID)
		}
	}
	return r
}

// register-runner prune takes the keep list from --keep and --keep-file,
// keeps the runner of a host that missed the run, says in check mode
// what it would delete without deleting it, then deletes exactly that.
func TestPruneCommand(t *testing.T) {
	ps := newPruneSetup(t)
	keep := filepath.Join(t.TempDir(), "keep")
	if err := os.WriteFile(keep, []byte(fmt.Sprintf("# ids the hosts reported\n%d\n\n", ps.live)), 0o644); err != nil {
		t.Fatal(err)
	}
	r := ps.run(t, "--keep-file", keep, "--check", "--output", "json", "--diff")
	mustExit(t, r, exitOK)
	rep := decodePrune(t, r.stdout)
	if !reflect.DeepEqual(rep.WouldDelete, []int64{ps.gone}) || !rep.Check || !rep.Changed || rep.Deleted != 0 {
		t.Fatalf("check: would delete %v (changed %v, deleted %d), want [%d]", rep.WouldDelete, rep.Changed, rep.Deleted, ps.gone)
	}
	rules := map[int64]string{}
	for _, rr := range rep.Runners {
		rules[rr.ID] = rr.Rule
	}
	want := map[int64]string{ps.live: plan.PruneReported.Name, ps.gone: plan.PruneIdle.Name, ps.missing: plan.PruneMissing.Name}
	if !reflect.DeepEqual(rules, want) {
		t.Fatalf("rules %v, want %v (another team's runner is not listed)", rules, want)
	}
	if rep.Diff == nil || rep.Diff.Before == rep.Diff.After || len(lines(rep.Diff.Before)) != 3 || len(lines(rep.Diff.After)) != 2 {
		t.Fatalf("--diff: %+v", rep.Diff)
	}
	if len(ps.sim.Runners()) != 4 {
		t.Fatal("--check deleted a runner")
	}

	r = ps.run(t, "--keep", fmt.Sprint(ps.live))
	mustExit(t, r, exitOK)
	if !hasLine(r.stdout, fmt.Sprintf("deleted %d ", ps.gone)) || len(lines(r.stdout)) != 3 {
		t.Fatalf("stdout:\n%s", r.stdout)
	}
	if _, ok := ps.sim.Runner(ps.gone); ok {
		t.Fatal("the decommissioned host's runner is still in GitLab")
	}
	for _, id := range []int64{ps.live, ps.missing, ps.x} {
		if _, ok := ps.sim.Runner(id); !ok {
			t.Fatalf("runner %d was deleted", id)
		}
	}
	// Nothing left to do: success, no change.
	r = ps.run(t, "--keep", fmt.Sprint(ps.live), "--output", "json")
	mustExit(t, r, exitOK)
	if rep := decodePrune(t, r.stdout); rep.Changed || len(rep.WouldDelete) != 0 {
		t.Fatalf("second run: %+v", rep)
	}
}

// --max-delete refuses the whole run (exit 1, nothing deleted, the ids
// listed); --min-idle keeps a runner used within it.
func TestPruneBoundsOnTheCommandLine(t *testing.T) {
	ps := newPruneSetup(t)
	r := ps.run(t, "--max-delete", "1", "--output", "json") // nodea's runner is not kept: two would go
	mustExit(t, r, exitFail)
	rep := decodePrune(t, r.stdout)
	if !rep.Failed || rep.InputError || !reflect.DeepEqual(rep.Refused, []int64{ps.live, ps.gone}) || rep.Deleted != 0 {
		t.Fatalf("--max-delete 1: %+v", rep)
	}
	if len(ps.sim.Runners()) != 4 {
		t.Fatal("a refused run deleted a runner")
	}
	if !hasLine(r.stderr, "register-runner prune: error: ", "--max-delete", "--keep", "--hosts-expected") {
		t.Fatalf("stderr names no flag:\n%s", r.stderr)
	}
	r = ps.run(t, "--min-idle", "11d", "--output", "json")
	mustExit(t, r, exitOK)
	if rep := decodePrune(t, r.stdout); len(rep.WouldDelete) != 0 || rep.Changed {
		t.Fatalf("--min-idle 11d deleted runners created 10 days ago: %+v", rep)
	}
}

// Bad input names the flag, the file and the line, and deletes nothing.
func TestPruneInputErrors(t *testing.T) {
	ps := newPruneSetup(t)
	keep := filepath.Join(t.TempDir(), "keep")
	if err := os.WriteFile(keep, []byte("12\nnodea\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	loose := filepath.Join(t.TempDir(), "pat")
	if err := os.WriteFile(loose, []byte(coretest.AdminPAT), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		args   []string
		option string
		line   int
	}{
		{"keep file", []string{"--keep-file", keep}, "--keep-file", 2},
		{"pattern", []string{"--description-pattern", "(("}, "--description-pattern", 0},
		{"no url", []string{"--url", ""}, "--url", 0},
		{"readable token file", []string{"--personal-access-token-file", loose}, "--personal-access-token-file", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := ps.run(t, append(c.args, "--output", "json")...)
			mustExit(t, r, exitInput)
			ies := inputErrors(t, r.stdout)
			if len(ies) != 1 || ies[0].Option != c.option || ies[0].Line != c.line {
				t.Fatalf("input_errors %+v, want %s line %d", ies, c.option, c.line)
			}
			if len(ps.sim.Runners()) != 4 {
				t.Fatal("bad input deleted a runner")
			}
		})
	}
	r := ps.run(t, "--min-idle", "a week")
	mustExit(t, r, exitInput)
}

// The clean-up's diff is the unified diff difflib gives, made in one pass.
func TestRemovalsDiffIsTheUnifiedDiff(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := 0; round < 200; round++ {
		n := rng.IntN(40)
		var before, after strings.Builder
		for i := 0; i < n; i++ {
			line := fmt.Sprintf("%d node%d main shell Runner\n", i, i)
			before.WriteString(line)
			if rng.IntN(3) != 0 || round%50 == 0 {
				after.WriteString(line)
			}
		}
		var got bytes.Buffer
		printRemovals(redactingWriter{&got, redact.New()}, before.String(), after.String(), "fleet")
		want := unifiedText(before.String(), after.String(), "fleet")
		if got.String() != want {
			t.Fatalf("round %d:\n--- got\n%s--- difflib\n%s", round, got.String(), want)
		}
	}
}

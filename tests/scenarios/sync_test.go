package scenarios

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/engine"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/fleet"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/gitlab"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/input"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/plan"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/tags"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/testkit/coretest"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/testkit/gitlabsim"
)

func TestFirstRunCreatesEveryExecutor(t *testing.T) {
	sim, p := standard(t)
	c := mustCheck(t, sim, p, nil)
	wantSteps(t, c, []string{"create docker", "create gpu", "create shell"})
	if !c.Changed || !c.ConfigChanged || c.ConfigRemoved {
		t.Fatalf("check result %+v: want a change and a new config", c)
	}

	r := mustRun(t, p, nil)
	wantSteps(t, r, expect(ids(sim), "create", "docker", "create", "gpu", "create", "shell"))
	if !r.Changed || !r.ConfigChanged || r.ConfigPath != p.ConfigPath() {
		t.Fatalf("result %+v: want the config %s written", r, p.ConfigPath())
	}
	for _, rr := range r.Runners {
		if rr.URL == "" || rr.Executor == "" || rr.Reason == "" {
			t.Errorf("runner result %+v lacks its URL, executor type or reason", rr)
		}
	}
	runners := sim.Runners()
	if len(runners) != 3 {
		t.Fatalf("%d runners in GitLab, want 3", len(runners))
	}
	want := map[string][]string{
		"node12 main docker Runner": {"docker", "main", "node", "node12", "x86_64"},
		"GPU nodes":                 {"custom", "main", "node", "node12", "pbatch", "x86_64"},
		"node12 main shell Runner":  {"fast", "main", "node", "node12", "shell", "x86_64"},
	}
	for _, rr := range runners {
		tags, ok := want[rr.Description]
		if !ok {
			t.Fatalf("unexpected description %q", rr.Description)
		}
		if got := sorted(rr.TagList); !reflect.DeepEqual(got, tags) {
			t.Errorf("%s: tags %v, want %v", rr.Description, got, tags)
		}
		if rr.RunUntagged {
			t.Errorf("%s: run_untagged is true", rr.Description)
		}
		if rr.Legacy || rr.RunnerType != "instance_type" {
			t.Errorf("%s: created through %v/%s, want the runner creation workflow", rr.Description, rr.Legacy, rr.RunnerType)
		}
	}

	raw, live := parseConfig(t, p)
	if want := []string{"check_interval", "concurrent", "runners", "session_server"}; !reflect.DeepEqual(keysOf(raw), want) {
		t.Fatalf("top-level keys %v, want %v", keysOf(raw), want)
	}
	wantKeys := map[string][]string{
		"node12 main docker Runner": {"docker", "executor", "id", "name", "token", "token_expires_at", "token_obtained_at", "url"},
		"GPU nodes":                 {"custom", "executor", "id", "name", "token", "token_expires_at", "token_obtained_at", "url"},
		"node12 main shell Runner":  {"builds_dir", "cache", "executor", "id", "name", "token", "token_expires_at", "token_obtained_at", "url"},
	}
	for _, rr := range raw["runners"].([]map[string]any) {
		name := rr["name"].(string)
		if got := keysOf(rr); !reflect.DeepEqual(got, wantKeys[name]) {
			t.Errorf("runner %s has keys %v, want %v", name, got, wantKeys[name])
		}
	}
	// gitlab-runner's own keys come first, in its order.
	for _, block := range strings.Split(p.Config(), "[[runners]]")[1:] {
		var order []string
		for _, l := range strings.Split(strings.TrimSpace(block), "\n")[:7] {
			order = append(order, strings.TrimSpace(strings.SplitN(l, "=", 2)[0]))
		}
		if want := []string{"name", "url", "id", "token", "token_obtained_at", "token_expires_at", "executor"}; !reflect.DeepEqual(order, want) {
			t.Fatalf("runner keys start %v, want %v", order, want)
		}
	}
	if !strings.Contains(p.Config(), "token_expires_at = 0001-01-01T00:00:00Z") {
		t.Error("a token that does not expire must be written as 0001-01-01T00:00:00Z")
	}
	for _, lr := range live {
		if id, ok := sim.VerifyToken(lr.Token); !ok || id != lr.ID {
			t.Errorf("token of %s does not verify as runner %d", lr.Name, lr.ID)
		}
	}
	fi, err := os.Stat(p.ConfigPath())
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("config mode %o, want 600", fi.Mode().Perm())
	}
}

func TestSecondRunKeepsWithOneVerifyPerExecutor(t *testing.T) {
	sim, p := standard(t)
	mustRun(t, p, nil)
	before := coretest.Snapshot(t, p.ConfigPath())
	// A rewrite now would show in the modification time.
	time.Sleep(20 * time.Millisecond)

	c := mustCheck(t, sim, p, nil)
	wantSteps(t, c, expect(ids(sim), "keep", "docker", "keep", "gpu", "keep", "shell"))
	if c.Changed || c.ConfigChanged {
		t.Fatalf("check result %+v: nothing should change", c)
	}

	sim.ResetLog()
	r := mustRun(t, p, nil)
	wantSteps(t, r, expect(ids(sim), "keep", "docker", "keep", "gpu", "keep", "shell"))
	if r.Changed || r.ConfigChanged {
		t.Fatalf("result %+v: nothing should change", r)
	}
	onlyVerifies(t, sim, 3)
	for _, e := range sim.Requests() {
		if e.SystemID != "s_0123456789ab" {
			t.Errorf("verify sent system_id %q, want the host's s_0123456789ab", e.SystemID)
		}
	}
	if !before.Same(coretest.Snapshot(t, p.ConfigPath())) {
		t.Fatal("the config was rewritten although nothing changed")
	}
	for _, rr := range sim.Runners() {
		if len(rr.Managers) != 1 {
			t.Errorf("runner %d has managers %v, want only this host's system id", rr.ID, rr.Managers)
		}
	}
}

func TestSameExecutorTypeGetsDistinctRunners(t *testing.T) {
	sim, p := coretest.ShellHost(t, coretest.AdminPAT, "")
	p.Executor("shell-big.toml", "url = \""+sim.URL+"\"\nexecutor = \"shell\"\nlimit = 4\n")
	wantSteps(t, mustCheck(t, sim, p, nil), []string{"create shell", "create shell-big"})
	mustRun(t, p, nil)
	rs := sim.Runners()
	if len(rs) != 2 || rs[0].Description == rs[1].Description {
		t.Fatalf("want two distinct runners, got %+v", rs)
	}
	_, live := parseConfig(t, p)
	if len(live) != 2 || live[0].Token == live[1].Token || live[0].ID == live[1].ID {
		t.Fatalf("want two config entries with their own tokens, got %d", len(live))
	}
	descs := map[string]bool{rs[0].Description: true, rs[1].Description: true}
	// The stem equals the executor type: the original tool's description.
	if !descs["node12 main shell Runner"] || !descs["node12 main shell-big Runner"] {
		t.Fatalf("descriptions %v", descs)
	}
}

func TestRemovedExecutorIsDeleted(t *testing.T) {
	sim, p := standard(t)
	mustRun(t, p, nil)
	_, before := parseConfig(t, p)
	id := ids(sim)
	p.Remove("main/docker.yaml")

	wantSteps(t, mustCheck(t, sim, p, nil), expect(id, "keep", "gpu", "keep", "shell", "delete", "docker"))
	r := mustRun(t, p, nil)
	wantSteps(t, r, expect(id, "keep", "gpu", "keep", "shell", "delete", "docker"))
	if !r.Changed || !r.ConfigChanged {
		t.Fatalf("result %+v: want a change and a rewritten config", r)
	}
	if _, ok := sim.Runner(id["docker"]); ok {
		t.Fatal("the docker runner still exists")
	}
	_, after := parseConfig(t, p)
	if len(after) != 2 {
		t.Fatalf("config has %d runners, want 2", len(after))
	}
	b := byName(before)
	for _, lr := range after {
		if b[lr.Name].Token != lr.Token || b[lr.Name].ID != lr.ID {
			t.Errorf("%s changed", lr.Name)
		}
		if _, ok := sim.Runner(lr.ID); !ok {
			t.Errorf("runner %d was removed", lr.ID)
		}
	}
}

func TestRevokedTokenIsHealedByAdopt(t *testing.T) {
	for _, kind := range []string{"revoked", "expired"} {
		t.Run(kind, func(t *testing.T) {
			sim, p := standard(t)
			mustRun(t, p, nil)
			_, before := parseConfig(t, p)
			id := ids(sim)
			if kind == "revoked" {
				sim.RevokeToken(id["shell"])
			} else {
				sim.ExpireToken(id["shell"])
			}
			wantSteps(t, mustCheck(t, sim, p, nil), expect(id, "keep", "docker", "keep", "gpu", "adopt", "shell"))
			sim.ResetLog()
			r := mustRun(t, p, nil)
			wantSteps(t, r, expect(id, "keep", "docker", "keep", "gpu", "adopt", "shell"))
			if len(sim.Runners()) != 3 {
				t.Fatalf("%d runners, want 3", len(sim.Runners()))
			}
			_, after := parseConfig(t, p)
			b := byName(before)
			for _, lr := range after {
				if lr.ID != b[lr.Name].ID {
					t.Errorf("%s: id %d, want %d", lr.Name, lr.ID, b[lr.Name].ID)
				}
				if id, ok := sim.VerifyToken(lr.Token); !ok || id != lr.ID {
					t.Errorf("%s: token does not verify", lr.Name)
				}
				if lr.ID != id["shell"] && lr.Token != b[lr.Name].Token {
					t.Errorf("%s: token changed though it was fine", lr.Name)
				}
				if lr.ID == id["shell"] && lr.Token == b[lr.Name].Token {
					t.Errorf("%s: the rejected token is still in the config", lr.Name)
				}
			}
			counts := sim.Counts()
			if counts["reset"] != 1 || counts["create"] != 0 || counts["delete-id"] != 0 || counts["delete-token"] != 0 {
				t.Errorf("requests %v: want one reset and nothing else mutating", counts)
			}
		})
	}
}

func TestRunnerDeletedInGitLabIsReplaced(t *testing.T) {
	sim, p := standard(t)
	mustRun(t, p, nil)
	_, before := parseConfig(t, p)
	id := ids(sim)
	sim.DeleteRunner(id["docker"])
	wantSteps(t, mustCheck(t, sim, p, nil), expect(id, "replace!", "docker", "keep", "gpu", "keep", "shell"))
	r := mustRun(t, p, nil)
	newID := ids(sim)["docker"]
	if newID == id["docker"] {
		t.Fatalf("the docker runner kept id %d", newID)
	}
	wantSteps(t, r, expect(map[string]int64{"docker": newID, "gpu": id["gpu"], "shell": id["shell"]},
		"replace", "docker", "keep", "gpu", "keep", "shell"))
	_, after := parseConfig(t, p)
	b := byName(before)
	for _, lr := range after {
		if lr.Name != "node12 main docker Runner" && (lr.Token != b[lr.Name].Token || lr.ID != b[lr.Name].ID) {
			t.Errorf("%s changed", lr.Name)
		}
		if lr.Name == "node12 main docker Runner" && lr.ID != newID {
			t.Errorf("config names runner %d for docker, want the new %d", lr.ID, newID)
		}
	}
	if len(sim.Runners()) != 3 {
		t.Fatalf("%d runners, want 3", len(sim.Runners()))
	}
}

func TestLostConfigIsRecoveredByAdoptingEveryRunner(t *testing.T) {
	sim, p := standard(t)
	mustRun(t, p, nil)
	known := map[int64]bool{}
	for _, r := range sim.Runners() {
		known[r.ID] = true
	}
	if err := os.Remove(p.ConfigPath()); err != nil {
		t.Fatal(err)
	}
	// The state file may be lost with it.
	_ = os.Remove(filepath.Join(p.Dir, ".gitlab-runner-auth.main.json"))

	wantSteps(t, mustCheck(t, sim, p, nil), expect(ids(sim), "adopt", "docker", "adopt", "gpu", "adopt", "shell"))
	wantSteps(t, mustRun(t, p, nil), expect(ids(sim), "adopt", "docker", "adopt", "gpu", "adopt", "shell"))
	rs := sim.Runners()
	if len(rs) != 3 {
		t.Fatalf("%d runners after recovery, want 3 (no duplicates)", len(rs))
	}
	for _, rr := range rs {
		if !known[rr.ID] {
			t.Errorf("new runner %d created", rr.ID)
		}
	}
	_, live := parseConfig(t, p)
	if len(live) != 3 {
		t.Fatalf("recovered config has %d runners, want 3", len(live))
	}
	for _, lr := range live {
		if _, ok := sim.VerifyToken(lr.Token); !ok {
			t.Errorf("%s: token does not verify", lr.Name)
		}
	}
	// And the run after that is a plain steady state again.
	sim.ResetLog()
	mustRun(t, p, nil)
	onlyVerifies(t, sim, 3)
}

// TestTwoGitLabsEachGetTheirExecutors also proves URLs are matched after
// normalisation: GitLab B's client entry, and the executors declared
// against it, spell its URL differently (scheme and host case, host name
// vs address, trailing slash).
func TestTwoGitLabsEachGetTheirExecutors(t *testing.T) {
	a := coretest.NewSim(t, coretest.SimOptions())
	b := coretest.NewSim(t, coretest.SimOptions())
	bLocal := strings.Replace(b.URL, "127.0.0.1", "localhost", 1)
	if bLocal == b.URL {
		t.Fatalf("simulator URL %s is not on 127.0.0.1", b.URL)
	}
	p := coretest.NewPrefix(t, "main")
	p.Template("concurrent = 2", coretest.ClientConfig{URL: a.URL, PAT: coretest.AdminPAT},
		coretest.ClientConfig{URL: strings.Replace(bLocal, "localhost", "LocalHost", 1) + "/", PAT: coretest.AdminPAT})
	p.Executor("one.toml", "url = \""+a.URL+"\"\nexecutor = \"shell\"\n")
	p.Executor("two.toml", "url = \""+bLocal+"\"\nexecutor = \"shell\"\n")
	p.Executor("three.toml", "url = \""+strings.ToUpper(bLocal)+"/\"\nexecutor = \"docker\"\n")
	b.ResetLog()
	c := mustCheck(t, a, p, nil)
	wantSteps(t, c, []string{"create one", "create three", "create two"})
	if b.MutatingRequests() != 0 || len(b.Runners()) != 0 {
		t.Fatal("check mode changed the second GitLab")
	}
	r := mustRun(t, p, nil)
	urls := map[string]string{}
	for _, rr := range r.Runners {
		urls[rr.Name] = rr.URL
	}
	// Each runner reports the URL of the client entry it used.
	if urls["one"] != a.URL || urls["two"] != urls["three"] || !strings.EqualFold(urls["two"], bLocal+"/") {
		t.Fatalf("runner URLs %v", urls)
	}
	if n := len(a.Runners()); n != 1 || a.Runners()[0].Description != "node12 main one Runner" {
		t.Fatalf("GitLab A has %+v", a.Runners())
	}
	if n := len(b.Runners()); n != 2 {
		t.Fatalf("GitLab B has %d runners, want 2", n)
	}
	_, live := parseConfig(t, p)
	if len(live) != 3 {
		t.Fatalf("config has %d runners, want 3", len(live))
	}
	for _, lr := range live {
		s := a
		if lr.Name != "node12 main one Runner" {
			s = b
		}
		if _, ok := s.VerifyToken(lr.Token); !ok {
			t.Errorf("%s: token does not verify on its own GitLab", lr.Name)
		}
	}
	// Both GitLabs number their runners from 1: the same id on each is
	// two runners. The next run keeps all three, each with its own token,
	// and the differently spelt URLs still name one GitLab.
	before := coretest.Snapshot(t, p.ConfigPath())
	a.ResetLog()
	b.ResetLog()
	again := mustRun(t, p, nil)
	if again.Changed || again.ConfigChanged || !before.Same(coretest.Snapshot(t, p.ConfigPath())) {
		t.Fatalf("second run changed something: %q\n%s", steps(again), p.Config())
	}
	onlyVerifies(t, a, 1)
	onlyVerifies(t, b, 2)
}

func TestLegacyRegistrationToken(t *testing.T) {
	sim, p := coretest.ShellHost(t, "", coretest.RegistrationTok)
	wantSteps(t, mustCheck(t, sim, p, nil), []string{"create shell"})
	mustRun(t, p, nil)
	rs := sim.Runners()
	if len(rs) != 1 || !rs[0].Legacy || rs[0].RunUntagged {
		t.Fatalf("want one legacy runner with run_untagged=false, got %+v", rs)
	}
	// Second run: keep, no registration.
	sim.ResetLog()
	wantSteps(t, mustRun(t, p, nil), []string{"keep shell (id " + itoa(rs[0].ID) + ")"})
	if sim.MutatingRequests() != 0 {
		t.Fatalf("steady state made mutating requests: %v", sim.Counts())
	}

	t.Run("fallback when the PAT lacks create_runner", func(t *testing.T) {
		sim, p := coretest.ShellHost(t, coretest.ReadOnlyPAT, coretest.RegistrationTok)
		wantSteps(t, mustCheck(t, sim, p, nil), []string{"create shell"})
		r := mustRun(t, p, nil)
		if rs := sim.Runners(); len(rs) != 1 || !rs[0].Legacy {
			t.Fatalf("want the legacy fallback, got %+v", rs)
		}
		if c := sim.Counts(); c["create"] != 1 || c["register"] != 1 {
			t.Fatalf("requests %v: want the PAT's create refused, then the registration token's", c)
		}
		// The warning names the scope the token lacks.
		if !warned(r, "create_runner") {
			t.Errorf("no warning about the scope: %q", r.Warnings)
		}
	})

	t.Run("410 Gone asks for a PAT", func(t *testing.T) {
		sim, p := coretest.ShellHost(t, "", coretest.RegistrationTok)
		sim.SetRegistrationDisabled(true)
		wantSteps(t, mustCheck(t, sim, p, nil), []string{"create shell"})
		oc := run(t, p, nil)
		if oc.Err == nil || input.Is(oc.Err) {
			t.Fatalf("error %v: want a GitLab failure, not an input error", oc.Err)
		}
		// GitLab's 410, and the scope a PAT would need to do without it.
		var ae *gitlab.APIError
		if !errors.As(oc.Err, &ae) || ae.Status != http.StatusGone || !strings.Contains(oc.Err.Error(), "create_runner") {
			t.Fatalf("error %v: want GitLab's 410, saying to use a PAT with create_runner", oc.Err)
		}
		if len(oc.Res.Runners) != 1 || oc.Res.Runners[0].Action != plan.Create || oc.Res.Runners[0].Error == "" {
			t.Fatalf("runner results %+v: want the failed create", oc.Res.Runners)
		}
		if len(sim.Runners()) != 0 {
			t.Fatal("a runner was created")
		}
	})
}

func TestRotatedTokenInLiveConfigIsKept(t *testing.T) {
	sim, p := standard(t)
	mustRun(t, p, nil)
	// gitlab-runner rotates the shell runner's token and rewrites the file.
	_, live := parseConfig(t, p)
	shellID := ids(sim)["shell"]
	var old string
	for _, lr := range live {
		if lr.ID == shellID {
			old = lr.Token
		}
	}
	tok, _, ok := sim.RotateToken(shellID)
	if !ok || old == "" {
		t.Fatal("rotate failed")
	}
	cfg := strings.Replace(p.Config(), old, tok, 1)
	cfg = strings.Replace(cfg, "token_obtained_at = ", "token_obtained_at = 2031-01-01T00:00:00Z\n  #", 1)
	if err := os.WriteFile(p.ConfigPath(), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if c := mustCheck(t, sim, p, nil); !contains(steps(c), "keep shell (id "+itoa(shellID)+")") {
		t.Fatalf("check steps %q", steps(c))
	}
	sim.ResetLog()
	r := mustRun(t, p, nil)
	if !contains(steps(r), "keep shell (id "+itoa(shellID)+")") {
		t.Fatalf("steps %q", steps(r))
	}
	if sim.MutatingRequests() != 0 {
		t.Fatalf("mutating requests after a rotation: %v", sim.Counts())
	}
	_, after := parseConfig(t, p)
	for _, lr := range after {
		if lr.ID == shellID && lr.Token != tok {
			t.Fatal("the rotated token was overwritten")
		}
	}
}

func TestForeignRunnersAreNeverTouched(t *testing.T) {
	sim, p := standard(t)
	other := sim.AddRunner(gitlabsim.Runner{Description: "node13 main shell Runner", TagList: []string{"node13", "main", "shell"}})
	lookalike := sim.AddRunner(gitlabsim.Runner{Description: "hand-made runner", TagList: []string{"node12", "main"}})
	otherInstance := sim.AddRunner(gitlabsim.Runner{Description: "node12 gpu shell Runner", TagList: []string{"node12", "gpu"}})
	mustRun(t, p, nil)
	// Lose the config: recovery lists this host's runners and must not
	// adopt or delete anybody else's.
	if err := os.Remove(p.ConfigPath()); err != nil {
		t.Fatal(err)
	}
	p.Remove("main/docker.yaml")
	id := ids(sim)
	wantSteps(t, mustCheck(t, sim, p, nil), expect(id, "adopt", "gpu", "adopt", "shell", "delete", "docker"))
	r := mustRun(t, p, nil)
	wantSteps(t, r, expect(id, "adopt", "gpu", "adopt", "shell", "delete", "docker"))
	for _, rr := range r.Runners {
		if rr.ID == other || rr.ID == lookalike || rr.ID == otherInstance {
			t.Errorf("the run acted on foreign runner %d: %+v", rr.ID, rr)
		}
	}
	for _, id := range []int64{other, lookalike, otherInstance} {
		if _, ok := sim.Runner(id); !ok {
			t.Errorf("foreign runner %d was deleted", id)
		}
	}
	// The declared ones are there once; the undeclared docker one is gone.
	descs := map[string]int{}
	for _, r := range sim.Runners() {
		descs[r.Description]++
	}
	if descs["node12 main docker Runner"] != 0 || descs["node12 main shell Runner"] != 1 || descs["GPU nodes"] != 1 {
		t.Fatalf("runners %v", descs)
	}
}

// TestLocalOnlyChangeRewritesTheConfigOnly: settings gitlab-runner reads
// from its config (not GitLab's) change the file and send nothing.
func TestLocalOnlyChangeRewritesTheConfigOnly(t *testing.T) {
	sim, p := standard(t)
	mustRun(t, p, nil)
	id := ids(sim)
	p.Executor("shell.toml", "url = \""+sim.URL+"\"\nexecutor = \"shell\"\ntags = [\"fast\"]\nbuilds_dir = \"/scratch/other\"\n")
	diff := func(o *engine.Options) { o.Diff = true }
	c := mustCheck(t, sim, p, diff)
	wantSteps(t, c, expect(id, "keep", "docker", "keep", "gpu", "keep", "shell"))
	if !c.Changed || !c.ConfigChanged {
		t.Fatalf("check result %+v: want the config to change", c)
	}
	for _, s := range []string{c.Before, c.After} {
		if !strings.Contains(s, `token = "<redacted>"`) || coretest.RunnerTokenShape.MatchString(s) {
			t.Fatalf("tokens are not redacted in before/after:\n%s", s)
		}
	}
	if !strings.Contains(c.Before, `builds_dir = "/scratch/builds"`) || !strings.Contains(c.After, `builds_dir = "/scratch/other"`) {
		t.Fatalf("before/after do not show the change:\n%s\n---\n%s", c.Before, c.After)
	}
	sim.ResetLog()
	r := mustRun(t, p, diff)
	wantSteps(t, r, expect(id, "keep", "docker", "keep", "gpu", "keep", "shell"))
	if !r.Changed || !r.ConfigChanged || r.After != c.After {
		t.Fatalf("result %+v: want the config written as previewed", r)
	}
	if sim.MutatingRequests() != 0 {
		t.Fatalf("a local-only change sent mutating requests: %v", sim.Counts())
	}
	if !strings.Contains(p.Config(), `builds_dir = "/scratch/other"`) || strings.Contains(p.Config(), "<redacted>") {
		t.Fatalf("config not rewritten with real tokens:\n%s", p.Config())
	}
}

func TestChangedSettingsAreUpdatedInPlace(t *testing.T) {
	sim, p := standard(t)
	mustRun(t, p, nil)
	id := ids(sim)
	p.Executor("shell.toml", "url = \""+sim.URL+"\"\nexecutor = \"shell\"\ntags = [\"fast\", \"big\"]\npaused = true\nmaintenance_note = \"disk swap\"\nbuilds_dir = \"/scratch/builds\"\n[cache]\n  Type = \"s3\"\n")
	wantSteps(t, mustCheck(t, sim, p, nil), expect(id, "keep", "docker", "keep", "gpu", "update", "shell"))
	before := coretest.Snapshot(t, p.ConfigPath())
	sim.ResetLog()
	r := mustRun(t, p, nil)
	wantSteps(t, r, expect(id, "keep", "docker", "keep", "gpu", "update", "shell"))
	if !r.Changed || r.ConfigChanged {
		t.Fatalf("result %+v: want a change in GitLab and none in the config", r)
	}
	rr, _ := sim.Runner(id["shell"])
	if _, own, marked := fleet.Parse(rr.MaintenanceNote); !rr.Paused || own != "disk swap" || !marked || !contains(rr.TagList, "big") {
		t.Fatalf("runner not updated: %+v", rr)
	}
	if c := sim.Counts(); c["update"] != 1 || sim.MutatingRequests() != 1 {
		t.Fatalf("requests %v, want one PUT", c)
	}
	if after := coretest.Snapshot(t, p.ConfigPath()); !before.Same(after) {
		t.Fatal("a server-side change rewrote config.toml")
	}
	// Next run: the state file knows what was applied; steady state again.
	sim.ResetLog()
	mustRun(t, p, nil)
	onlyVerifies(t, sim, 3)
}

func TestRefreshCatchesChangesMadeInTheUI(t *testing.T) {
	sim, p := standard(t)
	mustRun(t, p, nil)
	id := ids(sim)
	sim.UpdateRunner(id["docker"], func(r *gitlabsim.Runner) { r.TagList = []string{"hand-edited"}; r.RunUntagged = true })
	// Without refresh the change is invisible: steady state costs only
	// verifies, no read of any runner and no fix.
	sim.ResetLog()
	r := mustRun(t, p, nil)
	wantSteps(t, r, expect(id, "keep", "docker", "keep", "gpu", "keep", "shell"))
	onlyVerifies(t, sim, 3)

	c := mustCheck(t, sim, p, refresh)
	wantSteps(t, c, expect(id, "update", "docker", "keep", "gpu", "keep", "shell"))
	if n := sim.Counts()["get"]; n != 3 {
		t.Fatalf("refresh read %d runners, want all 3: %v", n, sim.Counts())
	}
	wantSteps(t, mustRun(t, p, refresh), expect(id, "update", "docker", "keep", "gpu", "keep", "shell"))
	rr, _ := sim.Runner(id["docker"])
	if rr.RunUntagged || !reflect.DeepEqual(sorted(rr.TagList), []string{"docker", "main", "node", "node12", "x86_64"}) {
		t.Fatalf("refresh did not restore the runner: %+v", rr)
	}
}

func TestSettingsDriftWithoutPATReRegisters(t *testing.T) {
	sim, p := coretest.ShellHost(t, "", coretest.RegistrationTok)
	mustRun(t, p, nil)
	old := sim.Runners()[0].ID
	p.Executor("shell.toml", "url = \""+sim.URL+"\"\ntags = [\"new\"]\n")
	wantSteps(t, mustCheck(t, sim, p, nil), []string{"replace shell (id " + itoa(old) + ")"})
	r := mustRun(t, p, nil)
	rs := sim.Runners()
	if len(rs) != 1 || rs[0].ID == old || !contains(rs[0].TagList, "new") {
		t.Fatalf("want the old runner replaced by one with the new tag, got %+v", rs)
	}
	wantSteps(t, r, []string{"replace shell (id " + itoa(rs[0].ID) + ")"})
}

func TestUnregisterRemovesEverything(t *testing.T) {
	sim, p := standard(t)
	mustRun(t, p, nil)
	id := ids(sim)
	foreign := sim.AddRunner(gitlabsim.Runner{Description: "node99 main shell Runner", TagList: []string{"node99", "main"}})
	c := mustCheck(t, sim, p, unregister)
	wantSteps(t, c, expect(id, "delete", "docker", "delete", "gpu", "delete", "shell"))
	if !c.Changed || !c.ConfigRemoved {
		t.Fatalf("check result %+v: want the config removed", c)
	}
	r := mustRun(t, p, unregister)
	wantSteps(t, r, expect(id, "delete", "docker", "delete", "gpu", "delete", "shell"))
	if !r.Changed || !r.ConfigRemoved {
		t.Fatalf("result %+v: want the config removed", r)
	}
	if rs := sim.Runners(); len(rs) != 1 || rs[0].ID != foreign {
		t.Fatalf("runners left: %+v", rs)
	}
	if _, err := os.Stat(p.ConfigPath()); !os.IsNotExist(err) {
		t.Fatal("config still exists")
	}
	if _, err := os.Stat(filepath.Join(p.Dir, "config.template.main.toml")); err != nil {
		t.Fatal("the template must stay")
	}
	// Nothing left: a second unregister changes nothing.
	if again := mustRun(t, p, unregister); again.Changed || len(again.Runners) != 0 {
		t.Fatalf("second unregister: %+v", again)
	}
}

func TestCaptureProgramSchedulerAndSchema(t *testing.T) {
	sim := coretest.NewSim(t, coretest.SimOptions())
	p := coretest.NewPrefix(t, "main")
	p.Template("", coretest.ClientConfig{URL: sim.URL, PAT: coretest.AdminPAT})
	p.Executor("batch.toml", "url = \""+sim.URL+"\"\nexecutor = \"custom\"\n")
	p.Executor("shell.toml", "url = \""+sim.URL+"\"\n")
	bin := t.TempDir()
	write := func(name, body string) string {
		path := filepath.Join(bin, name)
		if err := os.WriteFile(path, []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
		// Whatever the umask: a capture program others may write is refused.
		if err := os.Chmod(path, 0o755); err != nil {
			t.Fatal(err)
		}
		return path
	}
	write("sbatch", "#!/bin/sh\nexit 0\n")
	capture := write("capture", "#!/bin/sh\necho \"{\\\"site\\\": \\\"llnl\\\", \\\"features\\\": [\\\"$1-x\\\", \\\"$2-y\\\"]}\"\n")
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	schema := p.Write("schema.json", `{"type":"object","required":["site"],"properties":{"architecture":{"enum":["x86_64","aarch64","ppc64le"]},"site":{"type":"string"}}}`)
	tags := func(schema string) func(*engine.Options) {
		return func(o *engine.Options) {
			o.Tags = tags.Options{CaptureProgram: capture, CaptureTimeout: 10 * time.Second, SchemaFile: schema}
		}
	}
	mustCheck(t, sim, p, tags(schema))
	mustRun(t, p, tags(schema))
	got := map[string][]string{}
	for _, rr := range sim.Runners() {
		got[rr.Description] = sorted(rr.TagList)
	}
	if want := []string{"batch-x", "custom", "custom-y", "llnl", "main", "node", "node12", "slurm", "x86_64"}; !reflect.DeepEqual(got["node12 main batch Runner"], want) {
		t.Errorf("batch tags %v, want %v", got["node12 main batch Runner"], want)
	}
	if want := []string{"llnl", "main", "node", "node12", "shell", "shell-x", "shell-y", "x86_64"}; !reflect.DeepEqual(got["node12 main shell Runner"], want) {
		t.Errorf("shell tags %v, want %v", got["node12 main shell Runner"], want)
	}

	bad := p.Write("bad.json", `{"type":"object","properties":{"site":{"enum":["ornl"]}}}`)
	before := coretest.Snapshot(t, p.ConfigPath())
	sim.ResetLog()
	oc := run(t, p, tags(bad))
	if ie := input.As(oc.Err); ie == nil || ie.Option != input.TagSchema || ie.File != bad {
		t.Fatalf("error %#v: want an input error naming the tag schema %s", oc.Err, bad)
	}
	if len(sim.Requests()) != 0 {
		t.Fatal("requests were sent although the tags are invalid")
	}
	if !before.Same(coretest.Snapshot(t, p.ConfigPath())) {
		t.Fatal("the config changed although the tags are invalid")
	}
}

func TestOldGitLabWithoutRunnerCreationWorkflowFallsBack(t *testing.T) {
	sim := coretest.NewSim(t, coretest.SimOptions())
	// GitLab before 15.10: POST /user/runners does not exist.
	sim.InjectFault(gitlabsim.Fault{Kind: "create", Type: gitlabsim.FaultStatus, Status: 404, Times: -1})
	p := coretest.NewPrefix(t, "main")
	p.Template("", coretest.ClientConfig{URL: sim.URL, PAT: coretest.AdminPAT, RegistrationToken: coretest.RegistrationTok})
	p.Executor("shell.toml", "url = \""+sim.URL+"\"\n")
	wantSteps(t, mustCheck(t, sim, p, nil), []string{"create shell"})
	r := mustRun(t, p, nil)
	rs := sim.Runners()
	if len(rs) != 1 || !rs[0].Legacy {
		t.Fatalf("want a runner registered with the registration token, got %+v", rs)
	}
	wantSteps(t, r, []string{"create shell (id " + itoa(rs[0].ID) + ")"})
	// The warning names the route this GitLab lacks.
	if !warned(r, "/user/runners") {
		t.Fatalf("no warning: %q", r.Warnings)
	}
}

func itoa(n int64) string { return fmt.Sprint(n) }

// TestOmittedAutoTagFamilies: the digit-less host name switched off leaves
// every runner's tags at the next run (an update, no new runner); with the
// host name and instance tags switched off too, a host that lost its
// config still finds its runners (GitLab lists the scope without those
// tags, descriptions decide) and adopts them, no duplicate.
func TestOmittedAutoTagFamilies(t *testing.T) {
	sim, p := standard(t)
	mustRun(t, p, nil)
	known := ids(sim)
	omit := func(families ...string) func(*engine.Options) {
		return func(o *engine.Options) { o.Tags.Omit = families }
	}
	hasTag := func(tag string) int {
		n := 0
		for _, r := range sim.Runners() {
			for _, x := range r.TagList {
				if x == tag {
					n++
				}
			}
		}
		return n
	}
	wantSteps(t, mustRun(t, p, omit(tags.DigitlessHostname)), expect(known, "update", "docker", "update", "gpu", "update", "shell"))
	if n := hasTag("node"); n != 0 || hasTag("node12") != 3 {
		t.Fatalf("%d runners still tagged node (want 0), %d tagged node12 (want 3)", n, hasTag("node12"))
	}
	identity := omit(tags.DigitlessHostname, tags.Hostname, tags.Instance)
	mustRun(t, p, identity)
	if hasTag("node12") != 0 || hasTag("main") != 0 {
		t.Fatalf("host name or instance tags left: %+v", sim.Runners())
	}
	if err := os.Remove(p.ConfigPath()); err != nil {
		t.Fatal(err)
	}
	_ = os.Remove(filepath.Join(p.Dir, ".gitlab-runner-auth.main.json"))
	wantSteps(t, mustRun(t, p, identity), expect(known, "adopt", "docker", "adopt", "gpu", "adopt", "shell"))
	if n := len(sim.Runners()); n != 3 {
		t.Fatalf("%d runners after recovery without identity tags, want 3", n)
	}
	sim.ResetLog()
	mustRun(t, p, identity)
	onlyVerifies(t, sim, 3)
}

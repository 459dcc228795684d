package gitlabrules

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/engine"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/gitlab"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/input"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/plan"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/testkit/coretest"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/testkit/gitlabsim"
)

const (
	sysA = "s_aaaaaaaaaaaa"
	sysB = "s_bbbbbbbbbbbb"
)

// Each GitLab numbers its runners from 1: a host registered with two
// GitLabs holds two runners with id 1. Healing one must never touch the
// other, and unregistering removes both.
func TestRunnerIdsOfTwoGitLabsNeverMix(t *testing.T) {
	one := coretest.NewSim(t, coretest.SimOptions())
	two := coretest.NewSim(t, coretest.SimOptions())
	h := newHost(t, "node12", sysA)
	h.p.Template("", coretest.ClientConfig{URL: one.URL, PAT: coretest.AdminPAT}, coretest.ClientConfig{URL: two.URL, PAT: coretest.AdminPAT})
	h.p.Executor("a.toml", "url = \""+one.URL+"\"\nexecutor = \"shell\"\n")
	h.p.Executor("b.toml", "url = \""+two.URL+"\"\nexecutor = \"shell\"\n")
	h.mustRun()
	ra, rb := one.Runners()[0], two.Runners()[0]
	if ra.ID != rb.ID {
		t.Fatalf("the test needs overlapping ids, got %d and %d", ra.ID, rb.ID)
	}

	one.RevokeToken(ra.ID) // a's token dies; b's runner has the same id on the other GitLab
	two.ResetLog()
	for i := 0; i < 3; i++ {
		h.mustRun()
	}
	if n := two.MutatingRequests(); n != 0 {
		t.Fatalf("healing a runner on one GitLab made %d changes on the other: %+v", n, two.Requests())
	}
	ra, _ = one.Runner(ra.ID)
	rb, _ = two.Runner(rb.ID)
	for _, c := range h.config() {
		want := ra
		if strings.HasPrefix(c.URL, two.URL) {
			want = rb
		}
		if c.Token != want.Token || c.ID != want.ID {
			t.Fatalf("config entry %s (%s) holds the token of another GitLab's runner", c.Name, c.URL)
		}
	}

	h.mustRun(unregister())
	if len(one.Runners()) != 0 || len(two.Runners()) != 0 {
		t.Fatalf("unregister left runners: %d on one, %d on two", len(one.Runners()), len(two.Runners()))
	}
}

// node12 in two clusters: same short name, same instance, one GitLab. Only
// the runner managers (gitlab-runner's system id) tell the hosts apart.
func TestHostsWithTheSameNameNeverTakeEachOthersRunners(t *testing.T) {
	sim := coretest.NewSim(t, coretest.SimOptions())
	a := newHost(t, "node12", sysA)
	a.p.Template("", coretest.ClientConfig{URL: sim.URL, PAT: coretest.AdminPAT})
	a.p.Executor("shell.toml", "url = \""+sim.URL+"\"\n")
	a.p.Executor("gpu.toml", "url = \""+sim.URL+"\"\nexecutor = \"custom\"\n")
	a.mustRun()
	a.mustRun() // steady state: A's verifies record it as the runners' manager

	b := newHost(t, "node12", sysB)
	b.p.Template("", coretest.ClientConfig{URL: sim.URL, PAT: coretest.AdminPAT})
	b.p.Executor("shell.toml", "url = \""+sim.URL+"\"\n")
	for i := 0; i < 2; i++ {
		res := b.mustRun()
		if i == 0 && actions(res)["shell"] != plan.Create {
			t.Fatalf("B adopted A's runner: %+v", res.Runners)
		}
		if i == 0 && len(res.LeftBehind) != 2 {
			t.Fatalf("B does not name A's two runners it left alone: %+v", res.LeftBehind)
		}
		resA := a.mustRun()
		for _, r := range resA.Runners {
			if r.Action != plan.Keep {
				t.Fatalf("round %d: A had to %s %s: B touched its runners", i, r.Action, r.Name)
			}
		}
	}
	if n := len(sim.Runners()); n != 3 {
		t.Fatalf("%d runners, want A's two and B's one", n)
	}

	// B loses its config: it adopts its own runner, never A's.
	b.loseConfig()
	res := b.mustRun()
	if actions(res)["shell"] != plan.Adopt {
		t.Fatalf("B did not adopt its own runner: %+v", res.Runners)
	}
	if res := a.mustRun(); actions(res)["shell"] != plan.Keep {
		t.Fatalf("A's shell runner was reset by B: %+v", res.Runners)
	}
}

// A runner nobody ever used (no manager) cannot be proven this host's.
func TestRunnerWithoutManagerIsLeftAlone(t *testing.T) {
	sim := coretest.NewSim(t, coretest.SimOptions())
	stray := sim.AddRunner(gitlabsim.Runner{Description: "node12 main old Runner", TagList: []string{"node12", "main"}, RunUntagged: true})
	h := newHost(t, "node12", sysA)
	h.p.Template("", coretest.ClientConfig{URL: sim.URL, PAT: coretest.AdminPAT})
	h.p.Executor("shell.toml", "url = \""+sim.URL+"\"\n")
	res := h.mustRun()
	if _, ok := sim.Runner(stray); !ok {
		t.Fatal("a runner without a manager was deleted")
	}
	// It is reported as left behind, with why, for an administrator or
	// the fleet clean-up.
	var left *engine.LeftRunner
	for i, l := range res.LeftBehind {
		if l.ID == stray {
			left = &res.LeftBehind[i]
		}
	}
	if left == nil || left.Why == "" || left.URL == "" {
		t.Fatalf("the runner left alone is not reported as left behind: %+v", res.LeftBehind)
	}
}

// manage_runner covers only /runners/:id routes: such a token cannot list.
// With no token on disk, creating would risk a duplicate: the run fails
// naming read_api and creates nothing.
func TestTokenThatCannotListNeverCreatesDuplicates(t *testing.T) {
	const pat = "glpat-createManageOnly-0000000001"
	opts := coretest.SimOptions()
	opts.PATs = append(opts.PATs, gitlabsim.PAT{Name: "create-manage", Value: pat, Scopes: []string{"create_runner", "manage_runner"}, Admin: true})
	sim := coretest.NewSim(t, opts)
	h := newHost(t, "node12", sysA)
	h.p.Template("", coretest.ClientConfig{URL: sim.URL, PAT: coretest.AdminPAT})
	h.p.Executor("shell.toml", "url = \""+sim.URL+"\"\n")
	h.mustRun()

	h.p.Template("", coretest.ClientConfig{URL: sim.URL, PAT: pat})
	h.loseConfig()
	sim.ResetLog()
	res, err := h.run()
	if !failedAlone(res, err, "shell") {
		t.Fatalf("got %v, runners %+v: want shell failed without a request", err, res.Runners)
	}
	if n := len(sim.Runners()); n != 1 || sim.Counts()["create"] != 0 {
		t.Fatalf("%d runners, %d creates: a duplicate was registered", n, sim.Counts()["create"])
	}
	// Both the failure and the warning name the scope the token lacks.
	if !strings.Contains(err.Error(), "read_api") || !warned(res, "read_api") {
		t.Fatalf("error %v, warnings %q: want read_api named", err, res.Warnings)
	}
}

// The PAT is checked once when it is new or changed, never on a
// steady-state restart.
func TestTokenIsCheckedOnceWhenItChanges(t *testing.T) {
	const soon = "glpat-expiresSoon-000000000000001"
	expires := time.Now().Add(10 * 24 * time.Hour)
	opts := coretest.SimOptions()
	opts.PATs = append(opts.PATs, gitlabsim.PAT{Name: "soon", Value: soon, Scopes: []string{"api"}, Admin: true,
		ExpiresAt: expires})
	sim := coretest.NewSim(t, opts)
	h := newHost(t, "node12", sysA)
	h.p.Template("", coretest.ClientConfig{URL: sim.URL, PAT: coretest.AdminPAT})
	h.p.Executor("shell.toml", "url = \""+sim.URL+"\"\n")
	h.p.Executor("docker.toml", "url = \""+sim.URL+"\"\nexecutor = \"docker\"\n")
	h.mustRun()
	if n := sim.Counts()["pat-self"]; n != 1 {
		t.Fatalf("first run checked the token %d times", n)
	}
	sim.ResetLog()
	h.mustRun()
	if c := sim.RequestCounts(); c.Total != 2 || c.ByKind["verify"] != 2 {
		t.Fatalf("steady state made %+v, want exactly one verify per executor", c.ByKind)
	}
	for _, e := range sim.Requests() {
		if strings.HasPrefix(e.Auth, "pat:") {
			t.Fatalf("steady state used the PAT: %+v", e)
		}
	}

	h.p.Template("", coretest.ClientConfig{URL: sim.URL, PAT: soon})
	sim.ResetLog()
	res := h.mustRun()
	// The warning names the day the token expires.
	day := expires.UTC().Format(time.DateOnly)
	if n := sim.Counts()["pat-self"]; n != 1 || !warned(res, day) {
		t.Fatalf("a changed token: %d checks, warnings %v", n, res.Warnings)
	}
	sim.ResetLog()
	res = h.mustRun()
	if n := sim.Counts()["pat-self"]; n != 0 || !warned(res, day) {
		t.Fatalf("the same token again: %d checks (want 0), warnings %v (want the expiry, from the state file)", n, res.Warnings)
	}
}

// On real GitLab a user without rights on a runner gets 403 on
// GET /runners/:id. That never means the runner is gone: no second runner.
func TestForbiddenIsNeverGone(t *testing.T) {
	const stranger = "glpat-strangerWithApi-00000000001"
	opts := coretest.SimOptions()
	opts.Users = append(opts.Users, gitlabsim.User{Username: "stranger"})
	opts.Groups = append(opts.Groups, gitlabsim.Group{ID: 1, FullPath: "ops", Name: "ops"})
	opts.PATs = append(opts.PATs, gitlabsim.PAT{Name: "stranger", Value: stranger, Scopes: []string{"api"}, User: "stranger"})
	sim := coretest.NewSim(t, opts)
	h := newHost(t, "node12", sysA)
	h.p.Template("", coretest.ClientConfig{URL: sim.URL, PAT: coretest.AdminPAT, Extra: "runner_type = \"group_type\"\ngroup_id = 1\n"})
	h.p.Executor("shell.toml", "url = \""+sim.URL+"\"\n")
	h.mustRun()
	id := sim.Runners()[0].ID

	h.p.Template("", coretest.ClientConfig{URL: sim.URL, PAT: stranger, Extra: "runner_type = \"group_type\"\ngroup_id = 1\n"})
	sim.RevokeToken(id)
	res, err := h.run()
	if !failedAlone(res, err, "shell") {
		t.Fatalf("got %v, runners %+v: want shell failed, nothing done for it", err, res.Runners)
	}
	if n := len(sim.Runners()); n != 1 {
		t.Fatalf("%d runners: a 403 was taken for a deleted runner", n)
	}
}

// GitLab throttles with 429 and Retry-After; the run waits as long as
// asked, within its own bound — not the shorter retry budget of one call.
func TestRetryAfterIsHonouredWithinTheRunsBound(t *testing.T) {
	sim := coretest.NewSim(t, coretest.SimOptions())
	h := newHost(t, "node12", sysA)
	h.p.Template("", coretest.ClientConfig{URL: sim.URL, PAT: coretest.AdminPAT})
	h.p.Executor("shell.toml", "url = \""+sim.URL+"\"\n")
	h.mustRun()

	sim.InjectFault(gitlabsim.Fault{Kind: "verify", Type: gitlabsim.FaultRateLimit, RetryAfter: 2})
	sim.ResetLog()
	h.mustRun() // the run's retry budget per call is 1 s, its bound 5 minutes
	reqs := sim.Requests()
	if len(reqs) != 2 || reqs[0].Status != 429 || reqs[1].Start.Sub(reqs[0].End) < 2*time.Second {
		t.Fatalf("want a 429 then a retry no sooner than 2 s: %+v", reqs)
	}

	// Absurd values are refused at once, not turned into a negative wait.
	for _, ra := range []int64{9223372037, 86400 * 400} {
		sim.InjectFault(gitlabsim.Fault{Kind: "verify", Type: gitlabsim.FaultRateLimit, RetryAfter: ra})
		_, err := h.run(func(o *engine.Options) { o.Policy.Strict, o.Policy.CleanupFails = true, true })
		var ae *gitlab.APIError
		if !errors.As(err, &ae) || ae.Status != 429 || ae.RetryAfter != 0 {
			t.Fatalf("Retry-After %d: got %v, want the 429 refused without a wait", ra, err)
		}
		sim.ClearFaults()
	}
	// A wait beyond what is left of the run fails clearly.
	sim.InjectFault(gitlabsim.Fault{Kind: "verify", Type: gitlabsim.FaultRateLimit, RetryAfter: 60})
	_, err := h.run(withTimeout(30*time.Second), func(o *engine.Options) { o.Policy.Strict, o.Policy.CleanupFails = true, true })
	var ae *gitlab.APIError
	if !errors.As(err, &ae) || ae.Status != 429 || ae.RetryAfter != 60*time.Second {
		t.Fatalf("Retry-After beyond the bound: got %v, want the 429 that asked for 60 s", err)
	}
}

// Without a PAT a settings change re-registers. The new runner is created
// first; when that fails (registration tokens disabled: 410) the old one
// stays, registered and in the config.
func TestReRegistrationMakesBeforeItBreaks(t *testing.T) {
	sim := coretest.NewSim(t, coretest.SimOptions())
	h := newHost(t, "node12", sysA)
	h.p.Template("", coretest.ClientConfig{URL: sim.URL, RegistrationToken: coretest.RegistrationTok})
	h.p.Executor("shell.toml", "url = \""+sim.URL+"\"\n")
	h.mustRun()
	old := sim.Runners()[0]

	h.p.Executor("shell.toml", "url = \""+sim.URL+"\"\ntags = [\"new\"]\n")
	sim.SetRegistrationDisabled(true)
	_, err := h.run()
	var ae *gitlab.APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusGone {
		t.Fatalf("got %v, want GitLab's 410", err)
	}
	if _, ok := sim.Runner(old.ID); !ok {
		t.Fatal("the old runner was deleted before its successor existed")
	}
	if cfg := h.config(); len(cfg) != 1 || cfg[0].Token != old.Token {
		t.Fatalf("the config lost the old runner's token: %+v", cfg)
	}

	sim.SetRegistrationDisabled(false)
	res := h.mustRun()
	if actions(res)["shell"] != plan.Replace {
		t.Fatalf("want a replace, got %+v", res.Runners)
	}
	rs := sim.Runners()
	if len(rs) != 1 || rs[0].ID == old.ID {
		t.Fatalf("want only the new runner, got %+v", rs)
	}
	if cfg := h.config(); len(cfg) != 1 || cfg[0].ID != rs[0].ID {
		t.Fatalf("config %+v", cfg)
	}
}

// Verify answers 422 for an orphaned runner: that runner fails, the others
// are kept.
func TestOrphanedRunnerFailsAlone(t *testing.T) {
	opts := coretest.SimOptions()
	opts.Groups = append(opts.Groups, gitlabsim.Group{ID: 1, FullPath: "ops", Name: "ops"})
	sim := coretest.NewSim(t, opts)
	h := newHost(t, "node12", sysA)
	h.p.Template("", coretest.ClientConfig{URL: sim.URL, PAT: coretest.AdminPAT, Extra: "runner_type = \"group_type\"\ngroup_id = 1\n"})
	h.p.Executor("shell.toml", "url = \""+sim.URL+"\"\n")
	h.p.Executor("docker.toml", "url = \""+sim.URL+"\"\nexecutor = \"docker\"\n")
	h.mustRun()
	for _, r := range sim.Runners() {
		if strings.Contains(r.Description, "shell") {
			sim.OrphanRunner(r.ID)
		}
	}
	sim.ResetLog()
	res, err := h.run()
	if !failedAlone(res, err, "shell") {
		t.Fatalf("got %v, runners %+v: want the orphaned runner failed", err, res.Runners)
	}
	if a := actions(res); a["docker"] != plan.Keep {
		t.Fatalf("docker not kept: %+v", res.Runners)
	}
	if n := sim.MutatingRequests(); n != 0 || len(sim.Runners()) != 2 {
		t.Fatalf("an orphaned runner led to %d changes", n)
	}
}

// More than 50 tags is a 400 on GitLab: refused before anything is sent.
func TestMoreThanFiftyTagsIsRefusedBeforeSending(t *testing.T) {
	sim := coretest.NewSim(t, coretest.SimOptions())
	h := newHost(t, "node12", sysA)
	h.p.Template("", coretest.ClientConfig{URL: sim.URL, PAT: coretest.AdminPAT})
	var tags []string
	for i := 0; i < 50; i++ {
		tags = append(tags, "\"t"+string(rune('a'+i%26))+string(rune('a'+i/26))+"\"")
	}
	h.p.Executor("shell.toml", "url = \""+sim.URL+"\"\ntags = ["+strings.Join(tags, ", ")+"]\n")
	_, err := h.run()
	if ie := input.As(err); ie == nil || ie.File != "main/shell.toml" || ie.Fix == "" {
		t.Fatalf("got %v, want an input error in main/shell.toml with a fix", err)
	}
	if n := len(sim.Requests()); n != 0 {
		t.Fatalf("%d requests sent", n)
	}
}

// Recovering a lost config sends no PUT for a runner whose settings
// already match.
func TestLostConfigRecoverySendsNoNeedlessUpdate(t *testing.T) {
	sim := coretest.NewSim(t, coretest.SimOptions())
	h := newHost(t, "node12", sysA)
	h.p.Template("", coretest.ClientConfig{URL: sim.URL, PAT: coretest.AdminPAT})
	h.p.Executor("shell.toml", "url = \""+sim.URL+"\"\n")
	h.p.Executor("docker.toml", "url = \""+sim.URL+"\"\nexecutor = \"docker\"\n")
	h.mustRun()
	h.mustRun()
	h.loseConfig()
	sim.ResetLog()
	res := h.mustRun()
	if a := actions(res); a["shell"] != plan.Adopt || a["docker"] != plan.Adopt {
		t.Fatalf("%+v", res.Runners)
	}
	if n := sim.Counts()["update"]; n != 0 {
		t.Fatalf("%d PUTs for runners whose settings match", n)
	}
}

// A GitLab that does not answer is named in the error.
func TestUnreachableGitLabIsNamed(t *testing.T) {
	h := newHost(t, "node12", sysA)
	url := "http://127.0.0.1:9" // discard port: nothing listens
	h.p.Template("", coretest.ClientConfig{URL: url, PAT: coretest.AdminPAT})
	h.p.Executor("shell.toml", "url = \""+url+"\"\n")
	_, err := h.run(withTimeout(5 * time.Second))
	var ne *gitlab.NetError
	if !errors.As(err, &ne) || ne.Host != "127.0.0.1:9" {
		t.Fatalf("got %v, want no answer from the GitLab named", err)
	}
}

package main

import (
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/coretest"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/gitlabsim"
)

func TestChangedSettingsAreUpdatedInPlace(t *testing.T) {
	sim, p := standard(t)
	mustExit(t, runCLI(t, p), 0)
	id := ids(sim)
	p.Executor("shell.toml", "url = \""+sim.URL+"\"\nexecutor = \"shell\"\ntags = [\"fast\", \"big\"]\npaused = true\nmaintenance_note = \"disk swap\"\nbuilds_dir = \"/scratch/builds\"\n[cache]\n  Type = \"s3\"\n")
	c := checkRun(t, sim, p)
	if want := expect(id, "would keep", "docker", "would keep", "gpu", "would update", "shell"); !reflect.DeepEqual(lines(c.stdout), want) {
		t.Fatalf("check plan %q, want %q", lines(c.stdout), want)
	}
	before := snapshot(t, p.ConfigPath())
	sim.ResetLog()
	r := runCLI(t, p)
	mustExit(t, r, 0)
	if want := expect(id, "kept", "docker", "kept", "gpu", "updated", "shell"); !reflect.DeepEqual(lines(r.stdout), want) {
		t.Fatalf("stdout %q, want %q", lines(r.stdout), want)
	}
	rr, _ := sim.Runner(id["shell"])
	if !rr.Paused || rr.MaintenanceNote != "disk swap" || !contains(rr.TagList, "big") {
		t.Fatalf("runner not updated: %+v", rr)
	}
	if c := sim.Counts(); c["update"] != 1 || sim.MutatingRequests() != 1 {
		t.Fatalf("requests %v, want one PUT", c)
	}
	if after := snapshot(t, p.ConfigPath()); string(after.data) != string(before.data) {
		t.Fatal("a server-side change rewrote config.toml")
	}
	// Next run: the state file knows what was applied; steady state again.
	sim.ResetLog()
	mustExit(t, runCLI(t, p), 0)
	if sim.MutatingRequests() != 0 || len(sim.Requests()) != 3 {
		t.Fatalf("not steady after update: %v", sim.Counts())
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestRefreshCatchesChangesMadeInTheUI(t *testing.T) {
	sim, p := standard(t)
	mustExit(t, runCLI(t, p), 0)
	id := ids(sim)
	sim.UpdateRunner(id["docker"], func(r *gitlabsimRunner) { r.TagList = []string{"hand-edited"}; r.RunUntagged = true })
	// Without --refresh the change is invisible: steady state costs only verifies.
	sim.ResetLog()
	r := runCLI(t, p)
	mustExit(t, r, 0)
	if sim.MutatingRequests() != 0 {
		t.Fatal("a plain run must not read or fix runners")
	}
	c := checkRun(t, sim, p, "--refresh")
	if want := expect(id, "would update", "docker", "would keep", "gpu", "would keep", "shell"); !reflect.DeepEqual(lines(c.stdout), want) {
		t.Fatalf("check plan %q, want %q", lines(c.stdout), want)
	}
	r = runCLI(t, p, "--refresh")
	mustExit(t, r, 0)
	rr, _ := sim.Runner(id["docker"])
	got := append([]string(nil), rr.TagList...)
	sort.Strings(got)
	if rr.RunUntagged || !reflect.DeepEqual(got, []string{"docker", "main", "node", "node12", "x86_64"}) {
		t.Fatalf("refresh did not restore the runner: %+v", rr)
	}
}

func TestSettingsDriftWithoutPATReRegisters(t *testing.T) {
	sim, p := shellHost(t, "", coretest.RegistrationTok)
	mustExit(t, runCLI(t, p), 0)
	old := sim.Runners()[0].ID
	p.Executor("shell.toml", "url = \""+sim.URL+"\"\ntags = [\"new\"]\n")
	c := checkRun(t, sim, p)
	if strings.TrimSpace(c.stdout) != "would replace shell (id 1)" {
		t.Fatalf("check: %q", c.stdout)
	}
	mustExit(t, runCLI(t, p), 0)
	rs := sim.Runners()
	if len(rs) != 1 || rs[0].ID == old || !contains(rs[0].TagList, "new") {
		t.Fatalf("want the old runner replaced by one with the new tag, got %+v", rs)
	}
}

func TestUnregisterRemovesEverything(t *testing.T) {
	sim, p := standard(t)
	mustExit(t, runCLI(t, p), 0)
	foreign := sim.AddRunner(gitlabsimRunner{Description: "node99 main shell Runner", TagList: []string{"node99", "main"}})
	c := checkRun(t, sim, p, "--unregister")
	if len(lines(c.stdout)) != 3 || !strings.HasPrefix(c.stdout, "would delete") {
		t.Fatalf("check: %q", c.stdout)
	}
	r := runCLI(t, p, "--unregister")
	mustExit(t, r, 0)
	if rs := sim.Runners(); len(rs) != 1 || rs[0].ID != foreign {
		t.Fatalf("runners left: %+v", rs)
	}
	if _, err := os.Stat(p.ConfigPath()); !os.IsNotExist(err) {
		t.Fatal("config still exists")
	}
	if _, err := os.Stat(filepath.Join(p.Dir, "config.template.main.toml")); err != nil {
		t.Fatal("the template must stay")
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
		return path
	}
	write("sbatch", "#!/bin/sh\nexit 0\n")
	capture := write("capture", "#!/bin/sh\necho \"{\\\"site\\\": \\\"llnl\\\", \\\"features\\\": [\\\"$1-x\\\", \\\"$2-y\\\"]}\"\n")
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	schema := p.Write("schema.json", `{"type":"object","required":["site"],"properties":{"architecture":{"enum":["x86_64","aarch64","ppc64le"]},"site":{"type":"string"}}}`)
	r := runCLI(t, p, "--capture-tags", capture, "--tag-schema", schema)
	mustExit(t, r, 0)
	tags := map[string][]string{}
	for _, rr := range sim.Runners() {
		got := append([]string(nil), rr.TagList...)
		sort.Strings(got)
		tags[rr.Description] = got
	}
	if want := []string{"batch-x", "custom", "custom-y", "llnl", "main", "node", "node12", "slurm", "x86_64"}; !reflect.DeepEqual(tags["node12 main batch Runner"], want) {
		t.Errorf("batch tags %v, want %v", tags["node12 main batch Runner"], want)
	}
	if want := []string{"llnl", "main", "node", "node12", "shell", "shell-x", "shell-y", "x86_64"}; !reflect.DeepEqual(tags["node12 main shell Runner"], want) {
		t.Errorf("shell tags %v, want %v", tags["node12 main shell Runner"], want)
	}

	bad := p.Write("bad.json", `{"type":"object","properties":{"site":{"enum":["ornl"]}}}`)
	sim.ResetLog()
	r = runCLI(t, p, "--capture-tags", capture, "--tag-schema", bad)
	mustExit(t, r, 2)
	if !strings.Contains(r.stderr, "property /site") || !strings.Contains(r.stderr, "bad.json") {
		t.Fatalf("schema violation message: %s", r.stderr)
	}
	if len(sim.Requests()) != 0 {
		t.Fatal("requests were sent although the tags are invalid")
	}
}

func TestInstanceEqualToHostnameIsRefused(t *testing.T) {
	sim := coretest.NewSim(t, coretest.SimOptions())
	p := coretest.NewPrefix(t, "node")
	p.Template("", coretest.ClientConfig{URL: sim.URL, PAT: coretest.AdminPAT})
	p.Executor("shell.toml", "url = \""+sim.URL+"\"\n")
	r := runCLI(t, p)
	mustExit(t, r, 2)
	if !strings.Contains(r.stderr, "equals the host name") {
		t.Fatalf("stderr: %s", r.stderr)
	}
}

type gitlabsimRunner = gitlabsim.Runner

func TestOldGitLabWithoutRunnerCreationWorkflowFallsBack(t *testing.T) {
	sim := coretest.NewSim(t, coretest.SimOptions())
	// GitLab before 15.10: POST /user/runners does not exist.
	sim.InjectFault(gitlabsim.Fault{Kind: "create", Type: gitlabsim.FaultStatus, Status: 404, Times: -1})
	p := coretest.NewPrefix(t, "main")
	p.Template("", coretest.ClientConfig{URL: sim.URL, PAT: coretest.AdminPAT, RegistrationToken: coretest.RegistrationTok})
	p.Executor("shell.toml", "url = \""+sim.URL+"\"\n")
	r := runCLI(t, p)
	mustExit(t, r, 0)
	if rs := sim.Runners(); len(rs) != 1 || !rs[0].Legacy {
		t.Fatalf("want a runner registered with the registration token, got %+v", rs)
	}
	if !strings.Contains(r.stderr, "no runner creation workflow") {
		t.Fatalf("no warning: %s", r.stderr)
	}
}

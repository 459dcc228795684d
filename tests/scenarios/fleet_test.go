package scenarios

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/config"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/engine"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/fleet"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/input"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/testkit/coretest"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/testkit/gitlabsim"
)

func inFleet(name string) func(*engine.Options) { return func(o *engine.Options) { o.Fleet = name } }

// markOf reads the fleet mark a runner carries in GitLab.
func markOf(t *testing.T, sim *coretest.Sim, id int64) (fleet.Mark, string) {
	t.Helper()
	r, ok := sim.Runner(id)
	if !ok {
		t.Fatalf("runner %d is gone", id)
	}
	m, own, marked := fleet.Parse(r.MaintenanceNote)
	if !marked {
		t.Fatalf("runner %d carries no fleet mark: maintenance_note %q", id, r.MaintenanceNote)
	}
	return m, own
}

// Every runner sync creates carries, in GitLab, the mark of its fleet,
// host and instance, below the administrator's own note.
func TestEveryRunnerCarriesItsFleetsMark(t *testing.T) {
	sim, p := standard(t)
	p.Executor("shell.toml", "url = \""+sim.URL+"\"\nexecutor = \"shell\"\nmaintenance_note = \"rack 4\"\n")
	mustRun(t, p, inFleet("hpc-a"))
	id := ids(sim)
	for name, rid := range id {
		m, own := markOf(t, sim, rid)
		if want := (fleet.Mark{Fleet: "hpc-a", Host: host, Instance: "main"}); m != want {
			t.Errorf("%s: mark %+v, want %+v", name, m, want)
		}
		if wantOwn := map[string]string{"shell": "rack 4"}[name]; own != wantOwn {
			t.Errorf("%s: the administrator's note is %q, want %q", name, own, wantOwn)
		}
	}
	sim.ResetLog()
	mustRun(t, p, inFleet("hpc-a"))
	onlyVerifies(t, sim, 3)
}

// Runners an earlier version registered carry no mark: the next run marks
// each with one update, and the run after is steady again.
func TestExistingRunnersAreMarkedOnceOnTheNextRun(t *testing.T) {
	sim, p := standard(t)
	mustRun(t, p, nil)
	id := ids(sim)
	unmark(t, sim, p, id)

	wantSteps(t, mustCheck(t, sim, p, inFleet("hpc")), expect(id, "update", "docker", "update", "gpu", "update", "shell"))
	sim.ResetLog()
	r := mustRun(t, p, inFleet("hpc"))
	wantSteps(t, r, expect(id, "update", "docker", "update", "gpu", "update", "shell"))
	if c := sim.Counts(); c["update"] != 3 || sim.MutatingRequests() != 3 {
		t.Fatalf("requests %v, want one PUT per runner", c)
	}
	for _, rid := range id {
		if m, _ := markOf(t, sim, rid); m.Fleet != "hpc" {
			t.Errorf("runner %d marked for fleet %q, want hpc", rid, m.Fleet)
		}
	}
	sim.ResetLog()
	mustRun(t, p, inFleet("hpc"))
	onlyVerifies(t, sim, 3)
}

// unmark makes GitLab and the state file look as an earlier version left
// them: no mark in any runner's note.
func unmark(t *testing.T, sim *coretest.Sim, p *coretest.Prefix, id map[string]int64) {
	t.Helper()
	for _, rid := range id {
		sim.UpdateRunner(rid, func(r *gitlabsim.Runner) { r.MaintenanceNote = fleet.Own(r.MaintenanceNote) })
	}
	path := filepath.Join(p.Dir, ".gitlab-runner-auth."+p.Instance+".json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var st map[string]any
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	for _, r := range st["runners"].(map[string]any) {
		if a, ok := r.(map[string]any)["applied"].(map[string]any); ok {
			a["maintenance_note"] = fleet.Own(a["maintenance_note"].(string))
		}
	}
	if b, err = json.Marshal(st); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// A host without a personal access token cannot update a runner in place:
// it keeps its unmarked runner rather than register every runner anew.
func TestHostWithoutPATKeepsItsUnmarkedRunner(t *testing.T) {
	sim, p := coretest.ShellHost(t, "", coretest.RegistrationTok)
	mustRun(t, p, nil)
	old := sim.Runners()[0].ID
	unmark(t, sim, p, map[string]int64{"shell": old})
	sim.ResetLog()
	r := mustRun(t, p, nil)
	wantSteps(t, r, []string{"keep shell (id " + itoa(old) + ")"})
	onlyVerifies(t, sim, 1)
}

// The template's fleet and the run's must agree: otherwise each run would
// mark the runners anew.
func TestTwoFleetNamesForOneClientAreRefused(t *testing.T) {
	sim := coretest.NewSim(t, coretest.SimOptions())
	p := coretest.NewPrefix(t, "main")
	p.Template("", coretest.ClientConfig{URL: sim.URL, PAT: coretest.AdminPAT, Extra: `fleet = "hpc-a"`})
	p.Executor("shell.toml", "url = \""+sim.URL+"\"\n")
	oc := run(t, p, inFleet("hpc-b"))
	ie := input.As(oc.Err)
	if ie == nil || ie.Key != "client_configs[0].fleet" || ie.FixOption != input.Fleet {
		t.Fatalf("error %v (%+v), want an input error at client_configs[0].fleet asking for the fleet option", oc.Err, ie)
	}
	if n := len(sim.Requests()); n != 0 {
		t.Fatalf("%d requests for an invalid template", n)
	}
	// The template's fleet alone is used.
	mustRun(t, p, nil)
	if m, _ := markOf(t, sim, sim.Runners()[0].ID); m.Fleet != "hpc-a" {
		t.Fatalf("marked for %q, want the template's hpc-a", m.Fleet)
	}
}

// An administrator's note and the mark share GitLab's 1,024 characters.
func TestNoteTooLongForTheMarkIsAnInputError(t *testing.T) {
	sim, p := coretest.ShellHost(t, coretest.AdminPAT, "")
	m := fleet.Mark{Fleet: fleet.Default, Host: host, Instance: "main"}
	long := make([]byte, m.Room(config.MaxMaintenanceNote)+1)
	for i := range long {
		long[i] = 'x'
	}
	p.Executor("shell.toml", "url = \""+sim.URL+"\"\nmaintenance_note = \""+string(long)+"\"\n")
	oc := run(t, p, func(o *engine.Options) { o.Policy.Strict, o.Policy.CleanupFails = true, true })
	if ie := input.As(oc.Err); ie == nil || ie.Key != "maintenance_note" {
		t.Fatalf("error %v, want an input error at maintenance_note", oc.Err)
	}
}

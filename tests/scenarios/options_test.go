package scenarios

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/engine"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/input"
)

// Limits.Concurrency bounds the requests in flight at once.
func TestConcurrencyBoundsRequestsInFlight(t *testing.T) {
	sim, p := standard(t)
	sim.SetLatency(20 * time.Millisecond)
	mustRun(t, p, func(o *engine.Options) { o.Limits.Concurrency = 1 })
	if n := sim.MaxInFlight(); n != 1 {
		t.Errorf("concurrency 1: %d requests in flight at once", n)
	}
	if len(sim.Runners()) != 3 {
		t.Fatalf("%d runners, want 3", len(sim.Runners()))
	}
}

// The captured tags reach every runner; a tag schema they violate stops
// every executor, so the run (serving what can be served: nothing) fails,
// naming the schema for each executor, and sends nothing.
func TestCapturedTagsAndTheirSchema(t *testing.T) {
	sim, p := standard(t)
	capture := filepath.Join(t.TempDir(), "capture")
	if err := os.WriteFile(capture, []byte("#!/bin/sh\necho '{\"site\": \"llnl\"}'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(capture, 0o755); err != nil { // whatever the umask
		t.Fatal(err)
	}
	schema := p.Write("schema.json", `{"type":"object","required":["site"]}`)
	mustRun(t, p, func(o *engine.Options) { o.Tags.CaptureProgram, o.Tags.SchemaFile = capture, schema })
	for _, r := range sim.Runners() {
		if !contains(r.TagList, "llnl") {
			t.Errorf("%s: tags %v lack the captured site", r.Description, r.TagList)
		}
	}
	bad := p.Write("bad.json", `{"type":"object","required":["rack"]}`)
	sim.ResetLog()
	oc := run(t, p, both(serve, func(o *engine.Options) { o.Tags.CaptureProgram, o.Tags.SchemaFile = capture, bad }))
	ies := input.All(oc.Err)
	if len(ies) != 3 {
		t.Fatalf("input errors %+v, want one per executor", ies)
	}
	for _, ie := range ies {
		if ie.Option != input.TagSchema || ie.File != bad {
			t.Fatalf("input error %+v, want the tag schema %s", ie, bad)
		}
	}
	if n := len(sim.Requests()); n != 0 {
		t.Errorf("a run stopped by its tag schema sent %d requests", n)
	}
}

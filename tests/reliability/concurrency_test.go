package reliability

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofrs/flock"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/engine"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/hostfs"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/input"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/plan"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/testkit/coretest"
)

// TestConcurrentRunsSerialise starts two register-runner runs and a module
// run on the same prefix at once, several times: they queue on the lock, so
// GitLab never gets a duplicate runner and the config is never torn.
func TestConcurrentRunsSerialise(t *testing.T) {
	rounds := 5
	if stress() {
		rounds = 40
	}
	for round := 0; round < rounds; round++ {
		sim := coretest.NewSim(t, coretest.SimOptions())
		sim.SetLatency(15 * time.Millisecond)
		p := coretest.NewPrefix(t, "main")
		p.Template("", coretest.ClientConfig{URL: sim.URL, PAT: coretest.AdminPAT})
		for _, n := range declared {
			p.Executor(n+".toml", executorFile(sim.URL, n, ""))
		}
		w := &world{sim: sim, p: p}
		argsFile := filepath.Join(t.TempDir(), "args.json")
		b, _ := json.Marshal(map[string]any{"prefix": p.Dir, "instance": "main", "hostname": hostname,
			"_ansible_check_mode": false})
		if err := os.WriteFile(argsFile, b, 0o600); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		codes := make([]int, 3)
		outs := make([]string, 3)
		for i := 0; i < 3; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var cmd *exec.Cmd
				if i == 2 {
					cmd = exec.Command(binary, argsFile) // the Ansible module
				} else {
					cmd = exec.Command(binary, w.cliArgs()...)
				}
				out, err := cmd.CombinedOutput()
				outs[i] = string(out)
				if ee, ok := err.(*exec.ExitError); ok {
					codes[i] = ee.ExitCode()
				}
			}()
		}
		wg.Wait()
		for i := range outs {
			coretest.Record(t, "concurrent-run", []byte(outs[i]))
			if codes[i] != 0 {
				t.Fatalf("round %d: run %d exited %d:\n%s", round, i, codes[i], outs[i])
			}
		}
		if strings.Contains(outs[2], `"failed":true`) {
			t.Fatalf("module run failed: %s", outs[2])
		}
		w.converged(t, declared)
		// Exactly one of the three created the runners; the others kept them.
		if c := sim.Counts()["create"]; c != len(declared) {
			t.Fatalf("round %d: %d creates for %d executors", round, c, len(declared))
		}
	}
	reportf(t, "concurrency: %d rounds of 2 CLI runs + 1 module run on one prefix, serialised, no duplicate", rounds)
}

func TestLockTimeoutIsBoundedAndClear(t *testing.T) {
	w := baseline(t)
	l := hostfs.Layout{Prefix: w.p.Dir, Instance: "main"}
	fl := flock.New(l.LockPath())
	if err := fl.Lock(); err != nil {
		t.Fatal(err)
	}
	defer fl.Unlock()
	err := coretest.Run(t, context.Background(), engine.Options{Prefix: w.p.Dir, Instance: "main", Hostname: hostname, Limits: engine.Limits{Concurrency: engine.DefaultConcurrency, Lock: 300 * time.Millisecond}}).Err
	var busy *hostfs.BusyError
	if !errors.As(err, &busy) || busy.Path != l.LockPath() || busy.Waited != 300*time.Millisecond || input.Is(err) {
		t.Fatalf("got %v, want the run to give up on the lock %s after 300ms", err, l.LockPath())
	}
	if len(w.sim.Requests()) != 0 {
		t.Fatal("a run without the lock talked to GitLab")
	}

	// Another instance in the same prefix is not blocked.
	w.p.Template("", coretest.ClientConfig{URL: w.sim.URL, PAT: coretest.AdminPAT})
	if err := os.MkdirAll(filepath.Join(w.p.Dir, "gpu"), 0o700); err != nil {
		t.Fatal(err)
	}
	tpl, _ := os.ReadFile(filepath.Join(w.p.Dir, "config.template.main.toml"))
	if err := os.WriteFile(filepath.Join(w.p.Dir, "config.template.gpu.toml"), tpl, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(w.p.Dir, "gpu", "cuda.toml"), []byte(executorFile(w.sim.URL, "cuda", "")), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runBinary(t, nil, "--prefix", w.p.Dir, "--service-instance", "gpu", "--hostname", hostname, "--lock-timeout", "300ms", "--output", "json")
	if code != 0 || readReport(t, stdout).action("cuda") != plan.Create {
		t.Fatalf("instance gpu was blocked by instance main's lock: %d %s %s", code, stdout, stderr)
	}
}

// Package reliability tries hard to break the guarantees of SPEC 4.4:
// faults at every request, SIGKILL at varied points, concurrent runs, a
// catalogue of bad input, TLS, and secrets in error paths.
package reliability

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/config"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/engine"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/testkit/coretest"
)

const hostname = "node12"

var binary string // the register-runner binary under test

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "gra-reliability-")
	if err != nil {
		panic(err)
	}
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	binary = filepath.Join(dir, "register-runner")
	cmd := exec.Command("go", "build", "-o", binary, "./cmd/register-runner")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building register-runner: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	writeReport()
	os.Exit(code)
}

var (
	reportMu sync.Mutex
	report   []string
)

// reportf adds a line to build/reliability-report.txt (next to the
// transcripts) and to the test log.
func reportf(t *testing.T, format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	t.Log(line)
	reportMu.Lock()
	report = append(report, line)
	reportMu.Unlock()
}

func writeReport() {
	dir := os.Getenv("GRA_TRANSCRIPT_DIR")
	if dir == "" || len(report) == 0 {
		return
	}
	sort.Strings(report)
	_ = os.WriteFile(filepath.Join(filepath.Dir(dir), "reliability-report.txt"), []byte(strings.Join(report, "\n")+"\n"), 0o644)
}

func stress() bool { return os.Getenv("GRA_STRESS") != "" }

// world is one host prefix against one simulator.
type world struct {
	sim *coretest.Sim
	p   *coretest.Prefix
}

func executorFile(url, name string, extra string) string {
	return fmt.Sprintf("url = %q\nexecutor = \"shell\"\nbuilds_dir = \"/scratch/%s\"\n%s", url, name, extra)
}

// baseline registers a, b, c, d and old, then changes the declaration so
// the next sync must keep a and d, adopt b (revoked token), update c (new
// tag), create e and delete old: every action at once.
func baseline(t *testing.T) *world {
	t.Helper()
	w := &world{sim: coretest.NewSim(t, coretest.SimOptions()), p: coretest.NewPrefix(t, "main")}
	w.p.Template("concurrent = 2\n", coretest.ClientConfig{URL: w.sim.URL, PAT: coretest.AdminPAT})
	for _, n := range []string{"a", "b", "c", "d", "old"} {
		w.p.Executor(n+".toml", executorFile(w.sim.URL, n, ""))
	}
	if _, err := w.sync(t, context.Background()); err != nil {
		t.Fatalf("baseline sync: %v", err)
	}
	w.sim.RevokeToken(w.id(t, "b"))
	w.p.Executor("c.toml", executorFile(w.sim.URL, "c", "tags = [\"changed\"]\n"))
	w.p.Remove("main/old.toml")
	w.p.Executor("e.toml", executorFile(w.sim.URL, "e", ""))
	w.sim.ResetLog()
	return w
}

var declared = []string{"a", "b", "c", "d", "e"}

func (w *world) id(t *testing.T, name string) int64 {
	t.Helper()
	for _, r := range w.sim.Runners() {
		if r.Description == config.DefaultDescription(hostname, "main", name) {
			return r.ID
		}
	}
	t.Fatalf("no runner for %s", name)
	return 0
}

// sync runs the engine in-process (coretest.Run: everything it reports is
// recorded and checked for secrets), with the patience of a real run: a
// request to the simulator that is slow because the machine is loaded is
// not a failed request.
func (w *world) sync(t *testing.T, ctx context.Context) (*engine.Result, error) {
	t.Helper()
	return w.syncWith(t, ctx, coretest.Patient)
}

// syncFaulted is sync for a run under an injected fault: requests are cut
// short (250 ms) so that a request GitLab holds fails quickly. Such a run
// may fail for any reason, the machine's load included; what a test
// asserts of it must hold whatever failed.
func (w *world) syncFaulted(t *testing.T, ctx context.Context) (*engine.Result, error) {
	t.Helper()
	return w.syncWith(t, ctx, coretest.Timeouts{Request: 250 * time.Millisecond, RetryBudget: 4 * time.Second, MaxAttempts: 4, Lock: 10 * time.Second})
}

func (w *world) syncWith(t *testing.T, ctx context.Context, to coretest.Timeouts) (*engine.Result, error) {
	t.Helper()
	oc := coretest.Run(t, ctx, engine.Options{
		Prefix: w.p.Dir, Instance: "main", Hostname: hostname, Limits: engine.Limits{Concurrency: engine.DefaultConcurrency, Request: to.Request, RetryBudget: to.RetryBudget, MaxAttempts: to.MaxAttempts, Lock: to.Lock},
	})
	return oc.Res, oc.Err
}

type entry struct {
	Name  string `toml:"name"`
	ID    int64  `toml:"id"`
	Token string `toml:"token"`
	URL   string `toml:"url"`
}

// config parses the live config; a file that exists must always parse.
func (w *world) config(t *testing.T) ([]entry, bool) {
	t.Helper()
	data, err := os.ReadFile(w.p.ConfigPath())
	if os.IsNotExist(err) {
		return nil, false
	}
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Runners []entry `toml:"runners"`
	}
	if _, err := toml.Decode(string(data), &doc); err != nil {
		t.Fatalf("the config is not valid TOML (torn or partial write): %v\n%s", err, data)
	}
	if len(data) == 0 {
		t.Fatal("the config is empty")
	}
	return doc.Runners, true
}

var identity = regexp.MustCompile(`^` + hostname + ` main (\S+) Runner$`)

// converged asserts the invariants: exactly one runner per declared
// executor, none of this host undeclared, every config token verifies.
func (w *world) converged(t *testing.T, names []string) {
	t.Helper()
	count := map[string]int{}
	for _, r := range w.sim.Runners() {
		if m := identity.FindStringSubmatch(r.Description); m != nil {
			count[m[1]]++
		}
	}
	for _, n := range names {
		if count[n] != 1 {
			t.Errorf("GitLab holds %d runners for %s, want exactly 1 (all: %v)", count[n], n, count)
		}
		delete(count, n)
	}
	for n, c := range count {
		t.Errorf("GitLab still holds %d runner(s) of this host for undeclared %s", c, n)
	}
	entries, ok := w.config(t)
	if !ok {
		t.Fatal("no config after a clean run")
	}
	if len(entries) != len(names) {
		t.Errorf("config has %d runners, want %d", len(entries), len(names))
	}
	for _, e := range entries {
		if id, ok := w.sim.VerifyToken(e.Token); !ok || id != e.ID {
			t.Errorf("config entry %s (id %d): token does not verify", e.Name, e.ID)
		}
	}
}

// runBinary runs the register-runner binary and records its output.
func runBinary(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	coretest.Record(t, "stdout", []byte(out.String()))
	coretest.Record(t, "stderr", []byte(errb.String()))
	return code, out.String(), errb.String()
}

func (w *world) cliArgs(extra ...string) []string {
	return append([]string{"--prefix", w.p.Dir, "--service-instance", "main", "--hostname", hostname,
		"--request-timeout", coretest.Patient.Request.String(), "--lock-timeout", coretest.Patient.Lock.String()}, extra...)
}

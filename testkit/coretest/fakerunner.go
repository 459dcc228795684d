package coretest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// FakeRunner is a running stand-in for gitlab-runner (see
// testkit/coretest/fakerunner): an executable named gitlab-runner that runs
// `run --config <config>`, asks GitLab for jobs with every token of that
// config, and takes a new config only when signalled (SIGHUP).
type FakeRunner struct {
	PID  int
	log  string
	cmd  *exec.Cmd
	done chan struct{} // closed when it has exited
}

// fakeRunnerBinary builds the fake once per test process, into a folder
// named by its source's digest (kept between test runs, rebuilt when the
// source changes).
var fakeRunnerBinary = sync.OnceValues(func() (string, error) {
	_, here, _, _ := runtime.Caller(0)
	src := filepath.Join(filepath.Dir(here), "fakerunner")
	code, err := os.ReadFile(filepath.Join(src, "main.go"))
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(code)
	dir := filepath.Join(os.TempDir(), "gra-fakerunner-"+hex.EncodeToString(sum[:8]))
	bin := filepath.Join(dir, "gitlab-runner")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("the fake gitlab-runner is built with the go command, which is not on PATH: %w", err)
	}
	// Built beside, then renamed: test processes building at once never
	// run a half-written binary.
	tmp := fmt.Sprintf("%s.%d", bin, os.Getpid())
	cmd := exec.Command(goCmd, "build", "-o", tmp, ".")
	cmd.Dir = src
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %v\n%s", src, err, out)
	}
	return bin, os.Rename(tmp, bin)
})

// StartFakeRunner starts a fake gitlab-runner on a config; the test stops
// it when it ends.
func StartFakeRunner(t testing.TB, config string) *FakeRunner {
	t.Helper()
	bin, err := fakeRunnerBinary()
	if err != nil {
		t.Fatalf("building the fake gitlab-runner: %v", err)
	}
	f := &FakeRunner{log: filepath.Join(t.TempDir(), "fakerunner.log")}
	f.cmd = exec.Command(bin, "run", "--config", config)
	f.cmd.Env = append(os.Environ(), "GRA_FAKE_RUNNER_LOG="+f.log)
	if err := f.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f.PID, f.done = f.cmd.Process.Pid, make(chan struct{})
	go func() { _ = f.cmd.Wait(); close(f.done) }()
	t.Cleanup(f.Stop)
	return f
}

// Stop ends the fake (SIGTERM) and waits for it.
func (f *FakeRunner) Stop() {
	if f.exited() {
		return
	}
	_ = f.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-f.done:
	case <-time.After(time.Minute):
		_ = f.cmd.Process.Kill()
		<-f.done
	}
}

func (f *FakeRunner) exited() bool {
	select {
	case <-f.done:
		return true
	default:
		return false
	}
}

// Log is what the fake did so far, a line each: "started", "reload",
// "poll <runner id> <HTTP status>".
func (f *FakeRunner) Log() []string {
	b, _ := os.ReadFile(f.log)
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

// WaitPolled waits until the fake has asked for jobs with the token of
// each runner id, and got 204, after its log line number from (a test
// passes len(f.Log()) taken before the event it waits on). It waits for
// the fake, not for a time: the bound only keeps a broken test from
// hanging, and its failure says what did not come.
func (f *FakeRunner) WaitPolled(t testing.TB, from int, ids ...int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for {
		log := f.Log()
		missing := []int64{}
		for _, id := range ids {
			seen := false
			for _, l := range log[min(from, len(log)):] {
				seen = seen || l == fmt.Sprintf("poll %d 204", id)
			}
			if !seen {
				missing = append(missing, id)
			}
		}
		if len(missing) == 0 {
			return
		}
		if exited := f.exited(); exited || time.Now().After(deadline) {
			t.Fatalf("the fake gitlab-runner (pid %d) did not ask for jobs with runners %v and get 204 (waited 5 minutes or until it exited: exited %v); its log ends:\n%s",
				f.PID, missing, exited, strings.Join(log[max(0, len(log)-10):], "\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Refused are the fake's job requests GitLab answered 403 (a token it
// does not know: a runner deleted while the fake still had it).
func (f *FakeRunner) Refused() []string {
	var out []string
	for _, l := range f.Log() {
		if strings.HasPrefix(l, "poll ") && strings.HasSuffix(l, " 403") {
			out = append(out, l)
		}
	}
	return out
}

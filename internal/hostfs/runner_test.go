package hostfs

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

func TestIsRunnerExe(t *testing.T) {
	for exe, want := range map[string]bool{
		"/usr/bin/gitlab-runner":                      true,
		"/usr/bin/gitlab-runner (deleted)":            true, // replaced on disk by an upgrade
		"/usr/local/bin/gitlab-runner-linux-amd64":    true, // the download, kept under its name
		"/opt/gitlab-runner-17.9.3":                   true,
		"/opt/gitlab-runner_17.9.3 (deleted)":         true,
		"/usr/bin/gitlab-ci-multi-runner":             true, // the name before 10.0
		"/usr/bin/gitlab-ci-multi-runner-linux-386":   true,
		"/usr/bin/gitlab-runner-helper":               false, // the helper image's binary, not the service
		"/usr/bin/gitlab-runner-helper.x86_64":        false,
		"/usr/bin/sleep":                              false,
		"/bin/sh":                                     false,
		"/usr/bin/gitlab-runnerx":                     false,
		"/usr/bin/my-gitlab-runner":                   false,
		"":                                            false,
		" (deleted)":                                  false,
		"/usr/local/bin/register-runner":              false,
		"/usr/bin/gitlab-runner.dpkg-new":             true,
		"/home/ci/gitlab-runner.v17 (deleted)":        true,
		"/srv/gitlab-runner-helper-v17.9.3 (deleted)": false,
	} {
		if got := IsRunnerExe(exe); got != want {
			t.Errorf("IsRunnerExe(%q) = %v, want %v", exe, got, want)
		}
	}
}

func TestRunsConfig(t *testing.T) {
	const c = "/etc/gitlab-runner/config.main.toml"
	for _, tc := range []struct {
		name string
		args []string
		env  []string
		want string
		ok   bool
	}{
		{"the unit's ExecStart", []string{"/usr/bin/gitlab-runner", "run", "--working-directory", "/home/gitlab-runner", "--config", c, "--service", "gitlab-runner@main", "--user", "gitlab-runner"}, nil, c, true},
		{"--config=", []string{"gitlab-runner", "run", "--config=" + c}, nil, c, true},
		{"-c", []string{"gitlab-runner", "run", "-c", c}, nil, c, true},
		{"-c=", []string{"gitlab-runner", "run", "-c=" + c}, nil, c, true},
		{"one dash, long name", []string{"gitlab-runner", "run", "-config", c}, nil, c, true},
		{"relative", []string{"gitlab-runner", "run", "-c", "config.main.toml"}, nil, "config.main.toml", true},
		{"global flags first", []string{"gitlab-runner", "--log-level", "debug", "run", "--config", c}, nil, c, true},
		{"the environment", []string{"gitlab-runner", "run"}, []string{"HOME=/root", "CONFIG_FILE=" + c}, c, true},
		{"the flag wins over the environment", []string{"gitlab-runner", "run", "-c", c}, []string{"CONFIG_FILE=/etc/other.toml"}, c, true},
		{"the default config", []string{"gitlab-runner", "run"}, []string{"HOME=/root"}, "", false},
		{"another command", []string{"gitlab-runner", "artifacts-uploader", "--config", c}, nil, "", false},
		{"register", []string{"gitlab-runner", "register", "-c", c}, nil, "", false},
		{"run-single", []string{"gitlab-runner", "run-single", "--config", c}, nil, "", false},
		{"no arguments", nil, nil, "", false},
		{"a flag without its value", []string{"gitlab-runner", "run", "--config"}, nil, "", false},
	} {
		got, ok := RunsConfig(tc.args, tc.env)
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s: RunsConfig(%q, %q) = %q, %v; want %q, %v", tc.name, tc.args, tc.env, got, ok, tc.want, tc.ok)
		}
	}
}

// fakeRunner starts a long-lived process whose executable is named
// gitlab-runner (a copy of /bin/sh), with the command line args after
// "gitlab-runner -c 'sleep 600; :'" — "run --config ..." say — in dir.
func fakeRunner(t *testing.T, name, dir string, args ...string) int {
	t.Helper()
	bin := filepath.Join(t.TempDir(), name)
	copyFile(t, "/bin/sh", bin)
	cmd := exec.Command(bin, append([]string{"-c", "sleep 600; :"}, args...)...)
	cmd.Dir = dir
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() })
	// Start returns once the executable is in place; the kernel sets up
	// the command line a moment later: wait for it (not for a time).
	cmdline := filepath.Join("/proc", strconv.Itoa(cmd.Process.Pid), "cmdline")
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Millisecond) {
		if b, err := os.ReadFile(cmdline); err == nil && len(b) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d (%s) shows no command line after a minute", cmd.Process.Pid, bin)
		}
	}
	return cmd.Process.Pid
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// FindRunners finds the gitlab-runner processes that run a config file,
// by the file itself (absolute, relative to their working directory), and
// no other process.
func TestFindRunners(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.main.toml")
	other := filepath.Join(dir, "config.other.toml")
	for _, p := range []string{cfg, other} {
		if err := os.WriteFile(p, []byte("concurrent = 1\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	abs := fakeRunner(t, "gitlab-runner", "/", "run", "--config", cfg)
	rel := fakeRunner(t, "gitlab-runner-17.9.3", dir, "run", "-c", "config.main.toml")
	fakeRunner(t, "gitlab-runner", "/", "run", "--config", other)              // another instance
	fakeRunner(t, "gitlab-runner", "/", "artifacts-uploader", "--config", cfg) // not the service
	fakeRunner(t, "gitlab-runner-helper", "/", "run", "--config", cfg)         // not gitlab-runner
	fakeRunner(t, "sleeper", "/", "run", "--config", cfg)                      // not gitlab-runner
	want := map[int]bool{abs: true, rel: true}

	found := FindRunners(cfg)
	if len(found) != 2 {
		t.Fatalf("found %+v, want the two gitlab-runner processes %v running %s", found, want, cfg)
	}
	for _, p := range found {
		if !want[p.PID] || !IsRunnerExe(p.Exe) {
			t.Errorf("found %+v, want one of %v", p, want)
		}
	}
	if got := FindRunners(filepath.Join(dir, "absent.toml")); len(got) != 0 {
		t.Errorf("a config that does not exist is run by %+v", got)
	}
}

func TestInspectProcess(t *testing.T) {
	pid := fakeRunner(t, "gitlab-runner", "/", "run")
	p, err := InspectProcess(pid)
	if err != nil || !IsRunnerExe(p.Exe) || len(p.Args) < 2 || p.Args[len(p.Args)-1] != "run" {
		t.Fatalf("InspectProcess(%d) = %+v, %v", pid, p, err)
	}
	self, err := InspectProcess(os.Getpid())
	if err != nil || IsRunnerExe(self.Exe) {
		t.Fatalf("the test process: %+v, %v", self, err)
	}
	if _, err := InspectProcess(1 << 30); err == nil {
		t.Fatal("a process that does not exist was inspected")
	}
}

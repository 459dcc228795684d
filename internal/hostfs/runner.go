package hostfs

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// A gitlab-runner process on this host: the service that polls GitLab with
// the tokens of a config.{instance}.toml. A run signals it (SIGHUP, on
// which gitlab-runner re-reads its config at once: commands/multi.go,
// reloadSignal) before it deletes a runner that left the config, so that
// gitlab-runner never asks for jobs with a token GitLab no longer knows.
// Nothing but a gitlab-runner is ever signalled: to a shell or a sleep,
// SIGHUP is death.

// RunnerProcess is a process as far as it tells whether it is gitlab-runner
// and which config it runs.
type RunnerProcess struct {
	PID int
	// Exe is /proc/PID/exe: the executable's path, " (deleted)" appended
	// when it was replaced on disk (an upgrade) since the process started.
	Exe string
	// Args is its command line; Env its environment (CONFIG_FILE).
	Args []string
	Env  []string
}

// runnerNames are the executables gitlab-runner ships as: the package's
// gitlab-runner, the name before 10.0 (gitlab-ci-multi-runner), and the
// downloads named by platform or version (gitlab-runner-linux-amd64,
// gitlab-runner-17.9.3). gitlab-runner-helper is not the service.
func isRunnerName(base string) bool {
	for _, name := range []string{"gitlab-runner", "gitlab-ci-multi-runner"} {
		if base == name {
			return true
		}
		if rest, ok := strings.CutPrefix(base, name); ok && (rest[0] == '-' || rest[0] == '_' || rest[0] == '.') {
			return !strings.HasPrefix(rest[1:], "helper")
		}
	}
	return false
}

// IsRunnerExe reports whether an executable path (as /proc/PID/exe reads,
// " (deleted)" included) is gitlab-runner's.
func IsRunnerExe(exe string) bool {
	exe = strings.TrimSuffix(exe, " (deleted)")
	return exe != "" && isRunnerName(filepath.Base(exe))
}

// RunsConfig gives the config file a gitlab-runner command line runs: the
// "run" command's --config (or -c; one dash or two, "=value" or the next
// argument, as Go's flag package reads them), else CONFIG_FILE from its
// environment (commands/config.go: `short:"c" long:"config"
// env:"CONFIG_FILE"`). ok is false for any other command (a helper
// subcommand the shell executor runs, say) or when neither names a file:
// gitlab-runner then runs its default config.toml, which is never an
// instance's.
func RunsConfig(args, env []string) (config string, ok bool) {
	run := -1
	for i, a := range args {
		if i > 0 && a == "run" {
			run = i
			break
		}
	}
	if run < 0 {
		return "", false
	}
	for i := run + 1; i < len(args); i++ {
		a := args[i]
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || (name != "c" && name != "config") {
			continue
		}
		if hasValue {
			config = value
		} else if i+1 < len(args) {
			config = args[i+1]
			i++
		}
	}
	if config == "" {
		for _, kv := range env {
			if v, ok := strings.CutPrefix(kv, "CONFIG_FILE="); ok {
				config = v
			}
		}
	}
	return config, config != ""
}

// procRoot is where processes are read (tests point it elsewhere).
var procRoot = "/proc"

// InspectProcess reads what tells whether a process is gitlab-runner.
func InspectProcess(pid int) (RunnerProcess, error) {
	p := RunnerProcess{PID: pid}
	dir := filepath.Join(procRoot, strconv.Itoa(pid))
	exe, err := os.Readlink(filepath.Join(dir, "exe"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return p, fmt.Errorf("no process %d", pid)
		}
		return p, fmt.Errorf("cannot read process %d's executable: %w", pid, err)
	}
	p.Exe = exe
	if b, err := os.ReadFile(filepath.Join(dir, "cmdline")); err == nil {
		p.Args = splitNul(b)
	}
	return p, nil
}

func splitNul(b []byte) []string {
	b = bytes.TrimRight(b, "\x00")
	if len(b) == 0 {
		return nil
	}
	return strings.Split(string(b), "\x00")
}

// FindRunners lists the gitlab-runner processes that run the config at
// path: every gitlab-runner "run" whose config, resolved in its own root
// and working directory (a container's mount namespace, a relative path),
// is that same file. Processes that cannot be read (another user's, gone
// meanwhile) are passed over: they could not be signalled either.
func FindRunners(path string) []RunnerProcess {
	want, err := os.Stat(path)
	if err != nil {
		return nil
	}
	entries, err := os.ReadDir(procRoot)
	if err != nil {
		return nil
	}
	var out []RunnerProcess
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 0 || pid == os.Getpid() {
			continue
		}
		dir := filepath.Join(procRoot, e.Name())
		exe, err := os.Readlink(filepath.Join(dir, "exe"))
		if err != nil || !IsRunnerExe(exe) {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join(dir, "cmdline"))
		if err != nil {
			continue
		}
		p := RunnerProcess{PID: pid, Exe: exe, Args: splitNul(cmdline)}
		if _, named := RunsConfig(p.Args, nil); !named {
			if env, err := os.ReadFile(filepath.Join(dir, "environ")); err == nil {
				p.Env = splitNul(env)
			}
		}
		cfg, ok := RunsConfig(p.Args, p.Env)
		if !ok {
			continue
		}
		if !filepath.IsAbs(cfg) {
			cfg = filepath.Join("cwd", cfg)
		} else {
			cfg = filepath.Join("root", cfg)
		}
		if fi, err := os.Stat(filepath.Join(dir, cfg)); err == nil && os.SameFile(fi, want) {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].PID < out[j].PID })
	return out
}

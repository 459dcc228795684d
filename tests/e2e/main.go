// Command e2e proves the systemd integration on a real systemd host: a
// Debian 12 container booted with systemd-nspawn, the collection's role and
// sync module applied with ansible-playbook over community.docker.nsenter,
// the real gitlab-runner as the unit's ExecStart, and the GitLab simulator as
// GitLab. Each scenario asserts; a table of them is printed at the end. It
// needs root (`sudo make e2e`), and fails, never skips, when a tool is
// missing.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/BurntSushi/toml"
)

// cleanups undoes what the run started (container, simulator, proxy), last
// first, on success, failure and interrupt alike; each entry acts on a PID or
// a path this run owns.
var cleanups cleanupStack

type cleanupStack struct {
	mu      sync.Mutex
	running sync.Mutex // held while steps run: a second caller waits for them
	steps   []cleanupStep
}

type cleanupStep struct {
	what string
	fn   func()
}

func (c *cleanupStack) push(what string, fn func()) {
	c.mu.Lock()
	c.steps = append(c.steps, cleanupStep{what, fn})
	c.mu.Unlock()
}

func (c *cleanupStack) run() {
	c.running.Lock()
	defer c.running.Unlock()
	c.mu.Lock()
	steps := c.steps
	c.steps = nil
	c.mu.Unlock()
	for i := len(steps) - 1; i >= 0; i-- {
		steps[i].fn()
	}
}

var started = time.Now()

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "e2e %6.1fs  %s\n", time.Since(started).Seconds(), fmt.Sprintf(format, args...))
}

func main() {
	keep := flag.Bool("keep", false, "leave the run folder (build/e2e/run) for inspection")
	limit := flag.Duration("timeout", time.Hour, "the one time limit, on the whole run (steps and waits have none of their own)")
	flag.Parse()

	// An interrupt, or the run's time limit, cancels the run: commands in
	// flight are killed (each saying what it was doing), the remaining
	// scenarios are not started, and the main flow cleans up. If it does
	// not get there within 10s of an interrupt, the cleanup runs from here.
	ctx, stop := context.WithTimeout(context.Background(), *limit)
	mainDone := make(chan struct{})
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		s := <-sigs
		logf("%s: stopping and cleaning up", s)
		stop()
		select {
		case <-mainDone:
		case <-time.After(10 * time.Second):
			cleanups.run()
			os.Exit(130)
		}
	}()

	err := run(ctx, *keep)
	cleanups.run()
	close(mainDone)
	if errors.Is(ctx.Err(), context.Canceled) {
		fmt.Fprintln(os.Stderr, "e2e: interrupted; container and processes stopped")
		os.Exit(130)
	}
	if ctx.Err() != nil && err == nil {
		err = fmt.Errorf("the run's time limit (--timeout %s) ran out", *limit)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: FAIL:", err)
		os.Exit(1)
	}
}

// Env is what the scenarios share.
type Env struct {
	ctx                       context.Context // cancelled on interrupt
	root, runDir, collections string
	ctr                       *Container
	gl                        *GitLab
	pat                       string
	secrets                   map[string]bool // every token seen: none may reach the journal
	extraVars                 string
}

func run(ctx context.Context, keep bool) error {
	if err := preflight(); err != nil {
		return err
	}
	root, err := os.Getwd()
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		return fmt.Errorf("run from the repository root (make e2e)")
	}
	for _, f := range []string{"build/register-runner", "build/gitlab-sim"} {
		if _, err := os.Stat(filepath.Join(root, f)); err != nil {
			return fmt.Errorf("%s is missing: run `make build collection` (make e2e does)", f)
		}
	}
	tarballs, _ := filepath.Glob(filepath.Join(root, "dist", "gitlab_runner_auth-runner-*.tar.gz"))
	if len(tarballs) != 1 {
		return fmt.Errorf("want one collection tarball in dist/, found %d: run `make collection`", len(tarballs))
	}

	cacheDir := filepath.Join(root, "build", "e2e")
	runDir := filepath.Join(cacheDir, "run")
	if err := removeTree(runDir); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(runDir, "secrets"), 0o700); err != nil {
		return err
	}
	if !keep {
		cleanups.push("remove run folder", func() {
			if err := removeTree(runDir); err != nil {
				logf("%v", err)
			}
		})
	}
	env := &Env{ctx: ctx, root: root, runDir: runDir, collections: filepath.Join(runDir, "collections"), secrets: map[string]bool{}}

	var prep []Row
	t0 := time.Now()
	rootfs, built, err := ensureRootfs(ctx, cacheDir)
	if err != nil {
		return err
	}
	how := "cached"
	if built {
		how = "built with debootstrap"
	}
	prep = append(prep, Row{Name: "root filesystem", OK: true, Took: time.Since(t0), Detail: fmt.Sprintf("Debian %s, %s (%s)", suite, how, filepath.Base(rootfs))})

	t0 = time.Now()
	runnerBin, runnerFrom, err := gitlabRunnerBinary(root, runDir)
	if err != nil {
		return err
	}
	version, err := exec.Command(runnerBin, "--version").Output()
	if err != nil {
		return fmt.Errorf("%s --version: %v", runnerBin, err)
	}
	if out, err := exec.Command("ansible-galaxy", "collection", "install", "--force", "-p", env.collections, tarballs[0]).CombinedOutput(); err != nil {
		return fmt.Errorf("ansible-galaxy collection install: %v\n%s", err, out)
	}
	pat := "glpat-e2e-" + randomHex(12)
	env.pat = pat
	env.secrets[pat] = true
	patFile := filepath.Join(runDir, "secrets", "admin.pat")
	if err := os.WriteFile(patFile, []byte(pat+"\n"), 0o600); err != nil {
		return err
	}
	gl, err := startGitLab(ctx, filepath.Join(root, "build", "gitlab-sim"), runDir, patFile)
	if err != nil {
		return err
	}
	env.gl = gl
	vars, _ := json.Marshal(map[string]string{"gra_url": gl.URL, "gra_pat": pat})
	env.extraVars = filepath.Join(runDir, "secrets", "vars.json")
	if err := os.WriteFile(env.extraVars, vars, 0o600); err != nil {
		return err
	}

	machine := filepath.Join(runDir, "machine")
	if err := newMachine(rootfs, machine, runnerBin); err != nil {
		return err
	}
	env.ctr = &Container{ctx: ctx, Dir: machine, Name: fmt.Sprintf("gra-e2e-%d", os.Getpid()), Hostname: "e2ehost",
		LogPath: filepath.Join(runDir, "console.log")}
	if err := env.ctr.Boot(ctx); err != nil {
		return err
	}
	prep = append(prep, Row{Name: "boot", OK: true, Took: time.Since(t0),
		Detail: fmt.Sprintf("systemd-nspawn -b, init pid %d, booted in %.1fs; gitlab-runner %s from %s", env.ctr.Leader,
			env.ctr.BootTime.Seconds(), strings.Join(strings.Fields(strings.TrimPrefix(firstLine(string(version)), "Version:")), " "), runnerFrom)})

	rows := runScenarios(ctx, env)
	rows = append(prep, rows...)
	printTable(rows)
	failed := 0
	for _, r := range rows {
		if !r.OK {
			failed++
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d scenarios failed (logs in %s with --keep)", failed, len(rows), runDir)
	}
	return nil
}

// preflight fails with the install command for anything missing.
func preflight() error {
	if os.Geteuid() != 0 {
		return errors.New("make e2e boots a container with systemd-nspawn and needs root: run `sudo make e2e`")
	}
	need := []struct{ tool, install string }{
		{"debootstrap", "apt-get install -y debootstrap"},
		{"systemd-nspawn", "apt-get install -y systemd-container"},
		{"nsenter", "apt-get install -y util-linux"},
		{"ansible-playbook", "apt-get install -y ansible"},
		{"ansible-galaxy", "apt-get install -y ansible"},
		{"gunzip", "apt-get install -y gzip"},
		{"cp", "apt-get install -y coreutils"},
		// The collection upgrades the job scenarios install are built here.
		{"go", "https://go.dev/doc/install"},
	}
	var missing []string
	for _, n := range need {
		if _, err := exec.LookPath(n.tool); err != nil {
			missing = append(missing, fmt.Sprintf("%s (%s)", n.tool, n.install))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing tools: %s", strings.Join(missing, "; "))
	}
	if out, err := exec.Command("ansible-doc", "-t", "connection", "community.docker.nsenter").CombinedOutput(); err != nil || !bytes.Contains(out, []byte("nsenter_pid")) {
		return errors.New("the community.docker.nsenter connection is missing: apt-get install -y ansible " +
			"(or ansible-galaxy collection install community.docker)")
	}
	return nil
}

// gitlabRunnerBinary is the operator's gitlab-runner (GITLAB_RUNNER_BIN), or
// the release the project keeps beside it for tests.
func gitlabRunnerBinary(root, runDir string) (string, string, error) {
	if p := os.Getenv("GITLAB_RUNNER_BIN"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", "", fmt.Errorf("GITLAB_RUNNER_BIN: %w", err)
		}
		return p, "GITLAB_RUNNER_BIN", nil
	}
	gz := filepath.Join(root, "..", "shared", "tools", "gitlab-runner-17.9.3.gz")
	if _, err := os.Stat(gz); err != nil {
		return "", "", fmt.Errorf("no gitlab-runner: set GITLAB_RUNNER_BIN to a gitlab-runner binary (GitLab's package "+
			"installs /usr/bin/gitlab-runner), or provide %s", gz)
	}
	out := filepath.Join(runDir, "gitlab-runner")
	f, err := os.OpenFile(out, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return "", "", err
	}
	cmd := exec.Command("gunzip", "-c", gz)
	cmd.Stdout = f
	err = cmd.Run()
	f.Close()
	if err != nil {
		return "", "", fmt.Errorf("gunzip %s: %w", gz, err)
	}
	return out, "../shared/tools/gitlab-runner-17.9.3.gz", nil
}

// Row is one line of the final table.
type Row struct {
	Name   string
	OK     bool
	Took   time.Duration
	Detail string
}

func printTable(rows []Row) {
	fmt.Println()
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "SCENARIO\tRESULT\tTIME\tDETAIL")
	for _, r := range rows {
		res := "PASS"
		if !r.OK {
			res = "FAIL"
		}
		fmt.Fprintf(w, "%s\t%s\t%5.1fs\t%s\n", r.Name, res, r.Took.Seconds(), strings.ReplaceAll(r.Detail, "\n", " | "))
	}
	w.Flush()
	fmt.Printf("total %.1fs\n", time.Since(started).Seconds())
}

// ansible runs a playbook of tests/e2e/playbooks against the container.
func (e *Env) ansible(play string, extra ...string) (string, error) {
	inv := filepath.Join(e.runDir, "inventory.ini")
	content := fmt.Sprintf("[e2e]\nnode ansible_connection=community.docker.nsenter ansible_nsenter_pid=%d ansible_python_interpreter=/usr/bin/python3\n", e.ctr.Leader)
	if err := os.WriteFile(inv, []byte(content), 0o600); err != nil {
		return "", err
	}
	// No limit of its own: a play on a loaded machine takes what it takes
	// (each task is a few nsenter commands); the run's limit ends it, and
	// then it says which task it was at.
	args := append([]string{"-i", inv, "-e", "@" + e.extraVars}, extra...)
	args = append(args, filepath.Join(e.root, "tests", "e2e", "playbooks", play))
	cmd := exec.CommandContext(e.ctx, "ansible-playbook", args...)
	cmd.Env = append(os.Environ(), "ANSIBLE_COLLECTIONS_PATH="+e.collections, "ANSIBLE_NOCOLOR=1",
		"ANSIBLE_LOCAL_TEMP="+filepath.Join(e.runDir, "ansible-tmp"), "ANSIBLE_RETRY_FILES_ENABLED=0")
	var buf syncBuffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	start := time.Now()
	stop := running("ansible-playbook "+play, func() string { return ", at " + lastTask(buf.String()) })
	err := cmd.Run()
	stop()
	out := buf.Bytes()
	_ = os.WriteFile(filepath.Join(e.runDir, "ansible-"+play+".log"), out, 0o600)
	for s := range e.secrets {
		if bytes.Contains(out, []byte(s)) {
			return string(out), fmt.Errorf("ansible-playbook %s printed a secret", play)
		}
	}
	if e.ctx.Err() != nil {
		return string(out), fmt.Errorf("ansible-playbook %s killed after %.0fs: %s while it was at %s\n%s",
			play, time.Since(start).Seconds(), ranOut(e.ctx), lastTask(string(out)), tail(string(out), 10))
	}
	if err != nil {
		return string(out), fmt.Errorf("ansible-playbook %s: %v\n%s", play, err, tail(string(out), 25))
	}
	return string(out), nil
}

// lastTask is the task (or handler) a play's output reached.
func lastTask(out string) string {
	last := "its start"
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "TASK [") || strings.HasPrefix(l, "RUNNING HANDLER [") || strings.HasPrefix(l, "PLAY [") {
			last = strings.TrimRight(l, " *")
		}
	}
	return last
}

// syncBuffer is a buffer a command writes to while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]byte(nil), s.b.Bytes()...)
}

func (s *syncBuffer) String() string { return string(s.Bytes()) }

// Runner is one [[runners]] entry of a generated config.
type Runner struct {
	Name  string `toml:"name"`
	URL   string `toml:"url"`
	ID    int64  `toml:"id"`
	Token string `toml:"token"`
}

type Config struct {
	Runners []Runner `toml:"runners"`
	Sum     string
	Mode    os.FileMode
	ModTime time.Time
}

// ids maps executor name (the file stem, last word before " Runner" in the
// description) to runner id.
func (c Config) IDs() map[string]int64 {
	out := map[string]int64{}
	for _, r := range c.Runners {
		f := strings.Fields(strings.TrimSuffix(r.Name, " Runner"))
		if len(f) > 0 {
			out[f[len(f)-1]] = r.ID
		}
	}
	return out
}

func (c Config) IDList() []int64 {
	var ids []int64
	for _, r := range c.Runners {
		ids = append(ids, r.ID)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

// config reads a generated config from the host side of the container.
func (e *Env) config(instance string) (Config, error) {
	p := e.ctr.Path(fmt.Sprintf("/etc/gitlab-runner/config.%s.toml", instance))
	b, err := os.ReadFile(p)
	if err != nil {
		return Config{}, err
	}
	fi, err := os.Stat(p)
	if err != nil {
		return Config{}, err
	}
	var c Config
	if _, err := toml.Decode(string(b), &c); err != nil {
		return Config{}, fmt.Errorf("config.%s.toml: %w", instance, err)
	}
	for _, r := range c.Runners {
		e.secrets[r.Token] = true
	}
	c.Sum = fmt.Sprintf("%x", sha256Sum(b))
	c.Mode = fi.Mode().Perm()
	c.ModTime = fi.ModTime()
	return c, nil
}

// unitPID is the unit's main PID (0 when it is not running).
func (e *Env) unitPID(unit string) int {
	out, _ := e.ctr.Exec("systemctl", "show", "--property=MainPID", "--value", unit)
	pid, _ := strconv.Atoi(strings.TrimSpace(out))
	return pid
}

func (e *Env) unitActive(unit string) string {
	out, _ := e.ctr.Exec("systemctl", "is-active", unit)
	return strings.TrimSpace(out)
}

// journal returns the unit's journal since a cursor-free time mark.
func (e *Env) journal(unit string, since time.Time) string {
	args := []string{"journalctl", "--no-pager", "-o", "cat", "--since", "@" + strconv.FormatInt(since.Unix()-1, 10)}
	if unit != "" {
		args = append(args, "-u", unit)
	}
	out, _ := e.ctr.Exec(args...)
	return out
}

// noSecretInJournal checks the container's whole journal for every token and
// the PAT seen so far.
func (e *Env) noSecretInJournal() (int, error) {
	out, err := e.ctr.Exec("journalctl", "--no-pager", "-o", "cat")
	if err != nil {
		return 0, err
	}
	for s := range e.secrets {
		if s != "" && strings.Contains(out, s) {
			return 0, errors.New("a token or the PAT appears in the container's journal")
		}
	}
	return strings.Count(out, "\n"), nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

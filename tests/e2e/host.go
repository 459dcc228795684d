package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The Debian root filesystem the container boots. Its cache key covers
// everything that shapes it, so a change here builds a new one beside the old.
const (
	suite   = "bookworm"
	variant = "minbase"
	mirror  = "http://deb.debian.org/debian"
	// systemd as init, dbus for systemctl's bus, python3 for Ansible,
	// CA certificates as on any host (minbase brings passwd for useradd).
	packages = "systemd,systemd-sysv,dbus,python3,ca-certificates"
)

func rootfsKey() string {
	sum := sha256.Sum256([]byte(strings.Join([]string{"v1", suite, variant, mirror, packages, hostArch()}, "\n")))
	return hex.EncodeToString(sum[:6])
}

func hostArch() string {
	out, err := exec.Command("dpkg", "--print-architecture").Output()
	if err != nil {
		return "amd64"
	}
	return strings.TrimSpace(string(out))
}

// ensureRootfs returns the cached root filesystem, building it first when it
// is missing. It is built in a temporary folder and renamed into place, so an
// interrupted build never leaves a half filesystem under the cache name.
func ensureRootfs(ctx context.Context, cacheDir string) (string, bool, error) {
	dir := filepath.Join(cacheDir, fmt.Sprintf("rootfs-%s-%s", suite, rootfsKey()))
	if fi, err := os.Stat(filepath.Join(dir, "usr", "bin", "systemctl")); err == nil && !fi.IsDir() {
		return dir, false, nil
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return "", false, err
	}
	stale, _ := filepath.Glob(dir + ".tmp-*")
	for _, s := range stale {
		logf("removing %s, left by an interrupted build", s)
		if err := removeTree(s); err != nil {
			return "", false, err
		}
	}
	tmp := fmt.Sprintf("%s.tmp-%d", dir, os.Getpid())
	cleanups.push("remove unfinished root filesystem", func() {
		if err := removeTree(tmp); err != nil {
			logf("%v", err)
		}
	})
	logf("building the Debian %s root filesystem with debootstrap (once; cached in %s)", suite, dir)
	cmd := exec.CommandContext(ctx, "debootstrap", "--variant="+variant, "--include="+packages, suite, tmp, mirror)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// SIGTERM first: debootstrap's exit trap unmounts what it mounted in the
	// target (/proc, /sys, maybe a bind of /dev).
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = 20 * time.Second
	stop := running("debootstrap", func() string { return "" })
	err := cmd.Run()
	stop()
	if ctx.Err() != nil {
		return "", false, fmt.Errorf("debootstrap killed: %s while it built %s\n%s", ranOut(ctx), tmp, tail(out.String(), 10))
	}
	if err != nil {
		return "", false, fmt.Errorf("debootstrap: %v\n%s", err, tail(out.String(), 20))
	}
	// Every boot of a copy gets its own machine id (see newMachine).
	if err := os.WriteFile(filepath.Join(tmp, "etc", "machine-id"), nil, 0o444); err != nil {
		return "", false, err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return "", false, err
	}
	return dir, true, nil
}

// newMachine copies the cached root filesystem into a fresh folder for this
// run, so the cache stays pristine, and gives it a machine id (gitlab-runner's
// host id derives from it; it must survive the container's reboot).
func newMachine(rootfs, dir, gitlabRunner string) error {
	if err := removeTree(dir); err != nil {
		return err
	}
	if out, err := exec.Command("cp", "-a", "--reflink=auto", rootfs, dir).CombinedOutput(); err != nil {
		return fmt.Errorf("copy root filesystem: %v: %s", err, out)
	}
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "etc", "machine-id"), []byte(hex.EncodeToString(id)+"\n"), 0o444); err != nil {
		return err
	}
	// The operator's gitlab-runner and its user, as GitLab's package
	// installs them.
	data, err := os.ReadFile(gitlabRunner)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "usr", "bin", "gitlab-runner"), data, 0o755); err != nil {
		return err
	}
	if out, err := exec.Command("useradd", "--root", dir, "--create-home", "--home-dir", "/home/gitlab-runner",
		"--shell", "/bin/bash", "gitlab-runner").CombinedOutput(); err != nil {
		return fmt.Errorf("useradd gitlab-runner in the container: %v: %s", err, out)
	}
	// Debian's skeleton .bash_logout runs clear_console, which fails
	// without a terminal and with it every shell job ("prepare environment:
	// exit status 1"); GitLab's docs have it removed
	// (docs/shells/_index.md, "Shell profile loading").
	if err := os.Remove(filepath.Join(dir, "home", "gitlab-runner", ".bash_logout")); err != nil && !os.IsNotExist(err) {
		return err
	}
	return nil
}

// Container is one boot of the machine folder with systemd-nspawn.
type Container struct {
	ctx                          context.Context // the run's: cancelled on interrupt
	Dir, Name, Hostname, LogPath string
	nspawn                       *exec.Cmd
	done                         chan struct{}
	Leader                       int // the container's PID 1, seen from the host
	BootTime                     time.Duration
}

// Boot starts systemd in the container and waits until it has finished
// booting. systemd-nspawn shares the host's network, so the container reaches
// the simulator on 127.0.0.1.
func (c *Container) Boot(ctx context.Context) error {
	start := time.Now()
	logFile, err := os.OpenFile(c.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	// --register=no --keep-unit: no machined or host systemd needed.
	c.nspawn = exec.Command("systemd-nspawn", "--quiet", "--boot", "--directory="+c.Dir,
		"--machine="+c.Name, "--hostname="+c.Hostname, "--register=no", "--keep-unit",
		"--console=read-only", "--link-journal=no")
	c.nspawn.Stdout, c.nspawn.Stderr = logFile, logFile
	c.nspawn.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := c.nspawn.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("systemd-nspawn: %w", err)
	}
	c.done = make(chan struct{})
	go func() { _ = c.nspawn.Wait(); logFile.Close(); close(c.done) }()
	cleanups.push("stop container "+c.Name, func() { c.Stop(30 * time.Second) })

	exited := false
	if err := waitFor(ctx, fmt.Sprintf("the container's init under systemd-nspawn (pid %d; console in %s)", c.nspawn.Process.Pid, c.LogPath), func() (bool, string) {
		select {
		case <-c.done:
			exited = true
			return true, "systemd-nspawn exited"
		default:
		}
		c.Leader = findLeader(c.nspawn.Process.Pid)
		return c.Leader != 0, "no process in a PID namespace of its own yet"
	}); err != nil {
		return err
	}
	if exited {
		return fmt.Errorf("systemd-nspawn exited at boot; see %s:\n%s", c.LogPath, tailFile(c.LogPath, 15))
	}
	// is-system-running --wait returns once boot is over ("running", or
	// "degraded" when a unit failed).
	var state string
	if err := waitFor(ctx, "the container to finish booting (console in "+c.LogPath+")", func() (bool, string) {
		out, _ := c.execCtx(ctx, "systemctl", "is-system-running", "--wait")
		state = strings.TrimSpace(out)
		return state == "running" || state == "degraded", "state " + state
	}); err != nil {
		return err
	}
	c.BootTime = time.Since(start)
	if state == "degraded" {
		failed, _ := c.Exec("systemctl", "--failed", "--no-legend", "--plain")
		logf("container booted degraded; failed units:\n%s", failed)
	}
	return nil
}

// findLeader returns the child of systemd-nspawn that is PID 1 in its own PID
// namespace: the container's init.
func findLeader(nspawnPID int) int {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		status, err := os.ReadFile(filepath.Join("/proc", e.Name(), "status"))
		if err != nil {
			continue
		}
		var ppid int
		var nspid []string
		for _, line := range strings.Split(string(status), "\n") {
			if v, ok := strings.CutPrefix(line, "PPid:"); ok {
				ppid, _ = strconv.Atoi(strings.TrimSpace(v))
			}
			if v, ok := strings.CutPrefix(line, "NSpid:"); ok {
				nspid = strings.Fields(v)
			}
		}
		if ppid == nspawnPID && len(nspid) >= 2 && nspid[len(nspid)-1] == "1" {
			return pid
		}
	}
	return 0
}

// Stop powers the container off in order (systemd-nspawn turns SIGTERM into
// a shutdown of the container's systemd) and, past the bound, kills it: the
// init first, which takes every process of its PID namespace with it.
func (c *Container) Stop(bound time.Duration) {
	if c.nspawn == nil || c.nspawn.Process == nil {
		return
	}
	select {
	case <-c.done:
		return
	default:
	}
	_ = c.nspawn.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
		return
	case <-time.After(bound):
	}
	logf("container %s did not stop in %s; killing it", c.Name, bound)
	if c.Leader > 0 {
		_ = syscall.Kill(c.Leader, syscall.SIGKILL)
	}
	_ = syscall.Kill(-c.nspawn.Process.Pid, syscall.SIGKILL)
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
	}
}

// Poweroff shuts the container down from inside, as an operator would.
func (c *Container) Poweroff() error {
	_, _ = c.Exec("systemctl", "poweroff", "--no-block")
	err := waitFor(c.ctx, "the container to power off (console in "+c.LogPath+")", func() (bool, string) {
		select {
		case <-c.done:
			return true, ""
		default:
			return false, "systemd-nspawn still running"
		}
	})
	if err == nil {
		c.Leader = 0
	}
	return err
}

// Exec runs a command inside the container (all its namespaces) and
// returns its combined output. It has no limit of its own (a restart
// waits for running jobs; a loaded machine is slow): the run's limit ends
// it, and then the error names the command.
func (c *Container) Exec(argv ...string) (string, error) {
	return c.execCtx(c.ctx, argv...)
}

func (c *Container) execCtx(ctx context.Context, argv ...string) (string, error) {
	args := append([]string{"--target", strconv.Itoa(c.Leader), "--mount", "--uts", "--ipc", "--net", "--pid", "--"}, argv...)
	cmd := exec.CommandContext(ctx, "nsenter", args...)
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8", "SYSTEMD_PAGER=", "SYSTEMD_COLORS=0"}
	start := time.Now()
	stop := running(strings.Join(argv, " ")+" in the container", func() string { return "" })
	out, err := cmd.CombinedOutput()
	stop()
	if ctx.Err() != nil {
		return string(out), fmt.Errorf("%s killed after %.0fs: %s while it ran: %s", strings.Join(argv, " "), time.Since(start).Seconds(), ranOut(ctx), tail(string(out), 10))
	}
	if err != nil {
		return string(out), fmt.Errorf("%s: %v: %s", strings.Join(argv, " "), err, tail(string(out), 10))
	}
	return string(out), nil
}

// Path maps a path inside the container to the host.
func (c *Container) Path(p string) string { return filepath.Join(c.Dir, p) }

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func tailFile(path string, n int) string {
	b, _ := os.ReadFile(path)
	return tail(string(b), n)
}

// removeTree deletes a folder this run (or an interrupted one) made, after
// unmounting anything still mounted below it: a killed debootstrap can leave
// /proc, /sys or a bind mount of the host's /dev in its target, and deleting
// through a bind mount would delete the host's files.
func removeTree(dir string) error {
	dir = filepath.Clean(dir)
	for attempt := 0; ; attempt++ {
		mounts := mountsUnder(dir)
		if len(mounts) == 0 {
			return os.RemoveAll(dir)
		}
		if attempt == 2 {
			return fmt.Errorf("not removing %s: still mounted below it: %s (unmount them, then delete it)", dir, strings.Join(mounts, ", "))
		}
		// Deepest first.
		for i := len(mounts) - 1; i >= 0; i-- {
			_ = exec.Command("umount", "--lazy", mounts[i]).Run()
		}
	}
}

func mountsUnder(dir string) []string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		// Mount points are octal-escaped in mountinfo (\040 for a space).
		mp := strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`).Replace(f[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	return out
}

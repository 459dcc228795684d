package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Scenarios with a real job running on gitlab-runner while the role changes
// the unit: the job must finish successfully whatever the change.

// jobScript is a shell job that runs until the test lets it finish (it
// creates the go-ahead file); without the go-ahead it fails after an hour
// (the run's own limit is what ends a run that forgot it). The test
// decides how long the job runs, not a guess of how long the plays take.
func jobScript(goAhead string) []string {
	return []string{
		"echo started",
		fmt.Sprintf("for i in $(seq 1 7200); do [ -e %s ] && break; sleep 0.5; done", goAhead),
		"test -e " + goAhead,
		"echo finished",
	}
}

// runnerID is the id of an executor's runner in the config as it is now.
func (e *Env) runnerID(executor string) (int64, error) {
	c, err := e.config("main")
	if err != nil {
		return 0, err
	}
	if id := c.IDs()[executor]; id != 0 {
		return id, nil
	}
	return 0, fmt.Errorf("config.main.toml has no runner for the executor %s (%v)", executor, c.IDs())
}

// startJob queues a job for the runner and waits until gitlab-runner has
// taken it and its script runs (the trace shows "started").
func (e *Env) startJob(runner int64, name string) (id int64, goAhead string, err error) {
	goAhead = "/var/tmp/gra-e2e-" + name
	_ = os.Remove(e.ctr.Path(goAhead))
	if id, err = e.gl.EnqueueJob(runner, jobScript(goAhead)...); err != nil {
		return 0, "", err
	}
	var j Job
	err = waitFor(e.ctx, fmt.Sprintf("job %d to start its script on runner %d", id, runner), func() (bool, string) {
		var err error
		if j, err = e.gl.Job(id); err != nil {
			return false, err.Error()
		}
		return j.Status != "pending" && (j.Status != "running" || strings.Contains(j.Trace, "\nstarted")), "status " + j.Status
	})
	if err != nil {
		return 0, "", err
	}
	if j.Status != "running" {
		return 0, "", fmt.Errorf("job %d ended %s (%s) before it started its script:\n%s", id, j.Status, j.FailureReason, tail(j.Trace, 8))
	}
	return id, goAhead, nil
}

// finishJob lets the job finish and returns it once it has a final state.
func (e *Env) finishJob(id int64, goAhead string) (Job, error) {
	if err := os.WriteFile(e.ctr.Path(goAhead), nil, 0o644); err != nil {
		return Job{}, err
	}
	return e.gl.WaitJob(id, "success", "failed", "canceled")
}

func jobSucceeded(j Job) error {
	if j.Status != "success" || !strings.Contains(j.Trace, "\nfinished") {
		return fmt.Errorf("job %d ended %s (failure reason %q), want success with its script run to the end; trace ends:\n%s",
			j.ID, j.Status, j.FailureReason, tail(j.Trace, 6))
	}
	return nil
}

var handlerLine = regexp.MustCompile(`RUNNING HANDLER \[gitlab_runner_auth\.runner\.service : ([^\]]+)\]`)

// handlers lists the role's handlers a play ran, in order.
func handlers(out string) []string {
	var hs []string
	for _, m := range handlerLine.FindAllStringSubmatch(out, -1) {
		hs = append(hs, m[1])
	}
	return hs
}

// unitProps reads systemd properties of the unit.
func (e *Env) unitProps(unit string, props ...string) map[string]string {
	out, _ := e.ctr.Exec("systemctl", "show", "--property="+strings.Join(props, ","), unit)
	m := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			m[k] = v
		}
	}
	return m
}

// Upgrade is a later release of the collection, built by the test.
type Upgrade struct {
	Version, Tarball string
}

// buildUpgrade builds the collection as its next release would ship it:
// the version in galaxy.yml plus step (in the last place), a
// register-runner built with that version, and edit applied to the source
// tree (a role change).
func (e *Env) buildUpgrade(step int, edit func(dir string) error) (Upgrade, error) {
	galaxy, err := os.ReadFile(filepath.Join(e.root, "collection", "galaxy.yml"))
	if err != nil {
		return Upgrade{}, err
	}
	m := regexp.MustCompile(`(?m)^version: (\d+)\.(\d+)\.(\d+)\s*$`).FindSubmatch(galaxy)
	if m == nil {
		return Upgrade{}, fmt.Errorf("collection/galaxy.yml has no version X.Y.Z")
	}
	patch, _ := strconv.Atoi(string(m[3]))
	version := fmt.Sprintf("%s.%s.%d", m[1], m[2], patch+step)
	work := filepath.Join(e.runDir, "upgrade-"+version)
	src := filepath.Join(work, "runner")
	if err := os.MkdirAll(work, 0o755); err != nil {
		return Upgrade{}, err
	}
	run := func(dir string, env []string, name string, args ...string) error {
		cmd := exec.CommandContext(e.ctx, name, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, tail(string(out), 15))
		}
		return nil
	}
	if err := run(e.root, nil, "cp", "-a", "--reflink=auto", filepath.Join(e.root, "collection"), src); err != nil {
		return Upgrade{}, err
	}
	newGalaxy := regexp.MustCompile(`(?m)^version: .*$`).ReplaceAll(galaxy, []byte("version: "+version))
	if err := os.WriteFile(filepath.Join(src, "galaxy.yml"), newGalaxy, 0o644); err != nil {
		return Upgrade{}, err
	}
	ldflags := "-s -w -X github.com/gitlab-runner-auth/gitlab-runner-auth/internal/version.Version=" + version
	if err := run(e.root, []string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=" + runtime.GOARCH}, "go", "build", "-trimpath",
		"-ldflags", ldflags, "-o", filepath.Join(src, "files", "sync_linux_"+runtime.GOARCH), "./cmd/register-runner"); err != nil {
		return Upgrade{}, err
	}
	if edit != nil {
		if err := edit(src); err != nil {
			return Upgrade{}, err
		}
	}
	if err := run(work, nil, "ansible-galaxy", "collection", "build", "--force", "--output-path", work, src); err != nil {
		return Upgrade{}, err
	}
	return Upgrade{Version: version, Tarball: filepath.Join(work, "gitlab_runner_auth-runner-"+version+".tar.gz")}, nil
}

// install puts the release in place of the one the plays use, as
// `ansible-galaxy collection install --force` of a new release does.
func (e *Env) install(u Upgrade) error {
	out, err := exec.CommandContext(e.ctx, "ansible-galaxy", "collection", "install", "--force", "-p", e.collections, u.Tarball).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ansible-galaxy collection install %s: %v\n%s", u.Tarball, err, tail(string(out), 10))
	}
	return nil
}

// jobThroughReloads: a job runs while the play changes register-runner's
// options and both timeouts, then while the collection is upgraded to a
// release with a new register-runner: each time systemd reloads its units
// and the unit re-syncs (reload); gitlab-runner keeps its PID and the job
// finishes successfully. (The play declares the fleet's three executors
// again, so the config gitlab-runner re-reads changes under the job too.)
func jobThroughReloads(e *Env) func(r *Row) error {
	return func(r *Row) error {
		runner, err := e.runnerID("shell")
		if err != nil {
			return err
		}
		up, err := e.buildUpgrade(1, nil)
		if err != nil {
			return fmt.Errorf("building the upgrade: %w", err)
		}
		version := up.Version
		pid := e.unitPID(unit)
		id, goAhead, err := e.startJob(runner, "reloads")
		if err != nil {
			return err
		}
		// Whatever happens, the job may end: no later scenario waits for it.
		defer func() { _ = os.WriteFile(e.ctr.Path(goAhead), nil, 0o644) }()
		options := `{"gra_extra_args": ["--concurrency", "8"], "gra_timeout_start_sec": 300, "gra_timeout_stop_sec": 3600}`
		tOpts := time.Now()
		out, err := e.ansible("site.yml", "-e", options)
		if err != nil {
			return err
		}
		hs := handlers(out)
		if strings.Join(hs, ",") != "Reload systemd,Reload gitlab-runner" {
			return fmt.Errorf("options changed: handlers %v ran, want daemon-reload and reload only:\n%s", hs, tail(out, 15))
		}
		if p := e.unitPID(unit); p != pid {
			return fmt.Errorf("options changed: gitlab-runner's pid %d -> %d", pid, p)
		}
		props := e.unitProps(unit, "ExecStartPre", "TimeoutStartUSec", "TimeoutStopUSec", "KillSignal", "KillMode")
		if !strings.Contains(props["ExecStartPre"], "--concurrency 8") || props["TimeoutStartUSec"] != "5min" ||
			props["TimeoutStopUSec"] != "1h" || props["KillSignal"] != "3" || props["KillMode"] != "mixed" {
			return fmt.Errorf("after the options change systemd has %v", props)
		}
		if j := e.journal(unit, tOpts); !strings.Contains(j, "kept shell") {
			return fmt.Errorf("the reload ran no sync (no \"kept shell\" in the unit's journal):\n%s", tail(j, 10))
		}
		optsTook := time.Since(tOpts)

		tUp := time.Now()
		if err := e.install(up); err != nil {
			return err
		}
		out, err = e.ansible("site.yml", "-e", options)
		if err != nil {
			return err
		}
		if hs := handlers(out); strings.Join(hs, ",") != "Reload gitlab-runner" || !strings.Contains(out, "reloads: register-runner changed") {
			return fmt.Errorf("upgrade to %s: handlers %v ran, want a reload for the new register-runner:\n%s", version, hs, tail(out, 15))
		}
		if p := e.unitPID(unit); p != pid {
			return fmt.Errorf("upgrade: gitlab-runner's pid %d -> %d", pid, p)
		}
		if v, _ := e.ctr.Exec("/usr/local/bin/register-runner", "--version"); !strings.Contains(v, version) {
			return fmt.Errorf("upgrade: register-runner --version says %q, want %s", strings.TrimSpace(v), version)
		}
		upTook := time.Since(tUp)
		if j, _ := e.gl.Job(id); j.Status != "running" {
			return fmt.Errorf("job %d is %s already: it must run through both plays", id, j.Status)
		}
		job, err := e.finishJob(id, goAhead)
		if err != nil {
			return err
		}
		if err := jobSucceeded(job); err != nil {
			return err
		}
		if p := e.unitPID(unit); p != pid {
			return fmt.Errorf("gitlab-runner's pid %d -> %d while the job ran", pid, p)
		}
		r.Detail = fmt.Sprintf("job %d ran %.1fs on pid %d: options play (%.1fs) ran daemon-reload + reload, systemd has --concurrency 8, TimeoutStartSec 5min, TimeoutStopSec 1h; "+
			"upgrade to %s (%.1fs) ran a reload, register-runner %s; pid %d throughout; job success",
			id, job.Duration().Seconds(), pid, optsTook.Seconds(), version, upTook.Seconds(), version, pid)
		return nil
	}
}

// jobThroughRestart: a job runs while the collection is upgraded to a
// release whose template unit changed and gitlab-runner's own options
// change (its ExecStart): the role restarts the unit, gracefully. systemd
// stops gitlab-runner with SIGQUIT; it takes no new job and waits for the
// running one, which finishes successfully; then the unit starts again with
// the new command line. The play waits for it.
func jobThroughRestart(e *Env, listen string) func(r *Row) error {
	return func(r *Row) error {
		runner, err := e.runnerID("shell")
		if err != nil {
			return err
		}
		up, err := e.buildUpgrade(2, func(dir string) error {
			// A role change in the unit: the template gains a line.
			p := filepath.Join(dir, "roles", "service", "templates", "gitlab-runner@.service.j2")
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			b = []byte(strings.Replace(string(b), "Description=GitLab Runner (%i)\n",
				"Description=GitLab Runner (%i)\nDocumentation=https://docs.gitlab.com/runner/\n", 1))
			return os.WriteFile(p, b, 0o644)
		})
		if err != nil {
			return fmt.Errorf("building the upgrade: %w", err)
		}
		version := up.Version
		pid := e.unitPID(unit)
		id, goAhead, err := e.startJob(runner, "restart")
		if err != nil {
			return err
		}
		defer func() { _ = os.WriteFile(e.ctr.Path(goAhead), nil, 0o644) }()
		// The go-ahead comes once gitlab-runner has been told to stop: the
		// job is still running when the SIGQUIT arrives.
		t0 := time.Now()
		if err := e.install(up); err != nil {
			return err
		}
		// Watched for as long as the play runs (it waits for the job,
		// which waits for the go-ahead): no limit of its own.
		quit := make(chan time.Duration, 1)
		watch, stopWatch := context.WithCancel(e.ctx)
		go func() {
			err := waitFor(watch, "gitlab-runner to log \"Starting graceful shutdown\"", func() (bool, string) {
				return strings.Contains(e.journal(unit, t0), "Starting graceful shutdown"), "not in the unit's journal yet"
			})
			if err != nil {
				quit <- 0
				return
			}
			since := time.Since(t0)
			// The job is still running when the SIGQUIT arrives; let
			// it go on a moment under the shutdown, then finish.
			time.Sleep(2 * time.Second)
			_ = os.WriteFile(e.ctr.Path(goAhead), nil, 0o644)
			quit <- since
		}()
		options := fmt.Sprintf(`{"gra_extra_args": ["--concurrency", "8"], "gra_timeout_start_sec": 300, "gra_timeout_stop_sec": 3600, "gra_runner_args": ["--listen-address", %q]}`, listen)
		out, playErr := e.ansible("site.yml", "-e", options)
		playTook := time.Since(t0)
		stopWatch()
		signalled := <-quit
		_ = os.WriteFile(e.ctr.Path(goAhead), nil, 0o644)
		if playErr != nil {
			return playErr
		}
		if signalled == 0 {
			return fmt.Errorf("gitlab-runner never logged \"Starting graceful shutdown\" (no SIGQUIT?):\n%s", tail(e.journal(unit, t0), 15))
		}
		hs := handlers(out)
		if strings.Join(hs, ",") != "Reload systemd,Restart gitlab-runner" {
			return fmt.Errorf("handlers %v ran, want daemon-reload and restart:\n%s", hs, tail(out, 15))
		}
		for _, why := range []string{"the template unit changed", "the unit now starts"} {
			if !strings.Contains(out, why) {
				return fmt.Errorf("the play does not say why it restarts (%q):\n%s", why, tail(out, 15))
			}
		}
		job, err := e.gl.WaitJob(id, "success", "failed", "canceled")
		if err != nil {
			return err
		}
		if err := jobSucceeded(job); err != nil {
			return err
		}
		newPID := e.unitPID(unit)
		if newPID == pid || newPID == 0 {
			return fmt.Errorf("pid %d -> %d: the unit was not restarted", pid, newPID)
		}
		cmdline, _ := e.ctr.Exec("cat", fmt.Sprintf("/proc/%d/cmdline", newPID))
		if !containsSeq(strings.Split(strings.TrimRight(cmdline, "\x00"), "\x00"), "--listen-address", listen) {
			return fmt.Errorf("the new gitlab-runner runs %q, want --listen-address %s", strings.ReplaceAll(cmdline, "\x00", " "), listen)
		}
		started := e.unitProps(unit, "ExecMainStartTimestamp")["ExecMainStartTimestamp"]
		if st, err := time.Parse("Mon 2006-01-02 15:04:05 MST", started); err == nil && st.Before(job.FinishedAt.Truncate(time.Second)) {
			return fmt.Errorf("the new gitlab-runner started at %s, before job %d finished (%s)", st, id, job.FinishedAt)
		}
		if p := e.unitProps(unit, "Documentation")["Documentation"]; !strings.Contains(p, "docs.gitlab.com") {
			return fmt.Errorf("the upgraded unit is not loaded: Documentation=%q", p)
		}
		r.Detail = fmt.Sprintf("upgrade to %s (unit changed) + gitlab-runner option: daemon-reload, graceful restart; SIGQUIT %.1fs after the upgrade began, job %d went on and ended success after %.1fs; "+
			"play %.1fs (waited for the job); pid %d -> %d, new pid started after the job ended, runs --listen-address",
			version, signalled.Seconds(), id, job.Duration().Seconds(), playTook.Seconds(), pid, newPID)
		return nil
	}
}

// moduleRemovalDuringJob: while a job runs on one runner, the play no
// longer declares another executor (docker). The sync module takes its entry out
// of the config, finds the gitlab-runner running that config, sends it
// SIGHUP and waits for it to take the new config, and only then deletes
// the runner: gitlab-runner never asks for jobs with the deleted token (no
// 403 at the job endpoint, no "forbidden" in its journal), keeps its PID,
// and the job ends successfully.
func moduleRemovalDuringJob(e *Env) func(r *Row) error {
	return func(r *Row) error {
		before, err := e.config("main")
		if err != nil {
			return err
		}
		runner, removed := before.IDs()["shell"], before.IDs()["docker"]
		if runner == 0 || removed == 0 {
			return fmt.Errorf("want the shell and docker executors in config.main.toml, found %v", before.IDs())
		}
		// gitlab-runner polls with the token of the runner to remove.
		if _, err := e.gl.WaitPolls(time.Now(), []int64{removed}); err != nil {
			return err
		}
		pid := e.unitPID(unit)
		id, goAhead, err := e.startJob(runner, "module-removal")
		if err != nil {
			return err
		}
		defer func() { _ = os.WriteFile(e.ctr.Path(goAhead), nil, 0o644) }()
		if err := e.gl.ResetLog(); err != nil {
			return err
		}
		t0 := time.Now()
		// The role's options as the role re-run left them (so that the
		// role has nothing to reload); the play declares build again (an
		// earlier scenario removed it) and docker no more.
		if pre := e.unitProps(unit, "ExecStartPre")["ExecStartPre"]; !strings.Contains(pre, "--concurrency 4") {
			return fmt.Errorf("want the drop-in as the role re-run left it (--concurrency 4), ExecStartPre is %s", pre)
		}
		out, err := e.ansible("site.yml", "-e", `{"gra_without": ["docker"], "gra_extra_args": ["--concurrency", "4"]}`)
		if err != nil {
			return err
		}
		playTook := time.Since(t0)
		if hs := handlers(out); len(hs) != 0 {
			return fmt.Errorf("the play ran the handlers %v, want none (only the module changes something)", hs)
		}
		c, _ := e.gl.Counts()
		after, err := e.config("main")
		if err != nil {
			return err
		}
		if _, ok := after.IDs()["docker"]; ok || c.Kinds["delete-token"]+c.Kinds["delete-id"] != 1 {
			return fmt.Errorf("removal by the module: GitLab saw %s, config has %v; want docker's runner %d deleted", c, after.IDs(), removed)
		}
		if runners, _ := e.gl.Runners(); slicesContainsID(runners, removed) {
			return fmt.Errorf("runner %d (docker) is still in GitLab", removed)
		}
		// Two rounds of job requests with the config gitlab-runner holds
		// now: the removed runner's token never came back refused.
		if _, err := e.twoRounds(after.IDList()); err != nil {
			return err
		}
		if n := e.gl.ForbiddenSince(t0); n > 0 {
			return fmt.Errorf("gitlab-runner asked for jobs %d time(s) with a token GitLab no longer knows (403): runner %d was deleted before gitlab-runner took the new config", n, removed)
		}
		j := e.journal(unit, t0)
		if lines := linesWith(j, "forbidden"); len(lines) > 0 {
			return fmt.Errorf("gitlab-runner logged a forbidden job request after the removal:\n%s", strings.Join(lines, "\n"))
		}
		loaded := strings.Count(j, "Configuration loaded")
		if loaded == 0 {
			return fmt.Errorf("gitlab-runner logged no \"Configuration loaded\" after the module's removal")
		}
		if p := e.unitPID(unit); p != pid {
			return fmt.Errorf("gitlab-runner's pid %d -> %d: the module's removal must not restart it", pid, p)
		}
		if j, _ := e.gl.Job(id); j.Status != "running" {
			return fmt.Errorf("job %d is %s already: it must run through the play", id, j.Status)
		}
		job, err := e.finishJob(id, goAhead)
		if err != nil {
			return err
		}
		if err := jobSucceeded(job); err != nil {
			return err
		}
		r.Detail = fmt.Sprintf("job %d ran %.1fs on pid %d while the play (%.1fs) removed docker: %s, runner %d deleted after gitlab-runner took the new config (%d config loads logged), no 403 job request and no \"forbidden\" in the journal; job success",
			id, job.Duration().Seconds(), pid, playTook.Seconds(), c, removed, loaded)
		return nil
	}
}

func slicesContainsID(rs []SimRunner, id int64) bool {
	for _, r := range rs {
		if r.ID == id {
			return true
		}
	}
	return false
}

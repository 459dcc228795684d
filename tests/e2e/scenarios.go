package main

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
)

const unit = "gitlab-runner@main.service"

func sha256Sum(b []byte) [32]byte { return sha256.Sum256(b) }

// step runs one scenario and turns its error or panic into a table row.
func step(ctx context.Context, name string, fn func(r *Row) error) (row Row) {
	if ctx.Err() != nil {
		return Row{Name: name, Detail: "not run: " + ranOut(ctx)}
	}
	logf("scenario: %s", name)
	start := time.Now()
	row = Row{Name: name}
	defer func() {
		if p := recover(); p != nil {
			row.OK, row.Detail = false, fmt.Sprintf("panic: %v", p)
		}
		row.Took = time.Since(start)
		if row.OK {
			logf("PASS %s (%.1fs): %s", name, row.Took.Seconds(), row.Detail)
		} else {
			logf("FAIL %s (%.1fs): %s", name, row.Took.Seconds(), row.Detail)
		}
	}()
	if err := fn(&row); err != nil {
		row.OK = false
		if row.Detail != "" {
			row.Detail += "; "
		}
		row.Detail += err.Error()
		return row
	}
	row.OK = true
	return row
}

func runScenarios(ctx context.Context, e *Env) []Row {
	var rows []Row
	var cfg Config // the templated instance's config as the last scenario left it

	rows = append(rows, step(ctx, "check mode", func(r *Row) error {
		out, err := e.ansible("site.yml", "--check")
		if err != nil {
			return err
		}
		c, _ := e.gl.Counts()
		if c.Mutating != 0 {
			return fmt.Errorf("ansible-playbook --check: GitLab saw %s (%d mutating)", c, c.Mutating)
		}
		for _, p := range []string{"/etc/systemd/system/gitlab-runner@.service", "/etc/systemd/system/gitlab-runner@main.service.d",
			"/usr/local/bin/register-runner", "/etc/gitlab-runner"} {
			if _, err := os.Stat(e.ctr.Path(p)); err == nil {
				return fmt.Errorf("ansible-playbook --check wrote %s", p)
			}
		}
		m := regexp.MustCompile(`changed=(\d+)`).FindStringSubmatch(out)
		if m == nil || m[1] == "0" {
			return fmt.Errorf("ansible-playbook --check on a fresh host reports no change:\n%s", tail(out, 4))
		}
		r.Detail = fmt.Sprintf("fresh host: changed=%s reported, nothing written, GitLab saw %s, 0 mutating", m[1], c)
		return nil
	}))

	first := step(ctx, "first start", func(r *Row) error {
		t0 := time.Now()
		if err := e.gl.ResetLog(); err != nil {
			return err
		}
		if _, err := e.ansible("site.yml"); err != nil {
			return err
		}
		if s := e.unitActive(unit); s != "active" {
			return fmt.Errorf("%s is %s after the play:\n%s", unit, s, tail(e.journal(unit, t0), 15))
		}
		var err error
		if cfg, err = e.config("main"); err != nil {
			return err
		}
		if cfg.Mode != 0o600 {
			return fmt.Errorf("config.main.toml has mode %o, want 600", cfg.Mode)
		}
		ids := cfg.IDs()
		if len(ids) != 3 {
			return fmt.Errorf("config.main.toml has runners %v, want shell, build and docker", ids)
		}
		// ExecStartPre ran register-runner, which printed one line per runner.
		j := e.journal(unit, t0)
		for name, id := range ids {
			if !strings.Contains(j, fmt.Sprintf("kept %s (id %d)", name, id)) {
				return fmt.Errorf("the unit's journal lacks register-runner's %q:\n%s", fmt.Sprintf("kept %s (id %d)", name, id), tail(j, 15))
			}
		}
		c, err := e.gl.Counts()
		if err != nil {
			return err
		}
		seen, err := e.gl.WaitPolls(t0, cfg.IDList())
		if err != nil {
			return err
		}
		lines, err := e.noSecretInJournal()
		if err != nil {
			return err
		}
		r.Detail = fmt.Sprintf("play+start: %s; pre-start kept ids %v; config 0600; %d runners polled their own token (204) within %.0fs; journal %d lines, no secret",
			c, cfg.IDList(), len(seen), time.Since(t0).Seconds(), lines)
		return nil
	})
	rows = append(rows, first)
	if !first.OK {
		return append(rows, Row{Name: "remaining scenarios", Detail: "not run: the first start failed"})
	}

	rows = append(rows, step(ctx, "role re-run", func(r *Row) error {
		// Unchanged: nothing changes, gitlab-runner keeps running, GitLab
		// sees the steady state (one verify per executor from the module).
		pid := e.unitPID(unit)
		if err := e.gl.ResetLog(); err != nil {
			return err
		}
		out, err := e.ansible("site.yml")
		if err != nil {
			return err
		}
		if !regexp.MustCompile(`changed=0\s`).MatchString(out) {
			return fmt.Errorf("second run of the unchanged play changed something:\n%s", tail(out, 4))
		}
		c, _ := e.gl.Counts()
		if p := e.unitPID(unit); p != pid || c.Mutating != 0 || c.Total != 3 {
			return fmt.Errorf("unchanged play: pid %d -> %d, GitLab saw %s", pid, p, c)
		}
		// A new register-runner option changes the sync, not gitlab-runner:
		// the handlers reload systemd and re-sync (reload); gitlab-runner
		// keeps running.
		tReload := time.Now()
		out, err = e.ansible("site.yml", "-e", `{"gra_extra_args": ["--concurrency", "4"]}`)
		if err != nil {
			return err
		}
		if hs := handlers(out); strings.Join(hs, ",") != "Reload systemd,Reload gitlab-runner" {
			return fmt.Errorf("a new register-runner option ran the handlers %v, want daemon-reload and reload:\n%s", hs, tail(out, 12))
		}
		pre, _ := e.ctr.Exec("systemctl", "show", "--property=ExecStartPre", unit)
		if p := e.unitPID(unit); p != pid || !strings.Contains(pre, "--concurrency 4") {
			return fmt.Errorf("after the option change: pid %d -> %d, ExecStartPre %s", pid, p, strings.TrimSpace(pre))
		}
		if j := e.journal(unit, tReload); !strings.Contains(j, "kept shell") {
			return fmt.Errorf("the reload ran no sync:\n%s", tail(j, 8))
		}
		r.Detail = fmt.Sprintf("unchanged play: changed=0, %s, pid %d kept; new register-runner option: daemon-reload and reload handlers ran, the sync ran with it, pid %d kept",
			c, pid, pid)
		return nil
	}))

	rows = append(rows, step(ctx, "three restarts", func(r *Row) error {
		var times []string
		for i := 1; i <= 3; i++ {
			before, err := e.config("main")
			if err != nil {
				return err
			}
			if err := e.gl.ResetLog(); err != nil {
				return err
			}
			t0 := time.Now()
			if _, err := e.ctr.Exec("systemctl", "restart", unit); err != nil {
				return fmt.Errorf("restart %d: %v\n%s", i, err, tail(e.journal(unit, t0), 10))
			}
			times = append(times, fmt.Sprintf("%.2fs", time.Since(t0).Seconds()))
			c, err := e.gl.Counts()
			if err != nil {
				return err
			}
			if c.Total != 3 || c.Kinds["verify"] != 3 || c.Mutating != 0 {
				return fmt.Errorf("restart %d: GitLab saw %s (%d mutating), want exactly 3 verify", i, c, c.Mutating)
			}
			after, err := e.config("main")
			if err != nil {
				return err
			}
			if after.Sum != before.Sum || !after.ModTime.Equal(before.ModTime) {
				return fmt.Errorf("restart %d rewrote config.main.toml", i)
			}
			if _, err := e.gl.WaitPolls(t0, after.IDList()); err != nil {
				return fmt.Errorf("restart %d: %v", i, err)
			}
		}
		r.Detail = fmt.Sprintf("each: 3 verify, 0 mutating, config byte-identical with the same mtime, all runners poll; restart took %s", strings.Join(times, ", "))
		return nil
	}))

	rows = append(rows, step(ctx, "lost config", func(r *Row) error {
		before, err := e.config("main")
		if err != nil {
			return err
		}
		if _, err := e.ctr.Exec("systemctl", "stop", unit); err != nil {
			return err
		}
		if err := os.Remove(e.ctr.Path("/etc/gitlab-runner/config.main.toml")); err != nil {
			return err
		}
		if err := e.gl.ResetLog(); err != nil {
			return err
		}
		t0 := time.Now()
		if _, err := e.ctr.Exec("systemctl", "start", unit); err != nil {
			return fmt.Errorf("%v\n%s", err, tail(e.journal(unit, t0), 10))
		}
		took := time.Since(t0)
		after, err := e.config("main")
		if err != nil {
			return err
		}
		c, _ := e.gl.Counts()
		if fmt.Sprint(after.IDs()) != fmt.Sprint(before.IDs()) {
			return fmt.Errorf("ids changed: %v -> %v (%s)", before.IDs(), after.IDs(), c)
		}
		if c.Kinds["create"]+c.Kinds["register"] != 0 || c.Kinds["reset"] != 3 {
			return fmt.Errorf("GitLab saw %s, want 3 reset and no create", c)
		}
		if _, err := e.gl.WaitPolls(t0, after.IDList()); err != nil {
			return err
		}
		r.Detail = fmt.Sprintf("start %.1fs: adopted, same ids %v; %s; all poll with the new tokens", took.Seconds(), after.IDList(), c)
		cfg = after
		return nil
	}))

	rows = append(rows, step(ctx, "executor removed", func(r *Row) error {
		before, err := e.config("main")
		if err != nil {
			return err
		}
		id := before.IDs()["build"]
		files, _ := filepath.Glob(e.ctr.Path("/etc/gitlab-runner/main/build.*"))
		if len(files) != 1 || id == 0 {
			return fmt.Errorf("want one executor file for build and its id, found %v, id %d", files, id)
		}
		if err := os.Remove(files[0]); err != nil {
			return err
		}
		if err := e.gl.ResetLog(); err != nil {
			return err
		}
		t0 := time.Now()
		if _, err := e.ctr.Exec("systemctl", "restart", unit); err != nil {
			return fmt.Errorf("%v\n%s", err, tail(e.journal(unit, t0), 10))
		}
		took := time.Since(t0)
		c, _ := e.gl.Counts()
		runners, err := e.gl.Runners()
		if err != nil {
			return err
		}
		for _, sr := range runners {
			if sr.ID == id {
				return fmt.Errorf("runner %d (build) is still in GitLab (%s)", id, c)
			}
		}
		after, err := e.config("main")
		if err != nil {
			return err
		}
		if _, ok := after.IDs()["build"]; ok || len(after.Runners) != 2 {
			return fmt.Errorf("config.main.toml still has %v", after.IDs())
		}
		if c.Kinds["delete-token"]+c.Kinds["delete-id"] != 1 || c.Kinds["create"]+c.Kinds["register"] != 0 {
			return fmt.Errorf("GitLab saw %s, want one delete and no create", c)
		}
		r.Detail = fmt.Sprintf("restart %.1fs: runner %d deleted in GitLab; %s; config keeps %v", took.Seconds(), id, c, after.IDList())
		cfg = after
		return nil
	}))

	rows = append(rows, step(ctx, "GitLab down at start", func(r *Row) error {
		defer func() { _ = e.gl.Up() }()
		e.gl.Down()
		if err := e.gl.ResetLog(); err != nil {
			return err
		}
		t0 := time.Now()
		_, restartErr := e.ctr.Exec("systemctl", "restart", unit)
		took := time.Since(t0)
		j := e.journal(unit, t0)
		if restartErr != nil || e.unitActive(unit) != "active" {
			// Leave the unit running for the next scenarios.
			_ = e.gl.Up()
			_, _ = e.ctr.Exec("systemctl", "reset-failed", unit)
			_, _ = e.ctr.Exec("systemctl", "restart", unit)
			return fmt.Errorf("with GitLab refusing connections the unit did not start (%.1fs; degraded start):\n%s", took.Seconds(), tail(j, 8))
		}
		// register-runner's warning, as documented for the degraded start.
		warning := ""
		for _, l := range strings.Split(j, "\n") {
			if strings.Contains(l, "warning: GitLab could not be reached") {
				warning = strings.TrimSpace(l)
				break
			}
		}
		if warning == "" {
			return fmt.Errorf("degraded start without register-runner's warning in the journal:\n%s", tail(j, 8))
		}
		// --strict keeps the failure.
		strictOut, strictErr := e.ctr.Exec("/usr/local/bin/register-runner", "--strict", "--prefix", "/etc/gitlab-runner", "--service-instance", "main")
		if strictErr == nil {
			return fmt.Errorf("register-runner --strict exited 0 with GitLab down:\n%s", tail(strictOut, 5))
		}
		if !strings.Contains(strictErr.Error(), "exit status 1") {
			return fmt.Errorf("register-runner --strict with GitLab down: %v, want exit status 1", strictErr)
		}
		// GitLab comes back.
		if err := e.gl.Up(); err != nil {
			return err
		}
		tUp := time.Now()
		// A measurement, not a condition: gitlab-runner holds failed
		// runners back for a while; the reload below resets that.
		own := "not within 20s (gitlab-runner holds failed runners back; reload resets that)"
		if e.gl.PollsWithin(tUp, cfg.IDList(), 20*time.Second) {
			own = fmt.Sprintf("in %.1fs", time.Since(tUp).Seconds())
		}
		pid := e.unitPID(unit)
		if err := e.gl.ResetLog(); err != nil {
			return err
		}
		tReload := time.Now()
		if _, err := e.ctr.Exec("systemctl", "reload", unit); err != nil {
			return fmt.Errorf("reload after GitLab came back: %v\n%s", err, tail(e.journal(unit, tReload), 8))
		}
		c, _ := e.gl.Counts()
		if c.Total != len(cfg.Runners) || c.Mutating != 0 || e.unitPID(unit) != pid {
			return fmt.Errorf("reload after recovery: GitLab saw %s, pid %d -> %d", c, pid, e.unitPID(unit))
		}
		if _, err := e.gl.WaitPolls(tReload, cfg.IDList()); err != nil {
			return err
		}
		r.Detail = fmt.Sprintf("restart with connection refused: pre-start exit 0, unit active in %.1fs, journal %q; --strict exits 1; GitLab back: polls resumed by themselves %s; reload: %s, same pid, all poll",
			took.Seconds(), shorten(warning, 90), own, c)
		return nil
	}))

	rows = append(rows, step(ctx, "systemctl reload", func(r *Row) error {
		extra := e.ctr.Path("/etc/gitlab-runner/main/extra.toml")
		if err := os.WriteFile(extra, []byte(fmt.Sprintf("url = %q\nexecutor = \"shell\"\n", e.gl.URL)), 0o600); err != nil {
			return err
		}
		pid := e.unitPID(unit)
		if pid == 0 {
			return fmt.Errorf("%s is not running", unit)
		}
		if err := e.gl.ResetLog(); err != nil {
			return err
		}
		t0 := time.Now()
		if _, err := e.ctr.Exec("systemctl", "reload", unit); err != nil {
			return fmt.Errorf("%v\n%s", err, tail(e.journal(unit, t0), 10))
		}
		took := time.Since(t0)
		if p := e.unitPID(unit); p != pid {
			return fmt.Errorf("gitlab-runner's pid changed on reload: %d -> %d", pid, p)
		}
		c, _ := e.gl.Counts()
		after, err := e.config("main")
		if err != nil {
			return err
		}
		id := after.IDs()["extra"]
		if id == 0 || c.Kinds["create"]+c.Kinds["register"] != 1 || c.Kinds["delete-token"]+c.Kinds["delete-id"] != 0 {
			return fmt.Errorf("reload: GitLab saw %s, config has %v; want the new executor extra created", c, after.IDs())
		}
		if _, err := e.gl.WaitPolls(t0, []int64{id}); err != nil {
			return err
		}
		firstPoll := time.Since(t0)
		reloaded := strings.Count(e.journal(unit, t0), "Configuration loaded")
		if reloaded == 0 {
			return fmt.Errorf("gitlab-runner logged no \"Configuration loaded\" after the reload")
		}
		if _, err := e.gl.WaitPolls(t0, after.IDList()); err != nil {
			return err
		}
		cfg = after
		// The timer's service re-syncs the same way.
		if err := e.gl.ResetLog(); err != nil {
			return err
		}
		tTimer := time.Now()
		timer := "gitlab-runner-main-resync"
		if out, _ := e.ctr.Exec("systemctl", "is-enabled", timer+".timer"); strings.TrimSpace(out) != "enabled" {
			return fmt.Errorf("%s.timer is %q, want enabled", timer, strings.TrimSpace(out))
		}
		if _, err := e.ctr.Exec("systemctl", "start", timer+".service"); err != nil {
			return fmt.Errorf("%v\n%s", err, tail(e.journal(timer+".service", tTimer), 8))
		}
		ct, _ := e.gl.Counts()
		if p := e.unitPID(unit); p != pid || ct.Total != len(after.Runners) || ct.Mutating != 0 {
			return fmt.Errorf("timer re-sync: GitLab saw %s, pid %d -> %d", ct, pid, p)
		}
		// The executor removed again, by a reload: the entry leaves the
		// config, gitlab-runner takes it (SIGHUP from register-runner), and
		// only then is the runner deleted, so gitlab-runner never asks for
		// jobs with a token GitLab no longer knows (403).
		if err := os.Remove(extra); err != nil {
			return err
		}
		if err := e.gl.ResetLog(); err != nil {
			return err
		}
		tRemove := time.Now()
		if _, err := e.ctr.Exec("systemctl", "reload", unit); err != nil {
			return fmt.Errorf("%v\n%s", err, tail(e.journal(unit, tRemove), 10))
		}
		tookRemove := time.Since(tRemove)
		cr, _ := e.gl.Counts()
		gone, err := e.config("main")
		if err != nil {
			return err
		}
		if _, ok := gone.IDs()["extra"]; ok || cr.Kinds["delete-token"]+cr.Kinds["delete-id"] != 1 {
			return fmt.Errorf("removal by reload: GitLab saw %s, config has %v; want extra's runner %d deleted", cr, gone.IDs(), id)
		}
		// Two rounds of gitlab-runner's job requests after the delete,
		// with the config as it is now: every remaining runner polls
		// (however slow the machine), and the removed one never got a 403.
		seen, err := e.twoRounds(gone.IDList())
		if err != nil {
			return err
		}
		if st := e.gl.PolledSince(tRemove)[id]; st == http.StatusForbidden || e.gl.ForbiddenSince(tRemove) > 0 {
			return fmt.Errorf("gitlab-runner asked for jobs with the removed runner %d's token after GitLab deleted it (403): the runner was deleted before gitlab-runner took the new config", id)
		}
		if lines := linesWith(e.journal(unit, tRemove), "forbidden"); len(lines) > 0 {
			return fmt.Errorf("gitlab-runner logged a forbidden job request after the removal:\n%s", strings.Join(lines, "\n"))
		}
		if p := e.unitPID(unit); p != pid {
			return fmt.Errorf("gitlab-runner's pid changed on the removal's reload: %d -> %d", pid, p)
		}
		cfg = gone
		r.Detail = fmt.Sprintf("new executor: reload %.1fs, %s, pid %d unchanged, new runner %d polled %.1fs after reload (%d config loads logged); timer's service: %s, same pid; "+
			"executor removed by reload %.1fs: %s, runner %d deleted after gitlab-runner took the new config, no 403 job request and no \"forbidden\" in the journal, %d runners polling",
			took.Seconds(), c, pid, id, firstPoll.Seconds(), reloaded, ct, tookRemove.Seconds(), cr, id, len(seen))
		return nil
	}))

	rows = append(rows, step(ctx, "executor removed by the module during a job", moduleRemovalDuringJob(e)))
	rows = append(rows, step(ctx, "job through reloads", jobThroughReloads(e)))
	rows = append(rows, step(ctx, "job through a restart", jobThroughRestart(e, freeLocalAddr())))

	// These two need register-runner to serve what it can (issue 18, items
	// 4 and 5): invalid and not-yet-registrable executors are skipped
	// without --strict, and the journal names them.
	rows = append(rows, step(ctx, "one bad executor", oneBadExecutor(e)))
	rows = append(rows, step(ctx, "new executor while GitLab is down", newExecutorGitLabDown(e)))

	rows = append(rows, step(ctx, "reboot", func(r *Row) error {
		before, err := e.config("main")
		if err != nil {
			return err
		}
		if out, _ := e.ctr.Exec("systemctl", "is-enabled", unit); strings.TrimSpace(out) != "enabled" {
			return fmt.Errorf("%s is %q, want enabled", unit, strings.TrimSpace(out))
		}
		t0 := time.Now()
		if err := e.ctr.Poweroff(); err != nil {
			return err
		}
		down := time.Since(t0)
		if err := e.gl.ResetLog(); err != nil {
			return err
		}
		tBoot := time.Now()
		e.ctr = &Container{ctx: e.ctx, Dir: e.ctr.Dir, Name: e.ctr.Name, Hostname: e.ctr.Hostname, LogPath: e.ctr.LogPath}
		if err := e.ctr.Boot(ctx); err != nil {
			return err
		}
		if err := waitFor(e.ctx, unit+" to be active after the boot", func() (bool, string) {
			s := e.unitActive(unit)
			return s == "active", s
		}); err != nil {
			return fmt.Errorf("%v\n%s", err, tail(e.journal(unit, tBoot), 10))
		}
		up := time.Since(tBoot)
		after, err := e.config("main")
		if err != nil {
			return err
		}
		c, _ := e.gl.Counts()
		if fmt.Sprint(after.IDs()) != fmt.Sprint(before.IDs()) || after.Sum != before.Sum {
			return fmt.Errorf("after reboot: ids %v -> %v, config changed %v (%s)", before.IDs(), after.IDs(), after.Sum != before.Sum, c)
		}
		if c.Kinds["verify"] != len(after.Runners) || c.Mutating != 0 {
			return fmt.Errorf("boot: GitLab saw %s, want %d verify only", c, len(after.Runners))
		}
		if _, err := e.gl.WaitPolls(tBoot, after.IDList()); err != nil {
			return err
		}
		r.Detail = fmt.Sprintf("poweroff %.1fs, boot to unit active %.1fs; same ids %v, config unchanged; %s, 0 mutating; all poll", down.Seconds(), up.Seconds(), after.IDList(), c)
		return nil
	}))

	rows = append(rows, step(ctx, "non-templated layout", func(r *Row) error {
		// gitlab-runner.service exactly as `gitlab-runner install` writes it.
		if _, err := e.ctr.Exec("gitlab-runner", "install", "--user", "gitlab-runner", "--working-directory", "/home/gitlab-runner"); err != nil {
			return err
		}
		stock, err := os.ReadFile(e.ctr.Path("/etc/systemd/system/gitlab-runner.service"))
		if err != nil {
			return fmt.Errorf("gitlab-runner install wrote no unit: %v", err)
		}
		stockStart := regexp.MustCompile(`(?m)^ExecStart=.*$`).FindString(string(stock))
		t0 := time.Now()
		first, err := e.ansible("plain.yml")
		if err != nil {
			return err
		}
		// The role ran before the module: the start waited for the handler.
		if !strings.Contains(first, "starts at the end of the play") {
			return fmt.Errorf("the role did not defer the start to the end of the play:\n%s", tail(first, 12))
		}
		if s := e.unitActive("gitlab-runner.service"); s != "active" {
			return fmt.Errorf("gitlab-runner.service is %s:\n%s", s, tail(e.journal("gitlab-runner.service", t0), 10))
		}
		pid := e.unitPID("gitlab-runner.service")
		cmdline, err := e.ctr.Exec("cat", fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			return err
		}
		args := strings.Split(strings.TrimRight(cmdline, "\x00"), "\x00")
		if !containsSeq(args, "--config", "/etc/gitlab-runner/config.solo.toml") {
			return fmt.Errorf("gitlab-runner.service runs %q, want --config /etc/gitlab-runner/config.solo.toml", strings.Join(args, " "))
		}
		solo, err := e.config("solo")
		if err != nil {
			return err
		}
		if solo.Mode != 0o600 || len(solo.Runners) != 1 {
			return fmt.Errorf("config.solo.toml: mode %o, %d runners", solo.Mode, len(solo.Runners))
		}
		if _, err := e.gl.WaitPolls(t0, solo.IDList()); err != nil {
			return err
		}
		// The role changes nothing on a second run.
		out, err := e.ansible("plain.yml")
		if err != nil {
			return err
		}
		if !regexp.MustCompile(`changed=0\s`).MatchString(out) {
			return fmt.Errorf("second run of the play changed something:\n%s", tail(out, 4))
		}
		r.Detail = fmt.Sprintf("stock unit %q; role before module: started by the handler at the end of the play; with the drop-in it runs --config config.solo.toml (pid %d), runner %d polls; second play changed=0",
			shorten(stockStart, 70), pid, solo.IDList()[0])
		return nil
	}))

	rows = append(rows, step(ctx, "role refuses a broken host", func(r *Row) error {
		cases := []struct{ name, want string }{
			{"inject", "gitlab_runner_auth_runner_working_directory must be an absolute path"},
			{"unit", "systemd has no unit gitlab-runner-absent.service"},
			{"binary", "gitlab-runner is not installed at /opt/absent/gitlab-runner"},
			{"user", "user absent-runner-user does not exist"},
		}
		for _, c := range cases {
			out, err := e.ansible("refuse.yml", "-e", "gra_case="+c.name)
			if err == nil {
				return fmt.Errorf("play with a missing %s succeeded", c.name)
			}
			if !strings.Contains(out, c.want) {
				return fmt.Errorf("missing %s: the play failed without saying %q:\n%s", c.name, c.want, tail(out, 10))
			}
		}
		if _, err := os.Stat(e.ctr.Path("/usr/local/bin/register-runner-refused")); err == nil {
			return fmt.Errorf("the refused play installed register-runner anyway")
		}
		r.Detail = "a newline in the working directory (unit injection), missing unit, gitlab-runner binary or user: the play fails before writing anything, naming the variable or the fix"
		return nil
	}))

	rows = append(rows, step(ctx, "command lines", func(r *Row) error {
		// Arguments the role's filter writes into Exec lines, as systemd
		// hands them to the program.
		argv := []string{"it's", `a "b"`, "50%", "%i", "$HOME", "${HOME}", `\`, `back\slash`, `\n`, ";", "", "x  y", "--opt=v"}
		vars, _ := json.Marshal(map[string]any{"gra_argv": argv})
		if _, err := e.ansible("quoting.yml", "-e", string(vars)); err != nil {
			return err
		}
		out, err := e.ctr.Exec("cat", "/run/gra-argv")
		if err != nil {
			return err
		}
		var want strings.Builder
		for _, a := range argv {
			want.WriteString("[" + a + "]\n")
		}
		if out != want.String() {
			return fmt.Errorf("systemd passed\n%s\nwant\n%s", out, want.String())
		}
		r.Detail = fmt.Sprintf("%d arguments with quotes, spaces, backslashes, %%, $ and ; reach the program unchanged", len(argv))
		return nil
	}))

	rows = append(rows, step(ctx, "systemd-analyze verify", func(r *Row) error {
		units := []string{unit, "gitlab-runner.service", "gitlab-runner-main-resync.service", "gitlab-runner-main-resync.timer"}
		out, err := e.ctr.Exec(append([]string{"systemd-analyze", "verify"}, units...)...)
		var ours []string
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			if strings.Contains(l, "gitlab-runner") || strings.Contains(l, "register-runner") {
				ours = append(ours, l)
			}
		}
		if err != nil || len(ours) > 0 {
			return fmt.Errorf("systemd-analyze verify: %v\n%s", err, strings.Join(ours, "\n"))
		}
		sort.Strings(units)
		r.Detail = fmt.Sprintf("clean: %s", strings.Join(units, ", "))
		return nil
	}))

	rows = append(rows, step(ctx, "no secret in the journal", func(r *Row) error {
		lines, err := e.noSecretInJournal()
		if err != nil {
			return err
		}
		r.Detail = fmt.Sprintf("%d journal lines checked against the PAT and %d runner tokens seen in this run", lines, len(e.secrets)-1)
		return nil
	}))
	return rows
}

// twoRounds waits for two rounds of gitlab-runner's job requests: every
// runner id polls (204), then polls again after that. Whatever gitlab-runner
// would ask for with the config it holds now, it has asked by then.
func (e *Env) twoRounds(ids []int64) (map[int64]int, error) {
	if _, err := e.gl.WaitPolls(time.Now(), ids); err != nil {
		return nil, err
	}
	return e.gl.WaitPolls(time.Now(), ids)
}

func containsSeq(args []string, a, b string) bool {
	for i := 0; i+1 < len(args); i++ {
		if args[i] == a && args[i+1] == b {
			return true
		}
	}
	return false
}

var ansi = regexp.MustCompile("\x1b\\[[0-9;]*m")

func shorten(s string, n int) string {
	s = ansi.ReplaceAllString(s, "")
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}

// freeLocalAddr is a loopback address with a port nobody listens on now
// (the container shares the host's network).
func freeLocalAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "127.0.0.1:9252"
	}
	defer ln.Close()
	return ln.Addr().String()
}

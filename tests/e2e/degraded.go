package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"
)

// Scenarios of the availability rule: one executor that cannot be served
// (invalid, or new while GitLab is unreachable) never keeps the others from
// starting; it is skipped, and the unit's journal names it, the cause and
// the fix (without --strict).

// inputFix asks register-runner (--check --output json, which still fails
// on invalid input) for the fix of the input error in file.
func (e *Env) inputFix(file string) (string, error) {
	out, _ := e.ctr.Exec("/usr/local/bin/register-runner", "--check", "--output", "json", "--prefix", "/etc/gitlab-runner", "--service-instance", "main")
	start := strings.Index(out, "{")
	end := strings.LastIndex(out, "}")
	if start < 0 || end < start {
		return "", fmt.Errorf("register-runner --check --output json printed no JSON:\n%s", tail(out, 10))
	}
	var res struct {
		InputErrors []struct {
			File string `json:"file"`
			Fix  string `json:"fix"`
		} `json:"input_errors"`
	}
	if err := json.Unmarshal([]byte(out[start:end+1]), &res); err != nil {
		return "", fmt.Errorf("register-runner --check --output json: %v", err)
	}
	for _, ie := range res.InputErrors {
		if ie.File == file && ie.Fix != "" {
			return ie.Fix, nil
		}
	}
	return "", fmt.Errorf("register-runner --check reports no input error with a fix for %s: %+v", file, res.InputErrors)
}

// linesWith returns the journal lines that contain every one of words.
func linesWith(journal string, words ...string) []string {
	var out []string
	for _, l := range strings.Split(journal, "\n") {
		all := true
		for _, w := range words {
			all = all && strings.Contains(l, w)
		}
		if all {
			out = append(out, strings.TrimSpace(l))
		}
	}
	return out
}

// restore puts the unit back in service after a scenario that may have
// left it failed.
func (e *Env) restore() {
	if e.unitActive(unit) != "active" {
		_, _ = e.ctr.Exec("systemctl", "reset-failed", unit)
		_, _ = e.ctr.Exec("systemctl", "restart", unit)
	}
}

// oneBadExecutor: an executor file with a typo does not keep the unit from
// starting: gitlab-runner runs and serves the other executors, and the
// journal names the file and the fix.
func oneBadExecutor(e *Env) func(r *Row) error {
	return func(r *Row) error {
		const file = "main/typo.toml"
		bad := e.ctr.Path("/etc/gitlab-runner/" + file)
		// "executer": the key executor misspelled.
		if err := os.WriteFile(bad, []byte(fmt.Sprintf("url = %q\nexecuter = \"shell\"\n", e.gl.URL)), 0o600); err != nil {
			return err
		}
		defer func() {
			_ = os.Remove(bad)
			e.restore()
		}()
		fix, err := e.inputFix(file)
		if err != nil {
			return err
		}
		before, err := e.config("main")
		if err != nil {
			return err
		}
		ids := before.IDList()
		t0 := time.Now()
		_, restartErr := e.ctr.Exec("systemctl", "restart", unit)
		took := time.Since(t0)
		j := e.journal(unit, t0)
		if restartErr != nil || e.unitActive(unit) != "active" {
			return fmt.Errorf("with %s invalid the unit did not start (%s after %.1fs; needs register-runner to skip invalid executors without --strict):\n%s",
				file, e.unitActive(unit), took.Seconds(), tail(j, 8))
		}
		named := linesWith(j, "typo", fix)
		if len(named) == 0 {
			return fmt.Errorf("the unit's journal does not name typo with the fix %q:\n%s", fix, tail(j, 10))
		}
		if _, err := e.gl.WaitPolls(t0, ids); err != nil {
			return err
		}
		after, _ := e.config("main")
		if fmt.Sprint(after.IDList()) != fmt.Sprint(before.IDList()) {
			return fmt.Errorf("runners in config.main.toml %v -> %v", before.IDList(), after.IDList())
		}
		r.Detail = fmt.Sprintf("restart %.1fs with %s invalid: unit active, runners %v poll; journal: %q", took.Seconds(), file, ids, shorten(named[0], 110))
		return nil
	}
}

// newExecutorGitLabDown: a new executor while GitLab refuses connections
// cannot be registered; the unit starts with the others (their tokens are
// on disk), and the journal names the executor that waits for GitLab.
func newExecutorGitLabDown(e *Env) func(r *Row) error {
	return func(r *Row) error {
		pending := e.ctr.Path("/etc/gitlab-runner/main/pending.toml")
		if err := os.WriteFile(pending, []byte(fmt.Sprintf("url = %q\nexecutor = \"shell\"\n", e.gl.URL)), 0o600); err != nil {
			return err
		}
		e.gl.Down()
		defer func() {
			_ = os.Remove(pending)
			_ = e.gl.Up()
			e.restore()
		}()
		before, _ := e.config("main")
		t0 := time.Now()
		_, restartErr := e.ctr.Exec("systemctl", "restart", unit)
		took := time.Since(t0)
		j := e.journal(unit, t0)
		if restartErr != nil || e.unitActive(unit) != "active" {
			return fmt.Errorf("with a new executor and GitLab down the unit did not start (%s after %.1fs; needs register-runner to skip executors it cannot register yet):\n%s",
				e.unitActive(unit), took.Seconds(), tail(j, 8))
		}
		named := linesWith(j, "pending", "GitLab")
		if len(named) == 0 {
			return fmt.Errorf("the unit's journal does not name pending as waiting for GitLab:\n%s", tail(j, 10))
		}
		after, _ := e.config("main")
		if fmt.Sprint(after.IDList()) != fmt.Sprint(before.IDList()) {
			return fmt.Errorf("runners in config.main.toml %v -> %v", before.IDList(), after.IDList())
		}
		r.Detail = fmt.Sprintf("restart %.1fs: unit active with runners %v; journal: %q", took.Seconds(), after.IDList(), shorten(named[0], 110))
		return nil
	}
}

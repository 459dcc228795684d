package main

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/core"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/coretest"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/gitlabsim"
)

// downHost registers two executors against a GitLab that the test can
// then take down (connection refused).
func downHost(t *testing.T) (*gitlabsim.Sim, *httptest.Server, *coretest.Prefix) {
	t.Helper()
	sim := gitlabsim.New(coretest.SimOptions())
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	p := coretest.NewPrefix(t, "main")
	p.Template("", coretest.ClientConfig{URL: srv.URL, PAT: coretest.AdminPAT})
	p.Executor("shell.toml", "url = \""+srv.URL+"\"\n")
	p.Executor("docker.toml", "url = \""+srv.URL+"\"\nexecutor = \"docker\"\n[docker]\n  image = \"alpine\"\n")
	mustExit(t, runCLI(t, p), 0)
	return sim, srv, p
}

// degradedReport is what --output json says of a start without GitLab.
type degradedReport struct {
	Degraded bool     `json:"degraded"`
	Failed   bool     `json:"failed"`
	Warnings []string `json:"warnings"`
	Runners  []struct {
		Name, Action string
		ID           int64
		Pending      bool
	} `json:"runners"`
	Skipped []core.SkippedExecutor `json:"skipped"`
}

// skippedNames are the executors a report says were not served, with why.
func (d degradedReport) skippedNames() map[string]string {
	out := map[string]string{}
	for _, s := range d.Skipped {
		out[s.Name] = s.Reason
	}
	return out
}

func degraded(t *testing.T, r result) degradedReport {
	t.Helper()
	var d degradedReport
	if err := json.Unmarshal([]byte(r.stdout), &d); err != nil {
		t.Fatalf("not one JSON object: %v\n%s", err, r.stdout)
	}
	return d
}

func TestGitLabDownWithEveryTokenOnDiskStartsDegraded(t *testing.T) {
	_, srv, p := downHost(t)
	before := coretest.Snapshot(t, p.ConfigPath())
	srv.Close()

	r := runCLI(t, p)
	mustExit(t, r, 0)
	if got := lines(r.stdout); len(got) != 2 || !strings.HasPrefix(got[0], "kept docker") || !strings.HasPrefix(got[1], "kept shell") {
		t.Fatalf("stdout %q", r.stdout)
	}
	if !hasLine(r.stderr, "register-runner: warning: ") {
		t.Fatalf("no degraded-start warning on stderr:\n%s", r.stderr)
	}
	j := runCLI(t, p, "--output", "json")
	mustExit(t, j, 0)
	d := degraded(t, j)
	if !d.Degraded || len(d.Runners) != 2 || d.Runners[0].Action != "keep" || d.Runners[0].ID == 0 {
		t.Fatalf("json report %+v: want a degraded start keeping both runners", d)
	}
	// The warning says how to fail instead, naming the flag.
	if len(d.Warnings) != 1 || !strings.Contains(d.Warnings[0], "--strict") {
		t.Fatalf("warnings %q: want one naming --strict", d.Warnings)
	}
	after := coretest.Snapshot(t, p.ConfigPath())
	if !bytes.Equal(before.Data, after.Data) || !before.MTime.Equal(after.MTime) {
		t.Fatal("a degraded start rewrote the config")
	}

	strict := runCLI(t, p, "--strict", "--output", "json")
	mustExit(t, strict, 1)
	if d := degraded(t, strict); d.Degraded || !d.Failed || len(d.Runners) != 0 {
		t.Fatalf("--strict: json report %+v, want a failure, not a degraded start", d)
	}
}

func TestGitLabFailingWith5xxStartsDegraded(t *testing.T) {
	sim, _, p := downHost(t)
	sim.InjectFault(gitlabsim.Fault{Type: gitlabsim.FaultStatus, Status: 502, Times: -1})
	r := runCLI(t, p, "--output", "json")
	mustExit(t, r, 0)
	if d := degraded(t, r); !d.Degraded || len(d.Warnings) == 0 {
		t.Fatalf("json report %+v: want a degraded start, with a warning", d)
	}
}

// GitLab down and something needs it: the executors that can start do
// (a degraded start), the one that needs GitLab is skipped and named; a
// runner to delete leaves the config, its removal pending. --strict fails
// instead, naming the executor that needs GitLab; and when nothing at all
// can start (the config was lost), the run fails.
func TestGitLabDownServesWhatItCan(t *testing.T) {
	for _, tc := range []struct {
		name    string
		setup   func(p *coretest.Prefix, url string)
		skipped map[string]string
		pending bool
		fails   bool
	}{
		{"a new executor must be created", func(p *coretest.Prefix, url string) {
			p.Executor("extra.toml", "url = \""+url+"\"\nexecutor = \"shell\"\n")
		}, map[string]string{"extra": "needs GitLab"}, false, false},
		{"an executor was removed and its runner must be deleted", func(p *coretest.Prefix, _ string) {
			p.Remove("main/docker.toml")
		}, map[string]string{}, true, false},
		{"the config was lost", func(p *coretest.Prefix, _ string) {
			if err := os.Remove(p.ConfigPath()); err != nil {
				panic(err)
			}
		}, map[string]string{"docker": "needs GitLab", "shell": "needs GitLab"}, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, srv, p := downHost(t)
			srv.Close()
			tc.setup(p, srv.URL)
			strict := runCLI(t, p, "--output", "json", "--strict")
			mustExit(t, strict, 1)
			d := degraded(t, strict)
			if d.Degraded || !d.Failed {
				t.Fatalf("--strict started degraded although GitLab is needed: %+v", d)
			}
			for name := range tc.skipped {
				if d.skippedNames()[name] != "needs GitLab" {
					t.Errorf("--strict: the failure does not name %s as needing GitLab: %+v", name, d.Skipped)
				}
			}
			r := runCLI(t, p, "--output", "json")
			d = degraded(t, r)
			if tc.fails {
				mustExit(t, r, 1)
				if len(d.skippedNames()) != len(tc.skipped) {
					t.Fatalf("skipped %+v, want %v", d.Skipped, tc.skipped)
				}
				return
			}
			mustExit(t, r, 0)
			if !d.Degraded || d.Failed || len(d.skippedNames()) != len(tc.skipped) {
				t.Fatalf("report %+v, want a degraded start skipping %v", d, tc.skipped)
			}
			for name, why := range tc.skipped {
				if d.skippedNames()[name] != why {
					t.Errorf("skipped %+v, want %s: %s", d.Skipped, name, why)
				}
			}
			if strings.Contains(p.Config(), "main docker Runner") == tc.pending {
				t.Errorf("docker's entry in the config: %v, want %v\n%s", !tc.pending, !tc.pending, p.Config())
			}
			if tc.pending {
				var pending bool
				for _, rr := range d.Runners {
					pending = pending || (rr.Name != "" && rr.Pending)
				}
				if !pending {
					t.Errorf("the removal is not reported pending: %+v", d.Runners)
				}
			}
			if !strings.Contains(p.Config(), "main shell Runner") {
				t.Error("shell's entry is gone: a working executor was taken offline")
			}
		})
	}
}

func TestRejectedTokenIsNeverKeptDegraded(t *testing.T) {
	sim, _, p := downHost(t)
	// One token is revoked; the lookup that would heal it finds GitLab failing.
	var revoked string
	for _, r := range sim.Runners() {
		if strings.Contains(r.Description, "shell") {
			revoked = r.Token
			sim.RevokeToken(r.ID)
		}
	}
	sim.InjectFault(gitlabsim.Fault{Method: "GET", Type: gitlabsim.FaultStatus, Status: 503, Times: -1})
	r := runCLI(t, p, "--output", "json", "--strict")
	mustExit(t, r, 1)
	if d := degraded(t, r); d.Degraded || !d.Failed {
		t.Fatalf("kept a rejected token in a degraded start: %+v", d)
	}
	// Without --strict, docker starts; shell is skipped and its dead
	// token leaves the config (the state file still names its runner).
	r = runCLI(t, p, "--output", "json")
	mustExit(t, r, 0)
	d := degraded(t, r)
	if !d.Degraded || d.skippedNames()["shell"] != "needs GitLab" || len(d.Skipped) != 1 || d.Skipped[0].Kept {
		t.Fatalf("report %+v, want docker started and shell skipped, its entry not kept", d)
	}
	if strings.Contains(p.Config(), revoked) {
		t.Fatal("the rejected token is still in the config")
	}
}

func TestUnregisterSaysWhatItDid(t *testing.T) {
	_, _, p := downHost(t)
	r := runCLI(t, p, "--unregister")
	mustExit(t, r, 0)
	if strings.Contains(r.stderr, "wrote ") || !strings.Contains(r.stderr, "removed "+p.ConfigPath()) {
		t.Fatalf("unregister output:\n%s", r.stderr)
	}
	if strings.Contains(r.stderr, "no longer declared") || !strings.Contains(r.stderr, "unregistering instance main") {
		t.Fatalf("unregister reasons:\n%s", r.stderr)
	}
}

// Option errors name the flag, in the fields and on stderr.
func TestOptionErrorsUseFlagNames(t *testing.T) {
	_, _, p := downHost(t)
	for _, tc := range []struct {
		args []string
		flag string
	}{
		{[]string{"--service-instance", host}, "--service-instance"},
		{[]string{"--concurrency", "0"}, "--concurrency"},
	} {
		r := runCLI(t, p, tc.args...)
		mustExit(t, r, 2)
		if !hasLine(r.stderr, "register-runner: error: "+tc.flag+": ") {
			t.Errorf("%v: error does not begin with the flag:\n%s", tc.args, r.stderr)
		}
		j := runCLI(t, p, append(tc.args, "--output", "json")...)
		if got := inputErrors(t, j.stdout); len(got) != 1 || got[0].Option != tc.flag || got[0].File != "" {
			t.Errorf("%v: input_errors %+v, want the flag %s", tc.args, got, tc.flag)
		}
	}
}

// Every line on stderr carries the command's prefix, the lines of a
// warning that spans several (one per executor GitLab did not answer for)
// included: journald and log collectors tag each line on its own.
func TestEveryStderrLineIsPrefixed(t *testing.T) {
	_, srv, p := downHost(t)
	srv.Close()
	for _, args := range [][]string{{}, {"--strict"}} {
		r := runCLI(t, p, args...)
		if len(lines(r.stderr)) < 2 {
			t.Fatalf("%v: want a message of several lines:\n%s", args, r.stderr)
		}
		for _, l := range lines(r.stderr) {
			if !strings.HasPrefix(l, "register-runner: ") {
				t.Errorf("%v: stderr line without the prefix: %q", args, l)
			}
		}
	}
}

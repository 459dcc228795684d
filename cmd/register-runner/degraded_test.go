package main

import (
	"bytes"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

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

func TestGitLabDownWithEveryTokenOnDiskStartsDegraded(t *testing.T) {
	_, srv, p := downHost(t)
	before := coretest.Snapshot(t, p.ConfigPath())
	srv.Close()

	r := runCLI(t, p, "--timeout", "10s")
	mustExit(t, r, 0)
	if !strings.Contains(r.stderr, "could not be reached") || !strings.Contains(r.stderr, "--strict") {
		t.Fatalf("no degraded-start warning naming --strict:\n%s", r.stderr)
	}
	if got := lines(r.stdout); len(got) != 2 || !strings.HasPrefix(got[0], "kept docker") || !strings.HasPrefix(got[1], "kept shell") {
		t.Fatalf("stdout %q", r.stdout)
	}
	after := coretest.Snapshot(t, p.ConfigPath())
	if !bytes.Equal(before.Data, after.Data) || !before.MTime.Equal(after.MTime) {
		t.Fatal("a degraded start rewrote the config")
	}

	strict := runCLI(t, p, "--strict", "--timeout", "10s")
	mustExit(t, strict, 1)
	if !strings.Contains(strict.stderr, "no answer") {
		t.Fatalf("--strict error does not say GitLab did not answer:\n%s", strict.stderr)
	}
}

func TestGitLabFailingWith5xxStartsDegraded(t *testing.T) {
	sim, _, p := downHost(t)
	sim.InjectFault(gitlabsim.Fault{Type: gitlabsim.FaultStatus, Status: 502, Times: -1})
	r := runCLI(t, p, "--timeout", "20s")
	mustExit(t, r, 0)
	if !strings.Contains(r.stderr, "could not be reached") {
		t.Fatalf("no degraded-start warning:\n%s", r.stderr)
	}
}

func TestGitLabDownFailsWhenSomethingNeedsGitLab(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(p *coretest.Prefix, url string)
	}{
		{"a new executor must be created", func(p *coretest.Prefix, url string) {
			p.Executor("extra.toml", "url = \""+url+"\"\nexecutor = \"shell\"\n")
		}},
		{"an executor was removed and its runner must be deleted", func(p *coretest.Prefix, _ string) {
			p.Remove("main/docker.toml")
		}},
		{"the config was lost", func(p *coretest.Prefix, _ string) {
			if err := os.Remove(p.ConfigPath()); err != nil {
				panic(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, srv, p := downHost(t)
			srv.Close()
			tc.setup(p, srv.URL)
			r := runCLI(t, p, "--timeout", "10s")
			mustExit(t, r, 1)
			if strings.Contains(r.stderr, "could not be reached") {
				t.Fatalf("started degraded although GitLab is needed:\n%s", r.stderr)
			}
		})
	}
}

func TestRejectedTokenIsNeverKeptDegraded(t *testing.T) {
	sim, _, p := downHost(t)
	// One token is revoked; the lookup that would heal it finds GitLab failing.
	for _, r := range sim.Runners() {
		if strings.Contains(r.Description, "shell") {
			sim.RevokeToken(r.ID)
		}
	}
	sim.InjectFault(gitlabsim.Fault{Method: "GET", Type: gitlabsim.FaultStatus, Status: 503, Times: -1})
	r := runCLI(t, p, "--timeout", "20s")
	mustExit(t, r, 1)
	if strings.Contains(r.stderr, "could not be reached") {
		t.Fatalf("kept a rejected token in a degraded start:\n%s", r.stderr)
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

func TestOptionErrorsUseFlagNames(t *testing.T) {
	_, _, p := downHost(t)
	r := runCLI(t, p, "--service-instance", host)
	mustExit(t, r, 2)
	if !strings.Contains(r.stderr, "--service-instance: instance name") {
		t.Fatalf("error does not name the flag:\n%s", r.stderr)
	}
	r = runCLI(t, p, "--concurrency", "0")
	mustExit(t, r, 2)
	if !strings.Contains(r.stderr, "--concurrency: must be between 1 and 256") {
		t.Fatalf("error does not name the flag:\n%s", r.stderr)
	}
}

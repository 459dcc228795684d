package reliability

import (
	"context"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/engine"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/input"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/plan"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/testkit/coretest"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/testkit/gitlabsim"
)

// TestTLS serves the simulator over HTTPS with its own CA.
func TestTLS(t *testing.T) {
	sim, ca := coretest.NewTLSSim(t, coretest.SimOptions())
	p := coretest.NewPrefix(t, "main")
	w := &world{sim: &coretest.Sim{Sim: sim.Sim, URL: sim.URL}, p: p}
	p.Executor("a.toml", executorFile(sim.URL, "a", ""))

	// Without the CA: a clear failure (the certificate's authority is
	// unknown; the message names the key that fixes it), nothing
	// registered.
	p.Template("", coretest.ClientConfig{URL: sim.URL, PAT: coretest.AdminPAT})
	_, err := w.sync(t, context.Background())
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) || input.Is(err) || !strings.Contains(err.Error(), "tls_ca_file") {
		t.Fatalf("without tls_ca_file: got %v, want an unknown authority, naming tls_ca_file", err)
	}
	if len(sim.Runners()) != 0 {
		t.Fatal("a runner was registered over an unverified connection")
	}

	// With it: works, and gitlab-runner is told about the CA too.
	p.Template("", coretest.ClientConfig{URL: sim.URL, PAT: coretest.AdminPAT, Extra: "tls_ca_file = \"" + ca + "\"\n"})
	code, stdout, stderr := runBinary(t, nil, w.cliArgs("--output", "json")...)
	if code != 0 || readReport(t, stdout).action("a") != plan.Create {
		t.Fatalf("with tls_ca_file: exit %d\n%s%s", code, stdout, stderr)
	}
	if !strings.Contains(p.Config(), `tls-ca-file = "`+ca+`"`) {
		t.Fatalf("config does not pass the CA to gitlab-runner:\n%s", p.Config())
	}
	w.converged(t, []string{"a"})
	// There is no switch to turn verification off: see the bad input
	// catalogue ("TLS verification cannot be switched off").
}

// TestSecretsInErrorPaths makes GitLab answer errors that quote the whole
// request (headers with the PAT, bodies with runner and registration
// tokens): nothing the tool prints may carry them on.
func TestSecretsInErrorPaths(t *testing.T) {
	for _, kind := range []string{"verify", "create", "reset", "delete-token", "register"} {
		t.Run(kind, func(t *testing.T) {
			w := baseline(t)
			if kind == "register" {
				w.p.Template("", coretest.ClientConfig{URL: w.sim.URL, RegistrationToken: coretest.RegistrationTok})
			}
			w.sim.InjectFault(gitlabsim.Fault{Kind: kind, Type: gitlabsim.FaultEcho, Times: -1})
			// --strict fails the run on the fault; without it the executor
			// (or the removal) is skipped and the others served: GitLab's
			// message goes to the warnings then, redacted all the same.
			for _, args := range [][]string{{"--output", "text", "--strict"}, {"--output", "json", "--strict"}, {"--output", "text"}, {"--output", "json"}} {
				code, stdout, stderr := runBinary(t, nil, w.cliArgs(append(args, "--diff")...)...)
				if code == 0 && len(args) > 2 {
					t.Fatalf("the echo fault on %s did not fail the run with --strict", kind)
				}
				all := stdout + stderr
				if !strings.Contains(all, "could not process") {
					t.Fatalf("GitLab's message was not reported:\n%s", all)
				}
				if leak := coretest.FindSecret(all); leak != "" {
					t.Fatalf("%s leaked through an error path:\n%s", leak, all)
				}
				// GitLab's message is cut at 300 characters; where the secret is
				// inside that, it must show as <redacted>.
				if kind != "register" && !strings.Contains(all, "<redacted>") {
					t.Fatalf("expected the quoted secret to be shown as <redacted>:\n%s", all)
				}
			}
		})
	}
}

// TestRelativePrefixWritesAnAbsoluteCAPath: with a relative prefix (the
// CLI takes one), tls_ca_file relative to it still reaches the generated
// config as an absolute path: gitlab-runner resolves a relative one
// against its own working folder, not the one register-runner ran in.
func TestRelativePrefixWritesAnAbsoluteCAPath(t *testing.T) {
	sim, ca := coretest.NewTLSSim(t, coretest.SimOptions())
	p := coretest.NewPrefix(t, "main")
	pem, err := os.ReadFile(ca)
	if err != nil {
		t.Fatal(err)
	}
	inPrefix := p.Write("gitlab-ca.pem", string(pem))
	p.Template("", coretest.ClientConfig{URL: sim.URL, PAT: coretest.AdminPAT, Extra: "tls_ca_file = \"gitlab-ca.pem\"\n"})
	p.Executor("a.toml", executorFile(sim.URL, "a", ""))
	t.Chdir(filepath.Dir(p.Dir))
	err = coretest.Run(t, context.Background(), engine.Options{Prefix: filepath.Base(p.Dir), Instance: "main", Hostname: hostname, Limits: engine.Limits{Concurrency: engine.DefaultConcurrency}}).Err
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Runners []map[string]any `toml:"runners"`
	}
	if _, err := toml.Decode(p.Config(), &doc); err != nil || len(doc.Runners) != 1 {
		t.Fatalf("config: %v\n%s", err, p.Config())
	}
	got, _ := doc.Runners[0]["tls-ca-file"].(string)
	if !filepath.IsAbs(got) {
		t.Fatalf("tls-ca-file = %q, want an absolute path", got)
	}
	a, errA := os.Stat(got)
	b, errB := os.Stat(inPrefix)
	if errA != nil || errB != nil || !os.SameFile(a, b) {
		t.Fatalf("tls-ca-file = %q, want the CA in the prefix (%s)", got, inPrefix)
	}
}

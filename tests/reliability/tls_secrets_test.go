package reliability

import (
	"context"
	"crypto/x509"
	"errors"
	"strings"
	"testing"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/coretest"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/gitlabsim"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/input"
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
	code, stdout, stderr := runBinary(t, nil, w.cliArgs()...)
	if code != 0 || !strings.Contains(stdout, "created a") {
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

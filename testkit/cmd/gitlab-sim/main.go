// Command gitlab-sim serves the GitLab simulator (testkit/gitlabsim) on a
// loopback port, for the demo, the Molecule scenarios, the benchmarks and a
// real gitlab-runner to poll. It adds a control API under /-/sim/ (state,
// users, groups, tokens, request log, fault injection, the clock and the
// GitLab release it imitates).
package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/testkit/gitlabsim"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "ctl" {
		if err := ctl(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "gitlab-sim ctl:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "gitlab-sim:", err)
		os.Exit(2)
	}
}

const ctlUsage = `usage: gitlab-sim ctl URL METHOD /-/sim/PATH [JSON-BODY]
       gitlab-sim ctl URL advance DURATION      move the clock (240h), running GitLab's hourly jobs
       gitlab-sim ctl URL set-time RFC3339      set the clock
       gitlab-sim ctl URL version VERSION       imitate another GitLab release (%s)`

// ctl talks to a running simulator's control API, so scripts need no
// HTTP client: gitlab-sim ctl URL METHOD PATH [JSON-BODY], or one of the
// shorthands for the clock and the release.
func ctl(args []string) error {
	if len(args) == 3 {
		var body []byte
		var err error
		switch args[1] {
		case "advance":
			body, err = json.Marshal(gitlabsim.ClockChange{Advance: args[2]})
			args = []string{args[0], "POST", "/-/sim/clock", string(body)}
		case "set-time":
			var t time.Time
			if t, err = time.Parse(time.RFC3339, args[2]); err == nil {
				body, err = json.Marshal(gitlabsim.ClockChange{Set: t})
			}
			args = []string{args[0], "POST", "/-/sim/clock", string(body)}
		case "version":
			body, err = json.Marshal(map[string]string{"version": args[2]})
			args = []string{args[0], "PUT", "/-/sim/profile", string(body)}
		}
		if err != nil {
			return err
		}
	}
	if len(args) < 3 || len(args) > 4 {
		return fmt.Errorf(ctlUsage, strings.Join(gitlabsim.ProfileVersions(), ", "))
	}
	var body io.Reader
	if len(args) == 4 {
		body = strings.NewReader(args[3])
	}
	req, err := http.NewRequest(args[1], strings.TrimRight(args[0], "/")+args[2], body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(os.Stdout, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s", resp.Status)
	}
	return nil
}

func readSecret(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	v := strings.TrimSpace(string(b))
	if v == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return v, nil
}

// flags are the simulator's command-line flags.
type flags struct {
	listen, addrFile, regFile, version, start, certFile, keyFile string
	pats                                                         []string
	regDisabled, adminMode, routable, logRequests                bool
	seed                                                         uint64
	latency, lifetime                                            time.Duration
}

// parseFlags reads the command line; the release to imitate must be one
// the simulator knows.
func parseFlags(args []string) (*flags, error) {
	f := &flags{}
	fs := pflag.NewFlagSet("gitlab-sim", pflag.ContinueOnError)
	fs.StringVar(&f.listen, "listen", "127.0.0.1:0", "address to listen on (loopback)")
	fs.StringVar(&f.addrFile, "addr-file", "", "write the base URL here once listening")
	fs.StringArrayVar(&f.pats, "pat", nil, "personal access token NAME:SCOPE+SCOPE:admin|user:FILE (value read from FILE; repeatable)")
	fs.StringVar(&f.regFile, "registration-token-file", "", "enable the legacy registration token read from FILE (and allow registration tokens, as an administrator must since GitLab 17.0)")
	fs.BoolVar(&f.regDisabled, "registration-disabled", false, "answer 410 Gone to legacy registration (allow_runner_registration_token off)")
	fs.StringVar(&f.version, "version-profile", gitlabsim.NewestProfile().Version, "GitLab release to imitate: "+strings.Join(gitlabsim.ProfileVersions(), ", "))
	fs.StringVar(&f.start, "start-time", "", "start the simulator's clock at this RFC 3339 time (default: now); it runs on from there")
	fs.Uint64Var(&f.seed, "seed", 0, "seed of the random delays with which GitLab writes runner contacts")
	fs.DurationVar(&f.latency, "latency", 0, "latency added to every API request")
	fs.DurationVar(&f.lifetime, "token-lifetime", 0, "runner tokens expire after this long (0: never)")
	fs.BoolVar(&f.adminMode, "admin-mode", false, "turn on GitLab's Admin Mode: administrator tokens need the admin_mode scope")
	fs.BoolVar(&f.routable, "routable-tokens", false, "hand out runner tokens in the routable format (glrt-t1_<payload>.<crc>)")
	fs.BoolVar(&f.logRequests, "log-requests", false, "print one line per API request to stderr (never a secret)")
	fs.StringVar(&f.certFile, "tls-cert", "", "serve HTTPS with this certificate (PEM)")
	fs.StringVar(&f.keyFile, "tls-key", "", "private key for --tls-cert (PEM)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if _, ok := gitlabsim.LookupProfile(f.version); !ok {
		return nil, fmt.Errorf("--version-profile %q: have %s", f.version, strings.Join(gitlabsim.ProfileVersions(), ", "))
	}
	return f, nil
}

// options are the simulator's options the flags give, with the secrets
// read from their files.
func (f *flags) options() (gitlabsim.Options, error) {
	opts := gitlabsim.Options{Latency: f.latency, TokenLifetime: f.lifetime, RegistrationDisabled: f.regDisabled,
		AdminMode: f.adminMode, RoutableTokens: f.routable, Version: f.version, Seed: f.seed}
	if f.logRequests {
		opts.RequestLog = os.Stderr
	}
	for _, spec := range f.pats {
		parts := strings.SplitN(spec, ":", 4)
		if len(parts) != 4 || (parts[2] != "admin" && parts[2] != "user") {
			return opts, fmt.Errorf("--pat %q: want NAME:SCOPE+SCOPE:admin|user:FILE", spec)
		}
		v, err := readSecret(parts[3])
		if err != nil {
			return opts, fmt.Errorf("--pat %s: %w", parts[0], err)
		}
		opts.PATs = append(opts.PATs, gitlabsim.PAT{Name: parts[0], Value: v, Scopes: strings.Split(parts[1], "+"), Admin: parts[2] == "admin"})
	}
	if f.regFile != "" {
		v, err := readSecret(f.regFile)
		if err != nil {
			return opts, fmt.Errorf("--registration-token-file: %w", err)
		}
		opts.RegistrationToken = v
		opts.RegistrationTokensAllowed = true
	}
	return opts, nil
}

// listener listens where the flags say, over TLS when given a
// certificate (srv takes its TLS configuration), and gives the base URL.
func (f *flags) listener(srv *http.Server) (net.Listener, string, error) {
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return nil, "", err
	}
	scheme := "http"
	if f.certFile != "" {
		cert, err := tls.LoadX509KeyPair(f.certFile, f.keyFile)
		if err != nil {
			ln.Close()
			return nil, "", err
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		ln = tls.NewListener(ln, srv.TLSConfig)
		scheme = "https"
	}
	return ln, fmt.Sprintf("%s://%s", scheme, ln.Addr().String()), nil
}

// writeAddr writes the base URL to path whole (a reader never sees half
// of it).
func writeAddr(path, base string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(base+"\n"), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// serve serves until SIGTERM or SIGINT, then shuts down.
func serve(srv *http.Server, ln net.Listener) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func run(args []string) error {
	f, err := parseFlags(args)
	if err != nil {
		return err
	}
	opts, err := f.options()
	if err != nil {
		return err
	}
	sim := gitlabsim.New(opts)
	if f.start != "" {
		t, err := time.Parse(time.RFC3339, f.start)
		if err != nil {
			return fmt.Errorf("--start-time: %w", err)
		}
		sim.SetNow(t)
	}
	sim.EnableControl()

	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second}
	ln, base, err := f.listener(srv)
	if err != nil {
		return err
	}
	if f.addrFile != "" {
		if err := writeAddr(f.addrFile, base); err != nil {
			return err
		}
	}
	fmt.Fprintln(os.Stderr, "gitlab-sim: listening on", base)
	return serve(srv, ln)
}

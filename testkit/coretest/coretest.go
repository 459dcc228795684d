// Package coretest provides test fixtures shared by the engine, CLI, module
// and reliability tests: a simulator on a loopback port, host prefixes with
// safe modes, distinctive secret values, and a transcript of every output
// so the suite can prove no secret was ever printed.
package coretest

import (
	"bytes"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/fleet"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/testkit/gitlabsim"
)

// Distinctive secrets: any of them in any output is a leak.
const (
	AdminPAT        = "glpat-SECRETadminPAT-9f2c7d1e4b"
	CreateOnlyPAT   = "glpat-SECRETcreateOnly-3a8e5c2f7d"
	ReadOnlyPAT     = "glpat-SECRETreadOnly-6b1d9e4a2c"
	GroupPAT        = "glpat-SECRETgroupOwner-2e7f4c9a1b"
	RegistrationTok = "GR1348941SECRETregToken-5c3a8f1e9d"
)

// AllSecrets lists the fixed secrets (runner tokens are recognised by shape).
var AllSecrets = []string{AdminPAT, CreateOnlyPAT, ReadOnlyPAT, GroupPAT, RegistrationTok}

// RunnerTokenShape matches the runner tokens the simulator hands out:
// glrt-t1_… from the runner creation workflow, t1_… (t2_, t3_) from legacy
// registration, as GitLab shapes them.
var RunnerTokenShape = regexp.MustCompile(`glrt-[A-Za-z0-9_-]{20}|\bt[1-3]_[A-Za-z0-9_-]{20}`)

// tokenShapes match any personal access or registration token value.
var tokenShapes = regexp.MustCompile(`glpat-[A-Za-z0-9_-]{10,}|GR1348941[A-Za-z0-9_-]{10,}`)

// Timeouts are the time limits of a test's run of the engine.
type Timeouts struct {
	Request, RetryBudget, Lock time.Duration
	MaxAttempts                int
}

// Patient are the limits of a test's run that must succeed: a request to
// the simulator, another run holding the lock, answer within them however
// loaded the machine (tests never fail because the machine is slow). A
// test that wants a request cut short (a fault that holds it) sets its own.
var Patient = Timeouts{Request: 30 * time.Second, RetryBudget: time.Minute, Lock: 2 * time.Minute, MaxAttempts: 4}

// SimOptions returns simulator options with the standard PATs.
func SimOptions() gitlabsim.Options {
	return gitlabsim.Options{
		PATs: []gitlabsim.PAT{
			{Name: "admin", Value: AdminPAT, Scopes: []string{"api"}, Admin: true},
			{Name: "create-only", Value: CreateOnlyPAT, Scopes: []string{"create_runner"}, Admin: true},
			{Name: "read-only", Value: ReadOnlyPAT, Scopes: []string{"read_api"}, Admin: true},
			{Name: "group-owner", Value: GroupPAT, Scopes: []string{"api"}, Admin: false},
		},
		RegistrationToken: RegistrationTok,
		// An administrator allowed registration tokens (off by default since GitLab 17.0).
		RegistrationTokensAllowed: true,
	}
}

// Sim is a simulator served on 127.0.0.1.
type Sim struct {
	*gitlabsim.Sim
	URL string
	srv *httptest.Server
	w   *watcher
}

// NewSim starts a simulator for the test.
func NewSim(t testing.TB, opts gitlabsim.Options) *Sim {
	t.Helper()
	s, srv, w := serve(opts)
	srv.Start()
	t.Cleanup(srv.Close)
	return &Sim{Sim: s, URL: srv.URL, srv: srv, w: w}
}

// Down takes the simulator off the network: every request from now on is
// refused (connection refused), as from a GitLab that is down.
func (s *Sim) Down() { s.srv.Close() }

// serve wraps the simulator so that Watch sees requests and connections.
func serve(opts gitlabsim.Options) (*gitlabsim.Sim, *httptest.Server, *watcher) {
	s := gitlabsim.New(opts)
	w := &watcher{}
	srv := httptest.NewUnstartedServer(w.wrap(s))
	srv.Config.ConnState = w.connState
	return s, srv, w
}

// NewTLSSim starts a simulator over HTTPS with its own CA and returns the
// path of a PEM file with that CA.
func NewTLSSim(t testing.TB, opts gitlabsim.Options) (*Sim, string) {
	t.Helper()
	s, srv, w := serve(opts)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, certPEM(srv), 0o600); err != nil {
		t.Fatal(err)
	}
	return &Sim{Sim: s, URL: srv.URL, srv: srv, w: w}, ca
}

// Prefix is a host prefix laid out for one instance.
type Prefix struct {
	t        testing.TB
	Dir      string
	Instance string
}

// NewPrefix creates an empty prefix (0700) with the executor folder.
func NewPrefix(t testing.TB, instance string) *Prefix {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "etc-gitlab-runner")
	if err := os.MkdirAll(filepath.Join(dir, instance), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	// A fixed system id, as gitlab-runner would have written it.
	p := &Prefix{t: t, Dir: dir, Instance: instance}
	p.Write(".runner_system_id", "s_0123456789ab\n")
	return p
}

// Write writes a file under the prefix with mode 0600.
func (p *Prefix) Write(rel, content string) string {
	p.t.Helper()
	path := filepath.Join(p.Dir, rel)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		p.t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		p.t.Fatal(err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		p.t.Fatal(err)
	}
	return path
}

// Remove deletes a file under the prefix.
func (p *Prefix) Remove(rel string) {
	p.t.Helper()
	if err := os.Remove(filepath.Join(p.Dir, rel)); err != nil {
		p.t.Fatal(err)
	}
}

// ClientConfig is one [[client_configs]] entry for Template.
type ClientConfig struct {
	URL               string
	PAT               string
	RegistrationToken string
	Extra             string // more TOML lines
}

// Template writes config.template.{instance}.toml.
func (p *Prefix) Template(globals string, clients ...ClientConfig) {
	p.t.Helper()
	var b strings.Builder
	b.WriteString(globals)
	b.WriteString("\n")
	for _, c := range clients {
		b.WriteString("\n[[client_configs]]\n")
		fmt.Fprintf(&b, "url = %q\n", c.URL)
		if c.PAT != "" {
			fmt.Fprintf(&b, "personal_access_token = %q\n", c.PAT)
		}
		if c.RegistrationToken != "" {
			fmt.Fprintf(&b, "registration_token = %q\n", c.RegistrationToken)
		}
		b.WriteString(c.Extra)
	}
	p.Write("config.template."+p.Instance+".toml", b.String())
}

// Executor writes {instance}/{file}.
func (p *Prefix) Executor(file, content string) {
	p.t.Helper()
	p.Write(filepath.Join(p.Instance, file), content)
}

// ConfigPath is config.{instance}.toml.
func (p *Prefix) ConfigPath() string {
	return filepath.Join(p.Dir, "config."+p.Instance+".toml")
}

// Config reads config.{instance}.toml ("" when absent).
func (p *Prefix) Config() string {
	b, err := os.ReadFile(p.ConfigPath())
	if err != nil {
		return ""
	}
	return string(b)
}

// Entry is a [[runners]] entry of a generated config.
type Entry struct {
	Name  string `toml:"name"`
	URL   string `toml:"url"`
	ID    int64  `toml:"id"`
	Token string `toml:"token"`
}

// Entries parses config.{instance}.toml's [[runners]] (none when the file
// is absent); a file that does not parse fails the test.
func (p *Prefix) Entries(t testing.TB) []Entry {
	t.Helper()
	var doc struct {
		Runners []Entry `toml:"runners"`
	}
	if _, err := toml.Decode(p.Config(), &doc); err != nil {
		t.Fatalf("%s does not parse: %v", p.ConfigPath(), err)
	}
	return doc.Runners
}

var transcriptSeq atomic.Int64

// Record saves output produced by the code under test into
// $GRA_TRANSCRIPT_DIR (when set) for the suite-wide secret sweep, and
// fails the test at once if it holds a secret.
func Record(t testing.TB, what string, data []byte) {
	t.Helper()
	if leak := FindSecret(string(data)); leak != "" {
		t.Errorf("%s contains a secret (%s):\n%s", what, leak, data)
	}
	dir := os.Getenv("GRA_TRANSCRIPT_DIR")
	if dir == "" || len(data) == 0 {
		return
	}
	_ = os.MkdirAll(dir, 0o700)
	name := fmt.Sprintf("%s-%d-%s.txt", sanitize(t.Name()), transcriptSeq.Add(1), sanitize(what))
	_ = os.WriteFile(filepath.Join(dir, name), data, 0o600)
}

func sanitize(s string) string {
	return regexp.MustCompile(`[^A-Za-z0-9_.-]+`).ReplaceAllString(s, "_")
}

// FindSecret returns a description of the first secret found in s, or "".
func FindSecret(s string) string {
	for _, sec := range AllSecrets {
		if strings.Contains(s, sec) {
			return "fixed secret " + sec[:10] + "..."
		}
	}
	if m := RunnerTokenShape.FindString(s); m != "" {
		return "runner token " + m[:8] + "..."
	}
	if m := tokenShapes.FindString(s); m != "" {
		return "token " + m[:8] + "..."
	}
	return ""
}

// ShellHost lays out one shell executor against a fresh simulator, with
// the given personal access and registration tokens ("" for none).
func ShellHost(t testing.TB, pat, registration string) (*Sim, *Prefix) {
	t.Helper()
	sim := NewSim(t, SimOptions())
	p := NewPrefix(t, "main")
	p.Template("", ClientConfig{URL: sim.URL, PAT: pat, RegistrationToken: registration})
	p.Executor("shell.toml", "url = \""+sim.URL+"\"\n")
	return sim, p
}

// FileState is a file's bytes and mtime, to prove a run left it alone.
type FileState struct {
	Data  []byte
	MTime time.Time
	Exist bool
}

// Snapshot reads a file's state (Exist false when it is absent).
func Snapshot(t testing.TB, path string) FileState {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		return FileState{}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return FileState{Data: b, MTime: fi.ModTime(), Exist: true}
}

// Same reports whether two states are the same bytes and mtime.
func (a FileState) Same(b FileState) bool {
	return a.Exist == b.Exist && bytes.Equal(a.Data, b.Data) && a.MTime.Equal(b.MTime)
}

// Marked is the maintenance_note the fleet's sync gives a runner of host
// and instance main.
func Marked(fleetName, host string) string {
	return fleet.Mark{Fleet: fleetName, Host: host, Instance: "main"}.Note("")
}

// AddRunnersAgo adds runners as GitLab would hold them had they been
// created ago before now, then sets the simulator's clock back to the wall
// clock, the controller's: GitLab's clock and the controller's agree, as
// the clean-up requires.
func (s *Sim) AddRunnersAgo(ago time.Duration, rs ...gitlabsim.Runner) []int64 {
	now := time.Now()
	s.SetNow(now.Add(-ago))
	ids := make([]int64, len(rs))
	for i, r := range rs {
		ids[i] = s.AddRunner(r)
	}
	s.SetNow(now)
	return ids
}

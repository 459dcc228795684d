package reliability

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/engine"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/gitlab"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/hostfs"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/input"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/tags"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/testkit/coretest"
)

// Hostile input, as an attacker would try it against a root run: files
// owned by someone else, links and FIFOs where regular files belong,
// inputs that cost memory or time out of all proportion, and GitLab
// answers built to leak a secret through a cut message.

// A secret with no token shape: only the redactor's knowledge of it (and
// never quoting it) keeps it out of output.
const shapelessPAT = "zzSECRETshapelessPAT0123456789"

// leaksPrefix reports the longest piece (6 characters or more) of secret
// that out contains, or "".
func leaksPrefix(out, secret string) string {
	for n := len(secret); n >= 6; n-- {
		for i := 0; i+n <= len(secret); i++ {
			if strings.Contains(out, secret[i:i+n]) {
				return secret[i : i+n]
			}
		}
	}
	return ""
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: files owned by another user cannot be made otherwise")
	}
}

func chown(t *testing.T, path string, uid int) {
	t.Helper()
	if err := os.Lchown(path, uid, uid); err != nil {
		t.Fatal(err)
	}
}

// TestFilesOwnedByAnotherUserAreRefused: a root run trusts only files
// owned by root or by the user running it. Someone who owns the prefix (or
// a token file) could otherwise point a root run at root's secrets and at
// a GitLab of their own.
func TestFilesOwnedByAnotherUserAreRefused(t *testing.T) {
	requireRoot(t)
	const nobody = 65534
	cases := []struct {
		name string
		// setup returns the file and key the error must name ($PREFIX
		// for the prefix).
		setup func(t *testing.T, w *world) (file, key string)
	}{
		{"prefix", func(t *testing.T, w *world) (string, string) { chown(t, w.p.Dir, nobody); return "$PREFIX", "" }},
		{"executor folder", func(t *testing.T, w *world) (string, string) {
			chown(t, filepath.Join(w.p.Dir, "main"), nobody)
			return "main", ""
		}},
		{"template", func(t *testing.T, w *world) (string, string) {
			chown(t, filepath.Join(w.p.Dir, "config.template.main.toml"), nobody)
			return tpl, ""
		}},
		{"executor file", func(t *testing.T, w *world) (string, string) {
			chown(t, filepath.Join(w.p.Dir, "main", "a.toml"), nobody)
			return "main/a.toml", ""
		}},
		{"token file outside the prefix", func(t *testing.T, w *world) (string, string) {
			p := filepath.Join(t.TempDir(), "pat")
			if err := os.WriteFile(p, []byte(coretest.AdminPAT+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			chown(t, p, nobody)
			w.p.Write("config.template.main.toml", template(w, fmt.Sprintf("personal_access_token_file = %q\n", p)))
			return tpl, "client_configs[0].personal_access_token_file"
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := baseline(t)
			file, key := tc.setup(t, w)
			file = strings.ReplaceAll(file, "$PREFIX", w.p.Dir)
			_, err := w.sync(t, context.Background())
			if ie := input.As(err); ie == nil || ie.File != file || ie.Key != key || ie.Fix == "" || !errors.Is(err, hostfs.ErrForeignOwner) {
				t.Fatalf("got %#v, want an input error at %s (key %q): owned by another user, with a fix", err, file, key)
			}
			if n := len(w.sim.Requests()); n != 0 {
				t.Errorf("sent %d requests with untrusted input", n)
			}
		})
	}
}

// TestCaptureProgramAndSchemaAreTrustedLikeTheTemplate: the capture
// program and the tag schema decide the tags sent to GitLab; one owned by
// another user, or that group or other may write, is refused before the
// program runs and before any request, naming the option and the file.
func TestCaptureProgramAndSchemaAreTrustedLikeTheTemplate(t *testing.T) {
	ran := filepath.Join(t.TempDir(), "ran")
	for _, tc := range []struct {
		name   string
		option input.Option
		is     error
		setup  func(t *testing.T, path string)
		root   bool
	}{
		{"capture program owned by another user", input.CaptureTags, hostfs.ErrForeignOwner, func(t *testing.T, p string) { chown(t, p, 65534) }, true},
		{"capture program writable by others", input.CaptureTags, hostfs.ErrWritable, func(t *testing.T, p string) { chmod(t, p, 0o757) }, false},
		{"tag schema owned by another user", input.TagSchema, hostfs.ErrForeignOwner, func(t *testing.T, p string) { chown(t, p, 65534) }, true},
		{"tag schema writable by group", input.TagSchema, hostfs.ErrWritable, func(t *testing.T, p string) { chmod(t, p, 0o664) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.root {
				requireRoot(t)
			}
			w := baseline(t)
			prog := script(t, "touch "+ran+"; echo '{\"site\": \"x\"}'")
			schema := filepath.Join(t.TempDir(), "schema.json")
			if err := os.WriteFile(schema, []byte(`{"type": "object"}`), 0o644); err != nil {
				t.Fatal(err)
			}
			chmod(t, schema, 0o644)
			file := map[input.Option]string{input.CaptureTags: prog, input.TagSchema: schema}[tc.option]
			tc.setup(t, file)
			err := coretest.Run(t, context.Background(), engine.Options{Prefix: w.p.Dir, Instance: "main", Hostname: hostname, Tags: tags.Options{CaptureProgram: prog, SchemaFile: schema}, Limits: engine.Limits{Concurrency: engine.DefaultConcurrency}}).Err
			if ie := input.As(err); ie == nil || ie.Option != tc.option || ie.File != file || ie.Fix == "" || !errors.Is(err, tc.is) {
				t.Fatalf("got %#v, want an input error at %s %s: %v, with a fix", err, tc.option, file, tc.is)
			}
			if _, err := os.Stat(ran); err == nil {
				t.Error("the capture program ran")
			}
			if n := len(w.sim.Requests()); n != 0 {
				t.Errorf("%d requests sent", n)
			}
		})
	}
}

// TestSymlinkedLockIsNotFollowed: a link at the lock's path must not make
// the run create (or truncate) the file it points to.
func TestSymlinkedLockIsNotFollowed(t *testing.T) {
	w := baseline(t)
	target := filepath.Join(t.TempDir(), "created-by-root")
	lock := filepath.Join(w.p.Dir, ".gitlab-runner-auth.main.lock")
	_ = os.Remove(lock) // left by the baseline's run
	if err := os.Symlink(target, lock); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runBinary(t, nil, w.cliArgs("--output", "json")...)
	if _, err := os.Lstat(target); err == nil {
		t.Fatalf("the run created the file the lock links to (exit %d)", code)
	}
	if code != 2 {
		t.Fatalf("exit %d, want 2 for the linked lock:\n%s", code, stderr)
	}
	want{file: ".gitlab-runner-auth.main.lock", fix: true}.check(t, readReport(t, stdout).InputErrors, w.p.Dir, nil)
}

// TestNonRegularFilesAreRefused: a FIFO (or device) where the live config,
// the state file or the system id belongs is refused; it never hangs the
// run (opening a FIFO waits for a writer that never comes). The run happens
// in a goroutine, so that a run that does hang fails the test instead of
// holding it; how long a run that returns takes is no concern of the test.
func TestNonRegularFilesAreRefused(t *testing.T) {
	for _, tc := range []struct{ name, file string }{
		{"config.main.toml", "config.main.toml"},
		{".gitlab-runner-auth.main.json", ".gitlab-runner-auth.main.json"},
		// hostfs/systemid.go names the system id by its full path.
		{".runner_system_id", "$PREFIX/.runner_system_id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := baseline(t)
			path := filepath.Join(w.p.Dir, tc.name)
			_ = os.Remove(path)
			if err := syscall.Mkfifo(path, 0o600); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() {
				_, err := w.sync(t, context.Background())
				done <- err
			}()
			var err error
			select {
			case err = <-done:
			case <-time.After(5 * time.Minute):
				t.Fatalf("a FIFO at %s held the run (5 minutes: it waits for a writer)", tc.name)
			}
			file := strings.ReplaceAll(tc.file, "$PREFIX", w.p.Dir)
			if ie := input.As(err); ie == nil || ie.File != file || !errors.Is(err, hostfs.ErrNotRegular) {
				t.Fatalf("got %#v, want an input error: %s is not a regular file", err, file)
			}
		})
	}
}

// measured is one run of the binary under a memory ceiling.
type measured struct {
	code int
	// output is stdout and stderr as they came; stdout alone too.
	output, stdout string
	rssMB          float64
	elapsed        time.Duration
	// cpu is the processor time it used (user and system): what a
	// hostile input would blow up, and what a loaded machine does not
	// stretch as it stretches the wall time.
	cpu time.Duration
}

// runMeasured runs the binary with its address space capped at 2 GiB (a
// runaway must not take the machine down with it) and reports its peak
// resident memory and wall time.
func runMeasured(t *testing.T, limit time.Duration, args ...string) measured {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	sh := `ulimit -v 2097152; exec "$0" "$@"`
	cmd := exec.CommandContext(ctx, "/bin/sh", append([]string{"-c", sh, binary}, args...)...)
	var out, stdout strings.Builder
	cmd.Stdout, cmd.Stderr = io.MultiWriter(&out, &stdout), &out
	start := time.Now()
	err := cmd.Run()
	m := measured{output: out.String(), stdout: stdout.String(), elapsed: time.Since(start)}
	// Kilobytes on Linux. The child starts on this process's pages (Go
	// starts children with vfork), so the figure is never below this
	// process's own peak: an upper bound on the binary's.
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		m.rssMB = float64(ru.Maxrss) / 1024
	}
	m.cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	coretest.Record(t, "output", []byte(m.output))
	switch ee := err.(type) {
	case nil:
	case *exec.ExitError:
		m.code = ee.ExitCode()
	default:
		t.Fatal(err)
	}
	if ctx.Err() != nil {
		m.code = -1
	}
	return m
}

// hugeBodyGitLab answers every request with 200 and an endless JSON body.
func hugeBodyGitLab(t *testing.T) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		chunk := []byte(strings.Repeat(`{"id":1,"description":"x"},`, 2400))
		_, _ = w.Write([]byte("["))
		for sent := 0; sent < 2<<30; sent += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
		_, _ = w.Write([]byte("{}]"))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestHostileInputIsBounded: each input ends with exit 1 or 2 and a
// message naming the culprit, using seconds of processor time at most and
// under 300 MB of memory.
func TestHostileInputIsBounded(t *testing.T) {
	laughs := "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
	for i, prev := 'b', 'a'; i <= 'j'; i, prev = i+1, i {
		laughs += fmt.Sprintf("%c: &%c [*%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c]\n", i, i, prev, prev, prev, prev, prev, prev, prev, prev, prev, prev)
	}
	deep := "x = " + strings.Repeat("{a = ", 16000) + "1" + strings.Repeat("}", 16000) + "\n"
	deepArr := "x = " + strings.Repeat("[", 40000) + strings.Repeat("]", 40000) + "\n"
	var huge string // the endless GitLab's URL
	cases := []struct {
		name  string
		setup func(t *testing.T, w *world) []string
		// want is the input error, as in the bad-input catalogue; a case
		// with gitlab set fails on GitLab instead, its message naming
		// what gitlab gives (the address, the limit).
		want   want
		gitlab func() []string
	}{
		{"GitLab answers with an endless body", func(t *testing.T, w *world) []string {
			huge = hugeBodyGitLab(t)
			w.p.Template("", coretest.ClientConfig{URL: huge, PAT: coretest.AdminPAT})
			for _, n := range []string{"a", "b", "c", "d", "e"} {
				w.p.Executor(n+".toml", executorFile(huge, n, ""))
			}
			w.p.Remove("config.main.toml")
			return nil
		}, want{}, func() []string {
			return []string{strings.TrimPrefix(huge, "http://"), fmt.Sprintf("%d MiB", gitlab.MaxResponseBody>>20)}
		}},
		{"YAML alias expansion (billion laughs)", func(t *testing.T, w *world) []string {
			w.p.Executor("x.yaml", "url: "+w.sim.URL+"\nexecutor: shell\n"+laughs)
			return nil
		}, want{file: "main/x.yaml", line: 3, fix: true}, nil},
		{"deeply nested TOML inline tables", func(t *testing.T, w *world) []string {
			w.p.Executor("x.toml", exec1(w, deep))
			return nil
		}, want{file: "main/x.toml", line: 4}, nil},
		{"deeply dotted TOML key", func(t *testing.T, w *world) []string {
			w.p.Executor("x.toml", exec1(w, strings.Repeat("a.", 30000)+"b = 1\n"))
			return nil
		}, want{file: "main/x.toml", line: 4}, nil},
		{"deeply nested TOML arrays in the template", func(t *testing.T, w *world) []string {
			w.p.Write("config.template.main.toml", deepArr+template(w, "personal_access_token = \""+coretest.AdminPAT+"\"\n"))
			return nil
		}, want{file: tpl, line: 1}, nil},
		{"deeply nested live config", func(t *testing.T, w *world) []string {
			w.p.Write("config.main.toml", deep)
			return nil
		}, want{file: "config.main.toml", line: 1, fix: true}, nil},
		{"tls_ca_file is /dev/zero", func(t *testing.T, w *world) []string {
			w.p.Write("config.template.main.toml", template(w, "personal_access_token = \""+coretest.AdminPAT+"\"\ntls_ca_file = \"/dev/zero\"\n"))
			return nil
		}, want{file: tpl, key: "client_configs[0].tls_ca_file", fix: true}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := baseline(t)
			if code, _, stderr := runBinary(t, nil, w.cliArgs()...); code != 0 {
				t.Fatalf("good run failed: %s", stderr)
			}
			extra := tc.setup(t, w)
			// --strict: a bad executor file fails the run instead of being
			// skipped, so that its error can be checked.
			m := runMeasured(t, 10*time.Minute, w.cliArgs(append(extra, "--output", "json", "--strict")...)...)
			reportf(t, "hostile input %q: exit %d in %.2fs (%.2fs of processor time), peak RSS %.1f MB", tc.name, m.code, m.elapsed.Seconds(), m.cpu.Seconds(), m.rssMB)
			if m.code != 1 && m.code != 2 {
				t.Errorf("exit %d, want 1 or 2:\n%.2000s", m.code, m.output)
			}
			if strings.Contains(m.output, "fatal error") || strings.Contains(m.output, "goroutine ") {
				t.Errorf("the run crashed:\n%.2000s", m.output)
			}
			r := readReport(t, m.stdout)
			if tc.gitlab != nil {
				if !r.Failed || r.InputError {
					t.Errorf("report %+v: want GitLab's failure", r)
				}
				for _, part := range tc.gitlab() {
					if !strings.Contains(r.Msg, part) {
						t.Errorf("message %q does not name %s", r.Msg, part)
					}
				}
			} else {
				tc.want.check(t, r.InputErrors, w.p.Dir, extra)
			}
			if m.rssMB > 300 {
				t.Errorf("peak RSS %.0f MB, want under 300 MB", m.rssMB)
			}
			if m.cpu > 10*time.Second {
				t.Errorf("used %s of processor time (%s on the clock), want a few seconds at most", m.cpu, m.elapsed)
			}
		})
	}
}

// echoGitLab answers every request with a 400 whose message quotes the
// request's secret (PRIVATE-TOKEN, or the token in the body) right across
// the point where long GitLab messages are cut, after pad characters.
func echoGitLab(t *testing.T, pad int) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		secret := r.Header.Get("PRIVATE-TOKEN")
		if secret == "" {
			var body map[string]any
			b, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
			_ = json.Unmarshal(b, &body)
			secret, _ = body["token"].(string)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		msg := strings.Repeat("x", pad) + secret + " and a token glued to text: xglrt-unknownTOKENvalue42 end"
		_ = json.NewEncoder(w).Encode(map[string]string{"message": msg})
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestGitLabErrorsAreRedactedBeforeTheyAreCut: GitLab's messages are cut
// to a few hundred characters; a secret straddling the cut must not leave
// a piece behind, and a token shape glued to other text is still redacted.
func TestGitLabErrorsAreRedactedBeforeTheyAreCut(t *testing.T) {
	for _, pad := range []int{250, 285, 290, 296} {
		t.Run(fmt.Sprint(pad), func(t *testing.T) {
			url := echoGitLab(t, pad)
			p := coretest.NewPrefix(t, "main")
			p.Template("", coretest.ClientConfig{URL: url, PAT: shapelessPAT})
			p.Executor("a.toml", executorFile(url, "a", ""))
			w := &world{p: p}
			code, stdout, stderr := runBinary(t, nil, w.cliArgs("--output", "json")...)
			all := stdout + stderr
			if code != 1 || !strings.Contains(all, "xxxxxx") {
				t.Fatalf("exit %d, want 1 with GitLab's message:\n%s", code, all)
			}
			if leak := leaksPrefix(all, shapelessPAT); leak != "" {
				t.Fatalf("a piece of the PAT (%q) escaped redaction:\n%s", leak, all)
			}
			if pad == 250 && !strings.Contains(all, "x<redacted>") {
				t.Errorf("the glued token shape was not redacted:\n%s", all)
			}
		})
	}
}

// TestRetryAfterOverflowEndsTheRunClearly: a Retry-After too large for
// any duration (or overflowing) is refused at once, never waited for and
// never turned into a negative wait that retries in a tight loop. The run
// happens in a goroutine, so that one that does wait fails the test.
func TestRetryAfterOverflowEndsTheRunClearly(t *testing.T) {
	for _, ra := range []string{"99999999999999999999999", "9223372036854775807", "100000000"} {
		t.Run(ra, func(t *testing.T) {
			var requests atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				requests.Add(1)
				w.Header().Set("Retry-After", ra)
				w.WriteHeader(http.StatusTooManyRequests)
			}))
			defer srv.Close()
			p := coretest.NewPrefix(t, "main")
			p.Template("", coretest.ClientConfig{URL: srv.URL, PAT: coretest.AdminPAT})
			p.Executor("a.toml", executorFile(srv.URL, "a", ""))
			done := make(chan error, 1)
			go func() {
				done <- coretest.Run(t, context.Background(), engine.Options{Prefix: p.Dir, Instance: "main", Hostname: hostname, Limits: engine.Limits{Concurrency: engine.DefaultConcurrency, Timeout: 5 * time.Minute}}).Err
			}()
			var err error
			select {
			case err = <-done:
			case <-time.After(10 * time.Minute):
				t.Fatal("the run waited for a Retry-After no run may take")
			}
			// GitLab's 429, refused without waiting what it asked: a run
			// that waited would have ended at its own deadline instead.
			var ae *gitlab.APIError
			if !errors.As(err, &ae) || ae.Status != http.StatusTooManyRequests || ae.RetryAfter != 0 {
				t.Fatalf("got %v, want the 429 refused", err)
			}
			if n := requests.Load(); n > 10 {
				t.Fatalf("%d requests: retried in a loop", n)
			}
		})
	}
}

// TestPlainHTTPGitLabIsWarnedAbout: a GitLab reached over http:// that is
// not this host gets the PAT and every token in clear; the run says so.
func TestPlainHTTPGitLabIsWarnedAbout(t *testing.T) {
	p := coretest.NewPrefix(t, "main")
	// TEST-NET-1: routable in form, never answers.
	url := "http://192.0.2.1:8080"
	p.Template("", coretest.ClientConfig{URL: url, PAT: coretest.AdminPAT})
	p.Executor("a.toml", executorFile(url, "a", ""))
	code, stdout, stderr := runBinary(t, nil, (&world{p: p}).cliArgs("--timeout", "2s", "--request-timeout", "500ms", "--output", "json")...)
	if code != 1 {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
	// A warning (on stderr, and in the report) names the GitLab and says
	// what it exposes: the kind of warning is told by its wording until
	// warnings have a kind of their own.
	plain := func(warnings []string, url string) string {
		for _, w := range warnings {
			if strings.Contains(w, url) && strings.Contains(w, "unencrypted") {
				return w
			}
		}
		return ""
	}
	if w := plain(readReport(t, stdout).Warnings, url); w == "" || !strings.Contains(stderr, w) {
		t.Errorf("no warning about plain http in the report, or not the same on stderr:\n%s\n%s", stdout, stderr)
	}
	// Loopback (the simulator in every other test) is not warned about.
	w := baseline(t)
	_, stdout, _ = runBinary(t, nil, w.cliArgs("--output", "json")...)
	if r := readReport(t, stdout); plain(r.Warnings, w.sim.URL) != "" {
		t.Errorf("a loopback GitLab was warned about: %q", r.Warnings)
	}
}

// endlessListGitLab describes the PAT as GitLab would and lists runners
// without end: full pages, each pointing to the next. It counts the
// requests that would change GitLab.
func endlessListGitLab(t *testing.T) (string, *atomic.Int64) {
	var mutating atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.Method != http.MethodGet:
			mutating.Add(1)
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`{"message":"403 Forbidden"}`))
		case r.URL.Path == "/api/v4/personal_access_tokens/self":
			_, _ = w.Write([]byte(`{"name":"t","scopes":["api"],"active":true,"revoked":false,"user_id":1}`))
		case strings.HasSuffix(r.URL.Path, "/runners") || strings.HasSuffix(r.URL.Path, "/runners/all"):
			page, _ := strconv.Atoi(r.URL.Query().Get("page"))
			per, _ := strconv.Atoi(r.URL.Query().Get("per_page"))
			w.Header().Set("X-Next-Page", strconv.Itoa(page+1))
			items := make([]string, per)
			for i := range items {
				items[i] = fmt.Sprintf(`{"id":%d,"description":"someone else's runner","runner_type":"instance_type"}`, page*1000+i)
			}
			_, _ = w.Write([]byte("[" + strings.Join(items, ",") + "]"))
		default:
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"message":"404 Not found"}`))
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL, &mutating
}

// TestEndlessListingEndsTheRun: on a host without a config the run looks
// for its runners; a GitLab that lists them without end makes the run fail
// with the listing's bound, before anything is created, within the run's
// deadline.
func TestEndlessListingEndsTheRun(t *testing.T) {
	url, mutating := endlessListGitLab(t)
	p := coretest.NewPrefix(t, "main")
	p.Template("", coretest.ClientConfig{URL: url, PAT: coretest.AdminPAT})
	p.Executor("a.toml", executorFile(url, "a", ""))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	err := coretest.Run(t, ctx, engine.Options{Prefix: p.Dir, Instance: "main", Hostname: hostname, Limits: engine.Limits{Concurrency: engine.DefaultConcurrency, Request: coretest.Patient.Request}}).Err
	var tl *gitlab.ListTooLargeError
	if !errors.As(err, &tl) || tl.Bound != gitlab.BoundRunners || tl.Path != "/api/v4/runners/all" {
		t.Fatalf("got %v, want the listing refused past %d runners", err, gitlab.ListMaxRunners)
	}
	if n := mutating.Load(); n != 0 {
		t.Errorf("%d requests that change GitLab after a listing that never ended", n)
	}
}

package reliability

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/coretest"
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
		name  string
		setup func(t *testing.T, w *world) string // returns the path that must be named
	}{
		{"prefix", func(t *testing.T, w *world) string { chown(t, w.p.Dir, nobody); return w.p.Dir }},
		{"executor folder", func(t *testing.T, w *world) string {
			p := filepath.Join(w.p.Dir, "main")
			chown(t, p, nobody)
			return p
		}},
		{"template", func(t *testing.T, w *world) string {
			p := filepath.Join(w.p.Dir, "config.template.main.toml")
			chown(t, p, nobody)
			return p
		}},
		{"executor file", func(t *testing.T, w *world) string {
			p := filepath.Join(w.p.Dir, "main", "a.toml")
			chown(t, p, nobody)
			return "main/a.toml"
		}},
		{"token file outside the prefix", func(t *testing.T, w *world) string {
			p := filepath.Join(t.TempDir(), "pat")
			if err := os.WriteFile(p, []byte(coretest.AdminPAT+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			chown(t, p, nobody)
			w.p.Write("config.template.main.toml", template(w, fmt.Sprintf("personal_access_token_file = %q\n", p)))
			return p
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := baseline(t)
			path := tc.setup(t, w)
			code, _, stderr := runBinary(t, nil, w.cliArgs()...)
			if code != 2 {
				t.Fatalf("exit %d, want 2:\n%s", code, stderr)
			}
			for _, want := range []string{path, "owned by uid 65534", "chown root"} {
				if !strings.Contains(stderr, want) {
					t.Errorf("message lacks %q:\n%s", want, stderr)
				}
			}
			if n := len(w.sim.Requests()); n != 0 {
				t.Errorf("sent %d requests with untrusted input", n)
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
	code, _, stderr := runBinary(t, nil, w.cliArgs()...)
	if _, err := os.Lstat(target); err == nil {
		t.Fatalf("the run created the file the lock links to (exit %d)", code)
	}
	if code == 0 || !strings.Contains(stderr, lock) || !strings.Contains(stderr, "symbolic link") {
		t.Fatalf("exit %d, want a failure naming the linked lock:\n%s", code, stderr)
	}
}

// TestNonRegularFilesAreRefused: a FIFO (or device) where the live config,
// the state file or the system id belongs is refused at once; it never
// hangs the run past its bound.
func TestNonRegularFilesAreRefused(t *testing.T) {
	for _, name := range []string{"config.main.toml", ".gitlab-runner-auth.main.json", ".runner_system_id"} {
		t.Run(name, func(t *testing.T) {
			w := baseline(t)
			path := filepath.Join(w.p.Dir, name)
			_ = os.Remove(path)
			if err := syscall.Mkfifo(path, 0o600); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			code, stderr := runBounded(t, 15*time.Second, w.cliArgs("--timeout", "5s")...)
			el := time.Since(start)
			if el > 10*time.Second {
				t.Fatalf("a FIFO at %s held the run for %s (timeout 5s)", name, el)
			}
			if code != 2 || !strings.Contains(stderr, name) || !strings.Contains(stderr, "not a regular file") {
				t.Fatalf("exit %d after %s, want 2 naming %s as not a regular file:\n%s", code, el, name, stderr)
			}
		})
	}
}

// runBounded runs the binary and kills it after limit; the exit code is -1
// when it had to be killed.
func runBounded(t *testing.T, limit time.Duration, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	coretest.Record(t, "output", []byte(out.String()))
	if ctx.Err() != nil {
		return -1, out.String()
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), out.String()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, out.String()
}

// measured is one run of the binary under a memory ceiling.
type measured struct {
	code    int
	output  string
	rssMB   float64
	elapsed time.Duration
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
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	m := measured{output: out.String(), elapsed: time.Since(start)}
	// Kilobytes on Linux. The child starts on this process's pages (Go
	// starts children with vfork), so the figure is never below this
	// process's own peak: an upper bound on the binary's.
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		m.rssMB = float64(ru.Maxrss) / 1024
	}
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

// TestHostileInputIsBounded: each input ends within seconds with exit 1 or
// 2 and a message naming the culprit, under 300 MB of memory.
func TestHostileInputIsBounded(t *testing.T) {
	laughs := "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
	for i, prev := 'b', 'a'; i <= 'j'; i, prev = i+1, i {
		laughs += fmt.Sprintf("%c: &%c [*%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c]\n", i, i, prev, prev, prev, prev, prev, prev, prev, prev, prev, prev)
	}
	deep := "x = " + strings.Repeat("{a = ", 16000) + "1" + strings.Repeat("}", 16000) + "\n"
	deepArr := "x = " + strings.Repeat("[", 40000) + strings.Repeat("]", 40000) + "\n"
	cases := []struct {
		name  string
		setup func(t *testing.T, w *world) []string
		want  []string
	}{
		{"GitLab answers with an endless body", func(t *testing.T, w *world) []string {
			url := hugeBodyGitLab(t)
			w.p.Template("", coretest.ClientConfig{URL: url, PAT: coretest.AdminPAT})
			for _, n := range []string{"a", "b", "c", "d", "e"} {
				w.p.Executor(n+".toml", executorFile(url, n, ""))
			}
			w.p.Remove("config.main.toml")
			return nil
		}, []string{"GitLab 127.0.0.1", "larger than 4 MiB"}},
		{"YAML alias expansion (billion laughs)", func(t *testing.T, w *world) []string {
			w.p.Executor("x.yaml", "url: "+w.sim.URL+"\nexecutor: shell\n"+laughs)
			return nil
		}, []string{"main/x.yaml", "aliases"}},
		{"deeply nested TOML inline tables", func(t *testing.T, w *world) []string {
			w.p.Executor("x.toml", exec1(w, deep))
			return nil
		}, []string{"main/x.toml", "nested more than 32 levels"}},
		{"deeply dotted TOML key", func(t *testing.T, w *world) []string {
			w.p.Executor("x.toml", exec1(w, strings.Repeat("a.", 30000)+"b = 1\n"))
			return nil
		}, []string{"main/x.toml", "nested more than 32 levels"}},
		{"deeply nested TOML arrays in the template", func(t *testing.T, w *world) []string {
			w.p.Write("config.template.main.toml", deepArr+template(w, "personal_access_token = \""+coretest.AdminPAT+"\"\n"))
			return nil
		}, []string{"config.template.main.toml", "nested more than 32 levels"}},
		{"deeply nested live config", func(t *testing.T, w *world) []string {
			w.p.Write("config.main.toml", deep)
			return nil
		}, []string{"config.main.toml", "nested more than 32 levels"}},
		{"tls_ca_file is /dev/zero", func(t *testing.T, w *world) []string {
			w.p.Write("config.template.main.toml", template(w, "personal_access_token = \""+coretest.AdminPAT+"\"\ntls_ca_file = \"/dev/zero\"\n"))
			return nil
		}, []string{"tls_ca_file", "/dev/zero", "not a regular file"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := baseline(t)
			if code, _, stderr := runBinary(t, nil, w.cliArgs()...); code != 0 {
				t.Fatalf("good run failed: %s", stderr)
			}
			extra := tc.setup(t, w)
			m := runMeasured(t, 60*time.Second, w.cliArgs(append(extra, "--timeout", "30s")...)...)
			reportf(t, "hostile input %q: exit %d in %.2fs, peak RSS %.1f MB", tc.name, m.code, m.elapsed.Seconds(), m.rssMB)
			if m.code != 1 && m.code != 2 {
				t.Errorf("exit %d, want 1 or 2:\n%.2000s", m.code, m.output)
			}
			if strings.Contains(m.output, "fatal error") || strings.Contains(m.output, "goroutine ") {
				t.Errorf("the run crashed:\n%.2000s", m.output)
			}
			for _, want := range tc.want {
				if !strings.Contains(m.output, want) {
					t.Errorf("message lacks %q:\n%.2000s", want, m.output)
				}
			}
			if m.rssMB > 300 {
				t.Errorf("peak RSS %.0f MB, want under 300 MB", m.rssMB)
			}
			if m.elapsed > 10*time.Second {
				t.Errorf("took %s, want a few seconds", m.elapsed)
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
// never turned into a negative wait that retries in a tight loop.
func TestRetryAfterOverflowEndsTheRunClearly(t *testing.T) {
	for _, ra := range []string{"99999999999999999999999", "9223372036854775807", "100000000"} {
		t.Run(ra, func(t *testing.T) {
			requests := 0
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				requests++
				w.Header().Set("Retry-After", ra)
				w.WriteHeader(http.StatusTooManyRequests)
			}))
			defer srv.Close()
			p := coretest.NewPrefix(t, "main")
			p.Template("", coretest.ClientConfig{URL: srv.URL, PAT: coretest.AdminPAT})
			p.Executor("a.toml", executorFile(srv.URL, "a", ""))
			start := time.Now()
			code, stderr := runBounded(t, 30*time.Second, (&world{p: p}).cliArgs("--timeout", "20s")...)
			if code != 1 || !strings.Contains(stderr, "429") || !strings.Contains(stderr, "longer than any run may take") {
				t.Fatalf("exit %d, want 1 naming the wait GitLab asked for:\n%s", code, stderr)
			}
			if el := time.Since(start); el > 5*time.Second {
				t.Fatalf("took %s", el)
			}
			if requests > 10 {
				t.Fatalf("%d requests: retried in a loop", requests)
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
	code, stderr := runBounded(t, 30*time.Second, (&world{p: p}).cliArgs("--timeout", "2s", "--request-timeout", "500ms")...)
	if code != 1 {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
	for _, want := range []string{"warning", "http://192.0.2.1:8080", "unencrypted", "https"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("message lacks %q:\n%s", want, stderr)
		}
	}
	// Loopback (the simulator in every other test) is not warned about.
	w := baseline(t)
	_, _, stderr = runBinary(t, nil, w.cliArgs()...)
	if strings.Contains(stderr, "unencrypted") {
		t.Errorf("a loopback GitLab was warned about:\n%s", stderr)
	}
}

package ansible

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// startSim runs the standalone simulator with a throw-away PAT written under
// eph/secrets (so ansiblePlaybook checks every output for it) and returns its
// URL and the PAT file.
func startSim(t *testing.T, eph string) (url, patFile string) {
	t.Helper()
	url, patFile, _ = startSimAt(t, eph, "127.0.0.1:0")
	return url, patFile
}

// startSimAt starts the simulator listening on addr; stop ends it (it is
// ended at the end of the test anyway).
func startSimAt(t *testing.T, eph, addr string) (url, patFile string, stop func()) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(eph, "secrets"), 0o700); err != nil {
		t.Fatal(err)
	}
	patFile = filepath.Join(eph, "secrets", "admin.pat")
	pat := fmt.Sprintf("glpat-cache-%d", time.Now().UnixNano())
	if err := os.WriteFile(patFile, []byte(pat+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addrFile := filepath.Join(eph, "sim.addr")
	_ = os.Remove(addrFile)
	sim := exec.Command(env.simBin, "--listen", addr, "--addr-file", addrFile, "--pat", "admin:api:admin:"+patFile)
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop = func() { once.Do(func() { _ = sim.Process.Kill(); _ = sim.Wait() }) }
	t.Cleanup(stop)
	// A bound for a machine under any load, not a timing.
	for i := 0; i < 6000; i++ {
		if b, err := os.ReadFile(addrFile); err == nil && len(b) > 0 {
			return strings.TrimSpace(string(b)), patFile, stop
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("gitlab-sim wrote no address within 60 s")
	return "", "", nil
}

// transfer is one line of the counting connection's log.
type transfer struct {
	kind  string // put or exec
	bytes int
	what  string
}

func readCounts(t *testing.T, path string) []transfer {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []transfer
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), "\t", 4)
		if len(parts) != 4 {
			t.Fatalf("bad count line %q", sc.Text())
		}
		n, _ := strconv.Atoi(parts[2])
		out = append(out, transfer{parts[1], n, parts[3]})
	}
	return out
}

func sum(ts []transfer) (total int, binaries int) {
	for _, x := range ts {
		total += x.bytes
		if x.kind == "put" && strings.Contains(filepath.Base(x.what), "sync_linux_") {
			binaries++
		}
	}
	return
}

// TestSecondRunSendsNoBinary runs the module through a connection that
// counts what it sends to the host (a local connection standing in for ssh):
// the first run sends the binary once, later runs only the arguments and a
// short command; a cached binary that is not exactly the controller's, or
// that others could have written, is never run.
func TestSecondRunSendsNoBinary(t *testing.T) {
	needSetup(t)
	dir := t.TempDir()
	eph := filepath.Join(dir, "eph")
	url, patFile := startSim(t, eph)
	cache := filepath.Join(dir, "cache", "gra")
	counts := filepath.Join(dir, "counts.tsv")
	inventory := filepath.Join(dir, "inventory.yml")
	inv := "all:\n  hosts:\n    instance:\n      ansible_connection: counting_local\n      gitlab_runner_auth_cache_dir: " + cache + "\n"
	if err := os.WriteFile(inventory, []byte(inv), 0o600); err != nil {
		t.Fatal(err)
	}
	play := filepath.Join(dir, "play.yml")
	if err := os.WriteFile(play, []byte(fmt.Sprintf(`- hosts: all
  gather_facts: false
  tasks:
    - name: Sync
      gitlab_runner_auth.runner.sync:
        prefix: %s
        hostname: node1
        clients:
          - url: %s
            personal_access_token: "{{ lookup('file', '%s') }}"
        executors:
          - {name: shell, url: %s}
          - {name: docker, url: %s, docker: {image: alpine}}
`, filepath.Join(dir, "prefix"), url, patFile, url, url)), 0o600); err != nil {
		t.Fatal(err)
	}
	envv := append(playbookEnv(eph),
		"ANSIBLE_CONNECTION_PLUGINS="+filepath.Join(env.root, "tests", "ansible", "testdata", "connection_plugins"),
		"GRA_COUNT_FILE="+counts)
	runPlay := func(what string, extra ...string) (playbookRun, []transfer) {
		t.Helper()
		_ = os.Remove(counts)
		r := ansiblePlaybook(t, envv, eph, what, append([]string{"-i", inventory, play}, extra...)...)
		if r.err != nil {
			t.Fatalf("%s: %v\n%s", what, r.err, tail(r.out))
		}
		return r, readCounts(t, counts)
	}
	local, _ := os.ReadFile(filepath.Join(env.collections, "ansible_collections", "gitlab_runner_auth", "runner", "files", "sync_linux_"+runtime.GOARCH))
	h := sha256.Sum256(local)
	digest := hex.EncodeToString(h[:])
	// -vvv stays readable: one line per task and host says which build ran
	// from where, the cache's shell code is never echoed, and a task takes
	// a handful of lines besides its result.
	vvv := func(r playbookRun, what, want string) {
		t.Helper()
		var cacheLines []string
		for _, l := range strings.Split(r.out, "\n") {
			if strings.Contains(l, "module binary cache") {
				cacheLines = append(cacheLines, l)
			}
		}
		if len(cacheLines) != 1 || !strings.Contains(cacheLines[0], "module binary cache "+want+": linux/"+runtime.GOARCH+" build, sha256 "+digest) {
			t.Errorf("%s: -vvv lines about the cache %q, want one saying %q and the digest %s", what, cacheLines, want, digest)
		}
		task := r.out[strings.Index(r.out, "TASK [Sync]"):]
		if end := strings.Index(task, "[instance] =>"); end > 0 {
			task = task[:end]
		}
		if n := strings.Count(task, "\n"); n > 25 || strings.Contains(r.out, "sha256sum") {
			t.Errorf("%s: %d lines at -vvv before the result (want at most 25, and no shell code):\n%s", what, n, task)
		}
		t.Logf("%s: %d lines at -vvv before the result", what, strings.Count(task, "\n"))
	}
	changed := func(r playbookRun) string {
		m := recapLine.FindStringSubmatch(r.out)
		if m == nil {
			t.Fatalf("no recap:\n%s", tail(r.out))
		}
		return m[3]
	}

	// Check mode leaves no trace on the host, the cache included.
	r, ts := runPlay("check run on a new host", "--check")
	vvv(r, "check run on a new host", "miss, sent (check mode caches nothing)")
	if _, bins := sum(ts); bins != 1 {
		t.Errorf("check run on a new host sent %d binaries, want 1", bins)
	}
	if _, err := os.Stat(cache); !os.IsNotExist(err) {
		t.Errorf("check mode created the cache folder %s", cache)
	}

	r, ts = runPlay("first run")
	private := r
	vvv(r, "first run", "miss, sent and cached")
	total, bins := sum(ts)
	t.Logf("first run: %d bytes sent, %d binaries", total, bins)
	if bins != 1 || total < 1<<20 || changed(r) != "1" {
		t.Fatalf("first run: %d bytes, %d binaries sent, changed=%s; want the binary sent once and a change", total, bins, changed(r))
	}
	cached, _ := filepath.Glob(filepath.Join(cache, "sync-*"))
	if len(cached) != 1 {
		t.Fatalf("cache holds %v, want one binary", cached)
	}
	fi, _ := os.Stat(cached[0])
	di, _ := os.Stat(cache)
	if fi.Mode().Perm() != 0o700 || di.Mode().Perm() != 0o700 {
		t.Errorf("cache modes: folder %v, binary %v; want 0700 each", di.Mode(), fi.Mode())
	}
	if filepath.Base(cached[0]) != "sync-"+digest {
		t.Errorf("cached binary %s is not named by the SHA-256 of the controller's build", cached[0])
	}

	for _, mode := range [][]string{nil, {"--check", "--diff"}} {
		r, ts = runPlay("second run "+strings.Join(mode, " "), mode...)
		vvv(r, "second run", "hit")
		total, bins = sum(ts)
		t.Logf("second run %v: %d bytes sent in %d transfers", mode, total, len(ts))
		if bins != 0 || total > 100<<10 || changed(r) != "0" {
			t.Fatalf("second run %v: %d bytes, %d binaries sent, changed=%s; want no binary, at most 100 KB, ok", mode, total, bins, changed(r))
		}
	}

	// A cached file that differs from the build is replaced, never run.
	marker := filepath.Join(dir, "tampered-binary-ran")
	if err := os.WriteFile(cached[0], []byte("#!/bin/sh\ntouch "+marker+"\necho '{}'\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	_, ts = runPlay("tampered cache")
	if _, bins = sum(ts); bins != 1 {
		t.Errorf("after tampering, %d binaries sent; want the build sent again", bins)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("a cached binary whose checksum differs was run")
	}
	if b, _ := os.ReadFile(cached[0]); sha256.Sum256(b) != h {
		t.Error("the tampered cached binary was not replaced")
	}

	// A cache others may write to is not used: the binary is sent and run
	// from the task's temporary folder, with a warning.
	if err := os.Chmod(cache, 0o777); err != nil {
		t.Fatal(err)
	}
	r, ts = runPlay("open cache")
	vvv(r, "open cache", "miss, sent (no private cache folder)")
	if _, bins = sum(ts); bins != 1 || changed(r) != "0" {
		t.Errorf("with a world-writable cache folder: %d binaries sent, changed=%s, output:\n%s", bins, changed(r), tail(r.out))
	}
	// The warning names the folder and the variable that sets another;
	// no run with a private cache names the variable. (Ansible before
	// 2.19 wraps warnings at the terminal's width.)
	if flat := strings.Join(strings.Fields(r.out), " "); !strings.Contains(flat, "[WARNING]: ") ||
		!strings.Contains(flat, cache) || !strings.Contains(flat, "gitlab_runner_auth_cache_dir") {
		t.Errorf("with a world-writable cache folder: no warning naming %s and gitlab_runner_auth_cache_dir:\n%s", cache, tail(r.out))
	}
	if strings.Contains(private.out, "gitlab_runner_auth_cache_dir") {
		t.Errorf("with a private cache folder, the output names gitlab_runner_auth_cache_dir:\n%s", tail(private.out))
	}
}

// TestBecomeKeepsTheBecomeUsersCache: with become, the cache check and the
// binary run as the become user, whose own cache folder is used (here the
// unprivileged user nobody, reached with su from root).
func TestBecomeKeepsTheBecomeUsersCache(t *testing.T) {
	needSetup(t)
	if os.Getuid() != 0 {
		t.Skip("needs root to become another user with su")
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody")
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	dir := t.TempDir()
	eph := filepath.Join(dir, "eph")
	url, patFile := startSim(t, eph)
	// nobody's own folder, outside the root-only test folder.
	home, err := os.MkdirTemp("", "gra-become-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(home) })
	if err := os.Chown(home, uid, gid); err != nil {
		t.Fatal(err)
	}
	cache := filepath.Join(home, "cache")
	counts := filepath.Join(dir, "counts.tsv")
	inventory := filepath.Join(dir, "inventory.yml")
	inv := "all:\n  hosts:\n    instance:\n      ansible_connection: counting_local\n      gitlab_runner_auth_cache_dir: " + cache + "\n"
	play := filepath.Join(dir, "play.yml")
	body := fmt.Sprintf(`- hosts: all
  gather_facts: false
  become: true
  become_method: su
  become_user: nobody
  tasks:
    - name: Sync as nobody
      gitlab_runner_auth.runner.sync:
        prefix: %s
        hostname: node1
        clients:
          - url: %s
            personal_access_token: "{{ lookup('file', '%s') }}"
        executors:
          - {name: shell, url: %s}
`, filepath.Join(home, "prefix"), url, patFile, url)
	if err := os.WriteFile(inventory, []byte(inv), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(play, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	envv := append(playbookEnv(eph),
		"ANSIBLE_CONNECTION_PLUGINS="+filepath.Join(env.root, "tests", "ansible", "testdata", "connection_plugins"),
		"GRA_COUNT_FILE="+counts, "ANSIBLE_BECOME_FLAGS=-s /bin/sh")
	for i, wantBins := range []int{1, 0} {
		_ = os.Remove(counts)
		r := ansiblePlaybook(t, envv, eph, "become run", "-i", inventory, play)
		if r.err != nil {
			t.Fatalf("run %d: %v\n%s", i+1, r.err, tail(r.out))
		}
		total, bins := sum(readCounts(t, counts))
		t.Logf("run %d as nobody: %d bytes, %d binaries", i+1, total, bins)
		if bins != wantBins {
			t.Errorf("run %d as nobody: %d binaries sent, want %d\n%s", i+1, bins, wantBins, tail(r.out))
		}
	}
	cached, _ := filepath.Glob(filepath.Join(cache, "sync-*"))
	if len(cached) != 1 {
		t.Fatalf("nobody's cache holds %v", cached)
	}
	fi, _ := os.Stat(cached[0])
	if st, ok := fi.Sys().(*syscall.Stat_t); !ok || int(st.Uid) != uid || fi.Mode().Perm() != 0o700 {
		t.Errorf("cached binary %s: mode %v, want owned by nobody, 0700", cached[0], fi.Mode())
	}
}

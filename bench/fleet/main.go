// Command fleet is `make bench-fleet`: one Ansible play over many inventory
// hosts (each with its own prefix, host name and module cache) against one
// simulator. It checks that a second run is ok on every host with exactly
// one verify per executor and nothing else, then does it again while the
// simulator rate-limits a share of requests.
//
// The hosts are reached through counting_local (tests/ansible/testdata/
// connection_plugins): Ansible's local connection that records the size of
// every file put on the host and every command sent to it, which is what an
// ssh connection would carry. From it the bench reports the bytes sent per
// host on the first run (the module binary goes to each host's cache) and on
// the second (only arguments and commands).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/testkit/gitlabsim"
)

type logEntry struct {
	Status    int       `json:"Status"`
	RequestID string    `json:"RequestID"`
	Start     time.Time `json:"Start"`
	End       time.Time `json:"End"`
}

type runner struct {
	Description string `json:"description"`
}

var (
	simBin, url, work, collections string
	connectionPlugins              string
	failures                       []string
)

func must(err error, what string) {
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench-fleet: %s: %v\n", what, err)
		os.Exit(2)
	}
}

func expect(ok bool, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	mark := "ok  "
	if !ok {
		mark = "FAIL"
		failures = append(failures, msg)
	}
	fmt.Printf("%s %s\n", mark, msg)
}

func ctl(method, path string, body string, out any) {
	args := []string{"ctl", url, method, path}
	if body != "" {
		args = append(args, body)
	}
	b, err := exec.Command(simBin, args...).Output()
	must(err, "gitlab-sim ctl "+path)
	if out != nil {
		must(json.Unmarshal(b, out), "decoding "+path)
	}
}

var recap = regexp.MustCompile(`(?m)^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)`)

type playResult struct {
	wall                    time.Duration
	hosts, changed, failedN int
	output                  string
	sent                    map[string]int // bytes sent per host
	binaries                int            // module binaries sent, all hosts
}

// perHost is the mean and the largest number of bytes sent to one host.
func (r playResult) perHost() (mean, max int) {
	total := 0
	for _, n := range r.sent {
		total += n
		if n > max {
			max = n
		}
	}
	if len(r.sent) > 0 {
		mean = total / len(r.sent)
	}
	return mean, max
}

func play(playbook, inventory string, forks int, extra ...string) playResult {
	counts := filepath.Join(work, "sent.tsv")
	_ = os.Remove(counts)
	args := append([]string{"-i", inventory, "-f", strconv.Itoa(forks), playbook}, extra...)
	cmd := exec.Command("ansible-playbook", args...)
	cmd.Env = append(os.Environ(), "ANSIBLE_COLLECTIONS_PATH="+collections, "ANSIBLE_NOCOLOR=1",
		"ANSIBLE_PYTHON_INTERPRETER=auto_silent", "ANSIBLE_LOCAL_TEMP="+filepath.Join(work, "tmp-local"),
		"ANSIBLE_REMOTE_TEMP="+filepath.Join(work, "tmp-remote"),
		"ANSIBLE_CONNECTION_PLUGINS="+connectionPlugins, "GRA_COUNT_FILE="+counts)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	r := playResult{wall: time.Since(start), output: string(out), sent: map[string]int{}}
	if b, err := os.ReadFile(counts); err == nil {
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			f := strings.SplitN(line, "\t", 4)
			if len(f) != 4 {
				continue
			}
			n, _ := strconv.Atoi(f[2])
			r.sent[f[0]] += n
			if f[1] == "put" && strings.HasPrefix(filepath.Base(f[3]), "sync_linux_") {
				r.binaries++
			}
		}
	}
	for _, m := range recap.FindAllStringSubmatch(r.output, -1) {
		r.hosts++
		if m[3] != "0" {
			r.changed++
		}
		if m[5] != "0" || m[4] != "0" {
			r.failedN++
		}
	}
	if err != nil && r.failedN == 0 {
		r.failedN = -1
		fmt.Fprintln(os.Stderr, tail(r.output))
	}
	return r
}

func tail(s string) string {
	if len(s) > 4000 {
		return s[len(s)-4000:]
	}
	return s
}

func main() {
	hosts := flag.Int("hosts", 50, "inventory hosts")
	executors := flag.Int("executors", 4, "executors per host")
	forks := flag.Int("forks", 10, "ansible forks")
	out := flag.String("out", "bench/fleet.csv", "CSV output")
	flag.StringVar(&simBin, "sim", "build/gitlab-sim", "gitlab-sim binary")
	flag.StringVar(&connectionPlugins, "connection-plugins", "tests/ansible/testdata/connection_plugins", "folder holding counting_local")
	flag.Parse()
	if abs, err := filepath.Abs(connectionPlugins); err == nil {
		connectionPlugins = abs
	}

	var err error
	work, err = os.MkdirTemp("", "gra-fleet-")
	must(err, "temp dir")
	defer os.RemoveAll(work)
	tars, _ := filepath.Glob("dist/gitlab_runner_auth-runner-*.tar.gz")
	if len(tars) != 1 {
		must(fmt.Errorf("want one tarball in dist/ (make collection), found %v", tars), "collection")
	}
	collections = filepath.Join(work, "collections")
	if b, err := exec.Command("ansible-galaxy", "collection", "install", "-p", collections, tars[0]).CombinedOutput(); err != nil {
		must(fmt.Errorf("%v\n%s", err, b), "ansible-galaxy collection install (apt-get install -y ansible-core)")
	}

	pat := filepath.Join(work, "pat")
	must(os.WriteFile(pat, []byte(fmt.Sprintf("glpat-fleet-%d\n", time.Now().UnixNano())), 0o600), "pat")
	addr := filepath.Join(work, "addr")
	sim := exec.Command(simBin, "--addr-file", addr, "--pat", "admin:api:admin:"+pat, "--latency", "2ms")
	must(sim.Start(), "starting gitlab-sim")
	defer func() { _ = sim.Process.Kill(); _ = sim.Wait() }()
	for i := 0; ; i++ {
		if b, err := os.ReadFile(addr); err == nil && len(b) > 0 {
			url = strings.TrimSpace(string(b))
			break
		}
		if i > 300 {
			must(fmt.Errorf("no address"), "gitlab-sim")
		}
		time.Sleep(10 * time.Millisecond)
	}

	var inv strings.Builder
	inv.WriteString("all:\n  vars:\n    ansible_connection: counting_local\n  hosts:\n")
	for h := 1; h <= *hosts; h++ {
		// Each host its own module cache, as if it were its own machine.
		hostDir := filepath.Join(work, "hosts", fmt.Sprintf("host%02d", h))
		fmt.Fprintf(&inv, "    host%02d:\n      gra_prefix: %s\n      gra_hostname: fleet%02d\n      gitlab_runner_auth_cache_dir: %s\n",
			h, filepath.Join(hostDir, "etc-gitlab-runner"), h, filepath.Join(hostDir, "var-cache-gitlab-runner-auth"))
	}
	inventory := filepath.Join(work, "inventory.yml")
	must(os.WriteFile(inventory, []byte(inv.String()), 0o600), "inventory")
	var execs strings.Builder
	for e := 1; e <= *executors; e++ {
		fmt.Fprintf(&execs, "          - {name: exec%d, url: \"{{ gra_url }}\", executor: shell, builds_dir: /scratch/exec%d}\n", e, e)
	}
	playbook := filepath.Join(work, "fleet.yml")
	must(os.WriteFile(playbook, []byte(fmt.Sprintf(`- hosts: all
  gather_facts: false
  vars:
    gra_url: "{{ lookup('file', '%s') }}"
  tasks:
    - name: Sync the runners of this host
      gitlab_runner_auth.runner.sync:
        prefix: "{{ gra_prefix }}"
        instance: "{{ gra_instance | default('main') }}"
        hostname: "{{ gra_hostname }}"
        clients:
          - url: "{{ gra_url }}"
            personal_access_token: "{{ lookup('file', '%s') }}"
        executors:
%s`, addr, pat, execs.String())), 0o600), "playbook")

	want := *hosts * *executors
	fmt.Printf("fleet: %d hosts x %d executors against one simulator, %d forks\n\n", *hosts, *executors, *forks)
	first := play(playbook, inventory, *forks)
	var runners []runner
	ctl("GET", "/-/sim/runners", "", &runners)
	expect(first.failedN == 0 && first.hosts == *hosts && first.changed == *hosts,
		"first run: %d hosts, %d changed, %d failed, %s", first.hosts, first.changed, first.failedN, first.wall.Round(time.Millisecond))
	expect(len(runners) == want, "GitLab holds %d runners, want %d", len(runners), want)

	ctl("POST", "/-/sim/reset-log", "", nil)
	second := play(playbook, inventory, *forks)
	var c gitlabsim.RequestCounts
	ctl("GET", "/-/sim/counts", "", &c)
	expect(second.failedN == 0 && second.hosts == *hosts && second.changed == 0,
		"second run: %d hosts, %d changed, %s", second.hosts, second.changed, second.wall.Round(time.Millisecond))
	expect(c.Total == want && c.ByKind["verify"] == want && c.Mutating == 0,
		"second run made %d requests (%d verifies, %d mutating), want exactly %d verifies", c.Total, c.ByKind["verify"], c.Mutating, want)

	secondCounts := c

	// The same second run without the cache, for comparison: a cache folder
	// others may write to is refused, so every host is sent the binary and
	// runs it from the task's temporary folder (Ansible's way for binary
	// modules, and this collection's before the cache).
	open := filepath.Join(work, "open-cache")
	must(os.MkdirAll(open, 0o777), "open cache folder")
	must(os.Chmod(open, 0o777), "open cache folder")
	uncached := play(playbook, inventory, *forks, "-e", "gitlab_runner_auth_cache_dir="+filepath.Join(open, "c"))
	expect(uncached.failedN == 0 && uncached.changed == 0 && uncached.binaries == *hosts,
		"second run without the cache: %d changed, %d failed, %d binaries sent", uncached.changed, uncached.failedN, uncached.binaries)

	// What the controller sent to the hosts, side by side.
	firstMean, firstMax := first.perHost()
	secondMean, secondMax := second.perHost()
	uncachedMean, uncachedMax := uncached.perHost()
	fmt.Printf("\n%-22s %10s %16s %16s %14s\n", "run", "wall", "bytes/host mean", "bytes/host max", "binaries sent")
	fmt.Printf("%-22s %10s %16d %16d %14d\n", "first", first.wall.Round(time.Millisecond), firstMean, firstMax, first.binaries)
	fmt.Printf("%-22s %10s %16d %16d %14d\n", "second", second.wall.Round(time.Millisecond), secondMean, secondMax, second.binaries)
	fmt.Printf("%-22s %10s %16d %16d %14d\n\n", "second, without cache", uncached.wall.Round(time.Millisecond), uncachedMean, uncachedMax, uncached.binaries)
	expect(len(first.sent) == *hosts && first.binaries == *hosts,
		"first run sent the module binary once to each of %d hosts (%d binaries, %d bytes per host)", *hosts, first.binaries, firstMean)
	expect(len(second.sent) == *hosts && second.binaries == 0 && secondMax <= 100<<10,
		"second run sent no binary and at most 100 KB to any host (%d binaries, largest %d bytes)", second.binaries, secondMax)

	// Rate limiting: every fourth request answers 429 with Retry-After: 1.
	ctl("POST", "/-/sim/reset-log", "", nil)
	ctl("POST", "/-/sim/faults", `{"type": "ratelimit", "retry_after": 1, "every": 4, "times": -1}`, nil)
	limited := play(playbook, inventory, *forks, "-e", "gra_instance=rl")
	var log []logEntry
	ctl("GET", "/-/sim/requests", "", &log)
	ctl("DELETE", "/-/sim/faults", "", nil)
	n429, early := 0, 0
	for i, e := range log {
		if e.Status != 429 {
			continue
		}
		n429++
		for _, next := range log[i+1:] {
			if next.RequestID == e.RequestID {
				if next.Start.Sub(e.End) < time.Second {
					early++
				}
				break
			}
		}
	}
	ctl("GET", "/-/sim/runners", "", &runners)
	perHost := map[string]int{}
	dup := 0
	for _, r := range runners {
		if strings.Contains(r.Description, " rl ") {
			perHost[r.Description]++
			if perHost[r.Description] > 1 {
				dup++
			}
		}
	}
	expect(limited.failedN == 0 && limited.changed == *hosts, "rate-limited run (instance rl): %d hosts, %d changed, %d failed, %s, %d of %d requests answered 429",
		limited.hosts, limited.changed, limited.failedN, limited.wall.Round(time.Millisecond), n429, len(log))
	expect(len(perHost) == want && dup == 0, "rate-limited run: %d runners for %d executors, %d duplicates", len(perHost), want, dup)
	expect(n429 > 0 && early == 0, "no retry sooner than Retry-After (%d early of %d rate-limited requests)", early, n429)
	ctl("POST", "/-/sim/reset-log", "", nil)
	again := play(playbook, inventory, *forks, "-e", "gra_instance=rl")
	ctl("GET", "/-/sim/counts", "", &c)
	expect(again.failedN == 0 && again.changed == 0 && c.Mutating == 0, "after rate limiting: %d changed, %d mutating requests", again.changed, c.Mutating)

	host, _ := os.Hostname()
	csv := fmt.Sprintf("hosts,executors,runners,first_run_s,first_changed,first_bytes_per_host,second_run_s,second_changed,second_bytes_per_host,second_requests,second_verifies,uncached_second_run_s,uncached_bytes_per_host,ratelimited_run_s,requests_429,early_retries\n%d,%d,%d,%.1f,%d,%d,%.1f,%d,%d,%d,%d,%.1f,%d,%.1f,%d,%d\n# %s, %s\n",
		*hosts, *executors, want, first.wall.Seconds(), first.changed, firstMean, second.wall.Seconds(), second.changed, secondMean, secondCounts.Total, secondCounts.ByKind["verify"],
		uncached.wall.Seconds(), uncachedMean,
		limited.wall.Seconds(), n429, early, host, time.Now().UTC().Format(time.RFC3339))
	must(os.MkdirAll(filepath.Dir(*out), 0o755), "bench dir")
	must(os.WriteFile(*out, []byte(csv), 0o644), "csv")
	fmt.Printf("\nhosts %d, runners %d, second run: %d requests, %d changed, %d bytes sent per host; written to %s\n", *hosts, want, secondCounts.Total, second.changed, secondMean, *out)
	if len(failures) > 0 {
		os.Exit(1)
	}
}

// Command e2e is the end-to-end benchmark of `make bench`: it drives the
// real register-runner binary against the standalone simulator with
// injected latency, for several executor counts, first registration and
// steady state, and checks the performance targets. It prints a table and
// writes it as CSV.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/testkit/gitlabsim"
)

type entry struct {
	Start time.Time `json:"Start"`
}

type sample struct {
	wall    time.Duration
	startup time.Duration
	rssKB   int64
	counts  gitlabsim.RequestCounts
}

type row struct {
	n           int
	phase       string
	concurrency int
	samples     []sample
}

func (r row) median(f func(sample) time.Duration) time.Duration {
	v := make([]time.Duration, len(r.samples))
	for i, s := range r.samples {
		v[i] = f(s)
	}
	sort.Slice(v, func(i, j int) bool { return v[i] < v[j] })
	return v[len(v)/2]
}

func (r row) wall() time.Duration { return r.median(func(s sample) time.Duration { return s.wall }) }
func (r row) startup() time.Duration {
	return r.median(func(s sample) time.Duration { return s.startup })
}
func (r row) peakRSS() int64 {
	var m int64
	for _, s := range r.samples {
		m = max(m, s.rssKB)
	}
	return m
}
func (r row) kinds() string {
	c := r.samples[len(r.samples)-1].counts
	var parts []string
	for k, v := range c.ByKind {
		parts = append(parts, fmt.Sprintf("%s=%d", k, v))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

var (
	bin, simBin string
	latency     time.Duration
	runs        int
	work        string
)

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
}

func main() {
	sizes := flag.String("sizes", "1,10,100,1000", "executor counts")
	flag.IntVar(&runs, "runs", 5, "runs per measurement (the median is reported)")
	flag.DurationVar(&latency, "latency", 20*time.Millisecond, "simulator latency per request")
	flag.StringVar(&bin, "bin", "build/register-runner", "register-runner binary")
	flag.StringVar(&simBin, "sim", "build/gitlab-sim", "gitlab-sim binary")
	out := flag.String("out", "bench/e2e.csv", "CSV output")
	flag.Parse()
	var err error
	work, err = os.MkdirTemp("", "gra-bench-")
	must(err)
	defer os.RemoveAll(work)

	helloBin, floorBin = buildBaseline("hello"), buildBaseline("floor")
	base := measureStartup()
	var rows []row
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(s)
		must(err)
		if n == 100 {
			rows = append(rows, measureWith(n, 16, &base)...)
		} else {
			rows = append(rows, measure(n, 16)...)
		}
		if n == 100 {
			rows = append(rows, measure(n, 1)...)
		}
	}
	report(rows, base, *out)
}

var helloBin, floorBin string

// buildBaseline builds bench/<name> the way make builds register-runner.
func buildBaseline(name string) string {
	out := filepath.Join(work, name)
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", out, "./bench/"+name)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	cmd.Stderr = os.Stderr
	must(cmd.Run())
	return out
}

// baselines are the side-by-side measurements: start-up against a Go
// hello world, steady state against a client that only sends the verifies.
type baselines struct {
	version, hello      time.Duration
	steady100, floor100 time.Duration
	// On a plain server the project did not write (Python's http.server).
	plainSteady, plainFloor time.Duration
}

func median(v []time.Duration) time.Duration {
	sort.Slice(v, func(i, j int) bool { return v[i] < v[j] })
	return v[len(v)/2]
}

func timeRun(name string, args ...string) time.Duration {
	cmd := exec.Command(name, args...)
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		must(fmt.Errorf("%s: %v\n%s", name, err, out))
	}
	return time.Since(start)
}

// measureStartup runs `register-runner --version` and hello alternately,
// so both see the same machine.
func measureStartup() baselines {
	var v, h []time.Duration
	for i := 0; i < 51; i++ {
		v = append(v, timeRun(bin, "--version"))
		h = append(h, timeRun(helloBin))
	}
	return baselines{version: median(v), hello: median(h)}
}

var reToken = regexp.MustCompile(`(?m)^\s*token = "([^"]+)"`)

// measureFloor alternates register-runner's steady state with the floor
// client on the same registered prefix (100 executors).
func measureFloor(url, prefix, host string, b *baselines) {
	cfg, err := os.ReadFile(filepath.Join(prefix, "config.main.toml"))
	must(err)
	var toks []string
	for _, m := range reToken.FindAllStringSubmatch(string(cfg), -1) {
		toks = append(toks, m[1])
	}
	tokFile := filepath.Join(prefix, ".bench-tokens")
	must(os.WriteFile(tokFile, []byte(strings.Join(toks, "\n")+"\n"), 0o600))
	// Both timed the same way, alternately, with nothing in between (the
	// rows above also read the simulator's request log after each run).
	var steady, floor []time.Duration
	for i := 0; i < runs; i++ {
		steady = append(steady, timeRun(bin, "--prefix", prefix, "--hostname", host, "--concurrency", "16"))
		floor = append(floor, timeRun(floorBin, "--url", url, "--tokens", tokFile, "--system-id", "s_0123456789ab", "--concurrency", "16"))
	}
	b.steady100, b.floor100 = median(steady), median(floor)
	measurePlain(url, prefix, host, toks, b)
}

// plainServer is a GitLab stand-in the project did not write: Python's
// http.server, answering POST /api/v4/runners/verify after the latency
// (any other request: 404), keeping connections alive.
const plainServer = `
import json, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
ids = json.load(open(sys.argv[1]))
delay = float(sys.argv[2])
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a):
        pass
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        time.sleep(delay)
        tok = body.get("token", "")
        if self.path != "/api/v4/runners/verify" or tok not in ids:
            self.send_response(404)
            out = b'{"message":"404 Not Found"}'
        else:
            self.send_response(200)
            out = json.dumps({"id": ids[tok], "token": tok, "token_expires_at": None}).encode()
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)
srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
srv.daemon_threads = True
print("http://127.0.0.1:%d" % srv.server_address[1], flush=True)
srv.serve_forever()
`

var reRunner = regexp.MustCompile(`(?ms)^\s*id = (\d+)\s*$.*?^\s*token = "([^"]+)"`)

// measurePlain copies the registered prefix to point at a plain Python
// server and alternates register-runner's steady state with the floor
// client against it.
func measurePlain(simURL, prefix, host string, toks []string, b *baselines) {
	cfg, err := os.ReadFile(filepath.Join(prefix, "config.main.toml"))
	must(err)
	ids := map[string]int64{}
	for _, m := range reRunner.FindAllStringSubmatch(string(cfg), -1) {
		id, _ := strconv.ParseInt(m[1], 10, 64)
		ids[m[2]] = id
	}
	if len(ids) != len(toks) {
		must(fmt.Errorf("read %d runner ids for %d tokens", len(ids), len(toks)))
	}
	idsFile := filepath.Join(work, "plain-ids.json")
	data, _ := json.Marshal(ids)
	must(os.WriteFile(idsFile, data, 0o600))
	py, err := exec.LookPath("python3")
	must(err)
	cmd := exec.Command(py, "-c", plainServer, idsFile, fmt.Sprint(latency.Seconds()))
	stdout, err := cmd.StdoutPipe()
	must(err)
	cmd.Stderr = os.Stderr
	must(cmd.Start())
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	line := make([]byte, 64)
	n, err := stdout.Read(line)
	must(err)
	url := strings.TrimSpace(string(line[:n]))

	plain := prefix + "-plain"
	must(exec.Command("cp", "-a", prefix, plain).Run())
	for _, f := range []string{"config.template.main.toml", "config.main.toml", ".gitlab-runner-auth.main.json"} {
		path := filepath.Join(plain, f)
		b, err := os.ReadFile(path)
		must(err)
		must(os.WriteFile(path, []byte(strings.ReplaceAll(string(b), simURL, url)), 0o600))
	}
	execs, _ := filepath.Glob(filepath.Join(plain, "main", "*.toml"))
	for _, path := range execs {
		b, err := os.ReadFile(path)
		must(err)
		must(os.WriteFile(path, []byte(strings.ReplaceAll(string(b), simURL, url)), 0o600))
	}
	tokFile := filepath.Join(plain, ".bench-tokens")
	args := func() []string {
		return []string{"--prefix", plain, "--hostname", host, "--concurrency", "16"}
	}
	timeRun(bin, args()...) // warm: a steady state already (only verifies, or the server answers 404)
	var steady, floor []time.Duration
	for i := 0; i < runs; i++ {
		steady = append(steady, timeRun(bin, args()...))
		floor = append(floor, timeRun(floorBin, "--url", url, "--tokens", tokFile, "--system-id", "s_0123456789ab", "--concurrency", "16"))
	}
	b.plainSteady, b.plainFloor = median(steady), median(floor)
}

// sim starts a fresh standalone simulator and returns its URL, PAT file and stop function.
func sim() (string, string, func()) {
	dir, err := os.MkdirTemp(work, "sim-")
	must(err)
	pat := filepath.Join(dir, "pat")
	must(os.WriteFile(pat, []byte(fmt.Sprintf("glpat-bench-%d\n", time.Now().UnixNano())), 0o600))
	addr := filepath.Join(dir, "addr")
	cmd := exec.Command(simBin, "--addr-file", addr, "--pat", "admin:api:admin:"+pat, "--latency", latency.String())
	must(cmd.Start())
	for i := 0; ; i++ {
		if b, err := os.ReadFile(addr); err == nil && len(b) > 0 {
			return strings.TrimSpace(string(b)), pat, func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }
		}
		if i > 200 {
			must(fmt.Errorf("the simulator did not start"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func ctl(url, method, path string, out any) {
	cmd := exec.Command(simBin, "ctl", url, method, path)
	b, err := cmd.Output()
	must(err)
	if out != nil {
		must(json.Unmarshal(b, out))
	}
}

func layout(url, pat string, n, i int) string {
	prefix := filepath.Join(work, fmt.Sprintf("prefix-%d-%d-%d", n, i, time.Now().UnixNano()))
	must(os.MkdirAll(filepath.Join(prefix, "main"), 0o700))
	must(os.Chmod(prefix, 0o700))
	tpl := fmt.Sprintf("concurrent = 16\n\n[[client_configs]]\nurl = %q\npersonal_access_token_file = %q\n", url, pat)
	must(os.WriteFile(filepath.Join(prefix, "config.template.main.toml"), []byte(tpl), 0o600))
	must(os.WriteFile(filepath.Join(prefix, ".runner_system_id"), []byte("s_0123456789ab\n"), 0o600))
	for e := 0; e < n; e++ {
		body := fmt.Sprintf("url = %q\nexecutor = \"shell\"\nbuilds_dir = \"/scratch/e%04d\"\n", url, e)
		must(os.WriteFile(filepath.Join(prefix, "main", fmt.Sprintf("e%04d.toml", e)), []byte(body), 0o600))
	}
	return prefix
}

func runOnce(url, prefix, host string, concurrency int) sample {
	ctl(url, "POST", "/-/sim/reset-log", nil)
	cmd := exec.Command(bin, "--prefix", prefix, "--hostname", host, "--concurrency", strconv.Itoa(concurrency))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	if err != nil {
		must(fmt.Errorf("register-runner failed: %v\n%s", err, stderr.String()))
	}
	s := sample{wall: wall}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		s.rssKB = ru.Maxrss
	}
	ctl(url, "GET", "/-/sim/counts", &s.counts)
	var log []entry
	ctl(url, "GET", "/-/sim/requests", &log)
	if len(log) > 0 {
		first := log[0].Start
		for _, e := range log {
			if e.Start.Before(first) {
				first = e.Start
			}
		}
		s.startup = first.Sub(start)
	}
	return s
}

// measure registers n executors on fresh prefixes (first registration),
// then runs again on each (steady state).
func measure(n, concurrency int) []row {
	return measureWith(n, concurrency, nil)
}

func measureWith(n, concurrency int, b *baselines) []row {
	url, pat, stop := sim()
	defer stop()
	first := row{n: n, phase: "first registration", concurrency: concurrency}
	steady := row{n: n, phase: "steady state", concurrency: concurrency}
	for i := 0; i < runs; i++ {
		prefix := layout(url, pat, n, i)
		host := fmt.Sprintf("bench%d", i)
		first.samples = append(first.samples, runOnce(url, prefix, host, concurrency))
		steady.samples = append(steady.samples, runOnce(url, prefix, host, concurrency))
		fmt.Fprintf(os.Stderr, ".")
		if b != nil && i == runs-1 {
			measureFloor(url, prefix, host, b)
		}
	}
	fmt.Fprintf(os.Stderr, " n=%d concurrency=%d\n", n, concurrency)
	return []row{first, steady}
}

type check struct {
	what string
	ok   bool
	got  string
}

func report(rows []row, base baselines, out string) {
	find := func(n int, phase string, c int) *row {
		for i := range rows {
			if rows[i].n == n && rows[i].phase == phase && rows[i].concurrency == c {
				return &rows[i]
			}
		}
		return nil
	}
	host, _ := os.Hostname()
	fmt.Printf("\nregister-runner end to end, simulator latency %s, median of %d runs (%s/%s, %d CPUs, %s)\n\n",
		latency, runs, runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), host)
	fmt.Printf("%-6s %-19s %-5s %10s %10s %10s %8s  %s\n", "execs", "phase", "conc", "wall", "startup", "peak RSS", "requests", "by kind")
	var csv strings.Builder
	csv.WriteString("executors,phase,concurrency,runs,median_wall_ms,median_startup_ms,peak_rss_mb,requests,mutating,by_kind\n")
	for _, r := range rows {
		c := r.samples[len(r.samples)-1].counts
		fmt.Printf("%-6d %-19s %-5d %8.1fms %8.1fms %8.1fMB %8d  %s\n", r.n, r.phase, r.concurrency,
			ms(r.wall()), ms(r.startup()), float64(r.peakRSS())/1024, c.Total, r.kinds())
		fmt.Fprintf(&csv, "%d,%s,%d,%d,%.1f,%.1f,%.1f,%d,%d,%s\n", r.n, r.phase, r.concurrency, len(r.samples),
			ms(r.wall()), ms(r.startup()), float64(r.peakRSS())/1024, c.Total, c.Mutating, r.kinds())
	}
	var checks []check
	lat := latency
	if r := find(10, "steady state", 16); r != nil {
		lim := lat + 30*time.Millisecond
		checks = append(checks, check{fmt.Sprintf("steady state, 10 executors <= %s", lim), r.wall() <= lim, dur(r.wall())})
	}
	if r := find(100, "steady state", 16); r != nil {
		lim := 7*lat + 50*time.Millisecond
		checks = append(checks, check{fmt.Sprintf("steady state, 100 executors <= %s", lim), r.wall() <= lim, dur(r.wall())})
	}
	for _, r := range rows {
		if r.phase == "steady state" {
			c := r.samples[len(r.samples)-1].counts
			checks = append(checks, check{fmt.Sprintf("steady state, %d executors: %d verifies, nothing else", r.n, r.n),
				c.Total == r.n && c.ByKind["verify"] == r.n && c.Mutating == 0, fmt.Sprintf("%d requests", c.Total)})
		}
	}
	if a, b := find(100, "first registration", 1), find(100, "first registration", 16); a != nil && b != nil {
		ratio := float64(a.wall()) / float64(b.wall())
		checks = append(checks, check{"first registration of 100: default concurrency >= 10x faster than --concurrency 1",
			ratio >= 10, fmt.Sprintf("%.1fx (%s vs %s)", ratio, dur(a.wall()), dur(b.wall()))})
	}
	// Start-up: process start to GitLab's first request, for a typical host
	// (up to 10 executors). With more, parsing the files adds to it; the
	// table shows how much.
	var worstStart time.Duration
	for _, r := range rows {
		if r.n <= 10 {
			worstStart = max(worstStart, r.startup())
		}
	}
	checks = append(checks, check{"start-up to first request <= 10ms (up to 10 executors, median, worst row)", worstStart <= 10*time.Millisecond, dur(worstStart)})
	// Side by side, measured alternately in this run.
	checks = append(checks, check{"start-up: register-runner --version within 3ms of a Go hello world",
		base.version-base.hello <= 3*time.Millisecond, fmt.Sprintf("%s vs %s (+%s)", dur(base.version), dur(base.hello), dur(base.version-base.hello))})
	if base.floor100 > 0 {
		ratio := float64(base.steady100) / float64(base.floor100)
		checks = append(checks, check{"steady state of 100 executors <= 1.10x the floor (a client sending only the 100 verifies), on the simulator",
			ratio <= 1.10, fmt.Sprintf("%s vs %s (%.2fx)", dur(base.steady100), dur(base.floor100), ratio)})
	}
	if base.plainFloor > 0 {
		ratio := float64(base.plainSteady) / float64(base.plainFloor)
		checks = append(checks, check{"steady state of 100 executors <= 1.10x the floor, on a plain Python http.server",
			ratio <= 1.10, fmt.Sprintf("%s vs %s (%.2fx)", dur(base.plainSteady), dur(base.plainFloor), ratio)})
	}
	var rss1000 int64
	for _, r := range rows {
		if r.n == 1000 {
			rss1000 = max(rss1000, r.peakRSS())
		}
	}
	if rss1000 > 0 {
		checks = append(checks, check{"peak RSS at 1,000 executors <= 40 MB", rss1000 <= 40*1024, fmt.Sprintf("%.1f MB", float64(rss1000)/1024)})
	}
	fmt.Println()
	failed := false
	for _, c := range checks {
		mark := "ok  "
		if !c.ok {
			mark = "FAIL"
			failed = true
		}
		fmt.Printf("%s %s: %s\n", mark, c.what, c.got)
		fmt.Fprintf(&csv, "# %s %s: %s\n", strings.TrimSpace(mark), c.what, c.got)
	}
	fmt.Fprintf(&csv, "# %s/%s, %d CPUs, latency %s, %s\n", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), latency, time.Now().UTC().Format(time.RFC3339))
	must(os.MkdirAll(filepath.Dir(out), 0o755))
	must(os.WriteFile(out, []byte(csv.String()), 0o644))
	fmt.Printf("\nwritten to %s\n", out)
	if failed {
		os.Exit(1)
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
func dur(d time.Duration) string { return fmt.Sprintf("%.1fms", ms(d)) }

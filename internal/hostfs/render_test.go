package hostfs

import (
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/table"
)

var update = flag.Bool("update", false, "rewrite golden files")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if string(got) != string(want) {
		t.Fatalf("%s differs from the golden file:\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func mustTOML(t *testing.T, s string) *table.Table {
	t.Helper()
	tb, err := table.ParseTOML([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

func TestRenderConfigGolden(t *testing.T) {
	globalsTOML := `concurrent = 8
check_interval = 3
log_level = "info"
shutdown_timeout = 30
listen_address = "127.0.0.1:9252"

[session_server]
  listen_address = "[::]:8093"
  session_timeout = 1800
`
	dockerTOML := `limit = 2
environment = ["A=1", "B=two words"]
[docker]
  image = "alpine:3.20"
  privileged = false
  volumes = ["/cache", "/var/run/docker.sock:/var/run/docker.sock"]
  cpus = "1.5"
  shm_size = 0
[cache]
  Type = "s3"
  [cache.s3]
    ServerAddress = "s3.example.com"
`
	shellTOML := `shell = "bash"
builds_dir = "/scratch/builds"
"odd key" = "x\ty\"z"
pi = 3.25
`
	obtained := time.Date(2026, 5, 1, 12, 30, 45, 999, time.UTC)
	expires := time.Date(2026, 8, 1, 0, 0, 0, 0, time.FixedZone("CEST", 2*3600))
	sections := []Section{
		{Name: "node12 main docker Runner", URL: "https://gitlab.example.com", ID: 41, Token: "TOKEN-A",
			TokenObtained: obtained, TokenExpiresAt: expires, Executor: "docker", Keys: mustTOML(t, dockerTOML)},
		{Name: "Shell on node12", URL: "https://gitlab.example.com", ID: 42, Token: "TOKEN-B",
			TokenObtained: obtained, Executor: "shell", TLSCAFile: "/etc/ssl/gitlab-ca.pem", Keys: mustTOML(t, shellTOML)},
	}
	l := Layout{Prefix: "/etc/gitlab-runner", Instance: "main"}
	out := RenderConfig(l, mustTOML(t, globalsTOML), sections, false)
	golden(t, "config.main.golden.toml", out)
	// Redacted rendering differs only in the token values.
	red := RenderConfig(l, mustTOML(t, globalsTOML), sections, true)
	golden(t, "config.main.redacted.golden.toml", red)
	back := strings.Replace(string(red), `token = "<redacted>"`, `token = "TOKEN-A"`, 1)
	back = strings.Replace(back, `token = "<redacted>"`, `token = "TOKEN-B"`, 1)
	if back != string(out) {
		t.Fatalf("the redacted rendering differs in more than the tokens:\n%s", red)
	}
	// And the output, read by a TOML decoder of its own, is the document
	// the inputs describe: the globals, then each runner's own keys with
	// its executor keys under them (times in UTC, to the second).
	runner := func(head map[string]any, keysTOML string) map[string]any {
		m := decode(t, keysTOML)
		for k, v := range head {
			m[k] = v
		}
		return m
	}
	want := decode(t, globalsTOML)
	want["runners"] = []map[string]any{
		runner(map[string]any{"name": "node12 main docker Runner", "url": "https://gitlab.example.com", "id": int64(41),
			"token": "TOKEN-A", "token_obtained_at": "2026-05-01T12:30:45Z", "token_expires_at": "2026-07-31T22:00:00Z",
			"executor": "docker"}, dockerTOML),
		runner(map[string]any{"name": "Shell on node12", "url": "https://gitlab.example.com", "id": int64(42),
			"token": "TOKEN-B", "token_obtained_at": "2026-05-01T12:30:45Z", "token_expires_at": "0001-01-01T00:00:00Z",
			"executor": "shell", "tls-ca-file": "/etc/ssl/gitlab-ca.pem"}, shellTOML),
	}
	if got := decode(t, string(out)); !reflect.DeepEqual(got, want) {
		t.Fatalf("rendered document:\n%#v\nwant:\n%#v", got, want)
	}
}

// decode reads TOML with BurntSushi/toml, times as RFC 3339 strings in UTC.
func decode(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if _, err := toml.Decode(s, &m); err != nil {
		t.Fatalf("%v\n%s", err, s)
	}
	return normTimes(m).(map[string]any)
}

func normTimes(v any) any {
	switch x := v.(type) {
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case map[string]any:
		for k, e := range x {
			x[k] = normTimes(e)
		}
	case []map[string]any:
		for i, e := range x {
			x[i] = normTimes(e).(map[string]any)
		}
	case []any:
		for i, e := range x {
			x[i] = normTimes(e)
		}
	}
	return v
}

func TestRenderIsDeterministic(t *testing.T) {
	tb := mustTOML(t, "b = 1\na = 2\n[z]\ny = 1\nx = 2\n[[arr]]\nq = 1\n[[arr]]\nq = 2\n")
	first := table.EncodeTOML(tb)
	for i := 0; i < 50; i++ {
		if string(table.EncodeTOML(mustTOML(t, string(first)))) != string(first) {
			t.Fatal("render -> parse -> render changed the bytes")
		}
	}
	if string(first) != "b = 1\na = 2\n\n[z]\n  y = 1\n  x = 2\n\n[[arr]]\n  q = 1\n\n[[arr]]\n  q = 2\n" {
		t.Fatalf("key order not kept:\n%s", first)
	}
}

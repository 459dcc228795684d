package core

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"
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

func mustTOML(t *testing.T, s string) *Table {
	t.Helper()
	tb, err := parseTOMLTable([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

func TestRenderConfigGolden(t *testing.T) {
	globals := mustTOML(t, `concurrent = 8
check_interval = 3
log_level = "info"
shutdown_timeout = 30
listen_address = "127.0.0.1:9252"

[session_server]
  listen_address = "[::]:8093"
  session_timeout = 1800
`)
	docker := mustTOML(t, `limit = 2
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
`)
	shell := mustTOML(t, `shell = "bash"
builds_dir = "/scratch/builds"
"odd key" = "x\ty\"z"
pi = 3.25
`)
	obtained := time.Date(2026, 5, 1, 12, 30, 45, 999, time.UTC)
	expires := time.Date(2026, 8, 1, 0, 0, 0, 0, time.FixedZone("CEST", 2*3600))
	sections := []Section{
		{Name: "node12 main docker Runner", URL: "https://gitlab.example.com", ID: 41, Token: "TOKEN-A",
			TokenObtained: obtained, TokenExpiresAt: expires, Executor: "docker", Keys: docker},
		{Name: "Shell on node12", URL: "https://gitlab.example.com", ID: 42, Token: "TOKEN-B",
			TokenObtained: obtained, Executor: "shell", TLSCAFile: "/etc/ssl/gitlab-ca.pem", Keys: shell},
	}
	l := Layout{Prefix: "/etc/gitlab-runner", Instance: "main"}
	out := RenderConfig(l, globals, sections, false)
	golden(t, "config.main.golden.toml", out)
	// Redacted rendering differs only in the token values.
	red := RenderConfig(l, globals, sections, true)
	golden(t, "config.main.redacted.golden.toml", red)
	// And the output parses back to the same document.
	again, err := parseTOMLTable(out)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(EncodeTOML(again)); got != string(EncodeTOML(mustTOML(t, string(out)))) {
		t.Fatal("render is not stable")
	}
}

func TestRenderIsDeterministic(t *testing.T) {
	tb := mustTOML(t, "b = 1\na = 2\n[z]\ny = 1\nx = 2\n[[arr]]\nq = 1\n[[arr]]\nq = 2\n")
	first := EncodeTOML(tb)
	for i := 0; i < 50; i++ {
		if string(EncodeTOML(mustTOML(t, string(first)))) != string(first) {
			t.Fatal("render -> parse -> render changed the bytes")
		}
	}
	if string(first) != "b = 1\na = 2\n\n[z]\n  y = 1\n  x = 2\n\n[[arr]]\n  q = 1\n\n[[arr]]\n  q = 2\n" {
		t.Fatalf("key order not kept:\n%s", first)
	}
}

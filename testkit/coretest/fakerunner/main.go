// Command fakerunner stands in for gitlab-runner in tests: built as an
// executable named gitlab-runner and started as `gitlab-runner run
// --config PATH`, it asks GitLab for jobs (POST /api/v4/jobs/request, as
// gitlab-runner does, with the host's .runner_system_id) with the token of
// every [[runners]] entry of its config, over and over, and writes one line
// per answer to the file in GRA_FAKE_RUNNER_LOG: "poll <runner id>
// <status>". It re-reads its config on SIGHUP ("reload" in the log) and
// never by itself (gitlab-runner also looks at the file every 3 s), so a
// test sees every job request made with a token deleted before the runner
// was told to take the new config. SIGTERM ends it.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/BurntSushi/toml"
)

type runner struct {
	URL   string `toml:"url"`
	ID    int64  `toml:"id"`
	Token string `toml:"token"`
}

func load(path string) []runner {
	var c struct {
		Runners []runner `toml:"runners"`
	}
	if _, err := toml.DecodeFile(path, &c); err != nil {
		fmt.Fprintln(os.Stderr, "fakerunner:", err)
	}
	return c.Runners
}

func main() {
	var config string
	for i, a := range os.Args {
		if (a == "--config" || a == "-c") && i+1 < len(os.Args) {
			config = os.Args[i+1]
		}
	}
	logFile, err := os.OpenFile(os.Getenv("GRA_FAKE_RUNNER_LOG"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if config == "" || err != nil {
		fmt.Fprintln(os.Stderr, "usage: GRA_FAKE_RUNNER_LOG=FILE gitlab-runner run --config PATH", err)
		os.Exit(2)
	}
	say := func(format string, args ...any) { _, _ = fmt.Fprintf(logFile, format+"\n", args...) }
	sysID, _ := os.ReadFile(filepath.Join(filepath.Dir(config), ".runner_system_id"))
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM)
	client := &http.Client{Timeout: time.Minute}
	runners := load(config)
	say("started")
	for {
		select {
		case s := <-sigs:
			if s == syscall.SIGTERM {
				say("stopped")
				return
			}
			runners = load(config)
			say("reload")
		case <-time.After(20 * time.Millisecond):
		}
		for _, r := range runners {
			body, _ := json.Marshal(map[string]any{"token": r.Token, "system_id": strings.TrimSpace(string(sysID)),
				"info": map[string]any{"name": "gitlab-runner", "version": "17.9.3"}})
			resp, err := client.Post(strings.TrimSuffix(r.URL, "/")+"/api/v4/jobs/request", "application/json", bytes.NewReader(body))
			if err != nil {
				say("poll %d error", r.ID)
				continue
			}
			resp.Body.Close()
			say("poll %d %d", r.ID, resp.StatusCode)
		}
	}
}

// Command prune is the clean-up's benchmark in `make bench`: the real
// register-runner prune, with --diff and --output json, against a GitLab
// simulator holding a large fleet of runners with long descriptions. It
// reports the peak RSS of the process, its wall time and the requests it
// made per runner, and fails when the memory target is missed.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/fleet"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/testkit/gitlabsim"
)

func main() {
	bin := flag.String("bin", "build/register-runner", "the register-runner binary")
	n := flag.Int("runners", 10000, "runners in GitLab")
	descLen := flag.Int("description", 1024, "characters in each runner's description")
	limitMB := flag.Int("max-rss", 200, "peak RSS target, MB")
	out := flag.String("out", "", "write the figures as CSV here")
	flag.Parse()
	if err := run(*bin, *n, *descLen, *limitMB, *out); err != nil {
		fmt.Fprintln(os.Stderr, "bench/prune:", err)
		os.Exit(1)
	}
}

const pat = "glpat-benchPruneAdmin-0123456789"

func run(bin string, n, descLen, limitMB int, out string) error {
	sim := gitlabsim.New(gitlabsim.Options{PATs: []gitlabsim.PAT{{Name: "admin", Value: pat, Scopes: []string{"api"}, Admin: true}}})
	srv := httptest.NewServer(sim)
	defer srv.Close()
	// Runners of a fleet's hosts, all marked, last contact ten days ago;
	// descriptions of descLen characters that match the fleet's pattern.
	long := strings.Repeat("x", max(1, descLen-len(" main shell Runner")-6))
	then := time.Now().Add(-10 * 24 * time.Hour)
	for i := 0; i < n; i++ {
		host := fmt.Sprintf("n%05d%s", i, long)
		sim.AddRunner(gitlabsim.Runner{Description: host + " main shell Runner", TagList: []string{"main", "shell"},
			MaintenanceNote: fleet.Mark{Fleet: "bench", Host: host, Instance: "main"}.Note(""), CreatedAt: then, ContactedAt: then})
	}
	dir, err := os.MkdirTemp("", "bench-prune-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	patFile := filepath.Join(dir, "pat")
	if err := os.WriteFile(patFile, []byte(pat+"\n"), 0o600); err != nil {
		return err
	}
	sim.ResetLog()
	cmd := exec.Command(bin, "prune", "--url", srv.URL, "--personal-access-token-file", patFile, "--fleet", "bench", "--tag", "main",
		"--max-delete", fmt.Sprint(n), "--check", "--diff", "--output", "json", "--seen-file", filepath.Join(dir, "seen.json"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %v\n%s", bin, err, tail(stderr.String()))
	}
	wall := time.Since(start)
	rssMB := float64(cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss) / 1024
	var rep struct {
		Runners []struct{ Action string } `json:"runners"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		return fmt.Errorf("--output json: %v", err)
	}
	would := 0
	for _, r := range rep.Runners {
		if r.Action == "delete" {
			would++
		}
	}
	c := sim.RequestCounts()
	perRunner := float64(c.Total) / float64(n)
	fmt.Printf("register-runner prune --check --diff --output json, %d runners of %d-character descriptions (%d pages of 100)\n", n, descLen, (n+99)/100)
	fmt.Printf("  wall %.2fs, peak RSS %.1f MB, %d requests (%.2f per runner: %v), output %.1f MB, would delete %d\n",
		wall.Seconds(), rssMB, c.Total, perRunner, c.ByKind, float64(stdout.Len())/(1<<20), would)
	if out != "" {
		csv := fmt.Sprintf("runners,description,wall_s,peak_rss_mb,requests,requests_per_runner\n%d,%d,%.3f,%.1f,%d,%.3f\n", n, descLen, wall.Seconds(), rssMB, c.Total, perRunner)
		if err := os.WriteFile(out, []byte(csv), 0o644); err != nil {
			return err
		}
	}
	switch {
	case would != n:
		return fmt.Errorf("the clean-up would delete %d of %d idle runners of the fleet", would, n)
	case rssMB > float64(limitMB):
		return fmt.Errorf("peak RSS %.1f MB, over the %d MB target", rssMB, limitMB)
	}
	fmt.Printf("  target: peak RSS <= %d MB: met\n", limitMB)
	return nil
}

func tail(s string) string {
	if len(s) > 2000 {
		return s[len(s)-2000:]
	}
	return s
}

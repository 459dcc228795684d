package plan

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/hostfs"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/redact"
)

func liveFrom(t *testing.T, toml string) *hostfs.LiveConfig {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	l := hostfs.Layout{Prefix: dir, Instance: "main"}
	if err := os.WriteFile(filepath.Join(dir, "config.main.toml"), []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
	lc, err := hostfs.ReadLiveConfig(l, redact.New())
	if err != nil {
		t.Fatal(err)
	}
	return lc
}

// A foreign entry whose token gitlab-runner rotated during the run.
func TestVerbatimEntriesTakeTokensFromTheLiveFile(t *testing.T) {
	d := fixture(true)
	const cfg = `concurrent = 1
[[runners]]
  name = "someone else"
  url = "https://gl"
  id = 99
  token = "glrt-OLDTOKEN"
  executor = "shell"
`
	old := liveFrom(t, cfg)
	fresh := liveFrom(t, strings.Replace(cfg, "glrt-OLDTOKEN", "glrt-ROTATED", 1))
	prev := MatchPrevious(d, old, hostfs.NewState())
	if len(prev.Foreign) != 1 {
		t.Fatalf("foreign: %+v", prev)
	}
	secs := Sections(prev, Plan{}, []Outcome{}, fresh, map[int]bool{})
	out := string(hostfs.RenderConfig(d.Layout, nil, secs, false))
	if !strings.Contains(out, "glrt-ROTATED") {
		t.Errorf("rotated token of foreign runner lost: config would be written with the old token")
	}
}

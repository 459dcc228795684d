package reliability

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/config"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/engine"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/testkit/coretest"
)

// onTmpfs runs register-runner with the prefix on a small tmpfs filled
// until one page is left (the marker and the system id still fit, the
// new config does not), in a private mount namespace: as root, or as
// root of a user namespace. Each element of runs is one invocation's
// extra flags; it returns each one's exit code and stdout. The tmpfs is
// emptied (the filler removed) before the invocations in freeAfter.
func onTmpfs(t *testing.T, prefix string, runs [][]string, freeAfter int) ([]int, []string) {
	t.Helper()
	out := t.TempDir()
	mnt := t.TempDir()
	script := `set -u
mnt=$1 src=$2 bin=$3 out=$4 free=$5; shift 5
mount -t tmpfs -o size=96k,mode=0700 tmpfs "$mnt" || exit 97
cp -a "$src"/. "$mnt"/ || exit 98
dd if=/dev/zero of="$mnt/.page" bs=4k count=1 2>/dev/null
dd if=/dev/zero of="$mnt/.filler" bs=4k 2>/dev/null
rm -f "$mnt/.page"
i=0
for args in "$@"; do
  [ "$i" = "$free" ] && rm -f "$mnt/.filler"
  # shellcheck disable=SC2086
  "$bin" --prefix "$mnt" $args --output json >"$out/$i.json" 2>"$out/$i.err"
  echo $? >"$out/$i.code"
  i=$((i+1))
done
`
	args := []string{"--mount", "--propagation", "private"}
	if os.Geteuid() != 0 {
		args = append(args, "--map-root-user")
	}
	args = append(args, "sh", "-c", script, "sh", mnt, prefix, binary, out, strconv.Itoa(freeAfter))
	for _, r := range runs {
		args = append(args, strings.Join(r, " "))
	}
	cmd := exec.Command("unshare", args...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("unshare (a private mount namespace with a tmpfs; needs root or unprivileged user namespaces, sysctl kernel.unprivileged_userns_clone=1; package util-linux): %v\n%s", err, b)
	}
	codes := make([]int, len(runs))
	stdouts := make([]string, len(runs))
	for i := range runs {
		b, err := os.ReadFile(filepath.Join(out, strconv.Itoa(i)+".code"))
		if err != nil {
			t.Fatalf("run %d did not happen: %v", i, err)
		}
		codes[i], _ = strconv.Atoi(strings.TrimSpace(string(b)))
		o, _ := os.ReadFile(filepath.Join(out, strconv.Itoa(i)+".json"))
		e, _ := os.ReadFile(filepath.Join(out, strconv.Itoa(i)+".err"))
		coretest.Record(t, "stdout", o)
		coretest.Record(t, "stderr", e)
		stdouts[i] = string(o)
	}
	return codes, stdouts
}

// A full disk never leaks a runner: with a new executor to register and
// no room for the config that would hold its token, no runner is created
// — start after start — while the executors with tokens keep being
// served; --strict fails instead. Once there is room, exactly the new
// runner is created: GitLab holds what the config names.
func TestFullDiskNeverLeaksRunners(t *testing.T) {
	sim := coretest.NewSim(t, coretest.SimOptions())
	p := coretest.NewPrefix(t, "main")
	p.Template("", coretest.ClientConfig{URL: sim.URL, PAT: coretest.AdminPAT})
	// Big entries: the config with one more does not fit in a page.
	pad := "environment = [\"PADDING=" + strings.Repeat("x", 1500) + "\"]\n"
	for _, n := range []string{"a", "b"} {
		p.Executor(n+".toml", executorFile(sim.URL, n, pad))
	}
	if code, _, stderr := runBinary(t, nil, "--prefix", p.Dir, "--hostname", hostname); code != 0 {
		t.Fatalf("first run: %s", stderr)
	}
	p.Executor("c.toml", executorFile(sim.URL, "c", pad))
	sim.ResetLog()
	base := []string{"--hostname", hostname, "--request-timeout", coretest.Patient.Request.String()}
	runs := [][]string{base, base, base, append(base, "--strict"), base}
	codes, stdouts := onTmpfs(t, p.Dir, runs, 4)
	for i := 0; i < 3; i++ {
		var r struct {
			Failed  bool                     `json:"failed"`
			Skipped []engine.SkippedExecutor `json:"skipped"`
		}
		if err := json.Unmarshal([]byte(stdouts[i]), &r); err != nil {
			t.Fatalf("start %d: %v\n%s", i, err, stdouts[i])
		}
		if codes[i] != 0 || r.Failed || len(r.Skipped) != 1 || r.Skipped[0].Name != "c" || r.Skipped[0].Reason != config.SkipNoSpace {
			t.Fatalf("start %d on a full disk: exit %d, report %s; want a and b served, c skipped for want of space", i, codes[i], stdouts[i])
		}
	}
	if codes[3] != 1 {
		t.Fatalf("--strict on a full disk: exit %d, want 1", codes[3])
	}
	if n := sim.RequestCounts().ByKind["create"]; n != 1 {
		t.Fatalf("%d runners created over four starts on a full disk and one with room, want 1", n)
	}
	if codes[4] != 0 || len(sim.Runners()) != 3 {
		t.Fatalf("with room again: exit %d, %d runners in GitLab, want 0 and 3\n%s", codes[4], len(sim.Runners()), stdouts[4])
	}
}

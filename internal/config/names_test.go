package config

import (
	"testing"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/hostfs"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/input"
)

func TestDigitlessHostname(t *testing.T) {
	for in, want := range map[string]string{
		"node12": "node", "ip-10-0-0-12": "ip", "rack-04-node-12": "rack-node", "a_1_.b": "a_b",
		"12-34": "", "1234": "", "quartz": "quartz", "x1y2": "xy", "-n1-": "n",
	} {
		if got := DigitlessHostname(in); got != want {
			t.Errorf("DigitlessHostname(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestInstanceNamesNeverShareAFile: an instance name that would make one
// of its files another instance's is refused; of two such names only the
// longer one, so everyday names stay valid. The names tried are made from
// the layout itself: every file of a few instances, taken as a name.
func TestInstanceNamesNeverShareAFile(t *testing.T) {
	for _, ok := range []string{"main", "gpu", "ci-runners.prod", "template", "config", "main.toml", "a"} {
		if err := ValidateInstanceName(ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	refused := 0
	for _, other := range []string{"main", "a", "x.y"} {
		theirs := map[string]bool{}
		for _, p := range (hostfs.Layout{Instance: other}).Paths() {
			theirs[p.Path] = true
		}
		var names []string
		for _, p := range (hostfs.Layout{Instance: other}).Paths() {
			names = append(names, p.Path)
		}
		names = append(names, "template."+other)
		for _, name := range names {
			if name == other || !reInstance().MatchString(name) {
				continue
			}
			shares := false
			for _, p := range (hostfs.Layout{Instance: name}).Paths() {
				shares = shares || theirs[p.Path]
			}
			if !shares {
				t.Fatalf("%q shares no file with %q: the names tried are wrong", name, other)
			}
			err := ValidateInstanceName(name)
			if ie := input.As(err); ie == nil || ie.Option != input.Instance || ie.Fix == "" {
				t.Errorf("instance %q, whose files include one of %q's: got %v, want it refused naming the instance option with a fix", name, other, err)
			}
			refused++
		}
	}
	if refused < 6 {
		t.Fatalf("only %d colliding names tried", refused)
	}
}

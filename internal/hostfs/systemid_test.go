package hostfs

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// The system id as gitlab-runner derives it
// (commands/internal/configfile/system_id_state.go, GenerateUniqueSystemID
// with github.com/denisbrodbeck/machineid): /var/lib/dbus/machine-id, and
// only when that cannot be read /etc/machine-id; an empty id gives a
// random r_ id; s_ and 12 hex of HMAC-SHA256(machine id, "gitlab-runner").
func TestSystemIDIsGitLabRunners(t *testing.T) {
	dir := t.TempDir()
	dbus, etc := filepath.Join(dir, "dbus"), filepath.Join(dir, "etc")
	write := func(p, s string) {
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	paths := []string{dbus, etc}
	write(etc, "0123456789abcdef0123456789abcdef\n")
	if got := readMachineID(paths); got != "0123456789abcdef0123456789abcdef" {
		t.Fatalf("without the dbus file: %q, want /etc/machine-id's", got)
	}
	write(dbus, "fedcba9876543210fedcba9876543210\n")
	if got := readMachineID(paths); got != "fedcba9876543210fedcba9876543210" {
		t.Fatalf("with both files: %q, want the dbus file's (read first)", got)
	}
	// HMAC-SHA256(key = the machine id, "gitlab-runner"), computed apart
	// (Python's hmac module): the value gitlab-runner writes for this id.
	if got := SystemIDFromMachineID("fedcba9876543210fedcba9876543210"); got != "s_72f457d82d56" {
		t.Fatalf("derivation %q, want s_72f457d82d56", got)
	}
	write(dbus, "\n")
	if got := readMachineID(paths); got != "" {
		t.Fatalf("an empty dbus file: %q, want none (gitlab-runner does not fall back)", got)
	}
	if id := NewSystemID(Machine{}); !regexp.MustCompile(`^r_[0-9a-zA-Z]{12}$`).MatchString(id) {
		t.Fatalf("without a machine id: %q", id)
	}
}

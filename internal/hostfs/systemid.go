package hostfs

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
)

// The system id is gitlab-runner's host identity
// (commands/internal/configfile/system_id_state.go): the file
// .runner_system_id beside the config when it holds ^[sr]_[0-9a-zA-Z]{12}$;
// otherwise GenerateUniqueSystemID: "s_" and the first 12 hex characters
// of HMAC-SHA256(key = machine id, message = "gitlab-runner") when the
// machine has an id, else "r_" and 12 random alphanumerics. The machine id
// is github.com/denisbrodbeck/machineid's on Linux: /var/lib/dbus/machine-id,
// and only when that cannot be read, /etc/machine-id, trimmed; an empty id
// counts as none.

var reSystemID = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[sr]_[0-9a-zA-Z]{12}$`) })

// machineIDPaths are read in gitlab-runner's order.
var machineIDPaths = []string{"/var/lib/dbus/machine-id", "/etc/machine-id"}

// Machine is what tells this machine from another.
type Machine struct {
	// ID is the machine id, as gitlab-runner reads it ("" for none).
	ID string
	// Hardware is the hardware's own identity: the DMI product UUID, else
	// the permanent MAC addresses of the network devices ("" if neither
	// can be read). It tells a renamed host from a host cloned from an
	// image with a fixed machine id.
	Hardware string
}

// ReadMachineID reads this machine's id, as gitlab-runner does.
func ReadMachineID() string { return readMachineID(machineIDPaths) }

// ReadHardware reads the hardware's own identity (see Machine.Hardware).
func ReadHardware() string { return readHardware("/sys") }

func readMachineID(paths []string) string {
	for _, p := range paths {
		if b, _, err := ReadCapped(p, p, 4096); err == nil {
			return strings.TrimSpace(string(b))
		}
	}
	return ""
}

// readHardware reads the DMI product UUID (root only), else the MAC
// addresses the hardware was made with (addr_assign_type 0) of the
// network devices that are devices (not bridges, veths or tunnels).
func readHardware(sys string) string {
	p := filepath.Join(sys, "class", "dmi", "id", "product_uuid")
	if b, _, err := ReadCapped(p, p, 4096); err == nil {
		if u := strings.TrimSpace(string(b)); u != "" {
			return "dmi:" + strings.ToLower(u)
		}
	}
	dir := filepath.Join(sys, "class", "net")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return ""
	}
	var macs []string
	for _, e := range entries {
		nd := filepath.Join(dir, e.Name())
		if _, err := os.Stat(filepath.Join(nd, "device")); err != nil {
			continue
		}
		if t, _, err := ReadCapped(filepath.Join(nd, "addr_assign_type"), "", 64); err != nil || strings.TrimSpace(string(t)) != "0" {
			continue
		}
		if a, _, err := ReadCapped(filepath.Join(nd, "address"), "", 64); err == nil {
			if mac := strings.TrimSpace(string(a)); mac != "" && mac != "00:00:00:00:00:00" {
				macs = append(macs, mac)
			}
		}
	}
	if len(macs) == 0 {
		return ""
	}
	sort.Strings(macs)
	return "mac:" + strings.Join(macs, ",")
}

// Fingerprint names an identity in the state file without holding it
// (the machine id is meant to stay confidential).
func Fingerprint(kind, value string) string {
	if value == "" {
		return ""
	}
	sum := sha256.Sum256([]byte("gitlab-runner-auth " + kind + "\x00" + value))
	return hex.EncodeToString(sum[:12])
}

// SystemIDFromMachineID is gitlab-runner's derivation: "s_" + the first 12
// hex characters of HMAC-SHA256(key = machine id, message = "gitlab-runner").
func SystemIDFromMachineID(machineID string) string {
	mac := hmac.New(sha256.New, []byte(machineID))
	mac.Write([]byte("gitlab-runner"))
	return "s_" + hex.EncodeToString(mac.Sum(nil))[:12]
}

// RandomSystemID is gitlab-runner's system id for a machine without an id.
func RandomSystemID() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	var b strings.Builder
	b.WriteString("r_")
	for i := 0; i < 12; i++ {
		n, err := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		if err != nil {
			panic(err)
		}
		b.WriteByte(alphabet[n.Int64()])
	}
	return b.String()
}

// NewSystemID is the system id gitlab-runner would generate on m.
func NewSystemID(m Machine) string {
	if m.ID != "" {
		return SystemIDFromMachineID(m.ID)
	}
	return RandomSystemID()
}

// IsSystemID reports whether s has the shape of a gitlab-runner system id.
func IsSystemID(s string) bool { return reSystemID().MatchString(s) }

package hostfs

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"math/big"
	"regexp"
	"strings"
)

var reSystemID = regexp.MustCompile(`^[sr]_[0-9a-zA-Z]{12}$`)

// MachineIDPaths are read, in order, to derive the system id the way
// gitlab-runner does.
func MachineIDPaths() []string { return []string{"/etc/machine-id", "/var/lib/dbus/machine-id"} }

// SystemIDFromMachineID is gitlab-runner's derivation: "s_" + the first 12
// hex characters of HMAC-SHA256(key = machine id, message = "gitlab-runner").
func SystemIDFromMachineID(machineID string) string {
	mac := hmac.New(sha256.New, []byte(machineID))
	mac.Write([]byte("gitlab-runner"))
	return "s_" + hex.EncodeToString(mac.Sum(nil))[:12]
}

func randomSystemID() string {
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

// SystemID reads .runner_system_id beside the config, or derives it as
// gitlab-runner would. It reports whether the file must be (re)written.
func SystemID(l Layout, machineIDPaths []string) (string, bool, error) {
	data, _, err := ReadCapped(l.SystemIDPath(), l.SystemIDPath(), 4096)
	if err == nil {
		id := strings.TrimSpace(string(data))
		if reSystemID.MatchString(id) {
			return id, false, nil
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", false, err
	}
	for _, p := range machineIDPaths {
		if b, _, err := ReadCapped(p, p, 4096); err == nil {
			if mid := strings.TrimSpace(string(b)); mid != "" {
				return SystemIDFromMachineID(mid), true, nil
			}
		}
	}
	return randomSystemID(), true, nil
}

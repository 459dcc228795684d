package core

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"regexp"
	"strings"
	"time"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/gitlab"
)

// LiveRunner is one [[runners]] entry of the live config.{instance}.toml.
type LiveRunner struct {
	Name           string
	URL            string
	ID             int64
	Token          string
	TokenObtained  time.Time
	TokenExpiresAt time.Time
	Executor       string
	// Table is the whole entry, for keeping it verbatim.
	Table *Table
}

// LiveConfig is the config.{instance}.toml as found on disk.
type LiveConfig struct {
	Exists  bool
	Raw     []byte
	Runners []LiveRunner
}

// readLiveConfig reads the config gitlab-runner uses now. A file that does
// not parse is an error: guessing would lose tokens.
func readLiveConfig(l Layout, sec *Redactor) (*LiveConfig, error) {
	path := l.ConfigPath()
	data, _, err := readCapped(path, path, MaxConfigSize)
	if errors.Is(err, fs.ErrNotExist) {
		return &LiveConfig{}, nil
	}
	if err != nil {
		return nil, err
	}
	lc := &LiveConfig{Exists: true, Raw: data}
	t, err := parseTOMLTable(data)
	if err != nil {
		return nil, inputErr(path, "%v; fix the file, or move it away to have every runner adopted again", err)
	}
	raw, ok := t.Get("runners")
	if !ok {
		return lc, nil
	}
	arr, ok := isTableArray(raw)
	if !ok {
		if a, isArr := raw.([]any); isArr && len(a) == 0 {
			return lc, nil
		}
		return nil, inputErr(path, "key runners must be an array of tables ([[runners]]); fix the file, or move it away to have every runner adopted again")
	}
	for i, el := range arr {
		rt := el.(*Table)
		lr := LiveRunner{Table: rt}
		lr.Name, _ = rt.GetString("name")
		lr.URL, _ = rt.GetString("url")
		lr.Token, _ = rt.GetString("token")
		lr.Executor, _ = rt.GetString("executor")
		if v, ok := rt.Get("id"); ok {
			id, isInt := v.(int64)
			if !isInt {
				return nil, inputErr(path, "runners[%d].id must be an integer", i)
			}
			lr.ID = id
		}
		if v, ok := rt.Get("token_obtained_at"); ok {
			lr.TokenObtained, _ = v.(time.Time)
		}
		if v, ok := rt.Get("token_expires_at"); ok {
			lr.TokenExpiresAt, _ = v.(time.Time)
		}
		sec.Add(lr.Token)
		lc.Runners = append(lc.Runners, lr)
	}
	return lc, nil
}

// State is the owner-only state file: what config.toml cannot hold.
type State struct {
	Version int                    `json:"version"`
	Runners map[string]StateRunner `json:"runners"`
	// Tokens records, per GitLab, the personal access token last checked
	// (by fingerprint, never the token) and what GitLab said of it.
	Tokens map[string]TokenRecord `json:"tokens,omitempty"`
}

// TokenRecord is what GitLab said of a personal access token when it was
// first seen: checked again only when the token changes.
type TokenRecord struct {
	// Fingerprint is a SHA-256 digest of the token, not the token.
	Fingerprint string   `json:"fingerprint"`
	Scopes      []string `json:"scopes"`
	// ExpiresAt is the day the token stops working (YYYY-MM-DD), if any.
	ExpiresAt string `json:"expires_at,omitempty"`
}

// StateRunner records one executor's runner.
type StateRunner struct {
	ID  int64  `json:"id"`
	URL string `json:"url"`
	// Applied are the server-side settings last sent to GitLab.
	Applied *gitlab.Settings `json:"applied,omitempty"`
}

// key is the normalised URL of the runner's GitLab.
func (r StateRunner) key() string {
	k, _ := NormalizeURL(r.URL)
	return k
}

// readState reads the state file; any problem means "unknown".
func readState(l Layout) (*State, string, error) {
	data, _, err := readCapped(l.StatePath(), l.StatePath(), MaxConfigSize)
	if errors.Is(err, fs.ErrNotExist) {
		return &State{Version: 1, Runners: map[string]StateRunner{}}, "", nil
	}
	if errors.Is(err, errNotRegular) {
		// A FIFO or device is not "unreadable": someone put it there.
		return nil, "", err
	}
	var st State
	if err == nil {
		err = json.Unmarshal(data, &st)
	}
	if err != nil || st.Version != 1 {
		return &State{Version: 1, Runners: map[string]StateRunner{}},
			fmt.Sprintf("state file %s is unreadable (%v); treating what was applied as unknown", l.StatePath(), err), nil
	}
	if st.Runners == nil {
		st.Runners = map[string]StateRunner{}
	}
	return &st, "", nil
}

func (s *State) encode() []byte {
	b, _ := json.MarshalIndent(s, "", "  ")
	return append(b, '\n')
}

var reSystemID = regexp.MustCompile(`^[sr]_[0-9a-zA-Z]{12}$`)

// MachineIDPaths are read, in order, to derive the system id the way
// gitlab-runner does.
var MachineIDPaths = []string{"/etc/machine-id", "/var/lib/dbus/machine-id"}

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
	data, _, err := readCapped(l.SystemIDPath(), l.SystemIDPath(), 4096)
	if err == nil {
		id := strings.TrimSpace(string(data))
		if reSystemID.MatchString(id) {
			return id, false, nil
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", false, err
	}
	for _, p := range machineIDPaths {
		if b, _, err := readCapped(p, p, 4096); err == nil {
			if mid := strings.TrimSpace(string(b)); mid != "" {
				return SystemIDFromMachineID(mid), true, nil
			}
		}
	}
	return randomSystemID(), true, nil
}

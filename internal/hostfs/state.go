package hostfs

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/gitlab"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/input"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/redact"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/table"
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
	Table *table.Table
}

// LiveConfig is the config.{instance}.toml as found on disk.
type LiveConfig struct {
	Exists  bool
	Raw     []byte
	Runners []LiveRunner
	// Snap is the file as read, to know later whether it changed.
	Snap *Snapshot
}

// Reread reads the live config again, unless the file is still the one
// read before (gitlab-runner rewrites it when it rotates a token): then
// prev is returned, nothing read or parsed twice.
func Reread(l Layout, prev *LiveConfig, sec *redact.Redactor) (*LiveConfig, error) {
	if prev.Snap.Unchanged(l.ConfigPath()) {
		return prev, nil
	}
	if !prev.Exists {
		if _, err := os.Lstat(l.ConfigPath()); errors.Is(err, fs.ErrNotExist) {
			return prev, nil
		}
	}
	return ReadLiveConfig(l, sec)
}

// ReadLiveConfig reads the config gitlab-runner uses now. A file that does
// not parse is an error: guessing would lose tokens.
func ReadLiveConfig(l Layout, sec *redact.Redactor) (*LiveConfig, error) {
	path, name := l.ConfigPath(), l.Rel(l.ConfigPath())
	data, fi, err := ReadCapped(path, name, MaxConfigSize)
	if errors.Is(err, fs.ErrNotExist) {
		return &LiveConfig{}, nil
	}
	if err != nil {
		return nil, err
	}
	lc := &LiveConfig{Exists: true, Raw: data, Snap: &Snapshot{Data: data, Info: fi}}
	t, err := table.ParseTOML(data)
	if err != nil {
		return nil, input.At(name, "", err).WithFix("fix the file, or move it away to have every runner adopted again")
	}
	raw, ok := t.Get("runners")
	if !ok {
		return lc, nil
	}
	arr, ok := table.TableArray(raw)
	if !ok {
		if a, isArr := raw.([]any); isArr && len(a) == 0 {
			return lc, nil
		}
		return nil, input.Errorf(name, "runners", "must be an array of tables ([[runners]])").WithFix("fix the file, or move it away to have every runner adopted again")
	}
	for i, el := range arr {
		rt := el.(*table.Table)
		lr := LiveRunner{Table: rt}
		lr.Name, _ = rt.GetString("name")
		lr.URL, _ = rt.GetString("url")
		lr.Token, _ = rt.GetString("token")
		lr.Executor, _ = rt.GetString("executor")
		if v, ok := rt.Get("id"); ok {
			id, isInt := v.(int64)
			if !isInt {
				return nil, input.Errorf(name, fmt.Sprintf("runners[%d].id", i), "must be an integer")
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
	// Host is what the prefix's files were generated for: a prefix found on
	// another machine (a copied image) starts a fresh identity.
	Host *HostRecord `json:"host,omitempty"`
	// Namespaces are group and project ids resolved from their full paths
	// (NamespaceKey), so each path is looked up once.
	Namespaces map[string]int64 `json:"namespaces,omitempty"`
	// Pending are removals an earlier run decided but GitLab did not
	// confirm (5xx, no answer, a wait longer than the run): their entries
	// already left config.toml, and every run retries them until GitLab
	// confirms. A runner token is kept here for that (this file is
	// owner-only, as config.toml is).
	Pending []PendingRemoval `json:"pending,omitempty"`
	// Degraded are the executors the last run could not serve (an invalid
	// file, no GitLab to register a new one), and why.
	Degraded map[string]DegradedExecutor `json:"degraded,omitempty"`

	snap *Snapshot
}

// PendingRemoval is a runner this host must still remove from GitLab.
type PendingRemoval struct {
	// Action is "delete" (the runner) or "detach" (this host's manager).
	Action string `json:"action"`
	// Name is the entry's name in config.toml when it left it.
	Name string `json:"name"`
	URL  string `json:"url"`
	ID   int64  `json:"id"`
	// Token is the runner's token: what proves the runner this host's
	// while GitLab accepts it (a delete with it can only delete that
	// runner).
	Token string `json:"token,omitempty"`
	// SystemID and Description prove the runner this host's once its
	// token is dead: before a delete by id, a read by id must show this
	// description and a runner manager with this system id (this host's).
	// A removal that carries neither proof is never made.
	SystemID    string `json:"system_id,omitempty"`
	Description string `json:"description,omitempty"`
	// Since is when the removal was decided; LastError what GitLab (or the
	// network) answered last.
	Since     time.Time `json:"since"`
	LastError string    `json:"last_error,omitempty"`
}

// DegradedExecutor is an executor a run skipped, and why.
type DegradedExecutor struct {
	// Since is the first run that skipped it (in a row).
	Since time.Time `json:"since"`
	// Reason is the kind (invalid, needs GitLab, registration failed),
	// Cause the error, Fix what to do; Kept says its last good section
	// stayed in config.toml.
	Reason string `json:"reason"`
	Cause  string `json:"cause"`
	Fix    string `json:"fix,omitempty"`
	Kept   bool   `json:"kept"`
}

// HostRecord names the host a prefix's files were generated for, by
// fingerprints (Fingerprint) of its identities, never the identities.
type HostRecord struct {
	Hostname string `json:"hostname"`
	Machine  string `json:"machine,omitempty"`
	Hardware string `json:"hardware,omitempty"`
	SystemID string `json:"system_id"`
}

// RecordOf is the record of a host running with a system id.
func RecordOf(hostname string, m Machine, systemID string) HostRecord {
	return HostRecord{Hostname: hostname, Machine: Fingerprint("machine-id", m.ID), Hardware: Fingerprint("hardware", m.Hardware), SystemID: systemID}
}

// NamespaceKey is the key of a group's or project's id in State.Namespaces.
func NamespaceKey(url, kind, path string) string {
	key, err := gitlab.NormalizeURL(url)
	if err != nil {
		key = url
	}
	return kind + " " + key + " " + path
}

// TokenRecord is what GitLab said of a personal access token when it was
// first seen: checked again only when the token changes.
type TokenRecord struct {
	// Fingerprint is a SHA-256 digest of the token, not the token.
	Fingerprint string   `json:"fingerprint"`
	Scopes      []string `json:"scopes"`
	// ExpiresAt is the day the token stops working (YYYY-MM-DD), if any.
	ExpiresAt string `json:"expires_at,omitempty"`
	// Undescribed: the GitLab could not describe the token (no
	// GET /personal_access_tokens/self); its scopes are unknown.
	Undescribed bool `json:"undescribed,omitempty"`
}

// StateRunner records one executor's runner.
type StateRunner struct {
	ID  int64  `json:"id"`
	URL string `json:"url"`
	// Applied are the server-side settings last sent to GitLab.
	Applied *gitlab.Settings `json:"applied,omitempty"`
}

// Key is the normalised URL of the runner's GitLab.
func (r StateRunner) Key() string {
	k, _ := gitlab.NormalizeURL(r.URL)
	return k
}

// NewState is an empty state: nothing known.
func NewState() *State { return &State{Version: 1, Runners: map[string]StateRunner{}} }

// ReadState reads the state file; any problem means "unknown".
func ReadState(l Layout) (*State, string, error) {
	data, fi, err := ReadCapped(l.StatePath(), l.Rel(l.StatePath()), MaxConfigSize)
	if errors.Is(err, fs.ErrNotExist) {
		return NewState(), "", nil
	}
	if errors.Is(err, ErrNotRegular) {
		// A FIFO or device is not "unreadable": someone put it there.
		return nil, "", err
	}
	var st State
	if err == nil {
		err = json.Unmarshal(data, &st)
	}
	if err != nil || st.Version != 1 {
		return NewState(),
			fmt.Sprintf("state file %s is unreadable (%v); treating what was applied as unknown", l.StatePath(), err), nil
	}
	if st.Runners == nil {
		st.Runners = map[string]StateRunner{}
	}
	st.snap = &Snapshot{Data: data, Info: fi}
	return &st, "", nil
}

// Snapshot is the state file as read (nil: none was read).
func (s *State) Snapshot() *Snapshot { return s.snap }

// Encode is the state file's content.
func (s *State) Encode() []byte {
	b, _ := json.MarshalIndent(s, "", "  ")
	return append(b, '\n')
}

// Redacted is the live config as a diff shows it: every secret key redacted.
func (live *LiveConfig) Redacted() []byte {
	if !live.Exists {
		return nil
	}
	return []byte(redact.TOML(string(live.Raw)))
}

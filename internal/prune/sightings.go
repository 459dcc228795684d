package prune

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/hostfs"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/input"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/plan"
)

// The clean-up's record of first sightings: for a runner GitLab gives no
// age for (never contacted; no created_at in its details, as on GitLab
// 16.11 and 17.0; no manager), when the controller first saw it, on
// GitLab's clock and its own. Such a runner is idle only once the record
// is min_idle old on both; without the record its age is unknown and it is
// kept. The record holds no secret; whoever may write it could make a
// runner look older, so it is owner-only, as the token files are.

// DefaultSeenFile is where the record lives unless told otherwise:
// $XDG_STATE_HOME/gitlab-runner-auth/prune-first-seen.json, or
// ~/.local/state/... ("" when neither is known).
func DefaultSeenFile() string {
	dir := os.Getenv("XDG_STATE_HOME")
	if dir == "" || !filepath.IsAbs(dir) {
		home, err := os.UserHomeDir()
		if err != nil || home == "" {
			return ""
		}
		dir = filepath.Join(home, ".local", "state")
	}
	return filepath.Join(dir, "gitlab-runner-auth", "prune-first-seen.json")
}

// sightings are the record: per GitLab (normalised URL), per runner id.
type sightings struct {
	Version int                                 `json:"version"`
	GitLabs map[string]map[string]plan.Sighting `json:"gitlabs"`
}

// readSightings reads the record (an empty one when the file is absent).
func readSightings(path string) (*sightings, error) {
	s := &sightings{Version: 1, GitLabs: map[string]map[string]plan.Sighting{}}
	if path == "" {
		return s, nil
	}
	data, err := hostfs.ReadTrusted(path, path, "seen_file", true)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, withOption(err, "seen_file")
	}
	if err := json.Unmarshal(data, s); err != nil || s.GitLabs == nil {
		return nil, &input.Error{Option: "seen_file", File: path, Msg: "is not the clean-up's record of first sightings",
			Fix: "give another file, or remove it (runners GitLab gives no age for are then kept min_idle longer)"}
	}
	return s, nil
}

// of returns the sightings of one GitLab, by runner id.
func (s *sightings) of(key string) map[int64]plan.Sighting {
	out := map[int64]plan.Sighting{}
	for k, v := range s.GitLabs[key] {
		if id, err := strconv.ParseInt(k, 10, 64); err == nil {
			out[id] = v
		}
	}
	return out
}

// update records the first sighting of each runner in seen (keeping an
// earlier one), and forgets the runners in forget.
func (s *sightings) update(key string, seen []int64, forget []int64, at plan.Sighting) bool {
	m := s.GitLabs[key]
	if m == nil {
		m = map[string]plan.Sighting{}
		s.GitLabs[key] = m
	}
	changed := false
	for _, id := range seen {
		k := strconv.FormatInt(id, 10)
		if _, ok := m[k]; !ok {
			m[k], changed = plan.Sighting{GitLab: at.GitLab.UTC().Truncate(time.Second), Local: at.Local.UTC().Truncate(time.Second)}, true
		}
	}
	for _, id := range forget {
		k := strconv.FormatInt(id, 10)
		if _, ok := m[k]; ok {
			delete(m, k)
			changed = true
		}
	}
	if len(m) == 0 {
		delete(s.GitLabs, key)
	}
	return changed
}

// write saves the record atomically, owner-only, creating its folder.
func (s *sightings) write(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("seen_file %s: %w", path, hostfs.UnwrapPathErr(err))
	}
	data, err := json.MarshalIndent(s, "", " ")
	if err != nil {
		return err
	}
	if _, err := hostfs.WriteAtomic(path, append(data, '\n')); err != nil {
		return fmt.Errorf("seen_file %s: %w", path, hostfs.UnwrapPathErr(err))
	}
	return nil
}

package hostfs

import (
	"path/filepath"
	"strings"
)

// Layout names the files of one service instance under a prefix.
type Layout struct {
	Prefix   string
	Instance string
}

// TemplatePath is config.template.{instance}.toml.
func (l Layout) TemplatePath() string {
	return filepath.Join(l.Prefix, "config.template."+l.Instance+".toml")
}

// ExecutorDir is the folder of executor files.
func (l Layout) ExecutorDir() string { return filepath.Join(l.Prefix, l.Instance) }

// ConfigPath is the config.{instance}.toml read by gitlab-runner.
func (l Layout) ConfigPath() string { return filepath.Join(l.Prefix, "config."+l.Instance+".toml") }

// StatePath holds what config.toml cannot: the settings last applied.
func (l Layout) StatePath() string {
	return filepath.Join(l.Prefix, ".gitlab-runner-auth."+l.Instance+".json")
}

// LockPath is the advisory lock serialising runs for this instance.
func (l Layout) LockPath() string {
	return filepath.Join(l.Prefix, ".gitlab-runner-auth."+l.Instance+".lock")
}

// IncompletePath marks a run that changed GitLab and has not finished
// cleanly (killed, or failed): the next run then settles late effects.
func (l Layout) IncompletePath() string {
	return filepath.Join(l.Prefix, ".gitlab-runner-auth."+l.Instance+".incomplete")
}

// SystemIDPath is gitlab-runner's host identity file.
func (l Layout) SystemIDPath() string { return filepath.Join(l.Prefix, ".runner_system_id") }

// Rel names a path relative to the prefix in messages.
func (l Layout) Rel(p string) string {
	if r, err := filepath.Rel(l.Prefix, p); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return p
}

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
// cleanly (killed, or failed): the next run then looks for its late
// effects (a runner created or a token reset after the run stopped).
func (l Layout) IncompletePath() string {
	return filepath.Join(l.Prefix, ".gitlab-runner-auth."+l.Instance+".incomplete")
}

// SystemIDPath is gitlab-runner's host identity file.
func (l Layout) SystemIDPath() string { return filepath.Join(l.Prefix, ".runner_system_id") }

// Path is one file or folder of an instance, and what it is.
type Path struct {
	What string
	Path string
}

// Paths lists every file and folder of the instance under the prefix,
// each named by the instance. A new file of an instance belongs here:
// instance names are checked against these (Collision).
func (l Layout) Paths() []Path {
	return []Path{
		{"template", l.TemplatePath()},
		{"executor folder", l.ExecutorDir()},
		{"generated config", l.ConfigPath()},
		{"state file", l.StatePath()},
		{"lock", l.LockPath()},
		{"marker", l.IncompletePath()},
	}
}

// SharedPaths lists the files in the prefix that belong to no one
// instance.
func (l Layout) SharedPaths() []Path {
	return []Path{{"system id", l.SystemIDPath()}}
}

// Collision is an instance name whose file would be another instance's.
type Collision struct {
	// Mine is the instance's file; Other the instance whose Theirs it
	// would be ("" for a file shared by every instance).
	Mine   Path
	Other  string
	Theirs string
}

// Collision reports whether one of the instance's files is, by name, a
// file of another instance whose name valid accepts and is not longer
// (instance template.main would write config.template.main.toml, the
// template of main), or a file every instance shares. Of two names that
// collide only the longer is refused, so main stays valid although
// config.main.toml would not be.
func (l Layout) Collision(valid func(string) bool) (Collision, bool) {
	const mark = "\x00"
	patterns := Layout{Instance: mark}.Paths()
	for _, mine := range (Layout{Instance: l.Instance}).Paths() {
		for _, sh := range (Layout{}).SharedPaths() {
			if mine.Path == sh.Path {
				return Collision{Mine: mine, Theirs: sh.What}, true
			}
		}
		for _, p := range patterns {
			pre, suf, _ := strings.Cut(p.Path, mark)
			name := mine.Path
			if len(name) < len(pre)+len(suf) || !strings.HasPrefix(name, pre) || !strings.HasSuffix(name, suf) {
				continue
			}
			other := name[len(pre) : len(name)-len(suf)]
			if other != l.Instance && len(other) <= len(l.Instance) && valid(other) {
				return Collision{Mine: mine, Other: other, Theirs: p.What}, true
			}
		}
	}
	return Collision{}, false
}

// Rel names a path relative to the prefix in messages.
func (l Layout) Rel(p string) string {
	if r, err := filepath.Rel(l.Prefix, p); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return p
}

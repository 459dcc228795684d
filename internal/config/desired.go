// Package config is what an instance declares: the template (global
// settings and client_configs) and the executor files, parsed and checked
// into a Desired, with the rules for names, keys and descriptions.
package config

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/fanout"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/fleet"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/gitlab"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/hostfs"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/input"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/redact"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/table"
)

// ClientConfig is one entry of client_configs: a GitLab and its credentials.
type ClientConfig struct {
	URL               string // as written
	Key               string // normalised, for matching
	PAT               string
	RegistrationToken string
	RunnerType        string
	GroupID           int64
	ProjectID         int64
	TLSCAFile         string
	TLSCA             []byte // the PEM read from TLSCAFile
	// Fleet is the fleet this host's runners on this GitLab belong to
	// (the mark each runner carries; see package fleet).
	Fleet string
	// Index is the entry's place in client_configs, for messages.
	Index int
}

// Executor is one executor file, resolved against its client.
type Executor struct {
	Name string
	// File is the path relative to the prefix, for messages.
	File           string
	Client         *ClientConfig
	Type           string
	StaticTags     []string
	EnvTags        []string
	Description    string
	RunUntagged    bool
	Locked         bool
	Paused         bool
	AccessLevel    string
	MaximumTimeout int64
	// MaintenanceNote is the administrator's own note (the file's
	// maintenance_note); GitLab gets it with the fleet's Mark below it.
	MaintenanceNote string
	Mark            fleet.Mark
	RunnerType      string
	GroupID         int64
	ProjectID       int64
	// Keys are copied verbatim into the executor's [[runners]] section.
	Keys *table.Table
	// Tags are computed by computeTags.
	Tags []string
}

// Settings are what GitLab should store for this executor's runner.
func (e *Executor) Settings() gitlab.Settings {
	return gitlab.Settings{
		Description: e.Description, TagList: append([]string{}, e.Tags...), RunUntagged: e.RunUntagged,
		Locked: e.Locked, Paused: e.Paused, AccessLevel: e.AccessLevel, MaximumTimeout: e.MaximumTimeout,
		MaintenanceNote: e.Mark.Note(e.MaintenanceNote),
	}.Normalized()
}

// Desired is everything declared on disk for one instance.
type Desired struct {
	Layout   hostfs.Layout
	Hostname string
	// Fleet is the fleet the run was given (empty: none given); a client
	// entry that names none belongs to it, or to fleet.Default.
	Fleet     string
	Globals   *table.Table
	Clients   []*ClientConfig
	Executors []*Executor // sorted by name
	// Skipped are executors declared but not served: their files are
	// invalid (a tolerant load), or the engine could not register them
	// now. Their runners are neither deleted nor taken for leftovers.
	Skipped []Skipped
}

// Why an executor is skipped.
const (
	SkipInvalid = "invalid"
	SkipLate    = "needs GitLab"
	SkipFailed  = "registration failed"
	SkipNoSpace = "no space on disk"
)

// Skipped is an executor a run does not serve, and why.
type Skipped struct {
	Name string
	// File is its file, relative to the prefix.
	File   string
	Reason string
	Err    error
	// Drop: its entry in the config leaves it (see Desired.Drop).
	Drop bool
}

// Skip takes an executor out of those served this run.
func (d *Desired) Skip(name, reason string, err error) {
	file := ""
	kept := d.Executors[:0]
	for _, e := range d.Executors {
		if e.Name == name {
			file = e.File
			continue
		}
		kept = append(kept, e)
	}
	d.Executors = kept
	for i := range d.Skipped {
		if d.Skipped[i].Name == name {
			return
		}
	}
	d.Skipped = append(d.Skipped, Skipped{Name: name, File: file, Reason: reason, Err: err})
	sort.Slice(d.Skipped, func(i, j int) bool { return d.Skipped[i].Name < d.Skipped[j].Name })
}

// Drop marks a skipped executor whose entry in the config is no good
// (its token expired or was rejected): the entry is neither kept nor
// taken for an undeclared one.
func (d *Desired) Drop(name string) {
	for i := range d.Skipped {
		if d.Skipped[i].Name == name {
			d.Skipped[i].Drop = true
		}
	}
}

// Dropped reports whether a skipped executor's entry is dropped.
func (d *Desired) Dropped(name string) bool {
	for _, s := range d.Skipped {
		if s.Name == name {
			return s.Drop
		}
	}
	return false
}

// IsSkipped reports whether an executor is declared but not served.
func (d *Desired) IsSkipped(name string) bool {
	for _, s := range d.Skipped {
		if s.Name == name {
			return true
		}
	}
	return false
}

// Overlay supplies file contents instead of reading them from the prefix
// (the Ansible module's check mode plans against files it has not written).
type Overlay struct {
	Template  []byte
	Executors map[string][]byte // file name ("shell.toml") -> content
}

// LoadOptions say what Load reads and how.
type LoadOptions struct {
	Layout hostfs.Layout
	// Hostname names this host; Fleet is the run's fleet (Desired.Fleet).
	Hostname, Fleet string
	// Overlay replaces the files read from disk.
	Overlay *Overlay
	Secrets *redact.Redactor
	// PrefixMissing: the prefix need not exist (check mode on a new host).
	PrefixMissing bool
	// Tolerant skips an executor whose file is invalid (Desired.Skipped)
	// rather than failing the load; the template must be valid either way.
	Tolerant bool
}

// Load reads and validates the template and executor files.
func Load(ctx context.Context, lo LoadOptions) (*Desired, error) {
	l, hostname, ov, sec, prefixMissing, tolerant := lo.Layout, lo.Hostname, lo.Overlay, lo.Secrets, lo.PrefixMissing, lo.Tolerant
	if err := ValidateNames(hostname, l.Instance); err != nil {
		return nil, err
	}
	if !prefixMissing {
		if err := hostfs.CheckPrivate(l.Prefix, l.Prefix, "prefix directory"); err != nil {
			return nil, err
		}
	}
	tplName := l.Rel(l.TemplatePath())
	var tplData []byte
	if ov != nil && ov.Template != nil {
		tplData = ov.Template
	} else {
		if err := hostfs.CheckPrivate(l.TemplatePath(), tplName, "template"); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, &input.Error{File: tplName, Msg: "template does not exist", Err: fs.ErrNotExist,
					Fix: "create it with the global settings and a [[client_configs]] entry (see docs/reference/files.md)"}
			}
			return nil, err
		}
		var err error
		if tplData, err = hostfs.ReadTrusted(l.TemplatePath(), tplName, "template", true); err != nil {
			return nil, err
		}
	}
	d := &Desired{Layout: l, Hostname: hostname, Fleet: lo.Fleet}
	if err := d.ParseTemplate(tplName, tplData, sec); err != nil {
		return nil, err
	}
	files, err := executorFiles(l, ov, d, tolerant)
	if err != nil {
		return nil, err
	}
	if err := d.loadExecutors(ctx, files, tolerant); err != nil {
		return nil, err
	}
	sort.Slice(d.Executors, func(i, j int) bool { return d.Executors[i].Name < d.Executors[j].Name })
	return d, nil
}

type execFile struct {
	name string // stem
	rel  string // path for messages
	path string // on disk ("" when the content comes from an overlay)
	data []byte
	// plain is true for a regular file (not a link) in a folder known to be
	// inside the prefix: no need to resolve links.
	plain bool
}

// executorFiles lists the executor files and checks their names; the
// contents are read later, in parallel.
func executorFiles(l hostfs.Layout, ov *Overlay, d *Desired, tolerant bool) ([]execFile, error) {
	dir := l.ExecutorDir()
	relDir := l.Rel(dir)
	var names []string
	contents := map[string][]byte{}
	plain := map[string]bool{}
	if ov != nil && ov.Executors != nil {
		for fn, data := range ov.Executors {
			names = append(names, fn)
			contents[fn] = data
		}
	} else {
		if err := hostfs.CheckPrivate(dir, relDir, "executor folder"); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, input.Errorf(relDir, "", "executor folder does not exist").WithFix("create it (mkdir -m 700 %s) and add one file per executor, e.g. shell.toml", dir)
			}
			return nil, err
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			return nil, input.Errorf(relDir, "", "cannot list executor folder: %v", hostfs.UnwrapPathErr(err))
		}
		dirInside := false
		if fi, err := os.Lstat(dir); err == nil && fi.Mode().IsDir() {
			dirInside = true // a real folder in the prefix, not a link elsewhere
		}
		for _, de := range entries {
			fn := de.Name()
			if strings.HasPrefix(fn, ".") || ExecutorFileExt(fn) == "" {
				continue // editor backups, READMEs and the like
			}
			names = append(names, fn)
			if dirInside && de.Type().IsRegular() {
				plain[fn] = true
			}
		}
	}
	sort.Strings(names)
	byStem := map[string]string{}
	var out []execFile
	var skipped []Skipped
	for _, fn := range names {
		ext := ExecutorFileExt(fn)
		rel := filepath.Join(relDir, fn)
		if ext == "" {
			return nil, input.Errorf(rel, "", "executor files must end in .toml, .yaml or .yml")
		}
		stem := strings.TrimSuffix(fn, ext)
		var bad error
		if other, dup := byStem[stem]; dup {
			bad = input.Errorf(rel, "", "executor %q is also defined by %s", stem, filepath.Join(relDir, other)).WithFix("keep one of the two files")
		} else if err := ValidateExecutorName(stem); err != nil {
			bad = input.Errorf(rel, "", "file name %v", err).WithFix("rename the file")
		}
		if bad != nil && !tolerant {
			return nil, bad
		}
		if bad != nil {
			skipped = append(skipped, Skipped{Name: stem, File: rel, Reason: SkipInvalid, Err: bad})
			continue
		}
		byStem[stem] = fn
		f := execFile{name: stem, rel: rel, plain: plain[fn]}
		if data, ok := contents[fn]; ok {
			f.data = data
		} else {
			f.path = filepath.Join(dir, fn)
		}
		out = append(out, f)
	}
	d.Skipped = append(d.Skipped, skipped...)
	if len(out) == 0 && len(skipped) == 0 {
		return nil, &input.Error{File: relDir, Msg: "no executor files (*.toml, *.yaml, *.yml) in the executor folder",
			Fix: "add one per executor, or unregister the instance:", FixOption: input.Unregister}
	}
	return out, nil
}

// readExecutorFile reads one executor file, refusing links that leave the prefix.
func readExecutorFile(prefixReal, prefix string, f execFile) ([]byte, error) {
	if f.path == "" {
		return f.data, nil
	}
	if f.plain {
		return hostfs.ReadTrusted(f.path, f.rel, "executor file", false)
	}
	real, err := filepath.EvalSymlinks(f.path)
	if err != nil {
		return nil, input.Errorf(f.rel, "", "cannot be read: %v", hostfs.UnwrapPathErr(err))
	}
	if r, err := filepath.Rel(prefixReal, real); err != nil || r == ".." || strings.HasPrefix(r, "../") {
		return nil, input.Errorf(f.rel, "", "is a symbolic link to %s, outside the prefix %s", real, prefix).WithFix("copy the file into the prefix instead")
	}
	return hostfs.ReadTrusted(real, f.rel, "executor file", false)
}

// loadExecutors reads and parses the executor files on every core; the
// error reported is the first in file-name order, so it does not depend on
// scheduling.
func (d *Desired) loadExecutors(ctx context.Context, files []execFile, tolerant bool) error {
	prefixReal, err := filepath.EvalSymlinks(d.Layout.Prefix)
	if err != nil {
		prefixReal = d.Layout.Prefix
	}
	execs := make([]*Executor, len(files))
	errs := make([]error, len(files))
	_ = fanout.Each(ctx, len(files), runtime.GOMAXPROCS(0), func(i int) error {
		data, err := readExecutorFile(prefixReal, d.Layout.Prefix, files[i])
		if err == nil {
			execs[i], err = d.parseExecutor(files[i].name, files[i].rel, data)
		}
		errs[i] = err
		return nil
	})
	if err := ctx.Err(); err != nil {
		return err
	}
	for i, err := range errs {
		switch {
		case err == nil:
			d.Executors = append(d.Executors, execs[i])
		case !tolerant:
			d.Executors = nil
			return err
		default:
			d.Skipped = append(d.Skipped, Skipped{Name: files[i].name, File: files[i].rel, Reason: SkipInvalid, Err: err})
		}
	}
	sort.Slice(d.Skipped, func(i, j int) bool { return d.Skipped[i].Name < d.Skipped[j].Name })
	return nil
}

// UniqueDescriptions refuses two executors with one description on one
// GitLab; tolerant, the later one (by name) is skipped.
func UniqueDescriptions(d *Desired, tolerant bool) error {
	seen := map[string]string{}
	for _, e := range append([]*Executor(nil), d.Executors...) {
		k := e.Client.Key + "\x00" + e.Description
		if other, ok := seen[k]; ok {
			err := input.Errorf(e.File, "description", "%q is also the description of executor %s on the same GitLab; descriptions identify runners", e.Description, other).
				WithFix("make them unique")
			if !tolerant {
				return err
			}
			d.Skip(e.Name, SkipInvalid, err)
			continue
		}
		seen[k] = e.Name
	}
	return nil
}

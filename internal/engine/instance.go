package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/config"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/gitlab"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/hostfs"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/input"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/plan"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/redact"
)

// FileChange is a file of the instance a run wrote or removed (or, in
// check mode, would), with its content before and after, secrets redacted.
type FileChange struct {
	Path    string
	Before  string
	After   string
	Removed bool
}

// runDeclared is a run on an instance declared as values (Options.Declare)
// or removed for good (Options.Purge): the engine renders, checks, writes and,
// when the run fails, restores the instance's files, so the task is all
// or nothing.
func runDeclared(ctx context.Context, o Options) (*Result, error) {
	if err := o.setDefaults(); err != nil {
		return &Result{Runners: []RunnerResult{}}, err
	}
	l := hostfs.Layout{Prefix: o.Prefix, Instance: o.Instance}
	res := &Result{ConfigPath: l.ConfigPath(), Check: o.Check, Runners: []RunnerResult{}}
	o.declared.namespaces, o.declared.cached = map[string]int64{}, map[string]plan.CachedNamespace{}
	var files []*managedFile
	if o.Declare != nil {
		var err error
		if files, err = o.declaredFiles(ctx, l); err != nil {
			return res, err
		}
		o.declared.overlay = overlayOf(files)
	}
	if o.Remove == Purge {
		return purge(ctx, o, l)
	}
	// Everything the engine would refuse is refused now, before any write.
	if err := Validate(ctx, o); err != nil {
		o.Declare.Locate(l, err)
		return res, err
	}
	var j *hostfs.Journal
	before := engineFilesBefore(l)
	if o.Check {
		o.declared.prefixMayBeMissing = true
	} else {
		var err error
		if j, err = writeFiles(l, files); err != nil {
			return res, err
		}
		o.declared.overlay = nil
	}
	written := changes(files)
	res, err := reconcile(ctx, o)
	var stale *staleNamespaces
	if errors.As(err, &stale) && o.declared.reresolve == nil {
		// An id the state file cached is no longer the path it was
		// resolved from: nothing was changed; the files go back, the
		// paths are looked up again, and the task runs once more.
		if j != nil {
			if rerr := j.Restore(); rerr != nil {
				return res, fmt.Errorf("%w; restoring the files this task wrote also failed: %v", err, rerr)
			}
		}
		o.declared.reresolve = stale.keys
		return runDeclared(ctx, o)
	}
	if err != nil {
		o.Declare.Locate(l, err)
	}
	if err != nil && j != nil {
		// All or nothing: the files this task wrote go back as they were.
		if rerr := j.Restore(); rerr != nil {
			err = fmt.Errorf("%w; restoring the files this task wrote also failed: %v", err, rerr)
		}
		written = nil
		if undone, kept := before.undo(res, o.Secrets); undone {
			// A fresh host stays fresh: only a marker of a create in
			// doubt remains.
			res.Changed, res.ConfigChanged, res.After = kept, false, res.Before
		}
		if len(j.Created) > 0 && !res.Changed {
			// The task created the prefix and GitLab was not changed: what
			// the engine left in it (lock, host id) goes too.
			_ = os.RemoveAll(j.Created[0])
		}
	}
	res.Files = written
	switch {
	case err != nil && (o.Check || !res.Changed):
		res.Changed = len(written) > 0
	default:
		res.Changed = res.Changed || len(written) > 0
	}
	return res, err
}

// managedFile is a file a declared instance consists of, compared with
// the disk.
type managedFile struct {
	config.RenderedFile
	before  []byte // redacted
	changed bool
}

// declaredFiles resolves the declaration's group and project paths,
// renders its files and compares them with the disk, executor files no
// longer declared included (to be removed).
func (o Options) declaredFiles(ctx context.Context, l hostfs.Layout) ([]*managedFile, error) {
	// Nothing in the prefix is read, not even for the diff, before the
	// folders are known to be trusted.
	if err := hostfs.CheckInstanceDirs(l); err != nil {
		return nil, err
	}
	if err := o.resolveNamespaces(ctx, l); err != nil {
		return nil, err
	}
	rendered, err := o.Declare.Render(l)
	if err != nil {
		return nil, err
	}
	var files []*managedFile
	declared := map[string]bool{}
	for _, r := range rendered {
		declared[r.Executor] = true
		files = append(files, compare(r, o.Secrets))
	}
	// Declared files only: anything else in the executor folder goes. A
	// folder that is a link is not listed: nothing outside the prefix is read.
	if fi, err := os.Lstat(l.ExecutorDir()); err == nil && fi.IsDir() {
		entries, _ := os.ReadDir(l.ExecutorDir())
		for _, e := range entries {
			n := e.Name()
			if e.IsDir() || strings.HasPrefix(n, ".") || declared[n] || config.ExecutorFileExt(n) == "" {
				continue
			}
			path := filepath.Join(l.ExecutorDir(), n)
			files = append(files, compare(config.RenderedFile{Path: path, Rel: l.Rel(path), Executor: n}, o.Secrets))
		}
	}
	return files, nil
}

// compare reads what the disk holds where a rendered file goes (owner
// checked first, capped, never through a link), for the diff and to know
// whether it changes.
func compare(r config.RenderedFile, sec *redact.Redactor) *managedFile {
	f := &managedFile{RenderedFile: r}
	fi, err := os.Lstat(r.Path)
	switch {
	case err != nil:
		f.changed = r.Data != nil
	case !fi.Mode().IsRegular():
		// A link or anything else is replaced, never followed: its target
		// may be outside the prefix.
		f.changed = true
		f.before = []byte("(" + fi.Mode().Type().String() + ", not read)\n")
	default:
		old, err := hostfs.ReadTrusted(r.Path, r.Rel, "file", false)
		if err != nil {
			f.changed, f.before = true, []byte("(not read: "+err.Error()+")\n")
			break
		}
		f.before = []byte(redact.File(r.Path, sec.Redact(string(old))))
		f.changed = r.Data == nil || !bytes.Equal(old, r.Data) || fi.Mode().Perm() != 0o600
	}
	return f
}

func overlayOf(files []*managedFile) *config.Overlay {
	ov := &config.Overlay{Executors: map[string][]byte{}}
	for _, f := range files {
		switch {
		case f.Executor == "":
			ov.Template = f.Data
		case f.Data != nil:
			ov.Executors[f.Executor] = f.Data
		}
	}
	return ov
}

func changes(files []*managedFile) []FileChange {
	var out []FileChange
	for _, f := range files {
		if f.changed {
			out = append(out, FileChange{Path: f.Path, Before: string(f.before), After: string(f.Redacted), Removed: f.Data == nil})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// writeFiles lays out the prefix (0700 folders, 0600 files), writing only
// what changed and removing undeclared executor files. On a failure it
// puts back what it wrote before returning.
func writeFiles(l hostfs.Layout, files []*managedFile) (j *hostfs.Journal, err error) {
	j = &hostfs.Journal{}
	defer func() {
		if err != nil {
			if rerr := j.Restore(); rerr != nil {
				err = fmt.Errorf("%w; restoring the files this task wrote also failed: %v", err, rerr)
			}
		}
	}()
	if err := j.MakeDirs(l.ExecutorDir()); err != nil {
		return j, err
	}
	if err := hostfs.CheckPrivate(l.Prefix, l.Prefix, "prefix directory"); err != nil {
		return j, err
	}
	if err := hostfs.CheckPrivate(l.ExecutorDir(), l.Rel(l.ExecutorDir()), "executor folder"); err != nil {
		return j, err
	}
	for _, f := range files {
		if f.changed {
			if err := j.Write(f.Path, f.Data); err != nil {
				return j, err
			}
		}
	}
	return j, nil
}

// purge unregisters the instance's runners, then removes everything the
// instance has under the prefix: template (it holds the PAT), executor
// files and folder, config, state file and marker. When GitLab refuses,
// the template stays so that the run can be made again.
func purge(ctx context.Context, o Options, l hostfs.Layout) (*Result, error) {
	res := &Result{ConfigPath: l.ConfigPath(), Check: o.Check, Runners: []RunnerResult{}}
	if o.declared.overlay != nil {
		o.declared.overlay = &config.Overlay{Template: o.declared.overlay.Template}
		if err := Validate(ctx, o); err != nil {
			o.Declare.Locate(l, err)
			return res, err
		}
	}
	if _, err := os.Lstat(o.Prefix); errors.Is(err, os.ErrNotExist) {
		return res, nil
	}
	if err := hostfs.CheckInstanceDirs(l); err != nil {
		return res, err
	}
	leftovers := instanceFiles(l, o.Secrets)
	res, err := reconcile(ctx, o)
	if err != nil {
		o.Declare.Locate(l, err)
		return res, err
	}
	for _, f := range leftovers {
		res.Files = append(res.Files, FileChange{Path: f.Path, Before: string(f.before), Removed: true})
	}
	res.Changed = res.Changed || len(leftovers) > 0
	if o.Check {
		return res, nil
	}
	var errs []error
	for _, f := range leftovers {
		if err := os.Remove(f.Path); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("removing %s: %w", f.Path, err))
		}
	}
	if fi, err := os.Lstat(l.ExecutorDir()); err == nil && fi.IsDir() {
		if err := os.Remove(l.ExecutorDir()); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("removing the executor folder %s (files the tool did not write remain in it?): %w", l.ExecutorDir(), err))
		} else {
			res.Changed = true
		}
	}
	// The lock file goes last, removed while held; a run that holds it
	// now (started since) keeps it.
	var busy *hostfs.BusyError
	if err := hostfs.RemoveLock(ctx, l, 2*time.Second); err != nil && !errors.As(err, &busy) {
		errs = append(errs, err)
	}
	return res, errors.Join(errs...)
}

// instanceFiles are the files of the instance a purge removes besides
// what unregistering removes: template, executor files (any name, links
// included: only the link goes), marker; with their redacted contents.
func instanceFiles(l hostfs.Layout, sec *redact.Redactor) []*managedFile {
	var out []*managedFile
	add := func(path string) {
		if _, err := os.Lstat(path); err == nil {
			f := compare(config.RenderedFile{Path: path, Rel: l.Rel(path)}, sec)
			out = append(out, f)
		}
	}
	add(l.TemplatePath())
	if fi, err := os.Lstat(l.ExecutorDir()); err == nil && fi.IsDir() {
		entries, _ := os.ReadDir(l.ExecutorDir())
		for _, e := range entries {
			if !e.IsDir() {
				add(filepath.Join(l.ExecutorDir(), e.Name()))
			}
		}
	}
	add(l.IncompletePath())
	return out
}

// resolveNamespaces turns the declared clients' group and project paths
// into the numeric ids the template takes: once per path, kept in the
// state file, so a steady state sends no such request.
func (o Options) resolveNamespaces(ctx context.Context, l hostfs.Layout) error {
	todo := o.Declare.Namespaces()
	if len(todo) == 0 {
		return nil
	}
	st, _, err := hostfs.ReadState(l)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		st = hostfs.NewState()
	}
	for _, ns := range todo {
		c := o.Declare.Clients[ns.Client]
		url, _ := c.Values["url"].(string)
		key := hostfs.NamespaceKey(url, ns.Kind, ns.Path)
		if id, ok := st.Namespaces[key]; ok && o.declared.reresolve[key] == "" {
			// Checked against GitLab before a runner is registered in it.
			ck, _ := gitlab.NormalizeURL(url)
			o.declared.cached[key] = plan.CachedNamespace{Key: key, ClientKey: ck, Kind: ns.Kind, Path: ns.Path, ID: id}
			o.Declare.Resolve(ns, id)
			continue
		}
		str := func(k string) string { s, _ := c.Values[k].(string); return s }
		id, err := ResolveNamespace(ctx, NamespaceRequest{URL: url, PAT: str("personal_access_token"),
			PATFile: str("personal_access_token_file"), Prefix: o.Prefix, CAFile: str("tls_ca_file"),
			Kind: ns.Kind, Path: ns.Path, RequestTimeout: o.Limits.Request, Secrets: o.Secrets})
		if err != nil {
			ie := &input.Error{Option: o.Declare.Option(ns), Msg: err.Error(), Err: err}
			if inner := input.As(err); inner != nil {
				// The option is the place; what the inner error names
				// (the token file, say) stays in the message.
				what := *inner
				what.Fix, what.FixOption = "", ""
				ie.Msg, ie.Fix, ie.FixOption = what.Render(input.Neutral), inner.Fix, inner.FixOption
			}
			return ie
		}
		o.Declare.Resolve(ns, id)
		o.declared.namespaces[key] = id
	}
	return nil
}

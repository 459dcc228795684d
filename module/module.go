// Package module is the Ansible binary module gitlab_runner_auth.runner.sync:
// it reads Ansible's arguments file, optionally writes the template and
// executor files it is given, runs the core engine, and prints one JSON
// result. Secrets never reach that result.
package module

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/core"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/config"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/gitlab"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/hostfs"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/input"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/plan"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/redact"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/table"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/tags"
)

const managedHeader = "# Managed by Ansible (gitlab_runner_auth.runner.sync): edits here are replaced on the next run.\n"

// Main runs the module with the arguments file at path and prints the
// result as JSON. It returns the process exit code.
func Main(path string, stdout io.Writer) int {
	sec := redact.New()
	var result map[string]any
	data, err := os.ReadFile(path)
	if err != nil {
		result = map[string]any{"failed": true, "msg": fmt.Sprintf("cannot read the module arguments file: %v", err)}
	} else {
		result = Run(context.Background(), data, sec)
	}
	return emit(stdout, result, sec)
}

func emit(w io.Writer, result map[string]any, sec *redact.Redactor) int {
	b, err := json.Marshal(result)
	if err != nil {
		b = []byte(`{"failed": true, "msg": "cannot encode the result"}`)
	}
	_, _ = io.WriteString(w, sec.Redact(string(b))+"\n")
	if f, _ := result["failed"].(bool); f {
		return 1
	}
	return 0
}

// Run executes the module on raw arguments and returns its result.
func Run(ctx context.Context, raw []byte, sec *redact.Redactor) map[string]any {
	a, err := ParseArgs(raw)
	if err != nil {
		return map[string]any{"failed": true, "changed": false, "msg": err.Error()}
	}
	for _, c := range a.Clients {
		sec.Add(c.Secrets()...)
	}
	if a.Module == "info" {
		return runInfo(ctx, a, sec)
	}
	res, err := run(ctx, a, sec)
	if err != nil {
		res["failed"] = true
		res["msg"] = describeErr(err, a)
	}
	return res
}

// managed describes a file the module writes in declarative mode.
type managed struct {
	path     string
	data     []byte // nil: remove
	before   []byte // redacted, for the diff
	after    []byte // redacted, for the diff
	exists   bool
	changed  bool
	rel      string
	executor string // file name within the executor folder
}

func (a *Args) options(sec *redact.Redactor) core.Options {
	return core.Options{
		Prefix: a.Prefix, Instance: a.Instance, Hostname: a.Hostname, Check: a.CheckMode, Refresh: a.Refresh,
		Unregister: a.State == "absent", Concurrency: a.Concurrency, Secrets: sec, Names: optionName,
		Tags: tags.Options{CaptureProgram: a.CaptureTags, SchemaFile: a.TagSchema, CaptureTimeout: a.CaptureTimeout},
		// A module run waits behind a systemd restart, but not forever.
		LockTimeout: a.LockTimeout, Timeout: a.Timeout, RequestTimeout: a.RequestTimeout,
	}
}

func run(ctx context.Context, a *Args, sec *redact.Redactor) (map[string]any, error) {
	l := hostfs.Layout{Prefix: a.Prefix, Instance: a.Instance}
	out := map[string]any{"changed": false, "config_path": l.ConfigPath(), "runners": []map[string]any{}}
	opts := a.options(sec)
	if a.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, a.Timeout)
		defer cancel()
	}
	if err := resolveNamespaces(ctx, a, sec); err != nil {
		return out, err
	}

	var files []*managed
	var ov *config.Overlay
	if a.HasClients || a.HasExecutors || a.HasGlobal {
		var err error
		if files, err = plannedFiles(l, a, sec); err != nil {
			return out, err
		}
		ov = &config.Overlay{Executors: map[string][]byte{}}
		for _, f := range files {
			switch {
			case f.executor == "":
				ov.Template = f.data
			case f.data != nil:
				ov.Executors[f.executor] = f.data
			}
		}
	}
	if a.State == "absent" {
		return runAbsent(ctx, a, l, opts, ov, out, sec)
	}
	if ov != nil {
		// Everything core would refuse is refused now, before any write.
		vo := opts
		vo.Overlay = ov
		if err := core.Validate(ctx, vo); err != nil {
			return out, err
		}
	}
	var j *journal
	if ov != nil {
		if a.CheckMode {
			opts.Overlay = ov
			opts.PrefixMayBeMissing = true
		} else {
			var err error
			if j, err = writeFiles(l, files); err != nil {
				return out, err
			}
		}
	}
	filesChanged := false
	for _, f := range files {
		filesChanged = filesChanged || f.changed
	}

	res, err := core.Run(ctx, opts)
	if err != nil && j != nil {
		// All or nothing: the files this task wrote go back as they were.
		if rerr := j.restore(); rerr != nil {
			err = fmt.Errorf("%w; restoring the files this task wrote also failed: %v", err, rerr)
		}
		filesChanged = false
		if len(j.dirs) > 0 && (res == nil || !res.Changed) {
			// The task created the prefix and GitLab was not changed: what
			// the engine left in it (lock, host id) goes too.
			_ = os.RemoveAll(j.dirs[0])
		}
	}
	if res != nil {
		report(out, res, a)
		out["changed"] = res.Changed || filesChanged
		if err != nil && (a.CheckMode || !res.Changed) {
			out["changed"] = filesChanged
		}
		if a.Diff {
			out["diff"] = diffs(l, files, res, a.State)
		}
	}
	return out, err
}

// report copies the engine's result into the module's.
func report(out map[string]any, res *core.Result, a *Args) {
	b, _ := json.Marshal(res)
	_ = json.Unmarshal(b, &out)
	out["msg"] = summary(res, a.CheckMode)
}

// runAbsent unregisters the instance's runners, then removes everything
// the instance has under the prefix: template (it holds the PAT),
// executor files and folder, config, state file and marker. When GitLab
// refuses, the template stays so that the task can be run again.
func runAbsent(ctx context.Context, a *Args, l hostfs.Layout, opts core.Options, ov *config.Overlay, out map[string]any, sec *redact.Redactor) (map[string]any, error) {
	if ov != nil {
		opts.Overlay = &config.Overlay{Template: ov.Template}
		if err := core.Validate(ctx, opts); err != nil {
			return out, err
		}
	}
	if _, err := os.Lstat(a.Prefix); errors.Is(err, os.ErrNotExist) {
		out["msg"] = "no runners: the prefix does not exist"
		if a.Diff {
			out["diff"] = []map[string]any{}
		}
		return out, nil
	}
	leftovers := instanceFiles(l, sec)
	res, err := core.Run(ctx, opts)
	if res == nil {
		return out, err
	}
	report(out, res, a)
	out["changed"] = res.Changed || len(leftovers) > 0
	if err != nil {
		out["changed"] = !a.CheckMode && res.Changed
		return out, err
	}
	if a.Diff {
		d := diffs(l, nil, res, a.State)
		for _, f := range leftovers {
			d = append(d, map[string]any{"before_header": f.path, "after_header": f.path + " (removed)",
				"before": string(f.before), "after": ""})
		}
		out["diff"] = d
	}
	if a.CheckMode {
		return out, nil
	}
	var errs []error
	for _, f := range leftovers {
		if err := os.Remove(f.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("removing %s: %w", f.path, err))
		}
	}
	if fi, err := os.Lstat(l.ExecutorDir()); err == nil && fi.IsDir() {
		if err := os.Remove(l.ExecutorDir()); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("removing the executor folder %s (files not written by this module remain in it?): %w", l.ExecutorDir(), err))
		} else {
			out["changed"] = true
		}
	}
	return out, errors.Join(errs...)
}

// instanceFiles are the files of the instance that absent removes besides
// what core removes: template, executor files (any name, links included:
// only the link goes), marker; with their redacted contents for the diff.
func instanceFiles(l hostfs.Layout, sec *redact.Redactor) []*managed {
	var out []*managed
	add := func(path, rel string) {
		fi, err := os.Lstat(path)
		if err != nil {
			return
		}
		f := &managed{path: path, rel: rel, exists: true, changed: true}
		if fi.Mode().IsRegular() {
			if b, err := os.ReadFile(path); err == nil {
				f.before = []byte(redact.Keys(sec.Redact(string(b))))
			}
		}
		out = append(out, f)
	}
	add(l.TemplatePath(), "config.template."+l.Instance+".toml")
	if fi, err := os.Lstat(l.ExecutorDir()); err == nil && fi.IsDir() {
		entries, _ := os.ReadDir(l.ExecutorDir())
		for _, e := range entries {
			if !e.IsDir() {
				add(filepath.Join(l.ExecutorDir(), e.Name()), filepath.Join(l.Instance, e.Name()))
			}
		}
	}
	add(l.IncompletePath(), filepath.Base(l.IncompletePath()))
	return out
}

// resolveNamespaces turns clients' group/project paths into the numeric
// ids the template takes, with one read-only request each.
func resolveNamespaces(ctx context.Context, a *Args, sec *redact.Redactor) error {
	for i := range a.Clients {
		c := &a.Clients[i]
		for _, ns := range []struct{ kind, path string }{{"group", c.Group}, {"project", c.Project}} {
			if ns.path == "" {
				continue
			}
			str := func(k string) string { s, _ := c.Values[k].(string); return s }
			id, err := core.ResolveNamespace(ctx, core.NamespaceRequest{URL: c.URL, PAT: str("personal_access_token"),
				PATFile: str("personal_access_token_file"), Prefix: a.Prefix, CAFile: str("tls_ca_file"),
				Kind: ns.kind, Path: ns.path, RequestTimeout: a.RequestTimeout, Secrets: sec})
			if err != nil {
				return argErr("clients[%d].%s: %v", i, ns.kind, err)
			}
			c.Values[ns.kind+"_id"] = id
		}
	}
	return nil
}

// describeErr renders an error with the module's option paths: a file the
// module wrote from options is named by the option it came from.
func describeErr(err error, a *Args) string {
	ie := input.As(err)
	if ie == nil {
		return err.Error()
	}
	c := *ie
	if opt, ok := optionPath(ie, a); ok {
		c.Option, c.File, c.Key = opt, "", ""
	}
	if a.HasClients {
		c.Msg = strings.ReplaceAll(c.Msg, "client_configs entry in config.template."+a.Instance+".toml", "entry of clients")
	}
	msg := c.Render(optionName)
	if ie.Error() != err.Error() {
		// Joined or wrapped: keep the other parts.
		msg = strings.Replace(err.Error(), ie.Error(), msg, 1)
	}
	return msg
}

// optionPath names the option a file and key came from, when the module
// wrote that file from its options: "clients[0].url" for the template's
// client_configs[0].url, "executors[2].url" for main/shell.toml's url, and
// a token file by the option that named it.
func optionPath(ie *input.Error, a *Args) (input.Option, bool) {
	if !a.HasClients && !a.HasExecutors {
		return "", false
	}
	file, key := ie.File, ie.Key
	for i, c := range a.Clients {
		for _, k := range []string{"personal_access_token_file", "registration_token_file", "tls_ca_file"} {
			p, _ := c.Values[k].(string)
			if p == "" {
				continue
			}
			if !filepath.IsAbs(p) {
				p = filepath.Join(a.Prefix, p)
			}
			if filepath.Clean(p) == filepath.Clean(file) || strings.HasSuffix(key, "."+k+" ("+p+")") {
				return input.Option(fmt.Sprintf("clients[%d].%s (%s)", i, k, p)), true
			}
		}
	}
	if file == "config.template."+a.Instance+".toml" {
		switch {
		case strings.HasPrefix(key, "client_configs"):
			return input.Option("clients" + strings.TrimPrefix(key, "client_configs")), true
		case key != "":
			return input.Option("global." + key), true
		}
		return "clients", true
	}
	if dir, fn := filepath.Split(file); filepath.Clean(dir) == a.Instance {
		stem := strings.TrimSuffix(fn, config.ExecutorFileExt(fn))
		for i, m := range a.Executors {
			if m["name"] == stem {
				if key != "" {
					return input.Option(fmt.Sprintf("executors[%d].%s", i, key)), true
				}
				return input.Option(fmt.Sprintf("executors[%d]", i)), true
			}
		}
	}
	return "", false
}

// runInfo is the info module: a read-only report, never a change.
func runInfo(ctx context.Context, a *Args, sec *redact.Redactor) map[string]any {
	opts := a.options(sec)
	opts.Check, opts.Unregister = true, false
	out := map[string]any{"changed": false, "runners": []any{}}
	info, err := core.Inspect(ctx, opts)
	if info != nil {
		b, _ := json.Marshal(info)
		_ = json.Unmarshal(b, &out)
		if info.Plan != nil {
			out["msg"] = summary(info.Plan, true)
			out["would_change"] = info.Plan.Changed
		}
	}
	out["changed"] = false
	if err != nil {
		out["failed"] = true
		out["msg"] = describeErr(err, a)
	}
	return out
}

func summary(res *core.Result, check bool) string {
	counts := map[plan.Action]int{}
	for _, r := range res.Runners {
		counts[r.Action]++
	}
	var parts []string
	for _, act := range []plan.Action{plan.Create, plan.Adopt, plan.Replace, plan.Update, plan.Delete, plan.Keep} {
		if n := counts[act]; n > 0 {
			verb := act.Past()
			if check {
				verb = "to " + string(act)
			}
			parts = append(parts, fmt.Sprintf("%d %s", n, verb))
		}
	}
	s := "no runners"
	if len(parts) > 0 {
		s = strings.Join(parts, ", ")
	}
	if check {
		return "check mode: " + s
	}
	return s
}

// plannedFiles renders the template and executor files from the options
// and compares them with what is on disk.
func plannedFiles(l hostfs.Layout, a *Args, sec *redact.Redactor) ([]*managed, error) {
	var files []*managed
	tpl, tplRedacted, err := renderTemplate(a)
	if err != nil {
		return nil, err
	}
	files = append(files, compare(l.TemplatePath(), "config.template."+l.Instance+".toml", "", tpl, tplRedacted, sec))
	declared := map[string]bool{}
	for _, m := range a.Executors {
		name := m["name"].(string)
		if err := config.ValidateExecutorName(name); err != nil {
			return nil, argErr("executors: %v", err)
		}
		fn := name + ".toml"
		declared[fn] = true
		body := map[string]any{}
		for k, v := range m {
			if k != "name" {
				body[k] = v
			}
		}
		t, err := table.FromPlain(body, "executors["+name+"]")
		if err != nil {
			return nil, argErr("%v", err)
		}
		data := append([]byte(managedHeader), table.EncodeTOML(t)...)
		files = append(files, compare(filepath.Join(l.ExecutorDir(), fn), filepath.Join(l.Instance, fn), fn, data, data, sec))
	}
	// Declared files only: anything else in the executor folder goes. A
	// folder that is a link is not listed: nothing outside the prefix is read.
	if fi, err := os.Lstat(l.ExecutorDir()); err != nil || !fi.IsDir() {
		return files, nil
	}
	if entries, err := os.ReadDir(l.ExecutorDir()); err == nil {
		for _, e := range entries {
			n := e.Name()
			if e.IsDir() || strings.HasPrefix(n, ".") || declared[n] || config.ExecutorFileExt(n) == "" {
				continue
			}
			f := compare(filepath.Join(l.ExecutorDir(), n), filepath.Join(l.Instance, n), n, nil, nil, sec)
			files = append(files, f)
		}
	}
	return files, nil
}

func compare(path, rel, executor string, data, redacted []byte, sec *redact.Redactor) *managed {
	f := &managed{path: path, rel: rel, executor: executor, data: data, after: []byte(redact.Keys(string(redacted)))}
	if fi, err := os.Lstat(path); err == nil && !fi.Mode().IsRegular() {
		// A link or anything else is replaced, never followed: its target
		// may be outside the prefix.
		f.exists, f.changed = true, true
		f.before = []byte("(" + fi.Mode().Type().String() + ", not read)\n")
		return f
	}
	old, err := os.ReadFile(path)
	if err == nil {
		f.exists = true
		f.before = []byte(redact.Keys(sec.Redact(string(old))))
		f.changed = data == nil || !bytes.Equal(old, data)
		if fi, err := os.Stat(path); err == nil && data != nil && fi.Mode().Perm() != 0o600 {
			f.changed = true
		}
	} else {
		f.changed = data != nil
	}
	return f
}

func renderTemplate(a *Args) ([]byte, []byte, error) {
	g := a.Global
	if g == nil {
		g = map[string]any{}
	}
	build := func(masked bool) ([]byte, error) {
		t, err := table.FromPlain(g, "global")
		if err != nil {
			return nil, argErr("%v", err)
		}
		var list []any
		for _, c := range a.Clients {
			ct := table.New()
			for _, k := range config.ClientKeys {
				v, ok := c.Values[k]
				if !ok {
					continue
				}
				if masked && redact.IsSecretKey(k) {
					v = redact.Placeholder
				}
				ct.Set(k, v)
			}
			list = append(list, ct)
		}
		if len(list) > 0 {
			t.Set("client_configs", list)
		}
		return append([]byte(managedHeader), table.EncodeTOML(t)...), nil
	}
	data, err := build(false)
	if err != nil {
		return nil, nil, err
	}
	red, _ := build(true)
	return data, red, nil
}

// journal records what writeFiles changed, so a failed task can put every
// file back as it was, byte for byte.
type journal struct {
	dirs  []string // created, removed again on restore (if empty)
	files []saved
}

type saved struct {
	path    string
	existed bool
	data    []byte
	mode    os.FileMode
}

// restore puts back the previous bytes and modes of every file written,
// in reverse order, and removes the folders the task created.
func (j *journal) restore() error {
	var errs []error
	for i := len(j.files) - 1; i >= 0; i-- {
		s := j.files[i]
		if !s.existed {
			if err := os.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
			continue
		}
		if _, err := hostfs.WriteAtomic(s.path, s.data); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := os.Chmod(s.path, s.mode); err != nil {
			errs = append(errs, err)
		}
	}
	for i := len(j.dirs) - 1; i >= 0; i-- {
		_ = os.Remove(j.dirs[i])
	}
	return errors.Join(errs...)
}

// writeFiles lays out the prefix (0700 folders, 0600 files), writing only
// what changed and removing undeclared executor files. It records what it
// does; on a failure it undoes it before returning.
func writeFiles(l hostfs.Layout, files []*managed) (j *journal, err error) {
	j = &journal{}
	defer func() {
		if err != nil {
			if rerr := j.restore(); rerr != nil {
				err = fmt.Errorf("%w; restoring the files this task wrote also failed: %v", err, rerr)
			}
		}
	}()
	var missing []string
	for dir := l.ExecutorDir(); ; dir = filepath.Dir(dir) {
		if _, err := os.Lstat(dir); !errors.Is(err, os.ErrNotExist) || dir == filepath.Dir(dir) {
			break
		}
		missing = append(missing, dir)
	}
	for i := len(missing) - 1; i >= 0; i-- {
		if err := os.Mkdir(missing[i], 0o700); err != nil {
			return j, fmt.Errorf("creating %s: %w", missing[i], err)
		}
		j.dirs = append(j.dirs, missing[i])
		if err := os.Chmod(missing[i], 0o700); err != nil {
			return j, err
		}
	}
	if err := hostfs.CheckPrivate(l.Prefix, "prefix directory"); err != nil {
		return j, err
	}
	if err := hostfs.CheckPrivate(l.ExecutorDir(), "executor folder"); err != nil {
		return j, err
	}
	for _, f := range files {
		if !f.changed {
			continue
		}
		sv := saved{path: f.path}
		if fi, err := os.Lstat(f.path); err == nil {
			if !fi.Mode().IsRegular() {
				return j, fmt.Errorf("%s is not a regular file (a link?); remove it by hand", f.path)
			}
			if sv.data, err = os.ReadFile(f.path); err != nil {
				return j, fmt.Errorf("reading %s: %w", f.path, err)
			}
			sv.existed, sv.mode = true, fi.Mode().Perm()
		}
		j.files = append(j.files, sv)
		if f.data == nil {
			if err := os.Remove(f.path); err != nil && !errors.Is(err, os.ErrNotExist) {
				return j, fmt.Errorf("removing %s: %w", f.path, err)
			}
			continue
		}
		if _, err := hostfs.WriteAtomic(f.path, f.data); err != nil {
			return j, fmt.Errorf("writing %s: %w", f.path, err)
		}
	}
	return j, nil
}

// diffs returns Ansible's list of before/after pairs: the managed files
// that change and the generated config, all with secrets redacted.
func diffs(l hostfs.Layout, files []*managed, res *core.Result, state string) []map[string]any {
	out := []map[string]any{}
	sort.SliceStable(files, func(i, j int) bool { return files[i].rel < files[j].rel })
	if state == "present" {
		for _, f := range files {
			if !f.changed {
				continue
			}
			out = append(out, map[string]any{
				"before_header": f.path, "after_header": f.path,
				"before": string(f.before), "after": string(f.after),
			})
		}
	}
	if res.Before != res.After {
		out = append(out, map[string]any{
			"before_header": l.ConfigPath(), "after_header": l.ConfigPath(),
			"before": redact.Keys(res.Before), "after": redact.Keys(res.After),
		})
	}
	// GitLab-side changes, with their values.
	for _, r := range res.Runners {
		if r.SettingsAfter == nil {
			continue
		}
		before := "(unknown: not read from GitLab)\n"
		if r.SettingsBefore != nil {
			before = settingsText(*r.SettingsBefore)
		}
		h := fmt.Sprintf("GitLab runner %s (id %d)", r.Name, r.ID)
		out = append(out, map[string]any{"before_header": h, "after_header": h,
			"before": before, "after": settingsText(*r.SettingsAfter)})
	}
	return out
}

// settingsText renders GitLab-side settings as YAML-like lines.
func settingsText(s gitlab.Settings) string {
	var b strings.Builder
	q := func(v string) string { b, _ := json.Marshal(v); return string(b) }
	tags := make([]string, len(s.TagList))
	for i, t := range s.TagList {
		tags[i] = q(t)
	}
	fmt.Fprintf(&b, "description: %s\n", q(s.Description))
	fmt.Fprintf(&b, "tag_list: [%s]\n", strings.Join(tags, ", "))
	fmt.Fprintf(&b, "run_untagged: %t\nlocked: %t\npaused: %t\n", s.RunUntagged, s.Locked, s.Paused)
	fmt.Fprintf(&b, "access_level: %s\n", q(s.AccessLevel))
	if s.MaximumTimeout != 0 {
		fmt.Fprintf(&b, "maximum_timeout: %d\n", s.MaximumTimeout)
	}
	fmt.Fprintf(&b, "maintenance_note: %s\n", q(s.MaintenanceNote))
	return b.String()
}

// optionName names a core option as this module's option.
func optionName(o input.Option) string {
	if o == input.Unregister {
		return "state: absent"
	}
	return string(o)
}

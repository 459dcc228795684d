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
	"time"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/core"
)

const managedHeader = "# Managed by Ansible (gitlab_runner_auth.runner.sync): edits here are replaced on the next run.\n"

// Main runs the module with the arguments file at path and prints the
// result as JSON. It returns the process exit code.
func Main(path string, stdout io.Writer) int {
	sec := core.NewRedactor()
	var result map[string]any
	data, err := os.ReadFile(path)
	if err != nil {
		result = map[string]any{"failed": true, "msg": fmt.Sprintf("cannot read the module arguments file: %v", err)}
	} else {
		result = Run(context.Background(), data, sec)
	}
	return emit(stdout, result, sec)
}

func emit(w io.Writer, result map[string]any, sec *core.Redactor) int {
	b, err := json.Marshal(result)
	if err != nil {
		b = []byte(`{"failed": true, "msg": "cannot encode the result"}`)
	}
	_, _ = io.WriteString(w, core.NameOptions(sec.Redact(string(b)), func(o core.Option) string { return string(o) })+"\n")
	if f, _ := result["failed"].(bool); f {
		return 1
	}
	return 0
}

// Run executes the module on raw arguments and returns its result.
func Run(ctx context.Context, raw []byte, sec *core.Redactor) map[string]any {
	a, err := ParseArgs(raw)
	if err != nil {
		return map[string]any{"failed": true, "changed": false, "msg": err.Error()}
	}
	for _, c := range a.Clients {
		sec.Add(c.Secrets()...)
	}
	res, err := run(ctx, a, sec)
	if err != nil {
		res["failed"] = true
		res["msg"] = err.Error()
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

func run(ctx context.Context, a *Args, sec *core.Redactor) (map[string]any, error) {
	l := core.Layout{Prefix: a.Prefix, Instance: a.Instance}
	out := map[string]any{"changed": false, "config_path": l.ConfigPath(), "runners": []map[string]any{}}
	opts := core.Options{
		Prefix: a.Prefix, Instance: a.Instance, Hostname: a.Hostname, Check: a.CheckMode, Refresh: a.Refresh,
		Unregister: a.State == "absent", Concurrency: a.Concurrency, Secrets: sec,
		Tags: core.TagOptions{CaptureProgram: a.CaptureTags, SchemaFile: a.TagSchema},
		// A module run waits behind a systemd restart, but not forever.
		LockTimeout: 120 * time.Second,
		Timeout:     5 * time.Minute,
	}

	var files []*managed
	if a.HasClients || a.HasExecutors || a.HasGlobal {
		var err error
		if files, err = plannedFiles(l, a, sec); err != nil {
			return out, err
		}
		ov := &core.Overlay{Executors: map[string][]byte{}}
		for _, f := range files {
			switch {
			case f.executor == "":
				ov.Template = f.data
			case f.data != nil:
				ov.Executors[f.executor] = f.data
			}
		}
		if a.CheckMode {
			opts.Overlay = ov
			opts.PrefixMayBeMissing = true
		} else if a.State == "present" {
			if err := writeFiles(l, files); err != nil {
				return out, err
			}
		} else {
			opts.Overlay = &core.Overlay{Template: ov.Template}
		}
	}
	filesChanged := false
	for _, f := range files {
		filesChanged = filesChanged || f.changed
	}
	if a.State == "absent" {
		filesChanged = false // absent leaves the declared files alone
	}

	res, err := core.Run(ctx, opts)
	if res != nil {
		b, _ := json.Marshal(res)
		_ = json.Unmarshal(b, &out)
		out["changed"] = res.Changed || filesChanged
		out["msg"] = summary(res, a.CheckMode)
		if a.Diff {
			out["diff"] = diffs(l, files, res, a.State)
		}
	}
	return out, err
}

func summary(res *core.Result, check bool) string {
	counts := map[core.Action]int{}
	for _, r := range res.Runners {
		counts[r.Action]++
	}
	var parts []string
	for _, act := range []core.Action{core.Create, core.Adopt, core.Replace, core.Update, core.Delete, core.Keep} {
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
func plannedFiles(l core.Layout, a *Args, sec *core.Redactor) ([]*managed, error) {
	var files []*managed
	tpl, tplRedacted, err := renderTemplate(a)
	if err != nil {
		return nil, err
	}
	files = append(files, compare(l.TemplatePath(), "config.template."+l.Instance+".toml", "", tpl, tplRedacted, sec))
	declared := map[string]bool{}
	for _, m := range a.Executors {
		name := m["name"].(string)
		if strings.ContainsAny(name, "/\\") || strings.HasPrefix(name, ".") {
			return nil, argErr("executors: name %q must be a plain file name (no '/' and no leading '.')", name)
		}
		fn := name + ".toml"
		declared[fn] = true
		body := map[string]any{}
		for k, v := range m {
			if k != "name" {
				body[k] = v
			}
		}
		t, err := core.TableFromPlain(body, "executors["+name+"]")
		if err != nil {
			return nil, argErr("%v", err)
		}
		data := append([]byte(managedHeader), core.EncodeTOML(t)...)
		files = append(files, compare(filepath.Join(l.ExecutorDir(), fn), filepath.Join(l.Instance, fn), fn, data, data, sec))
	}
	// Declared files only: anything else in the executor folder goes.
	if entries, err := os.ReadDir(l.ExecutorDir()); err == nil {
		for _, e := range entries {
			n := e.Name()
			if e.IsDir() || strings.HasPrefix(n, ".") || declared[n] || core.ExecutorFileExt(n) == "" {
				continue
			}
			f := compare(filepath.Join(l.ExecutorDir(), n), filepath.Join(l.Instance, n), n, nil, nil, sec)
			files = append(files, f)
		}
	}
	return files, nil
}

func compare(path, rel, executor string, data, redacted []byte, sec *core.Redactor) *managed {
	f := &managed{path: path, rel: rel, executor: executor, data: data, after: redacted}
	old, err := os.ReadFile(path)
	if err == nil {
		f.exists = true
		f.before = []byte(sec.Redact(string(old)))
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
	build := func(redact bool) ([]byte, error) {
		t, err := core.TableFromPlain(g, "global")
		if err != nil {
			return nil, argErr("%v", err)
		}
		var list []any
		for _, c := range a.Clients {
			ct := core.NewTable()
			for _, k := range core.ClientKeys {
				v, ok := c.Values[k]
				if !ok {
					continue
				}
				if redact && core.IsSecretKey(k) {
					v = core.RedactedToken
				}
				ct.Set(k, v)
			}
			list = append(list, ct)
		}
		if len(list) > 0 {
			t.Set("client_configs", list)
		}
		return append([]byte(managedHeader), core.EncodeTOML(t)...), nil
	}
	data, err := build(false)
	if err != nil {
		return nil, nil, err
	}
	red, _ := build(true)
	return data, red, nil
}

// writeFiles lays out the prefix (0700 folders, 0600 files), writing only
// what changed and removing undeclared executor files.
func writeFiles(l core.Layout, files []*managed) error {
	for _, dir := range []string{l.Prefix, l.ExecutorDir()} {
		if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return fmt.Errorf("creating %s: %w", dir, err)
			}
			if err := os.Chmod(dir, 0o700); err != nil {
				return err
			}
		}
	}
	if err := core.CheckPrivate(l.Prefix, "prefix directory"); err != nil {
		return err
	}
	if err := core.CheckPrivate(l.ExecutorDir(), "executor folder"); err != nil {
		return err
	}
	for _, f := range files {
		if !f.changed {
			continue
		}
		if f.data == nil {
			if err := os.Remove(f.path); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("removing %s: %w", f.path, err)
			}
			continue
		}
		if _, err := core.WriteFileAtomic(f.path, f.data); err != nil {
			return fmt.Errorf("writing %s: %w", f.path, err)
		}
	}
	return nil
}

// diffs returns Ansible's list of before/after pairs: the managed files
// that change and the generated config, all with secrets redacted.
func diffs(l core.Layout, files []*managed, res *core.Result, state string) []map[string]any {
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
			"before": res.Before, "after": res.After,
		})
	}
	return out
}

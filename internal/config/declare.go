package config

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/hostfs"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/input"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/redact"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/table"
)

// Declaration is an instance declared as values — the Ansible module's
// global, clients and executors options — instead of files. The engine
// renders the template and executor files from it, and names every value
// by the option it came from.
type Declaration struct {
	Global  map[string]any
	Clients []DeclaredClient
	// Executors are executor files as values: "name" and the keys of an
	// executor file.
	Executors []map[string]any
	// Fleet is written into every client entry that names no fleet of its
	// own, so that a later start of the service, which reads the files,
	// marks the runners for the same fleet.
	Fleet string
}

// DeclaredClient is one client_configs entry as values.
type DeclaredClient struct {
	Values map[string]any
	// Group and Project are full paths ("ops/ci") to be resolved to
	// group_id / project_id (see Namespace).
	Group, Project string
}

// Namespace is a group or project path a client names, to be resolved to
// its id.
type Namespace struct {
	Client     int // index in Clients
	Kind, Path string
}

// Namespaces lists the paths to resolve.
func (d *Declaration) Namespaces() []Namespace {
	var out []Namespace
	for i, c := range d.Clients {
		if c.Group != "" {
			out = append(out, Namespace{i, "group", c.Group})
		}
		if c.Project != "" {
			out = append(out, Namespace{i, "project", c.Project})
		}
	}
	return out
}

// Resolve sets the id of a namespace path.
func (d *Declaration) Resolve(ns Namespace, id int64) {
	d.Clients[ns.Client].Values[ns.Kind+"_id"] = id
}

// Option names the option of one of the declared values.
func (d *Declaration) Option(ns Namespace) input.Option {
	return input.Option(fmt.Sprintf("clients[%d].%s", ns.Client, ns.Kind))
}

// managedHeader opens every file written from a declaration.
const managedHeader = "# Managed by Ansible (gitlab_runner_auth.runner.sync): edits here are replaced on the next run.\n"

// RenderedFile is a file of the instance rendered from a declaration.
type RenderedFile struct {
	// Path is where it goes; Rel names it in messages (relative to the prefix).
	Path, Rel string
	// Data is its content; Redacted the same with secrets replaced.
	Data, Redacted []byte
	// Executor is its name in the executor folder ("" for the template).
	Executor string
}

// Render gives the template and one file per executor.
func (d *Declaration) Render(l hostfs.Layout) ([]RenderedFile, error) {
	tpl, err := d.template(false)
	if err != nil {
		return nil, err
	}
	red, _ := d.template(true)
	files := []RenderedFile{{Path: l.TemplatePath(), Rel: l.Rel(l.TemplatePath()), Data: tpl, Redacted: red}}
	for i, m := range d.Executors {
		name, _ := m["name"].(string)
		if err := ValidateExecutorName(name); err != nil {
			return nil, &input.Error{Option: input.Option(fmt.Sprintf("executors[%d].name", i)), Msg: err.Error()}
		}
		body := map[string]any{}
		for k, v := range m {
			if k != "name" {
				body[k] = v
			}
		}
		t, err := table.FromPlain(body, fmt.Sprintf("executors[%d]", i))
		if err != nil {
			return nil, valueErr(fmt.Sprintf("executors[%d]", i), err)
		}
		fn := name + ".toml"
		data := append([]byte(managedHeader), table.EncodeTOML(t)...)
		path := filepath.Join(l.ExecutorDir(), fn)
		files = append(files, RenderedFile{Path: path, Rel: l.Rel(path), Data: data, Redacted: []byte(redact.TOML(string(data))), Executor: fn})
	}
	return files, nil
}

func (d *Declaration) template(masked bool) ([]byte, error) {
	g := d.Global
	if g == nil {
		g = map[string]any{}
	}
	t, err := table.FromPlain(g, "global")
	if err != nil {
		return nil, valueErr("global", err)
	}
	var list []any
	for _, c := range d.Clients {
		ct := table.New()
		for _, k := range clientKeys {
			v, ok := c.Values[k.Name]
			if !ok && k.Name == "fleet" && d.Fleet != "" {
				v, ok = d.Fleet, true
			}
			if !ok {
				continue
			}
			ct.Set(k.Name, v)
		}
		list = append(list, ct)
	}
	if len(list) > 0 {
		t.Set("client_configs", list)
	}
	if masked {
		t = redact.Table(t)
	}
	return append([]byte(managedHeader), table.EncodeTOML(t)...), nil
}

// valueErr names the option a declared value that cannot be written came
// from: the error's key is that option's path ("executors[0].builds_dir").
func valueErr(opt string, err error) *input.Error {
	ie := input.At("", "", err)
	if ie.Key != "" {
		opt = ie.Key
	}
	ie.Option, ie.Key = input.Option(opt), ""
	return ie
}

// Locate names the option an input error in a rendered file came from:
// clients[0].url for the template's client_configs[0].url, global.x for
// its other keys, executors[2].url for main/shell.toml's url. Errors in
// other files are left as they are.
func (d *Declaration) Locate(l hostfs.Layout, err error) {
	if d == nil {
		return
	}
	for _, ie := range input.All(err) {
		if ie.Option != "" {
			continue
		}
		if opt, ok := d.optionOf(l, ie.File, ie.Key); ok {
			ie.Option, ie.File, ie.Key, ie.Line, ie.Column = opt, "", "", 0, 0
		}
	}
}

func (d *Declaration) optionOf(l hostfs.Layout, file, key string) (input.Option, bool) {
	if file == l.Rel(l.TemplatePath()) {
		switch {
		case strings.HasPrefix(key, "client_configs"):
			return input.Option("clients" + strings.TrimPrefix(key, "client_configs")), true
		case key != "":
			return input.Option("global." + key), true
		}
		return "clients", true
	}
	if dir, fn := filepath.Split(file); filepath.Clean(dir) == l.Instance {
		stem := strings.TrimSuffix(fn, ExecutorFileExt(fn))
		for i, m := range d.Executors {
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

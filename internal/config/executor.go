package config

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/fleet"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/gitlab"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/hostfs"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/input"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/table"
)

// MaxMaintenanceNote is GitLab's limit on a runner's maintenance_note
// (app/models/ci/runner.rb, validates :maintenance_note, length: { maximum: 1024 }).
const MaxMaintenanceNote = 1024

// managedKeys are written by the tool itself, and refused in executor files.
var managedKeys = []struct{ name, why string }{
	{"name", "it is the runner's description (set description instead)"},
	{"id", "the tool writes the runner id GitLab assigns"},
	{"token", "the tool writes the token GitLab hands out; never put tokens in executor files"},
	{"token_obtained_at", "the tool writes it"},
	{"token_expires_at", "the tool writes it"},
	{"tls-ca-file", "the tool writes it from the client's tls_ca_file (set tls_ca_file in the template's client_configs instead)"},
	{"tls_ca_file", "it is a client setting: set tls_ca_file in the template's client_configs; the tool writes it into each runner's section as tls-ca-file"},
}

// knownExecutorTypes may be left out of a file named after them (shell.toml).
var knownExecutorTypes = []string{"shell", "ssh", "docker", "docker-windows", "docker+machine", "docker-autoscaler",
	"instance", "kubernetes", "custom", "parallels", "virtualbox"}

func (d *Desired) parseExecutor(stem, rel string, data []byte) (*Executor, error) {
	if err := hostfs.CheckText(rel, data); err != nil {
		return nil, err
	}
	var t *table.Table
	var err error
	if strings.HasSuffix(rel, ".toml") {
		t, err = table.ParseTOML(data)
	} else {
		t, err = table.ParseYAML(data)
	}
	if err != nil {
		return nil, input.At(rel, "", err)
	}
	if err := checkKeyNames(rel, t); err != nil {
		return nil, err
	}
	e := &Executor{Name: stem, File: rel}
	if e.Client, err = d.clientOf(rel, t); err != nil {
		return nil, err
	}
	if e.Type, err = executorType(rel, stem, t); err != nil {
		return nil, err
	}
	if err := d.readSettings(e, t); err != nil {
		return nil, err
	}
	at := func(key, msg string) *input.Error { return &input.Error{File: rel, Key: key, Msg: msg} }
	if e.RunnerType, e.GroupID, e.ProjectID, err = runnerScope(t, at, e.Client.RunnerType, e.Client.GroupID, e.Client.ProjectID); err != nil {
		return nil, err
	}
	// Every key the tool does not read by name goes verbatim into the
	// executor's [[runners]] section.
	e.Keys = table.New()
	for _, k := range t.Keys() {
		if _, read := lookupKey(executorKeys, k, false); !read {
			v, _ := t.Get(k)
			e.Keys.Set(k, v)
		}
	}
	return e, nil
}

// checkKeyNames refuses keys the tool writes itself, and keys the tool
// reads written in another case: gitlab-runner reads keys regardless of
// case, the tool only as written.
func checkKeyNames(rel string, t *table.Table) error {
	for _, k := range t.Keys() {
		for _, m := range managedKeys {
			if strings.EqualFold(k, m.name) {
				why := m.why
				if k != m.name {
					why += "; gitlab-runner reads keys regardless of case, so " + k + " would be read as " + m.name
				}
				return input.Errorf(rel, k, "must not be set: %s", why).WithFix("remove it")
			}
		}
		if key, ok := lookupKey(executorKeys, k, true); ok && k != key.Name {
			return input.Errorf(rel, k, "gitlab-runner reads keys regardless of case, and the tool reads only %s", key.Name).WithFix("write it as %s", key.Name)
		}
	}
	return nil
}

// clientOf selects the executor's client by its url.
func (d *Desired) clientOf(rel string, t *table.Table) (*ClientConfig, error) {
	u, err := t.GetString("url")
	if err != nil {
		return nil, input.At(rel, "url", err)
	}
	if u == "" {
		return nil, input.Errorf(rel, "url", "missing").WithFix("add url = \"<GitLab URL from client_configs>\" to select the GitLab this executor registers with")
	}
	key, err := gitlab.NormalizeURL(u)
	if err != nil {
		return nil, input.At(rel, "url", err)
	}
	var known []string
	for _, c := range d.Clients {
		known = append(known, c.URL)
		if c.Key == key {
			return c, nil
		}
	}
	return nil, input.Errorf(rel, "url", "%q is the url of no client (known: %s)", u, strings.Join(known, ", ")).WithFix("fix the url or add a client")
}

// executorType is the executor key, or the file name when it names a type.
func executorType(rel, stem string, t *table.Table) (string, error) {
	if v, ok := t.Get("executor"); ok {
		s, isStr := v.(string)
		if !isStr || strings.TrimSpace(s) == "" {
			return "", input.Errorf(rel, "executor", "must be a non-empty string").WithFix("give the executor type, e.g. executor = \"shell\"")
		}
		return s, nil
	}
	for _, k := range knownExecutorTypes {
		if k == stem {
			return stem, nil
		}
	}
	return "", input.Errorf(rel, "executor", "missing").WithFix("add executor = \"shell\" (or docker, custom, kubernetes, ...)")
}

// readSettings reads what GitLab stores for the executor's runner: tags,
// description and the settings, with GitLab's own bounds.
func (d *Desired) readSettings(e *Executor, t *table.Table) error {
	rel := e.File
	var err error
	if e.StaticTags, err = t.GetStringList("tags"); err != nil {
		return input.At(rel, "tags", err)
	}
	if e.EnvTags, err = t.GetStringList("env_tags"); err != nil {
		return input.At(rel, "env_tags", err)
	}
	for _, tg := range e.StaticTags {
		if err := CheckTag(tg); err != nil {
			return input.At(rel, "tags", err)
		}
	}
	desc, err := t.GetString("description")
	if err != nil {
		return input.At(rel, "description", err)
	}
	if _, ok := t.Get("description"); ok && strings.TrimSpace(desc) == "" {
		return input.Errorf(rel, "description", "is empty").WithFix("remove it to use the default %q", DefaultDescription(d.Hostname, d.Layout.Instance, e.Name))
	}
	if desc == "" {
		desc = DefaultDescription(d.Hostname, d.Layout.Instance, e.Name)
	}
	e.Description = desc
	for _, b := range []struct {
		key string
		dst *bool
	}{{"run_untagged", &e.RunUntagged}, {"locked", &e.Locked}, {"paused", &e.Paused}} {
		if *b.dst, err = t.GetBool(b.key, false); err != nil {
			return input.At(rel, b.key, err)
		}
	}
	if e.AccessLevel, err = t.GetString("access_level"); err != nil {
		return input.At(rel, "access_level", err)
	}
	if e.AccessLevel == "" {
		e.AccessLevel = "not_protected"
	}
	if e.AccessLevel != "not_protected" && e.AccessLevel != "ref_protected" {
		return input.Errorf(rel, "access_level", "%q is not one of not_protected, ref_protected", e.AccessLevel)
	}
	mt, hasMT, err := t.GetInt("maximum_timeout")
	if err != nil {
		return input.At(rel, "maximum_timeout", err)
	}
	if hasMT && mt < 600 {
		return input.Errorf(rel, "maximum_timeout", "%d is below GitLab's minimum of 600 seconds", mt)
	}
	e.MaximumTimeout = mt
	if e.MaintenanceNote, err = t.GetString("maintenance_note"); err != nil {
		return input.At(rel, "maintenance_note", err)
	}
	e.Mark = fleet.Mark{Fleet: e.Client.Fleet, Host: d.Hostname, Instance: d.Layout.Instance}
	// GitLab counts characters (Ruby's String#length), not bytes.
	if n, room := utf8.RuneCountInString(e.MaintenanceNote), e.Mark.Room(MaxMaintenanceNote); n > room {
		return input.Errorf(rel, "maintenance_note", "is %d characters long; GitLab keeps at most %d, and the tool adds the fleet's mark (%d characters) below it", n, MaxMaintenanceNote, MaxMaintenanceNote-room).
			WithFix("shorten it to %d characters", room)
	}
	if _, _, marked := fleet.Parse(e.MaintenanceNote); marked {
		return input.Errorf(rel, "maintenance_note", "ends with a fleet mark; the tool writes the mark itself").WithFix("remove the line starting [gitlab-runner-auth]")
	}
	return nil
}

// CheckTag refuses a tag GitLab would not store as given; the error names
// no file (the caller places it).
func CheckTag(tag string) *input.Error {
	if strings.TrimSpace(tag) == "" {
		return &input.Error{Msg: "tags must not be empty"}
	}
	if strings.Contains(tag, ",") {
		return &input.Error{Msg: fmt.Sprintf("tag %q contains a comma; GitLab splits tags on commas", tag), Fix: "give them as separate items"}
	}
	if len(tag) > 255 {
		return &input.Error{Msg: fmt.Sprintf("tag %q is longer than 255 characters", tag[:40]+"...")}
	}
	return nil
}

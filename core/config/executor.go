package config

import (
	"fmt"
	"strings"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/gitlab"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/hostfs"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/input"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/table"
)

// gitlabOnly keys are sent to GitLab and never written into config.toml.
var gitlabOnly = map[string]bool{
	"tags": true, "env_tags": true, "description": true, "run_untagged": true, "locked": true, "paused": true,
	"access_level": true, "maximum_timeout": true, "maintenance_note": true, "runner_type": true,
	"group_id": true, "project_id": true, "url": true,
}

// managed keys are written by the tool itself.
var managedKeys = map[string]string{
	"name":              "it is the runner's description (set description instead)",
	"id":                "the tool writes the runner id GitLab assigns",
	"token":             "the tool writes the token GitLab hands out; never put tokens in executor files",
	"token_obtained_at": "the tool writes it",
	"token_expires_at":  "the tool writes it",
}

var knownExecutorTypes = map[string]bool{
	"shell": true, "ssh": true, "docker": true, "docker-windows": true, "docker+machine": true,
	"docker-autoscaler": true, "instance": true, "kubernetes": true, "custom": true, "parallels": true,
	"virtualbox": true,
}

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
		return nil, input.Errorf(rel, "", "%v", err)
	}
	at := func(key, msg string) *input.Error { return &input.Error{File: rel, Key: key, Msg: msg} }
	e := &Executor{Name: stem, File: rel}
	for _, k := range t.Keys() {
		canon, ok := foldKey(k, managedKeys)
		if ok {
			why := managedKeys[canon]
			if k != canon {
				why += "; gitlab-runner reads keys regardless of case, so " + k + " would be read as " + canon
			}
			return nil, input.Errorf(rel, k, "must not be set: %s", why).WithFix("remove it")
		}
		if canon, ok := foldKey(k, ExecutorKeyKinds); ok && k != canon {
			return nil, input.Errorf(rel, k, "write it as %s: gitlab-runner reads keys regardless of case, and the tool reads only %s", canon, canon)
		}
	}
	u, err := t.GetString("url")
	if err != nil {
		return nil, input.Errorf(rel, "url", "%v", err)
	}
	if u == "" {
		return nil, input.Errorf(rel, "url", "missing; add url = \"<GitLab URL from client_configs>\" to select the GitLab this executor registers with")
	}
	key, err := gitlab.NormalizeURL(u)
	if err != nil {
		return nil, input.Errorf(rel, "url", "%v", err)
	}
	var known []string
	for _, c := range d.Clients {
		known = append(known, c.URL)
		if c.Key == key {
			e.Client = c
		}
	}
	if e.Client == nil {
		return nil, input.Errorf(rel, "url", "%q matches no client_configs entry in config.template.%s.toml (known: %s); fix the url or add a client", u, d.Layout.Instance, strings.Join(known, ", "))
	}
	if v, ok := t.Get("executor"); ok {
		s, isStr := v.(string)
		if !isStr || strings.TrimSpace(s) == "" {
			return nil, input.Errorf(rel, "executor", "must be a non-empty string, e.g. executor = \"shell\"")
		}
		e.Type = s
	} else if knownExecutorTypes[stem] {
		e.Type = stem
	} else {
		return nil, input.Errorf(rel, "executor", "missing; add executor = \"shell\" (or docker, custom, kubernetes, ...)")
	}
	if e.StaticTags, err = t.GetStringList("tags"); err != nil {
		return nil, input.Errorf(rel, "tags", "%v", err)
	}
	if e.EnvTags, err = t.GetStringList("env_tags"); err != nil {
		return nil, input.Errorf(rel, "env_tags", "%v", err)
	}
	for _, tg := range e.StaticTags {
		if err := CheckTag(tg); err != nil {
			return nil, input.Errorf(rel, "tags", "%v", err)
		}
	}
	desc, err := t.GetString("description")
	if err != nil {
		return nil, input.Errorf(rel, "description", "%v", err)
	}
	if _, ok := t.Get("description"); ok && strings.TrimSpace(desc) == "" {
		return nil, input.Errorf(rel, "description", "is empty; remove it to use the default %q", DefaultDescription(d.Hostname, d.Layout.Instance, stem))
	}
	if desc == "" {
		desc = DefaultDescription(d.Hostname, d.Layout.Instance, stem)
	}
	e.Description = desc
	for _, b := range []struct {
		key string
		dst *bool
	}{{"run_untagged", &e.RunUntagged}, {"locked", &e.Locked}, {"paused", &e.Paused}} {
		if *b.dst, err = t.GetBool(b.key, false); err != nil {
			return nil, input.Errorf(rel, b.key, "%v", err)
		}
	}
	if e.AccessLevel, err = t.GetString("access_level"); err != nil {
		return nil, input.Errorf(rel, "access_level", "%v", err)
	}
	if e.AccessLevel == "" {
		e.AccessLevel = "not_protected"
	}
	if e.AccessLevel != "not_protected" && e.AccessLevel != "ref_protected" {
		return nil, input.Errorf(rel, "access_level", "%q is not one of not_protected, ref_protected", e.AccessLevel)
	}
	mt, hasMT, err := t.GetInt("maximum_timeout")
	if err != nil {
		return nil, input.Errorf(rel, "maximum_timeout", "%v", err)
	}
	if hasMT && mt < 600 {
		return nil, input.Errorf(rel, "maximum_timeout", "%d is below GitLab's minimum of 600 seconds", mt)
	}
	e.MaximumTimeout = mt
	if e.MaintenanceNote, err = t.GetString("maintenance_note"); err != nil {
		return nil, input.Errorf(rel, "maintenance_note", "%v", err)
	}
	if len(e.MaintenanceNote) > 1024 {
		return nil, input.Errorf(rel, "maintenance_note", "is longer than GitLab's limit of 1024 characters")
	}
	if e.RunnerType, e.GroupID, e.ProjectID, err = runnerScope(t, at, e.Client.RunnerType, e.Client.GroupID, e.Client.ProjectID); err != nil {
		return nil, err
	}
	keys := table.New()
	for _, k := range t.Keys() {
		if gitlabOnly[k] || k == "executor" {
			continue
		}
		v, _ := t.Get(k)
		keys.Set(k, v)
	}
	e.Keys = keys
	return e, nil
}

// foldKey finds the key of known that k equals regardless of case, as
// gitlab-runner's TOML decoder compares keys (strings.EqualFold, so the
// Kelvin sign matches k).
func foldKey[V any](k string, known map[string]V) (string, bool) {
	if _, ok := known[k]; ok {
		return k, true
	}
	for kk := range known {
		if strings.EqualFold(k, kk) {
			return kk, true
		}
	}
	return "", false
}

// CheckTag refuses a tag GitLab would not store as given.
func CheckTag(tag string) error {
	if strings.TrimSpace(tag) == "" {
		return fmt.Errorf("tags must not be empty")
	}
	if strings.Contains(tag, ",") {
		return fmt.Errorf("tag %q contains a comma; GitLab splits tags on commas, give them as separate items", tag)
	}
	if len(tag) > 255 {
		return fmt.Errorf("tag %q is longer than 255 characters", tag[:40]+"...")
	}
	return nil
}

package config

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/fleet"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/gitlab"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/hostfs"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/input"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/redact"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/table"
)

// ParseTemplate reads the template: global settings and client_configs.
func (d *Desired) ParseTemplate(name string, data []byte, sec *redact.Redactor) error {
	if err := hostfs.CheckText(name, data); err != nil {
		return err
	}
	t, err := table.ParseTOML(data)
	if err != nil {
		return input.At(name, "", err)
	}
	for _, k := range t.Keys() {
		// gitlab-runner reads keys regardless of case: [[Runners]] is [[runners]].
		switch {
		case strings.EqualFold(k, "runners"):
			return input.Errorf(name, k, "the template must not contain [[runners]] (in any case)").WithFix("declare each executor as a file in %s/ instead", d.Layout.Instance)
		case strings.EqualFold(k, "client_configs") && k != "client_configs":
			return input.Errorf(name, k, "gitlab-runner reads keys regardless of case, and the tool reads only client_configs").WithFix("write it as client_configs")
		}
	}
	raw, ok := t.Get("client_configs")
	if !ok {
		return input.Errorf(name, "client_configs", "is missing").WithFix("add a [[client_configs]] table with url and personal_access_token or registration_token")
	}
	arr, isArr := table.TableArray(raw)
	if !isArr {
		return input.Errorf(name, "client_configs", "must be an array of tables ([[client_configs]])")
	}
	t.Delete("client_configs")
	d.Globals = t
	seen := map[string]int{}
	for i, el := range arr {
		c, err := d.parseClient(name, i, el.(*table.Table), sec)
		if err != nil {
			return err
		}
		if j, dup := seen[c.Key]; dup {
			return input.Errorf(name, fmt.Sprintf("client_configs[%d].url", i), "%q is the same GitLab as client_configs[%d]", c.URL, j).WithFix("merge the two entries")
		}
		seen[c.Key] = i
		d.Clients = append(d.Clients, c)
	}
	return nil
}

func (d *Desired) parseClient(file string, i int, t *table.Table, sec *redact.Redactor) (*ClientConfig, error) {
	where := func(key, msg string) *input.Error {
		return &input.Error{File: file, Key: fmt.Sprintf("client_configs[%d].%s", i, key), Msg: msg}
	}
	for _, k := range t.Keys() {
		if key, ok := lookupKey(clientKeys, k, true); ok && key.Name != k {
			return nil, where(k, "the tool reads keys as written, in lower case").WithFix("write it as %s", key.Name)
		}
		if _, known := ClientKey(k); !known {
			return nil, where(k, "unknown key").WithFix("use one of %s", clientKeyNames())
		}
	}
	c := &ClientConfig{Index: i}
	u, err := t.GetString("url")
	if err != nil {
		return nil, where("url", err.Error())
	}
	if u == "" {
		return nil, where("url", "missing").WithFix("give GitLab's base URL, e.g. url = \"https://gitlab.example.com\"")
	}
	if c.Key, err = gitlab.NormalizeURL(u); err != nil {
		return nil, where("url", err.Error())
	}
	c.URL = u
	for _, tk := range []struct {
		key string
		dst *string
	}{{"personal_access_token", &c.PAT}, {"registration_token", &c.RegistrationToken}} {
		v, err := d.secretKey(t, tk.key, where)
		if err != nil {
			return nil, err
		}
		*tk.dst = v
		sec.Add(v)
	}
	if c.PAT == "" && c.RegistrationToken == "" {
		return nil, where("url", fmt.Sprintf("client %s has neither personal_access_token nor registration_token", u)).
			WithFix("add a personal_access_token (scope create_runner, plus manage_runner/read_api to heal and clean up)")
	}
	if c.RunnerType, c.GroupID, c.ProjectID, err = runnerScope(t, where, "instance_type", 0, 0); err != nil {
		return nil, err
	}
	if ca, err := t.GetString("tls_ca_file"); err != nil {
		return nil, where("tls_ca_file", err.Error())
	} else if ca != "" {
		if !filepath.IsAbs(ca) {
			ca = filepath.Join(d.Layout.Prefix, ca)
		}
		// It is written into the generated config for gitlab-runner, which
		// runs in a folder of its own: never a relative path (a relative
		// prefix would give one).
		if abs, err := filepath.Abs(ca); err == nil {
			ca = abs
		}
		// Read here, through the capped reader: /dev/zero or a FIFO must not
		// be read without end, and a CA someone else owns is not trusted.
		pem, err := hostfs.ReadTrusted(ca, ca, "tls_ca_file", false)
		if err != nil {
			return nil, fileErr(err, where("tls_ca_file", ""), ca)
		}
		c.TLSCAFile, c.TLSCA = ca, pem
	}
	if c.Fleet, err = d.clientFleet(t, where); err != nil {
		return nil, err
	}
	return c, nil
}

// clientFleet is the fleet of a client_configs entry: its own fleet key,
// else the run's, else fleet.Default. An entry and a run that name two
// fleets are an error: each run would mark the runners anew.
func (d *Desired) clientFleet(t *table.Table, where func(key, msg string) *input.Error) (string, error) {
	name, err := t.GetString("fleet")
	if err != nil {
		return "", where("fleet", err.Error())
	}
	_, has := t.Get("fleet")
	switch {
	case !has && d.Fleet != "":
		return d.Fleet, nil
	case !has:
		return fleet.Default, nil
	}
	if err := fleet.CheckName(name); err != nil {
		return "", where("fleet", err.Error()).WithFix("name the fleet with letters, digits, '.', '_' and '-'")
	}
	if d.Fleet != "" && d.Fleet != name {
		e := where("fleet", fmt.Sprintf("names fleet %q, but the run was given fleet %q", name, d.Fleet))
		e.Fix, e.FixOption = "give the same fleet in both places, or leave out", input.Fleet
		return "", e
	}
	return name, nil
}

var rePlaceholder = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^(\{\{?.*\}?\}|<[^<>]*>|\$\{[^}]*\}|%\(.*\)s)$`) })

func isPlaceholder(v string) bool { return rePlaceholder().MatchString(strings.TrimSpace(v)) }

// secretKey reads key or key_file (owner-only file, relative to the prefix).
func (d *Desired) secretKey(t *table.Table, key string, where func(key, msg string) *input.Error) (string, error) {
	inline, err := t.GetString(key)
	if err != nil {
		return "", where(key, err.Error())
	}
	file, err := t.GetString(key + "_file")
	if err != nil {
		return "", where(key+"_file", err.Error())
	}
	_, hasInline := t.Get(key)
	_, hasFile := t.Get(key + "_file")
	switch {
	case hasInline && hasFile:
		return "", where(key, fmt.Sprintf("both %s and %s_file are set", key, key)).WithFix("give either one, not both")
	case hasInline:
		if strings.TrimSpace(inline) == "" {
			return "", where(key, "is empty").WithFix("set the token or remove the key")
		}
		if isPlaceholder(inline) {
			return "", where(key, fmt.Sprintf("holds the placeholder %s, not a token", strings.TrimSpace(inline))).
				WithFix("put the real token here (or in %s_file)", key)
		}
		return strings.TrimSpace(inline), nil
	case hasFile:
		if !filepath.IsAbs(file) {
			file = filepath.Join(d.Layout.Prefix, file)
		}
		at := where(key+"_file", "")
		data, err := hostfs.ReadTrusted(file, file, key+"_file", true)
		if err != nil {
			return "", fileErr(err, at, file)
		}
		v := strings.TrimSpace(string(data))
		bad := func(msg, fix string) error { at.Msg, at.Fix = file+": "+msg, fix; return at }
		switch {
		case v == "":
			return "", bad("the file is empty", "write the token into it")
		case strings.ContainsAny(v, "\n\r") || !utf8.ValidString(v):
			return "", bad("the file must hold the token alone on one line", "")
		case isPlaceholder(v):
			return "", bad("the file holds a placeholder, not a token", "write the real token into it")
		}
		return v, nil
	}
	return "", nil
}

// runnerScope reads runner_type/group_id/project_id with defaults.
func runnerScope(t *table.Table, where func(key, msg string) *input.Error, defType string, defGroup, defProject int64) (string, int64, int64, error) {
	rt, err := t.GetString("runner_type")
	if err != nil {
		return "", 0, 0, where("runner_type", err.Error())
	}
	_, hasType := t.Get("runner_type")
	g, gok, err := t.GetInt("group_id")
	if err != nil {
		return "", 0, 0, where("group_id", err.Error())
	}
	p, pok, err := t.GetInt("project_id")
	if err != nil {
		return "", 0, 0, where("project_id", err.Error())
	}
	if !hasType {
		rt = defType
	}
	if !gok {
		g = defGroup
	}
	if !pok {
		p = defProject
	}
	switch rt {
	case "instance_type":
	case "group_type":
		if g <= 0 {
			return "", 0, 0, where("group_id", "runner_type group_type needs group_id").WithFix("add group_id = <numeric id of the group>")
		}
	case "project_type":
		if p <= 0 {
			return "", 0, 0, where("project_id", "runner_type project_type needs project_id").WithFix("add project_id = <numeric id of the project>")
		}
	default:
		return "", 0, 0, where("runner_type", fmt.Sprintf("%q is not one of %s", rt, strings.Join(RunnerTypes(), ", ")))
	}
	return rt, g, p, nil
}

// fileErr names a file a key points to as that key: the error of reading
// path is reported at the key (at), the path in its message.
func fileErr(err error, at *input.Error, path string) error {
	ie := input.As(err)
	if ie == nil {
		return err
	}
	out := *at
	out.Msg, out.Fix, out.FixOption, out.Err = path+": "+ie.Msg, ie.Fix, ie.FixOption, ie.Err
	return &out
}

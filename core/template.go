package core

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"unicode/utf8"
)

func (d *Desired) parseTemplate(name string, data []byte, sec *Redactor) error {
	if err := checkText(name, data); err != nil {
		return err
	}
	t, err := parseTOMLTable(data)
	if err != nil {
		return inputErr(name, "%v", err)
	}
	for _, k := range t.Keys() {
		// gitlab-runner reads keys regardless of case: [[Runners]] is [[runners]].
		switch {
		case strings.EqualFold(k, "runners"):
			return inputErr(name, "key %s: the template must not contain [[runners]] (in any case); declare each executor as a file in %s/ instead", k, d.Layout.Instance)
		case strings.EqualFold(k, "client_configs") && k != "client_configs":
			return inputErr(name, "key %s: write it as client_configs; gitlab-runner reads keys regardless of case, and the tool reads only client_configs", k)
		}
	}
	raw, ok := t.Get("client_configs")
	if !ok {
		return inputErr(name, "key client_configs is missing; add a [[client_configs]] table with url and personal_access_token or registration_token")
	}
	arr, isArr := isTableArray(raw)
	if !isArr {
		return inputErr(name, "key client_configs must be an array of tables ([[client_configs]])")
	}
	t.Delete("client_configs")
	d.Globals = t
	seen := map[string]int{}
	for i, el := range arr {
		c, err := d.parseClient(name, i, el.(*Table), sec)
		if err != nil {
			return err
		}
		if j, dup := seen[c.Key]; dup {
			return inputErr(name, "client_configs[%d].url %q is the same GitLab as client_configs[%d]; merge the two entries", i, c.URL, j)
		}
		seen[c.Key] = i
		d.Clients = append(d.Clients, c)
	}
	return nil
}

func (d *Desired) parseClient(file string, i int, t *Table, sec *Redactor) (*ClientConfig, error) {
	where := func(key string) string { return fmt.Sprintf("%s: client_configs[%d].%s", file, i, key) }
	for _, k := range t.Keys() {
		if canon, ok := foldKey(k, ClientKeyKinds); ok && canon != k {
			return nil, &InputError{Where: where(k), Msg: "write it as " + canon + "; the tool reads keys as written, in lower case"}
		}
		if _, known := ClientKeyKinds[k]; !known {
			return nil, &InputError{Where: where(k), Msg: "unknown key; expected one of " + strings.Join(ClientKeys, ", ")}
		}
	}
	c := &ClientConfig{}
	u, err := t.GetString("url")
	if err != nil {
		return nil, &InputError{Where: where("url"), Msg: err.Error()}
	}
	if u == "" {
		return nil, &InputError{Where: where("url"), Msg: "missing; give GitLab's base URL, e.g. url = \"https://gitlab.example.com\""}
	}
	if c.Key, err = NormalizeURL(u); err != nil {
		return nil, &InputError{Where: where("url"), Msg: err.Error()}
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
		return nil, &InputError{Where: where("url"), Msg: fmt.Sprintf("client %s has neither personal_access_token nor registration_token; add a personal_access_token (scope create_runner, plus manage_runner/read_api to heal and clean up)", u)}
	}
	if c.RunnerType, c.GroupID, c.ProjectID, err = runnerScope(t, where, "instance_type", 0, 0); err != nil {
		return nil, err
	}
	if ca, err := t.GetString("tls_ca_file"); err != nil {
		return nil, &InputError{Where: where("tls_ca_file"), Msg: err.Error()}
	} else if ca != "" {
		if !filepath.IsAbs(ca) {
			ca = filepath.Join(d.Layout.Prefix, ca)
		}
		// Read here, through the capped reader: /dev/zero or a FIFO must not
		// be read without end, and a CA someone else owns is not trusted.
		pem, err := readTrusted(ca, ca, "tls_ca_file", false)
		if err != nil {
			var ie *InputError
			if errors.As(err, &ie) {
				ie.Where = where("tls_ca_file") + " " + ca
			}
			return nil, err
		}
		c.TLSCAFile, c.TLSCA = ca, pem
	}
	return c, nil
}

var rePlaceholder = regexp.MustCompile(`^(\{\{?.*\}?\}|<[^<>]*>|\$\{[^}]*\}|%\(.*\)s)$`)

func isPlaceholder(v string) bool { return rePlaceholder.MatchString(strings.TrimSpace(v)) }

// secretKey reads key or key_file (owner-only file, relative to the prefix).
func (d *Desired) secretKey(t *Table, key string, where func(string) string) (string, error) {
	inline, err := t.GetString(key)
	if err != nil {
		return "", &InputError{Where: where(key), Msg: err.Error()}
	}
	file, err := t.GetString(key + "_file")
	if err != nil {
		return "", &InputError{Where: where(key + "_file"), Msg: err.Error()}
	}
	_, hasInline := t.Get(key)
	_, hasFile := t.Get(key + "_file")
	switch {
	case hasInline && hasFile:
		return "", &InputError{Where: where(key), Msg: fmt.Sprintf("give either %s or %s_file, not both", key, key)}
	case hasInline:
		if strings.TrimSpace(inline) == "" {
			return "", &InputError{Where: where(key), Msg: "is empty; set the token or remove the key"}
		}
		if isPlaceholder(inline) {
			return "", &InputError{Where: where(key), Msg: fmt.Sprintf("holds the placeholder %s, not a token; put the real token here (or in %s_file)", strings.TrimSpace(inline), key)}
		}
		return strings.TrimSpace(inline), nil
	case hasFile:
		if !filepath.IsAbs(file) {
			file = filepath.Join(d.Layout.Prefix, file)
		}
		data, err := readTrusted(file, file, key+"_file", true)
		if err != nil {
			return "", err
		}
		v := strings.TrimSpace(string(data))
		if v == "" {
			return "", &InputError{Where: file, Msg: fmt.Sprintf("%s_file is empty; write the token into it", key)}
		}
		if strings.ContainsAny(v, "\n\r") || !utf8.ValidString(v) {
			return "", &InputError{Where: file, Msg: fmt.Sprintf("%s_file must hold the token alone on one line", key)}
		}
		if isPlaceholder(v) {
			return "", &InputError{Where: file, Msg: "holds a placeholder, not a token; write the real token into it"}
		}
		return v, nil
	}
	return "", nil
}

// runnerScope reads runner_type/group_id/project_id with defaults.
func runnerScope(t *Table, where func(key string) string, defType string, defGroup, defProject int64) (string, int64, int64, error) {
	rt, err := t.GetString("runner_type")
	if err != nil {
		return "", 0, 0, &InputError{Where: where("runner_type"), Msg: err.Error()}
	}
	_, hasType := t.Get("runner_type")
	g, gok, err := t.GetInt("group_id")
	if err != nil {
		return "", 0, 0, &InputError{Where: where("group_id"), Msg: err.Error()}
	}
	p, pok, err := t.GetInt("project_id")
	if err != nil {
		return "", 0, 0, &InputError{Where: where("project_id"), Msg: err.Error()}
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
			return "", 0, 0, &InputError{Where: where("group_id"), Msg: "runner_type group_type needs group_id = <numeric id of the group>"}
		}
	case "project_type":
		if p <= 0 {
			return "", 0, 0, &InputError{Where: where("project_id"), Msg: "runner_type project_type needs project_id = <numeric id of the project>"}
		}
	default:
		return "", 0, 0, &InputError{Where: where("runner_type"), Msg: fmt.Sprintf("%q is not one of %s", rt, strings.Join(RunnerTypes, ", "))}
	}
	return rt, g, p, nil
}

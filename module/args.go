package module

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/core"
)

// Args are the module's options after validation.
type Args struct {
	Prefix      string
	Instance    string
	State       string
	Global      map[string]any
	Clients     []ClientArg
	Executors   []map[string]any
	TagSchema   string
	CaptureTags string
	Refresh     bool
	Hostname    string
	Concurrency int

	HasGlobal, HasClients, HasExecutors bool

	CheckMode bool
	Diff      bool
}

// ClientArg is one entry of the clients option: the keys of a
// client_configs entry (core.ClientKeys) that the task sets.
type ClientArg struct {
	URL    string
	Values map[string]any
}

// Secrets are the inline tokens of the entry.
func (c ClientArg) Secrets() []string {
	var out []string
	for _, k := range []string{"personal_access_token", "registration_token"} {
		if s, ok := c.Values[k].(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// ArgError is a bad option; its message names the option.
type ArgError struct{ Msg string }

func (e *ArgError) Error() string { return e.Msg }

func argErr(format string, args ...any) error { return &ArgError{Msg: fmt.Sprintf(format, args...)} }

var topLevel = []string{"prefix", "instance", "state", "global", "clients", "executors", "tag_schema",
	"capture_tags", "refresh", "hostname", "concurrency"}

// ParseArgs reads Ansible's arguments (JSON) and validates every option.
func ParseArgs(data []byte) (*Args, error) {
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.UseNumber()
	var raw map[string]any
	if err := dec.Decode(&raw); err != nil {
		return nil, argErr("the module arguments are not a JSON object: %v", err)
	}
	if raw == nil {
		raw = map[string]any{}
	}
	a := &Args{Prefix: "/etc/gitlab-runner", Instance: "main", State: "present", Concurrency: core.DefaultConcurrency}
	known := map[string]bool{}
	for _, k := range topLevel {
		known[k] = true
	}
	var unknown []string
	for k := range raw {
		if !known[k] && !strings.HasPrefix(k, "_ansible_") {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, argErr("Unsupported parameters for (gitlab_runner_auth.runner.sync) module: %s. Supported parameters include: %s.",
			strings.Join(unknown, ", "), strings.Join(sortedCopy(topLevel), ", "))
	}
	var err error
	if a.CheckMode, err = optBool(raw, "_ansible_check_mode", false); err != nil {
		return nil, err
	}
	if a.Diff, err = optBool(raw, "_ansible_diff", false); err != nil {
		return nil, err
	}
	for _, s := range []struct {
		key string
		dst *string
	}{{"prefix", &a.Prefix}, {"instance", &a.Instance}, {"state", &a.State}, {"tag_schema", &a.TagSchema},
		{"capture_tags", &a.CaptureTags}, {"hostname", &a.Hostname}} {
		if v, ok := raw[s.key]; ok && v != nil {
			str, err := toStr(v, s.key)
			if err != nil {
				return nil, err
			}
			*s.dst = str
		}
	}
	if a.State != "present" && a.State != "absent" {
		return nil, argErr("value of state must be one of: present, absent, got: %s", a.State)
	}
	if a.Prefix == "" {
		return nil, argErr("prefix must not be empty")
	}
	if a.Refresh, err = optBool(raw, "refresh", false); err != nil {
		return nil, err
	}
	if v, ok := raw["concurrency"]; ok && v != nil {
		n, err := toInt(v, "concurrency")
		if err != nil {
			return nil, err
		}
		if n < 1 || n > core.MaxConcurrency {
			return nil, argErr("concurrency must be between 1 and %d, got %d", core.MaxConcurrency, n)
		}
		a.Concurrency = int(n)
	}
	if v, ok := raw["global"]; ok && v != nil {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, argErr("global must be a dict of gitlab-runner global settings, got %s", jsonType(v))
		}
		for _, k := range []string{"runners", "client_configs"} {
			if _, bad := m[k]; bad {
				return nil, argErr("global.%s is not allowed: give clients and executors instead", k)
			}
		}
		a.Global, a.HasGlobal = m, true
	}
	if v, ok := raw["clients"]; ok && v != nil {
		list, ok := v.([]any)
		if !ok {
			return nil, argErr("clients must be a list of dicts, got %s", jsonType(v))
		}
		a.HasClients = true
		for i, el := range list {
			c, err := parseClient(el, i)
			if err != nil {
				return nil, err
			}
			a.Clients = append(a.Clients, c)
		}
	}
	if v, ok := raw["executors"]; ok && v != nil {
		list, ok := v.([]any)
		if !ok {
			return nil, argErr("executors must be a list of dicts, got %s", jsonType(v))
		}
		a.HasExecutors = true
		seen := map[string]bool{}
		for i, el := range list {
			m, ok := el.(map[string]any)
			if !ok {
				return nil, argErr("executors[%d] must be a dict, got %s", i, jsonType(el))
			}
			if err := checkExecutor(m, i); err != nil {
				return nil, err
			}
			name := m["name"].(string)
			if seen[name] {
				return nil, argErr("executors[%d].name %q is declared twice", i, name)
			}
			seen[name] = true
			a.Executors = append(a.Executors, m)
		}
	}
	if a.State == "present" && (a.HasGlobal || a.HasClients || a.HasExecutors) && !(a.HasClients && a.HasExecutors) {
		return nil, argErr("clients and executors go together: give both to manage the files, or neither to sync the files already on the host")
	}
	if a.State == "present" && a.HasExecutors && len(a.Executors) == 0 {
		return nil, argErr("executors is empty: declare at least one executor, or use state: absent to remove this instance's runners")
	}
	return a, nil
}

func parseClient(el any, i int) (ClientArg, error) {
	m, ok := el.(map[string]any)
	if !ok {
		return ClientArg{}, argErr("clients[%d] must be a dict, got %s", i, jsonType(el))
	}
	c := ClientArg{Values: map[string]any{}}
	for k, v := range m {
		kind, known := core.ClientKeyKinds[k]
		if !known {
			return c, argErr("clients[%d]: unsupported parameter %s; supported: %s", i, k, strings.Join(core.ClientKeys, ", "))
		}
		if v == nil {
			continue
		}
		cv, err := convert(v, kind, fmt.Sprintf("clients[%d].%s", i, k))
		if err != nil {
			return c, err
		}
		c.Values[k] = cv
	}
	c.URL, _ = c.Values["url"].(string)
	if c.URL == "" {
		return c, argErr("clients[%d].url is required", i)
	}
	if rt, ok := c.Values["runner_type"].(string); ok && !slices.Contains(core.RunnerTypes, rt) {
		return c, argErr("clients[%d].runner_type must be one of: %s, got: %s", i, strings.Join(core.RunnerTypes, ", "), rt)
	}
	return c, nil
}

// convert turns an Ansible value into the kind core expects, accepting
// what Ansible's own types accept ("yes" for a bool, "12" for an int).
func convert(v any, kind core.KeyKind, where string) (any, error) {
	switch kind {
	case core.KindBool:
		return toBool(v, where)
	case core.KindInt:
		return toInt(v, where)
	case core.KindStringList:
		list, ok := v.([]any)
		if !ok {
			return nil, argErr("%s must be %s, got %s", where, kind, jsonType(v))
		}
		out := make([]any, len(list))
		for j, e := range list {
			s, err := toStr(e, fmt.Sprintf("%s[%d]", where, j))
			if err != nil {
				return nil, err
			}
			out[j] = s
		}
		return out, nil
	}
	return toStr(v, where)
}

func checkExecutor(m map[string]any, i int) error {
	v, ok := m["name"]
	if !ok || v == nil {
		return argErr("executors[%d].name is required", i)
	}
	name, err := toStr(v, fmt.Sprintf("executors[%d].name", i))
	if err != nil {
		return err
	}
	m["name"] = name
	for k, kind := range core.ExecutorKeyKinds {
		v, ok := m[k]
		if !ok {
			continue
		}
		cv, err := convert(v, kind, fmt.Sprintf("executors[%d].%s", i, k))
		if err != nil {
			return err
		}
		m[k] = cv
	}
	if name == "" {
		return argErr("executors[%d].name must not be empty", i)
	}
	if _, ok := m["url"]; !ok {
		return argErr("executors[%d].url is required (the GitLab URL of one of the clients)", i)
	}
	return nil
}

func jsonType(v any) string {
	switch v.(type) {
	case string:
		return "str"
	case json.Number:
		return "int"
	case bool:
		return "bool"
	case []any:
		return "list"
	case map[string]any:
		return "dict"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", v)
}

func toStr(v any, name string) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case json.Number:
		return x.String(), nil
	case bool:
		return strconv.FormatBool(x), nil
	}
	return "", argErr("%s must be %s, got %s", name, core.KindString, jsonType(v))
}

func toInt(v any, name string) (int64, error) {
	switch x := v.(type) {
	case json.Number:
		if n, err := x.Int64(); err == nil {
			return n, nil
		}
		if f, err := x.Float64(); err == nil && f == math.Trunc(f) {
			return int64(f), nil
		}
	case string:
		if n, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64); err == nil {
			return n, nil
		}
	}
	return 0, argErr("%s must be %s, got %s %q", name, core.KindInt, jsonType(v), fmt.Sprint(v))
}

// toBool accepts what Ansible's boolean type accepts.
func toBool(v any, name string) (bool, error) {
	switch x := v.(type) {
	case bool:
		return x, nil
	case string:
		switch strings.ToLower(strings.TrimSpace(x)) {
		case "yes", "on", "1", "true", "y", "t":
			return true, nil
		case "no", "off", "0", "false", "n", "f":
			return false, nil
		}
	case json.Number:
		switch x.String() {
		case "1":
			return true, nil
		case "0":
			return false, nil
		}
	}
	return false, argErr("%s must be %s, got %s %q", name, core.KindBool, jsonType(v), fmt.Sprint(v))
}

func optBool(raw map[string]any, key string, def bool) (bool, error) {
	v, ok := raw[key]
	if !ok || v == nil {
		return def, nil
	}
	return toBool(v, key)
}

func sortedCopy(s []string) []string {
	c := append([]string(nil), s...)
	sort.Strings(c)
	return c
}

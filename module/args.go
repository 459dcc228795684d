package module

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/input"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/core"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/config"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/table"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/tags"
)

// Args are the module's options after validation.
type Args struct {
	Prefix   string
	Instance string
	State    string
	// Declare is global, clients and executors, when given: the instance
	// as values, for core to render into its files.
	Declare     *config.Declaration
	TagSchema   string
	CaptureTags string
	// OmitAutoTags names the automatic tag families not to add.
	OmitAutoTags []string
	Refresh      bool
	// IgnoreCleanupErrors: a removal GitLab does not confirm is a warning,
	// not a failure (the entry leaves the config either way).
	IgnoreCleanupErrors bool
	Hostname            string
	// Fleet names the fleet this host's runners belong to (see core.Options.Fleet).
	Fleet       string
	Concurrency int

	// Timeout bounds the whole run, LockTimeout the wait for another run,
	// RequestTimeout one HTTP request, CaptureTimeout capture_tags.
	Timeout, LockTimeout, RequestTimeout, CaptureTimeout time.Duration

	// Module is the module the arguments are for: "sync", or "info" (the
	// read-only companion; its action plugin adds _gra_module: info).
	Module string

	CheckMode bool
	Diff      bool
}

// argErr is a bad option: option is its path ("executors[2].url", ""
// when no one option is at fault), the message a whole sentence that
// names it, as Ansible words its own argument checks.
func argErr(option, format string, args ...any) error {
	return &input.Error{Option: input.Option(option), Msg: fmt.Sprintf(format, args...), Whole: true}
}

var topLevel = []string{"prefix", "instance", "state", "global", "clients", "executors", "tag_schema",
	"capture_tags", "omit_auto_tags", "refresh", "hostname", "fleet", "concurrency", "timeout", "lock_timeout", "request_timeout", "capture_timeout",
	"ignore_cleanup_errors"}

// infoOptions are the options of the info module (a subset of sync's).
var infoOptions = []string{"prefix", "instance", "hostname", "fleet", "tag_schema", "capture_tags", "omit_auto_tags", "concurrency",
	"timeout", "lock_timeout", "request_timeout", "capture_timeout"}

// moduleArg is the hidden option the info and prune action plugins add.
const moduleArg = "_gra_module"

// launcherArgs are read by the collection's launcher (plugins/modules/sync,
// the shell module that runs this binary from the host's cache) and share
// its arguments file; the module ignores them.
var launcherArgs = []string{"_gra_launch", "_gra_cache_dir"}

// decodeArgs reads Ansible's arguments file (a JSON object), numbers as
// json.Number.
func decodeArgs(data []byte) (map[string]any, error) {
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.UseNumber()
	var raw map[string]any
	if err := dec.Decode(&raw); err != nil {
		return nil, argErr("", "the module arguments are not a JSON object: %v", err)
	}
	if raw == nil {
		raw = map[string]any{}
	}
	return raw, nil
}

// unknownOptions refuses options the module does not have, in Ansible's
// words.
func unknownOptions(raw map[string]any, module string, options []string) error {
	known := map[string]bool{moduleArg: true}
	for _, k := range launcherArgs {
		known[k] = true
	}
	for _, k := range options {
		known[k] = true
	}
	var unknown []string
	for k := range raw {
		if !known[k] && !strings.HasPrefix(k, "_ansible_") {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	sort.Strings(unknown)
	option := ""
	if len(unknown) == 1 {
		option = unknown[0]
	}
	return argErr(option, "Unsupported parameters for (gitlab_runner_auth.runner.%s) module: %s. Supported parameters include: %s.",
		module, strings.Join(unknown, ", "), strings.Join(sortedCopy(options), ", "))
}

// ParseArgs reads Ansible's arguments (JSON) and validates every option
// of sync or info.
func ParseArgs(data []byte) (*Args, error) {
	raw, err := decodeArgs(data)
	if err != nil {
		return nil, err
	}
	a := &Args{Prefix: "/etc/gitlab-runner", Instance: "main", State: "present", Concurrency: core.DefaultConcurrency,
		Timeout: 5 * time.Minute, LockTimeout: 120 * time.Second, RequestTimeout: 20 * time.Second,
		CaptureTimeout: 10 * time.Second, Module: "sync"}
	if v, ok := raw[moduleArg]; ok {
		if v != "info" && v != "sync" {
			return nil, argErr(moduleArg, "%s must be sync or info here", moduleArg)
		}
		a.Module = v.(string)
	}
	options := topLevel
	if a.Module == "info" {
		options = infoOptions
	}
	if err := unknownOptions(raw, a.Module, options); err != nil {
		return nil, err
	}
	if err := readDurations(raw, map[string]*time.Duration{"timeout": &a.Timeout, "lock_timeout": &a.LockTimeout,
		"request_timeout": &a.RequestTimeout, "capture_timeout": &a.CaptureTimeout}); err != nil {
		return nil, err
	}
	if a.CheckMode, err = optBool(raw, "_ansible_check_mode", false); err != nil {
		return nil, err
	}
	if a.Diff, err = optBool(raw, "_ansible_diff", false); err != nil {
		return nil, err
	}
	if err := readStrings(raw, map[string]*string{"prefix": &a.Prefix, "instance": &a.Instance, "state": &a.State,
		"tag_schema": &a.TagSchema, "capture_tags": &a.CaptureTags, "hostname": &a.Hostname, "fleet": &a.Fleet}); err != nil {
		return nil, err
	}
	if a.State != "present" && a.State != "absent" {
		return nil, argErr("state", "value of state must be one of: present, absent, got: %s", a.State)
	}
	if a.OmitAutoTags, err = strList(raw, "omit_auto_tags"); err != nil {
		return nil, err
	}
	for i, f := range a.OmitAutoTags {
		if !slices.Contains(tags.Families, f) {
			return nil, argErr(fmt.Sprintf("omit_auto_tags[%d]", i), "value of omit_auto_tags must be one or more of: %s, got: %s",
				strings.Join(tags.Families, ", "), f)
		}
	}
	if a.Prefix, err = expandPrefix(a.Prefix); err != nil {
		return nil, err
	}
	if err := config.ValidateInstanceName(a.Instance); err != nil {
		return nil, argErr("instance", "%s", err.Error())
	}
	if a.Refresh, err = optBool(raw, "refresh", false); err != nil {
		return nil, err
	}
	if a.IgnoreCleanupErrors, err = optBool(raw, "ignore_cleanup_errors", false); err != nil {
		return nil, err
	}
	if err := readConcurrency(raw, &a.Concurrency); err != nil {
		return nil, err
	}
	var hasGlobal, hasClients, hasExecutors bool
	d := &config.Declaration{}
	if v, ok := raw["global"]; ok && v != nil {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, argErr("global", "global must be a dict of gitlab-runner global settings, got %s", jsonType(v))
		}
		for _, k := range []string{"runners", "client_configs"} {
			if _, bad := m[k]; bad {
				return nil, argErr("global."+k, "global.%s is not allowed: give clients and executors instead", k)
			}
		}
		d.Global, hasGlobal = m, true
	}
	if v, ok := raw["clients"]; ok && v != nil {
		list, ok := v.([]any)
		if !ok {
			return nil, argErr("clients", "clients must be a list of dicts, got %s", jsonType(v))
		}
		hasClients = true
		for i, el := range list {
			c, err := parseClient(el, i)
			if err != nil {
				return nil, err
			}
			d.Clients = append(d.Clients, c)
		}
	}
	if v, ok := raw["executors"]; ok && v != nil {
		list, ok := v.([]any)
		if !ok {
			return nil, argErr("executors", "executors must be a list of dicts, got %s", jsonType(v))
		}
		hasExecutors = true
		seen := map[string]bool{}
		for i, el := range list {
			m, ok := el.(map[string]any)
			if !ok {
				return nil, argErr(fmt.Sprintf("executors[%d]", i), "executors[%d] must be a dict, got %s", i, jsonType(el))
			}
			if err := checkExecutor(m, i); err != nil {
				return nil, err
			}
			name := m["name"].(string)
			if seen[name] {
				return nil, argErr(fmt.Sprintf("executors[%d].name", i), "executors[%d].name %q is declared twice", i, name)
			}
			seen[name] = true
			d.Executors = append(d.Executors, m)
		}
	}
	if a.State == "present" && (hasGlobal || hasClients || hasExecutors) && !(hasClients && hasExecutors) {
		missing := "clients"
		if hasClients {
			missing = "executors"
		}
		return nil, argErr(missing, "clients and executors go together: give both to manage the files, or neither to sync the files already on the host")
	}
	if a.State == "present" && hasExecutors && len(d.Executors) == 0 {
		return nil, argErr("executors", "executors is empty: declare at least one executor, or use state: absent to remove this instance's runners")
	}
	if hasGlobal || hasClients || hasExecutors {
		d.Fleet = a.Fleet
		a.Declare = d
	}
	if err := a.expandHomes(); err != nil {
		return nil, err
	}
	return a, nil
}

func parseClient(el any, i int) (config.DeclaredClient, error) {
	m, ok := el.(map[string]any)
	if !ok {
		return config.DeclaredClient{}, argErr(fmt.Sprintf("clients[%d]", i), "clients[%d] must be a dict, got %s", i, jsonType(el))
	}
	c := config.DeclaredClient{Values: map[string]any{}}
	for k, v := range m {
		if k == "group" || k == "project" {
			if v == nil {
				continue
			}
			p, err := toStr(v, fmt.Sprintf("clients[%d].%s", i, k))
			if err != nil {
				return c, err
			}
			p = strings.Trim(strings.TrimSpace(p), "/")
			if p == "" {
				return c, argErr(fmt.Sprintf("clients[%d].%s", i, k), "clients[%d].%s must be a full path such as ops/ci", i, k)
			}
			if k == "group" {
				c.Group = p
			} else {
				c.Project = p
			}
			continue
		}
		key, known := config.ClientKey(k)
		if !known {
			var names []string
			for _, k := range config.ClientKeys() {
				names = append(names, k.Name)
			}
			return c, argErr(fmt.Sprintf("clients[%d].%s", i, k), "clients[%d]: unsupported parameter %s; supported: %s, group, project", i, k, strings.Join(names, ", "))
		}
		if v == nil {
			continue
		}
		cv, err := convert(v, key.Kind, fmt.Sprintf("clients[%d].%s", i, k))
		if err != nil {
			return c, err
		}
		c.Values[k] = cv
	}
	if url, _ := c.Values["url"].(string); url == "" {
		return c, argErr(fmt.Sprintf("clients[%d].url", i), "clients[%d].url is required", i)
	}
	if _, ok := c.Values["group_id"]; ok && c.Group != "" {
		return c, argErr(fmt.Sprintf("clients[%d].group", i), "clients[%d]: give group or group_id, not both", i)
	}
	if _, ok := c.Values["project_id"]; ok && c.Project != "" {
		return c, argErr(fmt.Sprintf("clients[%d].project", i), "clients[%d]: give project or project_id, not both", i)
	}
	if rt, ok := c.Values["runner_type"].(string); ok && !slices.Contains(config.RunnerTypes(), rt) {
		return c, argErr(fmt.Sprintf("clients[%d].runner_type", i), "clients[%d].runner_type must be one of: %s, got: %s", i, strings.Join(config.RunnerTypes(), ", "), rt)
	}
	return c, nil
}

// convert turns an Ansible value into the kind core expects, accepting
// what Ansible's own types accept ("yes" for a bool, "12" for an int).
func convert(v any, kind table.Kind, where string) (any, error) {
	switch kind {
	case table.KindBool:
		return toBool(v, where)
	case table.KindInt:
		return toInt(v, where)
	case table.KindStringList:
		list, ok := v.([]any)
		if !ok {
			return nil, argErr(where, "%s must be %s, got %s", where, kind, jsonType(v))
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
		return argErr(fmt.Sprintf("executors[%d].name", i), "executors[%d].name is required", i)
	}
	name, err := toStr(v, fmt.Sprintf("executors[%d].name", i))
	if err != nil {
		return err
	}
	m["name"] = name
	for _, k := range config.ExecutorKeys() {
		v, ok := m[k.Name]
		if !ok {
			continue
		}
		cv, err := convert(v, k.Kind, fmt.Sprintf("executors[%d].%s", i, k.Name))
		if err != nil {
			return err
		}
		m[k.Name] = cv
	}
	if name == "" {
		return argErr(fmt.Sprintf("executors[%d].name", i), "executors[%d].name must not be empty", i)
	}
	if err := config.ValidateExecutorName(name); err != nil {
		return argErr(fmt.Sprintf("executors[%d].name", i), "executors[%d].name %q must be a plain file name: letters, digits, '.', '_', '+', '-', starting with a letter or digit", i, name)
	}
	if _, ok := m["url"]; !ok {
		return argErr(fmt.Sprintf("executors[%d].url", i), "executors[%d].url is required (the GitLab URL of one of the clients)", i)
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
	return "", argErr(name, "%s must be %s, got %s", name, table.KindString, jsonType(v))
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
	return 0, argErr(name, "%s must be %s, got %s %q", name, table.KindInt, jsonType(v), fmt.Sprint(v))
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
	return false, argErr(name, "%s must be %s, got %s %q", name, table.KindBool, jsonType(v), fmt.Sprint(v))
}

func optBool(raw map[string]any, key string, def bool) (bool, error) {
	v, ok := raw[key]
	if !ok || v == nil {
		return def, nil
	}
	return toBool(v, key)
}

// toDuration accepts Go durations ("90s", "5m") or a number of seconds.
func toDuration(v any, name string) (time.Duration, error) {
	var d time.Duration
	switch x := v.(type) {
	case json.Number:
		n, err := x.Float64()
		if err != nil {
			return 0, argErr(name, "%s must be a duration such as 90s or 5m, or seconds", name)
		}
		d = time.Duration(n * float64(time.Second))
	case string:
		s := strings.TrimSpace(x)
		if n, err := strconv.ParseFloat(s, 64); err == nil {
			d = time.Duration(n * float64(time.Second))
		} else if d, err = time.ParseDuration(s); err != nil {
			return 0, argErr(name, "%s must be a duration such as 90s or 5m, or seconds, got %q", name, x)
		}
	default:
		return 0, argErr(name, "%s must be a duration such as 90s or 5m, or seconds, got %s", name, jsonType(v))
	}
	if d <= 0 {
		return 0, argErr(name, "%s must be positive", name)
	}
	return d, nil
}

// expandPrefix expands "~" and "~/..." to the home folder of the user the
// module runs as and refuses anything that is not then an absolute path
// ("~other/" included): a prefix is never created relative to wherever
// the module happens to run.
func expandPrefix(p string) (string, error) {
	p = strings.TrimSpace(p)
	if p == "" {
		return "", argErr("prefix", "prefix must not be empty")
	}
	if p == "~" || strings.HasPrefix(p, "~/") {
		home, err := os.UserHomeDir()
		if err != nil || !filepath.IsAbs(home) {
			return "", argErr("prefix", "prefix %q: cannot expand ~ (no home folder for this user); give an absolute path", p)
		}
		p = filepath.Join(home, strings.TrimPrefix(p, "~"))
	}
	if !filepath.IsAbs(p) {
		return "", argErr("prefix", "prefix must be an absolute path (or start with ~/), got %q", p)
	}
	return filepath.Clean(p), nil
}

// readStrings reads the options given as strings into their fields, in
// a fixed order (so the first bad one is always the same).
func readStrings(raw map[string]any, dst map[string]*string) error {
	return readInto(raw, dst, toStr)
}

// readDurations reads the duration options given into their fields.
func readDurations(raw map[string]any, dst map[string]*time.Duration) error {
	return readInto(raw, dst, toDuration)
}

// readInto converts each option given (not null) into its field, in
// sorted order.
func readInto[T any](raw map[string]any, dst map[string]*T, conv func(any, string) (T, error)) error {
	for _, key := range sortedKeys(dst) {
		if v, ok := raw[key]; ok && v != nil {
			x, err := conv(v, key)
			if err != nil {
				return err
			}
			*dst[key] = x
		}
	}
	return nil
}

func readConcurrency(raw map[string]any, dst *int) error {
	v, ok := raw["concurrency"]
	if !ok || v == nil {
		return nil
	}
	n, err := toInt(v, "concurrency")
	if err != nil {
		return err
	}
	if n < 1 || n > core.MaxConcurrency {
		return argErr("concurrency", "concurrency must be between 1 and %d, got %d", core.MaxConcurrency, n)
	}
	*dst = int(n)
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func sortedCopy(s []string) []string {
	c := append([]string(nil), s...)
	sort.Strings(c)
	return c
}

// expandHomes gives the other options of type path what prefix has: "~"
// and "~/..." are the home folder of the user the module runs as, on the
// host (the action plugin sends them unexpanded), and "~user/" is refused
// rather than read as a folder named so under the prefix.
func (a *Args) expandHomes() error {
	var err error
	if a.TagSchema, err = expandHome(a.TagSchema, "tag_schema"); err != nil {
		return err
	}
	if a.CaptureTags, err = expandHome(a.CaptureTags, "capture_tags"); err != nil {
		return err
	}
	if a.Declare == nil {
		return nil
	}
	for i, c := range a.Declare.Clients {
		for _, k := range []string{"personal_access_token_file", "registration_token_file", "tls_ca_file"} {
			if p, ok := c.Values[k].(string); ok {
				if c.Values[k], err = expandHome(p, fmt.Sprintf("clients[%d].%s", i, k)); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func expandHome(p, option string) (string, error) {
	switch {
	case p == "~" || strings.HasPrefix(p, "~/"):
		home, err := os.UserHomeDir()
		if err != nil || !filepath.IsAbs(home) {
			return "", argErr(option, "%s %q: cannot expand ~ (no home folder for this user); give an absolute path", option, p)
		}
		return filepath.Join(home, strings.TrimPrefix(p, "~")), nil
	case strings.HasPrefix(p, "~"):
		return "", argErr(option, "%s %q: only ~ and ~/... are expanded (to the home folder of the user the module runs as); give an absolute path", option, p)
	}
	return p, nil
}

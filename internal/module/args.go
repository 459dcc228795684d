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

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/input"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/config"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/engine"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/table"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/tags"
)

// Args are the module's options after validation.
type Args struct {
	Prefix   string
	Instance string
	State    string
	// Declare is global, clients and executors, when given: the instance
	// as values, for the engine to render into its files.
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
	// Fleet names the fleet this host's runners belong to (see engine.Options.Fleet).
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

// defaultTimeout bounds a whole run, defaultRequestTimeout one HTTP
// request, unless the options say otherwise (sync, info and prune alike).
const (
	defaultTimeout        = 5 * time.Minute
	defaultRequestTimeout = 20 * time.Second
)

// ParseArgs reads Ansible's arguments (JSON) and validates every option
// of sync or info.
func ParseArgs(data []byte) (*Args, error) {
	raw, err := decodeArgs(data)
	if err != nil {
		return nil, err
	}
	a := &Args{Prefix: "/etc/gitlab-runner", Instance: "main", State: "present", Concurrency: engine.DefaultConcurrency,
		Timeout: defaultTimeout, LockTimeout: 120 * time.Second, RequestTimeout: defaultRequestTimeout,
		CaptureTimeout: 10 * time.Second}
	if a.Module, err = moduleOf(raw); err != nil {
		return nil, err
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
	if a.CheckMode, a.Diff, err = ansibleModes(raw); err != nil {
		return nil, err
	}
	if err := a.readTopLevel(raw); err != nil {
		return nil, err
	}
	if a.Declare, err = readDeclaration(raw, a.State, a.Fleet); err != nil {
		return nil, err
	}
	if err := a.expandHomes(); err != nil {
		return nil, err
	}
	return a, nil
}

// moduleOf is the module the arguments are for: sync, unless the info
// action plugin said info.
func moduleOf(raw map[string]any) (string, error) {
	v, ok := raw[moduleArg]
	if !ok {
		return "sync", nil
	}
	if v != "info" && v != "sync" {
		return "", argErr(moduleArg, "%s must be sync or info here", moduleArg)
	}
	return v.(string), nil
}

// ansibleModes reads the check and diff modes Ansible passes every
// module.
func ansibleModes(raw map[string]any) (check, diff bool, err error) {
	if check, err = optBool(raw, "_ansible_check_mode", false); err != nil {
		return false, false, err
	}
	if diff, err = optBool(raw, "_ansible_diff", false); err != nil {
		return false, false, err
	}
	return check, diff, nil
}

// readTopLevel reads the options of sync and info other than the
// timeouts and the declaration (global, clients, executors).
func (a *Args) readTopLevel(raw map[string]any) error {
	if err := readStrings(raw, map[string]*string{"prefix": &a.Prefix, "instance": &a.Instance, "state": &a.State,
		"tag_schema": &a.TagSchema, "capture_tags": &a.CaptureTags, "hostname": &a.Hostname, "fleet": &a.Fleet}); err != nil {
		return err
	}
	if err := oneOf("state", a.State, "present", "absent"); err != nil {
		return err
	}
	var err error
	if a.OmitAutoTags, err = readOmitAutoTags(raw); err != nil {
		return err
	}
	if a.Prefix, err = expandPrefix(a.Prefix); err != nil {
		return err
	}
	if err := config.ValidateInstanceName(a.Instance); err != nil {
		return argErr("instance", "%s", err.Error())
	}
	if a.Refresh, err = optBool(raw, "refresh", false); err != nil {
		return err
	}
	if a.IgnoreCleanupErrors, err = optBool(raw, "ignore_cleanup_errors", false); err != nil {
		return err
	}
	return readConcurrency(raw, &a.Concurrency)
}

// oneOf refuses a value that is not one of the choices, in Ansible's
// words.
func oneOf(option, value string, choices ...string) error {
	if slices.Contains(choices, value) {
		return nil
	}
	return argErr(option, "value of %s must be one of: %s, got: %s", option, strings.Join(choices, ", "), value)
}

// readOmitAutoTags reads omit_auto_tags: automatic tag families
// (tags.Families).
func readOmitAutoTags(raw map[string]any) ([]string, error) {
	families, err := strList(raw, "omit_auto_tags")
	if err != nil {
		return nil, err
	}
	for i, f := range families {
		if !slices.Contains(tags.Families, f) {
			return nil, argErr(fmt.Sprintf("omit_auto_tags[%d]", i), "value of omit_auto_tags must be one or more of: %s, got: %s",
				strings.Join(tags.Families, ", "), f)
		}
	}
	return families, nil
}

// readDeclaration reads global, clients and executors: nil when none is
// given (sync then works on the files already on the host), else the
// instance as declared, with fleet for the clients that name none. With
// state present, clients and executors go together, and executors is not
// empty.
func readDeclaration(raw map[string]any, state, fleet string) (*config.Declaration, error) {
	global, hasGlobal, err := readGlobal(raw)
	if err != nil {
		return nil, err
	}
	clients, hasClients, err := readClients(raw)
	if err != nil {
		return nil, err
	}
	executors, hasExecutors, err := readExecutors(raw)
	if err != nil {
		return nil, err
	}
	if state == "present" && (hasGlobal || hasClients || hasExecutors) && !(hasClients && hasExecutors) {
		missing := "clients"
		if hasClients {
			missing = "executors"
		}
		return nil, argErr(missing, "clients and executors go together: give both to manage the files, or neither to sync the files already on the host")
	}
	if state == "present" && hasExecutors && len(executors) == 0 {
		return nil, argErr("executors", "executors is empty: declare at least one executor, or use state: absent to remove this instance's runners")
	}
	if !hasGlobal && !hasClients && !hasExecutors {
		return nil, nil
	}
	return &config.Declaration{Global: global, Clients: clients, Executors: executors, Fleet: fleet}, nil
}

// readGlobal reads global, gitlab-runner's global settings; given is
// false when it is absent or null.
func readGlobal(raw map[string]any) (global map[string]any, given bool, err error) {
	v, ok := raw["global"]
	if !ok || v == nil {
		return nil, false, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, false, argErr("global", "global must be a dict of gitlab-runner global settings, got %s", jsonType(v))
	}
	for _, k := range []string{"runners", "client_configs"} {
		if _, bad := m[k]; bad {
			return nil, false, argErr("global."+k, "global.%s is not allowed: give clients and executors instead", k)
		}
	}
	return m, true, nil
}

// readClients reads clients, one dict per GitLab scope; given is false
// when it is absent or null.
func readClients(raw map[string]any) (clients []config.DeclaredClient, given bool, err error) {
	list, given, err := optList(raw, "clients", "dicts")
	if err != nil {
		return nil, false, err
	}
	for i, el := range list {
		c, err := parseClient(el, i)
		if err != nil {
			return nil, false, err
		}
		clients = append(clients, c)
	}
	return clients, given, nil
}

// readExecutors reads executors, one dict per runner, each with a name
// of its own; given is false when it is absent or null.
func readExecutors(raw map[string]any) (executors []map[string]any, given bool, err error) {
	list, given, err := optList(raw, "executors", "dicts")
	if err != nil {
		return nil, false, err
	}
	seen := map[string]bool{}
	for i, el := range list {
		m, err := dictAt(el, fmt.Sprintf("executors[%d]", i))
		if err != nil {
			return nil, false, err
		}
		if err := checkExecutor(m, i); err != nil {
			return nil, false, err
		}
		name := m["name"].(string)
		if seen[name] {
			return nil, false, argErr(fmt.Sprintf("executors[%d].name", i), "executors[%d].name %q is declared twice", i, name)
		}
		seen[name] = true
		executors = append(executors, m)
	}
	return executors, given, nil
}

// optList reads an option given as a list (absent or null: not given);
// what names what its elements must be.
func optList(raw map[string]any, key, what string) (list []any, given bool, err error) {
	v, ok := raw[key]
	if !ok || v == nil {
		return nil, false, nil
	}
	if list, ok = v.([]any); !ok {
		return nil, false, argErr(key, "%s must be a list of %s, got %s", key, what, jsonType(v))
	}
	return list, true, nil
}

// dictAt is the element of a list at option (clients[2], say), which
// must be a dict.
func dictAt(el any, option string) (map[string]any, error) {
	m, ok := el.(map[string]any)
	if !ok {
		return nil, argErr(option, "%s must be a dict, got %s", option, jsonType(el))
	}
	return m, nil
}

func parseClient(el any, i int) (config.DeclaredClient, error) {
	m, err := dictAt(el, fmt.Sprintf("clients[%d]", i))
	if err != nil {
		return config.DeclaredClient{}, err
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

// convert turns an Ansible value into the kind the engine expects, accepting
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
	b, given, err := optional(raw, key, toBool)
	if err == nil && !given {
		return def, nil
	}
	return b, err
}

// optional converts an option when it is given (neither absent nor null).
func optional[T any](raw map[string]any, key string, conv func(any, string) (T, error)) (x T, given bool, err error) {
	v, ok := raw[key]
	if !ok || v == nil {
		return x, false, nil
	}
	if x, err = conv(v, key); err != nil {
		return x, false, err
	}
	return x, true, nil
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
		x, given, err := optional(raw, key, conv)
		if err != nil {
			return err
		}
		if given {
			*dst[key] = x
		}
	}
	return nil
}

func readConcurrency(raw map[string]any, dst *int) error {
	n, given, err := optional(raw, "concurrency", toInt)
	if err != nil || !given {
		return err
	}
	if n < 1 || n > engine.MaxConcurrency {
		return argErr("concurrency", "concurrency must be between 1 and %d, got %d", engine.MaxConcurrency, n)
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
	if err := expandPaths([]pathOption{{"tag_schema", &a.TagSchema}, {"capture_tags", &a.CaptureTags}}); err != nil {
		return err
	}
	if a.Declare == nil {
		return nil
	}
	var err error
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

// pathOption is an option of type path and the field that holds it.
type pathOption struct {
	key string
	dst *string
}

// expandPaths expands each path option in turn (expandHome).
func expandPaths(paths []pathOption) error {
	for _, p := range paths {
		var err error
		if *p.dst, err = expandHome(*p.dst, p.key); err != nil {
			return err
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

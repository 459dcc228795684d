package core

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/gitlab"
)

// MaxFileSize bounds every file the tool reads from the prefix.
const MaxFileSize = 1 << 20

// Layout names the files of one service instance under a prefix.
type Layout struct {
	Prefix   string
	Instance string
}

// TemplatePath is config.template.{instance}.toml.
func (l Layout) TemplatePath() string {
	return filepath.Join(l.Prefix, "config.template."+l.Instance+".toml")
}

// ExecutorDir is the folder of executor files.
func (l Layout) ExecutorDir() string { return filepath.Join(l.Prefix, l.Instance) }

// ConfigPath is the config.{instance}.toml read by gitlab-runner.
func (l Layout) ConfigPath() string { return filepath.Join(l.Prefix, "config."+l.Instance+".toml") }

// StatePath holds what config.toml cannot: the settings last applied.
func (l Layout) StatePath() string {
	return filepath.Join(l.Prefix, ".gitlab-runner-auth."+l.Instance+".json")
}

// LockPath is the advisory lock serialising runs for this instance.
func (l Layout) LockPath() string {
	return filepath.Join(l.Prefix, ".gitlab-runner-auth."+l.Instance+".lock")
}

// IncompletePath marks a run that changed GitLab and has not finished
// cleanly (killed, or failed): the next run then settles late effects.
func (l Layout) IncompletePath() string {
	return filepath.Join(l.Prefix, ".gitlab-runner-auth."+l.Instance+".incomplete")
}

// SystemIDPath is gitlab-runner's host identity file.
func (l Layout) SystemIDPath() string { return filepath.Join(l.Prefix, ".runner_system_id") }

// rel names a path relative to the prefix in messages.
func (l Layout) rel(p string) string {
	if r, err := filepath.Rel(l.Prefix, p); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return p
}

// Client is one entry of client_configs.
type Client struct {
	URL               string // as written
	Key               string // normalised, for matching
	PAT               string
	RegistrationToken string
	RunnerType        string
	GroupID           int64
	ProjectID         int64
	TLSCAFile         string
}

// Executor is one executor file, resolved against its client.
type Executor struct {
	Name string
	// File is the path relative to the prefix, for messages.
	File            string
	Client          *Client
	Type            string
	StaticTags      []string
	EnvTags         []string
	Description     string
	RunUntagged     bool
	Locked          bool
	Paused          bool
	AccessLevel     string
	MaximumTimeout  int64
	MaintenanceNote string
	RunnerType      string
	GroupID         int64
	ProjectID       int64
	// Keys are copied verbatim into the executor's [[runners]] section.
	Keys *Table
	// Tags are computed by ComputeTags.
	Tags []string
}

// Settings are what GitLab should store for this executor's runner.
func (e *Executor) Settings() gitlab.Settings {
	return gitlab.Settings{
		Description: e.Description, TagList: append([]string{}, e.Tags...), RunUntagged: e.RunUntagged,
		Locked: e.Locked, Paused: e.Paused, AccessLevel: e.AccessLevel, MaximumTimeout: e.MaximumTimeout,
		MaintenanceNote: e.MaintenanceNote,
	}.Normalized()
}

// Desired is everything declared on disk for one instance.
type Desired struct {
	Layout    Layout
	Hostname  string
	Globals   *Table
	Clients   []*Client
	Executors []*Executor // sorted by name
}

// Overlay supplies file contents instead of reading them from the prefix
// (the Ansible module's check mode plans against files it has not written).
type Overlay struct {
	Template  []byte
	Executors map[string][]byte // file name ("shell.toml") -> content
}

var (
	reInstance     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)
	reExecutorName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.+-]{0,62}$`)
	reDigits       = regexp.MustCompile(`[0-9]+`)
)

// ShortHostname drops the domain: node12.cluster.example.org -> node12.
func ShortHostname(h string) string {
	if i := strings.IndexByte(h, '.'); i > 0 {
		return h[:i]
	}
	return h
}

// DigitlessHostname is the hostname with digits removed (node12 -> node).
func DigitlessHostname(h string) string { return reDigits.ReplaceAllString(h, "") }

// ValidateNames checks the instance and host names.
func ValidateNames(hostname, instance string) error {
	if hostname == "" {
		return inputErr("--hostname", "the host name is empty; pass --hostname NAME")
	}
	if strings.ContainsAny(hostname, " ,\t\n") {
		return inputErr("--hostname", "%q contains spaces or commas; give the short host name", hostname)
	}
	if !reInstance.MatchString(instance) {
		return inputErr("--service-instance", "%q is not a valid instance name (letters, digits, '.', '_', '-'; e.g. main)", instance)
	}
	if instance == hostname || instance == DigitlessHostname(hostname) {
		return inputErr("--service-instance", "instance name %q equals the host name (%s); its tag would be meaningless, choose another instance name", instance, hostname)
	}
	return nil
}

// CheckPrivate refuses a path that group or other can access.
func CheckPrivate(path, what string) error {
	fi, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return inputErr(path, "%s does not exist", what)
		}
		return inputErr(path, "%s cannot be read: %v", what, unwrapPathErr(err))
	}
	if fi.Mode().Perm()&0o077 != 0 {
		mode := "600"
		if fi.IsDir() {
			mode = "700"
		}
		return inputErr(path, "%s is accessible by group or other (mode %04o); secrets live here, so fix it with: chmod %s %s",
			what, fi.Mode().Perm(), mode, path)
	}
	return nil
}

func unwrapPathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// readSmall reads a file of at most MaxFileSize bytes that must be UTF-8.
func readSmall(path, name string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, inputErr(name, "file does not exist")
		}
		return nil, inputErr(name, "cannot be read: %v", unwrapPathErr(err))
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, inputErr(name, "cannot be read: %v", unwrapPathErr(err))
	}
	if len(data) > MaxFileSize {
		return nil, inputErr(name, "file is larger than %d bytes; this is not a gitlab-runner settings file", MaxFileSize)
	}
	return data, nil
}

func checkText(name string, data []byte) error {
	if !utf8.Valid(data) {
		line := 1 + bytes.Count(data[:firstInvalid(data)], []byte("\n"))
		return inputErr(name, "line %d: not valid UTF-8; save the file as UTF-8", line)
	}
	if bytes.IndexByte(data, 0) >= 0 {
		return inputErr(name, "contains NUL bytes; this is not a text file")
	}
	return nil
}

func firstInvalid(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return len(b)
}

// LoadDesired reads and validates the template and executor files.
func LoadDesired(l Layout, hostname string, ov *Overlay, sec *Redactor) (*Desired, error) {
	return loadDesired(l, hostname, ov, sec, false)
}

func loadDesired(l Layout, hostname string, ov *Overlay, sec *Redactor, prefixMissing bool) (*Desired, error) {
	if err := ValidateNames(hostname, l.Instance); err != nil {
		return nil, err
	}
	if !prefixMissing {
		if err := CheckPrivate(l.Prefix, "prefix directory"); err != nil {
			return nil, err
		}
	}
	tplName := l.rel(l.TemplatePath())
	var tplData []byte
	if ov != nil && ov.Template != nil {
		tplData = ov.Template
	} else {
		if err := CheckPrivate(l.TemplatePath(), "template"); err != nil {
			var ie *InputError
			if errors.As(err, &ie) && strings.Contains(ie.Msg, "does not exist") {
				return nil, inputErr(l.TemplatePath(), "template does not exist; create it with the global settings and a [[client_configs]] entry (see README, \"Files\")")
			}
			return nil, err
		}
		var err error
		if tplData, err = readSmall(l.TemplatePath(), tplName); err != nil {
			return nil, err
		}
	}
	d := &Desired{Layout: l, Hostname: hostname}
	if err := d.parseTemplate(tplName, tplData, sec); err != nil {
		return nil, err
	}
	files, err := executorFiles(l, ov)
	if err != nil {
		return nil, err
	}
	if err := d.loadExecutors(files); err != nil {
		return nil, err
	}
	sort.Slice(d.Executors, func(i, j int) bool { return d.Executors[i].Name < d.Executors[j].Name })
	return d, nil
}

type execFile struct {
	name string // stem
	rel  string // path for messages
	path string // on disk ("" when the content comes from an overlay)
	data []byte
	// plain is true for a regular file (not a link) in a folder known to be
	// inside the prefix: no need to resolve links.
	plain bool
}

var executorExts = []string{".toml", ".yaml", ".yml"}

func executorExt(fn string) string {
	for _, ext := range executorExts {
		if strings.HasSuffix(fn, ext) {
			return ext
		}
	}
	return ""
}

// executorFiles lists the executor files and checks their names; the
// contents are read later, in parallel.
func executorFiles(l Layout, ov *Overlay) ([]execFile, error) {
	dir := l.ExecutorDir()
	relDir := l.rel(dir)
	var names []string
	contents := map[string][]byte{}
	plain := map[string]bool{}
	if ov != nil && ov.Executors != nil {
		for fn, data := range ov.Executors {
			names = append(names, fn)
			contents[fn] = data
		}
	} else {
		if err := CheckPrivate(dir, "executor folder"); err != nil {
			var ie *InputError
			if errors.As(err, &ie) && strings.Contains(ie.Msg, "does not exist") {
				return nil, inputErr(dir, "executor folder does not exist; create it (mkdir -m 700 %s) and add one file per executor, e.g. shell.toml", dir)
			}
			return nil, err
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			return nil, inputErr(dir, "cannot list executor folder: %v", unwrapPathErr(err))
		}
		dirInside := false
		if fi, err := os.Lstat(dir); err == nil && fi.Mode().IsDir() {
			dirInside = true // a real folder in the prefix, not a link elsewhere
		}
		for _, de := range entries {
			fn := de.Name()
			if strings.HasPrefix(fn, ".") || executorExt(fn) == "" {
				continue // editor backups, READMEs and the like
			}
			names = append(names, fn)
			if dirInside && de.Type().IsRegular() {
				plain[fn] = true
			}
		}
	}
	sort.Strings(names)
	byStem := map[string]string{}
	var out []execFile
	for _, fn := range names {
		ext := executorExt(fn)
		rel := filepath.Join(relDir, fn)
		if ext == "" {
			return nil, inputErr(rel, "executor files must end in .toml, .yaml or .yml")
		}
		stem := strings.TrimSuffix(fn, ext)
		if other, dup := byStem[stem]; dup {
			return nil, inputErr(rel, "executor %q is also defined by %s; keep one of the two files", stem, filepath.Join(relDir, other))
		}
		byStem[stem] = fn
		if !reExecutorName.MatchString(stem) {
			return nil, inputErr(rel, "file name %q is not a valid executor name (letters, digits, '.', '_', '+', '-'); rename the file", stem)
		}
		f := execFile{name: stem, rel: rel, plain: plain[fn]}
		if data, ok := contents[fn]; ok {
			f.data = data
		} else {
			f.path = filepath.Join(dir, fn)
		}
		out = append(out, f)
	}
	if len(out) == 0 {
		return nil, inputErr(dir, "no executor files (*.toml, *.yaml, *.yml) in the executor folder; add one per executor, or unregister the instance (register-runner --unregister, or state: absent in Ansible)")
	}
	return out, nil
}

// readExecutorFile reads one executor file, refusing links that leave the prefix.
func readExecutorFile(prefixReal, prefix string, f execFile) ([]byte, error) {
	if f.path == "" {
		return f.data, nil
	}
	if f.plain {
		return readSmall(f.path, f.rel)
	}
	real, err := filepath.EvalSymlinks(f.path)
	if err != nil {
		return nil, inputErr(f.rel, "cannot be read: %v", unwrapPathErr(err))
	}
	if r, err := filepath.Rel(prefixReal, real); err != nil || r == ".." || strings.HasPrefix(r, "../") {
		return nil, inputErr(f.rel, "is a symbolic link to %s, outside the prefix %s; copy the file into the prefix instead", real, prefix)
	}
	fi, err := os.Stat(real)
	if err != nil {
		return nil, inputErr(f.rel, "cannot be read: %v", unwrapPathErr(err))
	}
	if !fi.Mode().IsRegular() {
		return nil, inputErr(f.rel, "is not a regular file")
	}
	return readSmall(f.path, f.rel)
}

// loadExecutors reads and parses the executor files on every core; the
// error reported is the first in file-name order, so it does not depend on
// scheduling.
func (d *Desired) loadExecutors(files []execFile) error {
	prefixReal, err := filepath.EvalSymlinks(d.Layout.Prefix)
	if err != nil {
		prefixReal = d.Layout.Prefix
	}
	execs := make([]*Executor, len(files))
	errs := make([]error, len(files))
	workers := min(runtime.GOMAXPROCS(0), len(files))
	next := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				data, err := readExecutorFile(prefixReal, d.Layout.Prefix, files[i])
				if err == nil {
					execs[i], err = d.parseExecutor(files[i].name, files[i].rel, data)
				}
				errs[i] = err
			}
		}()
	}
	for i := range files {
		next <- i
	}
	close(next)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	d.Executors = execs
	return nil
}

func (d *Desired) parseTemplate(name string, data []byte, sec *Redactor) error {
	if err := checkText(name, data); err != nil {
		return err
	}
	t, err := parseTOMLTable(data)
	if err != nil {
		return inputErr(name, "%v", err)
	}
	if _, ok := t.Get("runners"); ok {
		return inputErr(name, "key runners: the template must not contain [[runners]]; declare each executor as a file in %s/ instead", d.Layout.Instance)
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

var clientKeys = map[string]bool{
	"url": true, "personal_access_token": true, "personal_access_token_file": true, "registration_token": true,
	"registration_token_file": true, "runner_type": true, "group_id": true, "project_id": true, "tls_ca_file": true,
}

func (d *Desired) parseClient(file string, i int, t *Table, sec *Redactor) (*Client, error) {
	where := func(key string) string { return fmt.Sprintf("%s: client_configs[%d].%s", file, i, key) }
	for _, k := range t.Keys() {
		if !clientKeys[k] {
			return nil, &InputError{Where: where(k), Msg: "unknown key; expected one of url, personal_access_token(_file), registration_token(_file), runner_type, group_id, project_id, tls_ca_file"}
		}
	}
	c := &Client{}
	u, err := stringKey(t, "url")
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
	if c.RunnerType, c.GroupID, c.ProjectID, err = runnerScope(t, "instance_type", 0, 0); err != nil {
		var ie *InputError
		errors.As(err, &ie)
		return nil, &InputError{Where: where(ie.Where), Msg: ie.Msg}
	}
	if ca, err := stringKey(t, "tls_ca_file"); err != nil {
		return nil, &InputError{Where: where("tls_ca_file"), Msg: err.Error()}
	} else if ca != "" {
		if !filepath.IsAbs(ca) {
			ca = filepath.Join(d.Layout.Prefix, ca)
		}
		if _, err := os.Stat(ca); err != nil {
			return nil, &InputError{Where: where("tls_ca_file"), Msg: fmt.Sprintf("%s cannot be read: %v", ca, unwrapPathErr(err))}
		}
		c.TLSCAFile = ca
	}
	return c, nil
}

var rePlaceholder = regexp.MustCompile(`^(\{\{?.*\}?\}|<[^<>]*>|\$\{[^}]*\}|%\(.*\)s)$`)

func isPlaceholder(v string) bool { return rePlaceholder.MatchString(strings.TrimSpace(v)) }

// secretKey reads key or key_file (owner-only file, relative to the prefix).
func (d *Desired) secretKey(t *Table, key string, where func(string) string) (string, error) {
	inline, err := stringKey(t, key)
	if err != nil {
		return "", &InputError{Where: where(key), Msg: err.Error()}
	}
	file, err := stringKey(t, key+"_file")
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
		if err := CheckPrivate(file, key+"_file"); err != nil {
			return "", err
		}
		data, err := readSmall(file, file)
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

// NormalizeURL gives scheme://host[:port]/path with no trailing slash and
// default ports removed, the form used to match executors to clients.
func NormalizeURL(raw string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("%q is not an http(s) URL; write GitLab's base URL, e.g. https://gitlab.example.com", raw)
	}
	if u.User != nil {
		return "", fmt.Errorf("the URL must not contain credentials; use personal_access_token instead")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%q has a query or fragment; write GitLab's base URL only", raw)
	}
	scheme := strings.ToLower(u.Scheme)
	host := strings.ToLower(u.Hostname())
	port := u.Port()
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	hp := host
	if port != "" {
		hp = net.JoinHostPort(host, port)
	} else if strings.Contains(host, ":") {
		hp = "[" + host + "]"
	}
	return scheme + "://" + hp + strings.TrimRight(u.EscapedPath(), "/"), nil
}

func stringKey(t *Table, key string) (string, error) {
	v, ok := t.Get(key)
	if !ok {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("must be a string, not %s", typeName(v))
	}
	return s, nil
}

func typeName(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case []any:
		return "a list"
	case *Table:
		return "a table"
	}
	return fmt.Sprintf("%T", v)
}

// runnerScope reads runner_type/group_id/project_id with defaults.
func runnerScope(t *Table, defType string, defGroup, defProject int64) (string, int64, int64, error) {
	rt, err := stringKey(t, "runner_type")
	if err != nil {
		return "", 0, 0, &InputError{Where: "runner_type", Msg: err.Error()}
	}
	_, hasType := t.Get("runner_type")
	g, gok, err := intKey(t, "group_id")
	if err != nil {
		return "", 0, 0, &InputError{Where: "group_id", Msg: err.Error()}
	}
	p, pok, err := intKey(t, "project_id")
	if err != nil {
		return "", 0, 0, &InputError{Where: "project_id", Msg: err.Error()}
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
			return "", 0, 0, &InputError{Where: "group_id", Msg: "runner_type group_type needs group_id = <numeric id of the group>"}
		}
	case "project_type":
		if p <= 0 {
			return "", 0, 0, &InputError{Where: "project_id", Msg: "runner_type project_type needs project_id = <numeric id of the project>"}
		}
	default:
		return "", 0, 0, &InputError{Where: "runner_type", Msg: fmt.Sprintf("%q is not one of instance_type, group_type, project_type", rt)}
	}
	return rt, g, p, nil
}

func intKey(t *Table, key string) (int64, bool, error) {
	v, ok := t.Get(key)
	if !ok {
		return 0, false, nil
	}
	n, ok := v.(int64)
	if !ok {
		return 0, true, fmt.Errorf("must be an integer, not %s", typeName(v))
	}
	return n, true, nil
}

func boolKey(t *Table, key string, def bool) (bool, error) {
	v, ok := t.Get(key)
	if !ok {
		return def, nil
	}
	b, ok := v.(bool)
	if !ok {
		return false, fmt.Errorf("must be true or false, not %s", typeName(v))
	}
	return b, nil
}

func stringListKey(t *Table, key string) ([]string, error) {
	v, ok := t.Get(key)
	if !ok {
		return nil, nil
	}
	arr, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("must be a list of strings, e.g. %s = [\"a\", \"b\"], not %s", key, typeName(v))
	}
	out := make([]string, 0, len(arr))
	for i, e := range arr {
		s, ok := e.(string)
		if !ok {
			return nil, fmt.Errorf("item %d must be a string, not %s", i, typeName(e))
		}
		out = append(out, s)
	}
	return out, nil
}

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
	if err := checkText(rel, data); err != nil {
		return nil, err
	}
	var t *Table
	var err error
	if strings.HasSuffix(rel, ".toml") {
		t, err = parseTOMLTable(data)
	} else {
		t, err = parseYAMLTable(data)
	}
	if err != nil {
		return nil, inputErr(rel, "%v", err)
	}
	at := func(key string) string { return rel + ": key " + key }
	e := &Executor{Name: stem, File: rel}
	for k, why := range managedKeys {
		if _, ok := t.Get(k); ok {
			return nil, inputErr(at(k), "must not be set: %s; remove it", why)
		}
	}
	u, err := stringKey(t, "url")
	if err != nil {
		return nil, inputErr(at("url"), "%v", err)
	}
	if u == "" {
		return nil, inputErr(at("url"), "missing; add url = \"<GitLab URL from client_configs>\" to select the GitLab this executor registers with")
	}
	key, err := NormalizeURL(u)
	if err != nil {
		return nil, inputErr(at("url"), "%v", err)
	}
	var known []string
	for _, c := range d.Clients {
		known = append(known, c.URL)
		if c.Key == key {
			e.Client = c
		}
	}
	if e.Client == nil {
		return nil, inputErr(at("url"), "%q matches no client_configs entry in config.template.%s.toml (known: %s); fix the url or add a client", u, d.Layout.Instance, strings.Join(known, ", "))
	}
	if v, ok := t.Get("executor"); ok {
		s, isStr := v.(string)
		if !isStr || strings.TrimSpace(s) == "" {
			return nil, inputErr(at("executor"), "must be a non-empty string, e.g. executor = \"shell\"")
		}
		e.Type = s
	} else if knownExecutorTypes[stem] {
		e.Type = stem
	} else {
		return nil, inputErr(at("executor"), "missing; add executor = \"shell\" (or docker, custom, kubernetes, ...)")
	}
	if e.StaticTags, err = stringListKey(t, "tags"); err != nil {
		return nil, inputErr(at("tags"), "%v", err)
	}
	if e.EnvTags, err = stringListKey(t, "env_tags"); err != nil {
		return nil, inputErr(at("env_tags"), "%v", err)
	}
	for _, tg := range e.StaticTags {
		if err := checkTag(tg); err != nil {
			return nil, inputErr(at("tags"), "%v", err)
		}
	}
	desc, err := stringKey(t, "description")
	if err != nil {
		return nil, inputErr(at("description"), "%v", err)
	}
	if _, ok := t.Get("description"); ok && strings.TrimSpace(desc) == "" {
		return nil, inputErr(at("description"), "is empty; remove it to use the default %q", DefaultDescription(d.Hostname, d.Layout.Instance, stem))
	}
	if desc == "" {
		desc = DefaultDescription(d.Hostname, d.Layout.Instance, stem)
	}
	e.Description = desc
	for _, b := range []struct {
		key string
		dst *bool
	}{{"run_untagged", &e.RunUntagged}, {"locked", &e.Locked}, {"paused", &e.Paused}} {
		if *b.dst, err = boolKey(t, b.key, false); err != nil {
			return nil, inputErr(at(b.key), "%v", err)
		}
	}
	if e.AccessLevel, err = stringKey(t, "access_level"); err != nil {
		return nil, inputErr(at("access_level"), "%v", err)
	}
	if e.AccessLevel == "" {
		e.AccessLevel = "not_protected"
	}
	if e.AccessLevel != "not_protected" && e.AccessLevel != "ref_protected" {
		return nil, inputErr(at("access_level"), "%q is not one of not_protected, ref_protected", e.AccessLevel)
	}
	mt, hasMT, err := intKey(t, "maximum_timeout")
	if err != nil {
		return nil, inputErr(at("maximum_timeout"), "%v", err)
	}
	if hasMT && mt < 600 {
		return nil, inputErr(at("maximum_timeout"), "%d is below GitLab's minimum of 600 seconds", mt)
	}
	e.MaximumTimeout = mt
	if e.MaintenanceNote, err = stringKey(t, "maintenance_note"); err != nil {
		return nil, inputErr(at("maintenance_note"), "%v", err)
	}
	if len(e.MaintenanceNote) > 1024 {
		return nil, inputErr(at("maintenance_note"), "is longer than GitLab's limit of 1024 characters")
	}
	if e.RunnerType, e.GroupID, e.ProjectID, err = runnerScope(t, e.Client.RunnerType, e.Client.GroupID, e.Client.ProjectID); err != nil {
		var ie *InputError
		errors.As(err, &ie)
		return nil, inputErr(at(ie.Where), "%s", ie.Msg)
	}
	keys := NewTable()
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

// DefaultDescription is the description a runner gets unless its file sets one.
func DefaultDescription(hostname, instance, name string) string {
	return fmt.Sprintf("%s %s %s Runner", hostname, instance, name)
}

func checkTag(tag string) error {
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

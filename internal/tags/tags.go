// Package tags computes each executor's tags: host and instance names,
// executor type, env_tags, static tags, architecture, batch scheduler and
// the capture program's properties, checked against the tag schema.
package tags

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/config"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/fanout"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/hostfs"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/input"
	"github.com/google/jsonschema-go/jsonschema"
)

// The automatic tag families: tags the tool gives every runner by itself.
// Options.Omit switches any of them off (none by default). The tag
// schema's property object keeps every property whatever is omitted: the
// families decide the tags, not what a schema checks.
const (
	// Hostname is the host name (node12).
	Hostname = "hostname"
	// DigitlessHostname is the host name without digits (node).
	DigitlessHostname = "digitless_hostname"
	// Instance is the service instance's name (main).
	Instance = "instance"
	// ExecutorType is the executor type (shell, docker, ...).
	ExecutorType = "executor_type"
	// Architecture is the machine's, as uname -m prints it (x86_64).
	Architecture = "architecture"
	// Scheduler is the batch scheduler of a batch or custom executor (slurm).
	Scheduler = "scheduler"
)

// Families lists the automatic tag families, in the order tags are added.
var Families = []string{Hostname, DigitlessHostname, Instance, ExecutorType, Architecture, Scheduler}

// CheckOmit refuses a name in omit that is no automatic tag family.
func CheckOmit(omit []string) error {
	for _, f := range omit {
		if !slices.Contains(Families, f) {
			return input.OptionErrorf(input.OmitAutoTags, "%q is no automatic tag family", f).
				WithFix("give some of %s", strings.Join(Families, ", "))
		}
	}
	return nil
}

// IdentityTags are the tags every runner of this host and instance
// carries (the host name and the instance, unless omitted): GitLab lists
// this host's runners by them. None when both are omitted.
func IdentityTags(hostname, instance string, omit []string) []string {
	var out []string
	if !slices.Contains(omit, Hostname) {
		out = append(out, hostname)
	}
	if !slices.Contains(omit, Instance) {
		out = append(out, instance)
	}
	return out
}

// Options control how tags are computed.
type Options struct {
	// Omit names the automatic tag families (Families) not to add.
	Omit []string
	// CaptureProgram is run once per executor with its name and type; it
	// prints a JSON object whose values become tags.
	CaptureProgram string
	CaptureTimeout time.Duration
	// SchemaFile is a JSON Schema the property object must satisfy.
	SchemaFile string
	// Arch overrides the machine architecture (tests).
	Arch string
	// LookPath finds scheduler commands (default exec.LookPath).
	LookPath func(string) (string, error)
	// Getenv reads env_tags variables (default os.LookupEnv).
	Getenv      func(string) (string, bool)
	Concurrency int
	// Tolerant skips (config.Desired.Skip) an executor whose capture or
	// tags fail, rather than failing them all.
	Tolerant bool
}

// architecture returns the name uname -m prints for this machine.
func architecture() string {
	switch runtime.GOARCH {
	case "amd64":
		return "x86_64"
	case "arm64":
		return "aarch64"
	case "386":
		return "i686"
	}
	return runtime.GOARCH // ppc64le, s390x, riscv64 match uname -m
}

var schedulers = []struct{ cmd, name string }{{"sbatch", "slurm"}, {"bsub", "lsf"}, {"flux", "flux"}}

// builtinProps are the property names the tool itself sets.
var builtinProps = map[string]bool{"hostname": true, "instance": true, "executor_type": true, "env": true,
	"architecture": true, "scheduler": true}

// maxTags is GitLab's limit on a runner's tags; more is a 400.
const maxTags = 50

// Compute fills Executor.Tags for every executor: hostname, digit-less
// hostname, instance, executor type, env_tags values, static tags, the
// architecture, a batch scheduler for batch/custom executors, and the
// capture program's properties; validated against the schema if given.
func Compute(ctx context.Context, d *config.Desired, o Options) error {
	if o.LookPath == nil {
		o.LookPath = exec.LookPath
	}
	if o.Getenv == nil {
		o.Getenv = os.LookupEnv
	}
	if o.Arch == "" {
		o.Arch = architecture()
	}
	if o.CaptureTimeout <= 0 {
		o.CaptureTimeout = 10 * time.Second
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 8
	}
	if err := CheckOmit(o.Omit); err != nil {
		return err
	}
	var schema *jsonschema.Resolved
	if o.SchemaFile != "" {
		var err error
		if schema, err = loadSchema(o.SchemaFile); err != nil {
			return err
		}
	}
	// Searching PATH is only worth it when some executor can use a scheduler.
	var scheds []string
	for _, e := range d.Executors {
		if e.Type == "batch" || e.Type == "custom" {
			for _, s := range schedulers {
				if _, err := o.LookPath(s.cmd); err == nil {
					scheds = append(scheds, s.name)
				}
			}
			break
		}
	}

	execs := append([]*config.Executor(nil), d.Executors...)
	captured := make([]map[string]any, len(execs))
	failed := make([]error, len(execs))
	if o.CaptureProgram != "" && len(execs) > 0 {
		prog, err := captureProgram(o.CaptureProgram)
		if err != nil {
			return err
		}
		err = fanout.Each(ctx, len(execs), o.Concurrency, func(i int) error {
			captured[i], failed[i] = capture(ctx, prog, o.CaptureProgram, o.CaptureTimeout, execs[i])
			if o.Tolerant {
				return nil
			}
			return failed[i]
		})
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	for i, e := range execs {
		err := failed[i]
		if err == nil {
			err = o.tag(d, e, scheds, captured[i], schema)
		}
		switch {
		case err == nil:
		case !o.Tolerant:
			return err
		default:
			d.Skip(e.Name, config.SkipInvalid, err)
		}
	}
	return nil
}

// tag computes one executor's tags and checks its properties against the
// schema.
func (o Options) tag(d *config.Desired, e *config.Executor, scheds []string, captured map[string]any, schema *jsonschema.Resolved) error {
	props := map[string]any{
		"hostname":      d.Hostname,
		"instance":      d.Layout.Instance,
		"executor_type": e.Type,
		"architecture":  o.Arch,
	}
	var tags []string
	add := func(family string, tag ...string) {
		if !slices.Contains(o.Omit, family) {
			tags = append(tags, tag...)
		}
	}
	add(Hostname, d.Hostname)
	if dl := config.DigitlessHostname(d.Hostname); dl != "" {
		add(DigitlessHostname, dl)
	}
	add(Instance, d.Layout.Instance)
	add(ExecutorType, e.Type)
	// env lists the values of env_tags in declaration order, as the
	// original tool's schemas expect ("env": {"type": "array"}).
	env := []any{}
	for _, name := range e.EnvTags {
		if v, ok := o.Getenv(name); ok && strings.TrimSpace(v) != "" {
			v = strings.TrimSpace(v)
			if err := config.CheckTag(v); err != nil {
				return &input.Error{File: e.File, Key: "env_tags", Msg: fmt.Sprintf("environment variable %s: %s", name, err.Msg), Fix: err.Fix}
			}
			env = append(env, v)
			tags = append(tags, v)
		}
	}
	props["env"] = env
	tags = append(tags, e.StaticTags...)
	add(Architecture, o.Arch)
	if (e.Type == "batch" || e.Type == "custom") && len(scheds) > 0 {
		props["scheduler"] = scheds[0]
		add(Scheduler, scheds...)
	}
	keys := make([]string, 0, len(captured))
	for k := range captured {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		props[k] = captured[k]
		switch v := captured[k].(type) {
		case string:
			tags = append(tags, v)
		case []any:
			for _, s := range v {
				tags = append(tags, s.(string))
			}
		}
	}
	if schema != nil {
		if err := schema.Validate(jsonValue(props)); err != nil {
			return &input.Error{Option: input.TagSchema, File: o.SchemaFile, Msg: fmt.Sprintf("executor %s (%s): tag properties violate the schema: %s", e.Name, e.File, schemaMessage(err))}
		}
	}
	e.Tags = dedupeSorted(tags)
	if len(e.Tags) > maxTags {
		return input.Errorf(e.File, "", "executor %s would get %d tags, more than GitLab's limit of %d (Ci::Runner TAG_LIST_MAX_LENGTH): %s", e.Name, len(e.Tags), maxTags, strings.Join(e.Tags, ", ")).
			WithFix("remove some tags, env_tags or capture properties")
	}
	return nil
}

func dedupeSorted(in []string) []string {
	set := map[string]bool{}
	var out []string
	for _, t := range in {
		t = strings.TrimSpace(t)
		if t == "" || set[t] {
			continue
		}
		set[t] = true
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// Schema drafts the validator knows by their $schema URI.
const (
	draft07   = "http://json-schema.org/draft-07/schema#"
	draft2020 = "https://json-schema.org/draft/2020-12/schema"
)

func loadSchema(path string) (*jsonschema.Resolved, error) {
	data, err := hostfs.ReadProtected(path, path, "tag schema")
	if err != nil {
		return nil, withOption(err, input.TagSchema)
	}
	var s jsonschema.Schema
	if !json.Valid(data) {
		var v any
		err := json.Unmarshal(data, &v)
		return nil, &input.Error{Option: input.TagSchema, File: path, Msg: fmt.Sprintf("not valid JSON: %v", err), Err: err}
	}
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, &input.Error{Option: input.TagSchema, File: path, Msg: fmt.Sprintf("not a valid JSON Schema: %v", err), Err: err}
	}
	// Tag schemas use the common core of every draft (type, enum,
	// properties, required, pattern, ...). A draft-07 schema is read as
	// draft-07; anything else — 2020-12, an older draft, or the generic
	// "http://json-schema.org/schema" — as 2020-12.
	switch strings.TrimSuffix(s.Schema, "#") {
	case strings.TrimSuffix(draft07, "#"):
		s.Schema = draft07
	default:
		s.Schema = draft2020
	}
	r, err := s.Resolve(nil)
	if err != nil {
		return nil, &input.Error{Option: input.TagSchema, File: path, Msg: "not a valid JSON Schema: " + firstLine(err.Error()), Err: err}
	}
	return r, nil
}

// schemaMessage names the failing property. The validator reports the
// first violation as "validating root: validating /properties/arch: enum:
// ..."; the schema path names the property.
func schemaMessage(err error) string {
	msg := err.Error()
	loc := ""
	for _, part := range strings.Split(msg, ": ") {
		if p, ok := strings.CutPrefix(part, "validating "); ok {
			if p == "root" {
				continue
			}
			loc = p
			continue
		}
		break
	}
	detail := msg
	if i := strings.LastIndex(msg, "validating "); i >= 0 {
		if k := strings.Index(msg[i:], ": "); k >= 0 {
			detail = msg[i+k+2:]
		}
	}
	prop := strings.ReplaceAll(loc, "/properties/", "/")
	if prop == "" {
		return "(root): " + detail
	}
	return "property " + prop + ": " + detail
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// captureProgram finds the capture program (on PATH when given without a
// folder) and checks it as the run's other trusted files are: a regular
// file owned by root or the user running the tool, which neither group nor
// other may write. It returns the path to run.
func captureProgram(given string) (string, error) {
	path, err := exec.LookPath(given)
	if err != nil {
		return "", &input.Error{Option: input.CaptureTags, File: given, Err: err,
			Msg: fmt.Sprintf("cannot be run: %v", hostfs.UnwrapPathErr(errors.Unwrap(err))), Fix: "give the path of an executable file"}
	}
	if err := hostfs.CheckProtected(path, given, "capture program"); err != nil {
		return "", withOption(err, input.CaptureTags)
	}
	return path, nil
}

// withOption names the option an input error about a file came from.
func withOption(err error, opt input.Option) error {
	if ie := input.As(err); ie != nil && ie.Option == "" {
		ie.Option = opt
	}
	return err
}

// capture runs the capture program (found at path; errors name it prog,
// as given) for one executor.
func capture(ctx context.Context, path, prog string, timeout time.Duration, e *config.Executor) (map[string]any, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, e.Name, e.Type)
	cmd.WaitDelay = time.Second
	var stdout, stderr limitedBuffer
	stdout.limit, stderr.limit = hostfs.MaxFileSize, 4096
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() == context.DeadlineExceeded {
		ie := captureErr(prog, "did not finish within %s for executor %s", timeout, e.Name)
		ie.Fix, ie.FixOption = "make it faster or raise", input.CaptureTimeout
		return nil, ie
	}
	if err != nil {
		msg := strings.TrimSpace(firstLine(stderr.String()))
		if msg != "" {
			msg = ": " + msg
		}
		return nil, captureErr(prog, "failed for executor %s (%v)%s", e.Name, err, msg)
	}
	if stdout.over {
		return nil, captureErr(prog, "printed more than %d bytes for executor %s", hostfs.MaxFileSize, e.Name)
	}
	var obj map[string]any
	dec := json.NewDecoder(bytes.NewReader(stdout.Bytes()))
	if err := dec.Decode(&obj); err != nil || obj == nil {
		return nil, captureErr(prog, "must print a JSON object for executor %s (got %q)", e.Name, truncate(strings.TrimSpace(stdout.String()), 60))
	}
	for k, v := range obj {
		if builtinProps[k] {
			return nil, captureErr(prog, "property %q for executor %s clashes with a built-in property", k, e.Name).WithFix("rename it")
		}
		switch x := v.(type) {
		case string:
			if err := config.CheckTag(x); err != nil {
				return nil, captureErr(prog, "property %q for executor %s: %s", k, e.Name, err.Msg).WithFix("%s", err.Fix)
			}
		case []any:
			for _, s := range x {
				str, ok := s.(string)
				if !ok {
					return nil, captureErr(prog, "property %q for executor %s: list items must be strings", k, e.Name)
				}
				if err := config.CheckTag(str); err != nil {
					return nil, captureErr(prog, "property %q for executor %s: %s", k, e.Name, err.Msg).WithFix("%s", err.Fix)
				}
			}
		default:
			return nil, captureErr(prog, "property %q for executor %s must be a string or a list of strings", k, e.Name)
		}
	}
	return obj, nil
}

func captureErr(prog, format string, args ...any) *input.Error {
	return &input.Error{Option: input.CaptureTags, File: prog, Msg: fmt.Sprintf(format, args...)}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

type limitedBuffer struct {
	bytes.Buffer
	limit int
	over  bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if b.Len()+len(p) > b.limit {
		b.over = true
		room := b.limit - b.Len()
		if room > 0 {
			b.Buffer.Write(p[:room])
		}
		return len(p), nil
	}
	return b.Buffer.Write(p)
}

// jsonValue turns the property object into what the validator expects:
// plain JSON values ([]string becomes []any).
func jsonValue(v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		return v
	}
	var out any
	if json.Unmarshal(b, &out) != nil {
		return v
	}
	return out
}

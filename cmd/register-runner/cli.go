package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/pmezard/go-difflib/difflib"
	"github.com/spf13/pflag"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/engine"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/input"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/plan"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/prune"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/redact"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/tags"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/version"
)

const usageHead = `Usage: register-runner [options]

Registers the executors declared in PREFIX/INSTANCE/ with GitLab, keeps the
tokens that still work, removes runners that are no longer declared, and
writes PREFIX/config.INSTANCE.toml for gitlab-runner.

Options:
`

const usageTail = `
Commands:
  prune   delete the fleet's runners no host owns any more (see prune --help)

Exit status: 0 success (changed or not), 1 GitLab or the host failed the run,
2 invalid input or usage.
`

// Exit codes.
const (
	exitOK    = 0
	exitFail  = 1
	exitInput = 2
)

// redactingWriter scrubs every secret the run has seen before text leaves
// the process.
type redactingWriter struct {
	w   io.Writer
	sec *redact.Redactor
}

func (r redactingWriter) print(s string) {
	_, _ = io.WriteString(r.w, r.sec.Redact(s))
}

// log prints a message on stderr, each of its lines with the command's
// prefix: log collectors tag every line on its own.
func (r redactingWriter) log(msg string) {
	for _, line := range strings.Split(msg, "\n") {
		r.print("register-runner: " + line + "\n")
	}
}

// engines are what the command line runs: the real ones, or a test's own (as
// cli/cli injects runF), so the flags are tested without GitLab.
type engines struct {
	sync  func(context.Context, engine.Options) (*engine.Result, error)
	prune func(context.Context, prune.Options) (*prune.Result, error)
}

var coreEngines = engines{sync: engine.Run, prune: prune.Run}

func run(args []string, stdout, stderr io.Writer) int {
	return runWith(args, stdout, stderr, coreEngines)
}

// A command is a command line parsed: what it prints instead of running
// (--help, --version), or how it runs with the engines given.
type command interface {
	shown() string
	execute(e engines, sec *redact.Redactor, out, errw redactingWriter) int
}

// runWith parses the command line, then runs what it asks for.
func runWith(args []string, stdout, stderr io.Writer, e engines) int {
	sec := redact.New()
	out, errw := redactingWriter{stdout, sec}, redactingWriter{stderr, sec}
	name, parse := "register-runner", parseSync
	if len(args) > 0 && args[0] == "prune" {
		name, parse, args = "register-runner prune", parsePrune, args[1:]
	}
	cmd, err := parse(args)
	if err != nil {
		return usageError(errw, name, err)
	}
	if s := cmd.shown(); s != "" {
		out.print(s)
		return exitOK
	}
	return cmd.execute(e, sec, out, errw)
}

// usageError says a command line could not be parsed (exit 2).
func usageError(errw redactingWriter, command string, err error) int {
	errw.print(fmt.Sprintf("%s: %v\nTry '%s --help'.\n", command, err, command))
	return exitInput
}

// syncInvocation is register-runner's command line parsed: the options
// the engine runs with, or a text printed instead (--help, --version).
type syncInvocation struct {
	opts   engine.Options
	output string
	print  string
}

// parseSync parses register-runner's flags into engine.Options. Its error
// is a usage error; what the options hold is the engine's to check.
func parseSync(args []string) (command, error) {
	var inv syncInvocation
	o := &inv.opts
	var unregister, strict, showVersion, help bool
	fs := pflag.NewFlagSet("register-runner", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.SortFlags = false
	fs.StringVarP(&o.Prefix, "prefix", "p", "/etc/gitlab-runner", "folder holding the template, executor folders and generated configs")
	fs.StringVar(&o.Instance, "service-instance", "main", "service instance name (gitlab-runner@NAME)")
	fs.StringVar(&o.Tags.SchemaFile, "tag-schema", "", "JSON Schema FILE the tag properties must satisfy")
	fs.StringVar(&o.Tags.CaptureProgram, "capture-tags", "", "program EXEC run with the executor name and type; prints a JSON object of extra tags")
	fs.DurationVar(&o.Tags.CaptureTimeout, "capture-timeout", 10*time.Second, "how long --capture-tags may run per executor")
	fs.StringSliceVar(&o.Tags.Omit, "omit-auto-tags", nil, "automatic tag families not to add, comma-separated: "+strings.Join(tags.Families, ", ")+" (default: none, every family is added)")
	fs.BoolVar(&o.Check, "check", false, "show the plan; make no change in GitLab or on disk")
	fs.BoolVar(&o.Diff, "diff", false, "show the change to config.INSTANCE.toml (secrets redacted)")
	fs.BoolVar(&o.Refresh, "refresh", false, "read every runner from GitLab to catch settings changed by hand (needs a PAT)")
	fs.BoolVar(&unregister, "unregister", false, "delete this instance's runners in GitLab and its generated config")
	fs.BoolVar(&strict, "strict", false, "all or nothing: fail on an invalid executor file, on an executor that cannot be registered now (GitLab unreachable, say), on a removal GitLab does not confirm, and when GitLab cannot be reached even if every executor has a token on disk")
	fs.StringVar(&o.Hostname, "hostname", "", "host name used in tags and descriptions (default: the OS host name, short form)")
	fs.StringVar(&o.Fleet, "fleet", "", "the fleet this host's runners belong to, marked on each runner in GitLab for the fleet's prune (default: the template's client_configs fleet, else \"default\")")
	fs.IntVar(&o.Limits.Concurrency, "concurrency", engine.DefaultConcurrency, "GitLab requests in parallel")
	fs.IntVar(&o.Runner.PID, "runner-pid", 0, "PID of the running gitlab-runner (systemd's $MAINPID in ExecReload): sent SIGHUP when the config changes; a process that is not gitlab-runner is never signalled")
	fs.DurationVar(&o.Runner.Wait, "reload-wait", engine.DefaultReloadWait, "how long a gitlab-runner running this config (--runner-pid, or found by its command line) gets to take the new config, after SIGHUP, before runners removed from it are deleted")
	fs.DurationVar(&o.Limits.Lock, "lock-timeout", 60*time.Second, "how long to wait for another run on this instance")
	fs.DurationVar(&o.Limits.Request, "request-timeout", 20*time.Second, "timeout of one HTTP request")
	fs.DurationVar(&o.Limits.Timeout, "timeout", 5*time.Minute, "bound on the whole run")
	fs.StringVar(&inv.output, "output", "text", "text or json")
	fs.BoolVar(&showVersion, "version", false, "print the version and exit")
	fs.BoolVarP(&help, "help", "h", false, "show this help")

	if err := fs.Parse(args); err != nil {
		return inv, err
	}
	switch {
	case help:
		inv.print = usageHead + fs.FlagUsages() + usageTail
		return inv, nil
	case showVersion:
		inv.print = "register-runner " + version.Version + "\n"
		return inv, nil
	case fs.NArg() > 0:
		return inv, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case inv.output != "text" && inv.output != "json":
		return inv, fmt.Errorf("--output must be text or json, not %q", inv.output)
	}
	// Serve what can be served, unless --strict; --check and --unregister
	// report every problem.
	o.Policy = plan.Policy{Serve: !strict && !o.Check && !unregister, CleanupFails: strict, Strict: strict}
	if unregister {
		o.Remove = engine.Unregister
	}
	o.Names = flagOf
	return inv, nil
}

func (inv syncInvocation) shown() string { return inv.print }

// execute runs a parsed command line with the engine given, prints its
// report and gives the exit status.
func (inv syncInvocation) execute(e engines, sec *redact.Redactor, out, errw redactingWriter) int {
	// SIGTERM/SIGINT cancel requests in flight; the config is still written
	// with every token obtained so far.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	opts := inv.opts
	opts.Secrets, opts.Log = sec, errw.log
	res, err := e.sync(ctx, opts)
	if inv.output == "json" {
		out.print(jsonReport(res, err, opts.Diff, sec) + "\n")
	} else {
		textReport(out, errw, res, opts.Diff)
	}
	return failure(errw, "register-runner", err)
}

// failure prints a command's error, a line each, after its report, and
// gives the exit status: 0, 1, or 2 for invalid input.
func failure(errw redactingWriter, command string, err error) int {
	if err == nil {
		return exitOK
	}
	for _, line := range strings.Split(input.Describe(err, flagOf), "\n") {
		errw.print(command + ": error: " + line + "\n")
	}
	if input.Is(err) {
		return exitInput
	}
	return exitFail
}

func textReport(out, errw redactingWriter, res *engine.Result, diff bool) {
	if res == nil {
		return
	}
	// Gathered and scrubbed once: a line per runner, on a host with
	// hundreds of them.
	var o, e strings.Builder
	for _, r := range res.Runners {
		id := ""
		if r.ID != 0 {
			id = fmt.Sprintf(" (id %d)", r.ID)
		}
		switch {
		case r.Error != "":
			fmt.Fprintf(&o, "failed to %s %s%s\n", r.Action, r.Name, id)
		case res.Check:
			fmt.Fprintf(&o, "would %s %s%s\n", r.Action, r.Name, id)
		case r.Deferred:
			// Left to a pass the run did not make: the next run makes it.
			fmt.Fprintf(&o, "will %s %s%s\n", r.Action, r.Name, id)
		default:
			fmt.Fprintf(&o, "%s %s%s\n", r.Action.Past(), r.Name, id)
		}
		if r.Action != plan.Keep && r.Reason != "" {
			for _, line := range strings.Split(fmt.Sprintf("%s %s: %s", r.Action, r.Name, r.Reason), "\n") {
				e.WriteString("register-runner: " + line + "\n")
			}
		}
	}
	switch {
	case res.Check && res.NextPass != "":
		e.WriteString("register-runner: next pass: " + res.NextPass + "\n")
	case res.Check:
	case res.ConfigRemoved:
		e.WriteString("register-runner: removed " + res.ConfigPath + "\n")
	case res.ConfigChanged:
		e.WriteString("register-runner: wrote " + res.ConfigPath + "\n")
	}
	if diff {
		o.WriteString(unifiedText(res.Before, res.After, res.ConfigPath))
	}
	if e.Len() > 0 {
		errw.print(e.String())
	}
	if o.Len() > 0 {
		out.print(o.String())
	}
}

// unifiedText is the unified diff of two versions of what name names.
func unifiedText(before, after, name string) string {
	if before == after {
		return ""
	}
	d := difflib.UnifiedDiff{
		A: difflib.SplitLines(before), B: difflib.SplitLines(after),
		FromFile: name + " (before)", ToFile: name + " (after)", Context: 3,
	}
	s, err := difflib.GetUnifiedDiffString(d)
	if err != nil {
		return ""
	}
	return s
}

// flagOf names an engine option as this command's flag.
func flagOf(o input.Option) string {
	if o == input.Instance {
		return "--service-instance"
	}
	return "--" + strings.ReplaceAll(string(o), "_", "-")
}

// jsonReport is engine.Result as JSON, plus the diff and the failure.
func jsonReport(res *engine.Result, err error, diff bool, sec *redact.Redactor) string {
	var before, after string
	if res != nil {
		before, after = res.Before, res.After
	}
	return jsonDoc(res, res != nil, err, diff, before, after)
}

// jsonDoc is a command's result as one JSON document: the result's
// fields, the diff when asked, and the failure — msg as stderr says it,
// input_error whether it is invalid input (exit 2), and input_errors each
// input error's parts as fields. Every string is redacted before it is
// encoded (encoding escapes characters a secret may hold); the text is
// redacted again when printed.
func jsonDoc(res any, ok bool, err error, diff bool, before, after string) string {
	// The result is encoded as it is typed, and the failure's fields are
	// added after it: no generic copy of a report that may hold thousands
	// of runners. The text is redacted by the writer that prints it (the
	// redactor knows every secret also as JSON writes it).
	extra := map[string]any{}
	if ok && diff {
		extra["diff"] = map[string]string{"before": before, "after": after}
	}
	if err != nil {
		extra["failed"] = true
		extra["msg"] = input.Describe(err, flagOf)
		extra["input_error"] = input.Is(err)
		if ies := input.Report(err, flagOf); len(ies) > 0 {
			extra["input_errors"] = ies
		}
	}
	var b []byte
	if ok {
		b, _ = json.MarshalIndent(res, "", "  ")
	}
	if len(b) < 2 || b[0] != '{' {
		b = []byte("{}")
	}
	if len(extra) > 0 {
		e, _ := json.MarshalIndent(extra, "", "  ")
		body := bytes.TrimRight(b[:len(b)-1], " \n")
		if len(body) > 1 {
			body = append(body, ',')
		}
		b = append(body, e[1:]...)
	}
	return string(b)
}

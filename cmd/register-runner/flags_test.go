package main

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/engine"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/fleet"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/input"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/plan"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/prune"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/tags"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/version"
)

// fakes are engines that record the options they were given and answer
// what the test says: the command line is tested without GitLab.
type fakes struct {
	sync     *engine.Options
	prune    *prune.Options
	res      *engine.Result
	pruneRes *prune.Result
	err      error
	// log is written through the run's Log, as the engine logs.
	log string
}

func (f *fakes) engines() engines {
	return engines{
		sync: func(_ context.Context, o engine.Options) (*engine.Result, error) {
			f.sync = &o
			if f.log != "" {
				o.Log(f.log)
			}
			return f.res, f.err
		},
		prune: func(_ context.Context, o prune.Options) (*prune.Result, error) {
			f.prune = &o
			return f.pruneRes, f.err
		},
	}
}

// runFake runs the command line with the fakes.
func runFake(f *fakes, args ...string) result {
	var out, errb bytes.Buffer
	code := runWith(args, &out, &errb, f.engines())
	return result{code, out.String(), errb.String()}
}

// ignored are the options a front end sets that cannot be compared: its
// writers, redactor and option names (tested on their own below).
var ignored = cmp.Options{
	cmpopts.IgnoreFields(engine.Options{}, "Names", "Log", "Secrets", "Now", "Declare", "Machine"),
	cmpopts.IgnoreFields(prune.Options{}, "Names", "Secrets", "Now"),
	cmpopts.IgnoreUnexported(engine.Options{}, prune.Options{}),
	cmpopts.EquateEmpty(),
}

// Each flag lands in the option it names, and the failure policy follows
// from --strict, --check and --unregister; no GitLab is involved.
func TestFlagsParseIntoOptions(t *testing.T) {
	defaults := func(edit func(*engine.Options)) engine.Options {
		o := engine.Options{Prefix: "/etc/gitlab-runner", Instance: "main",
			Policy: plan.Policy{Serve: true},
			Limits: engine.Limits{Concurrency: engine.DefaultConcurrency, Timeout: 5 * time.Minute, Lock: time.Minute, Request: 20 * time.Second},
			Runner: engine.RunnerProcess{Wait: engine.DefaultReloadWait},
			Tags:   tags.Options{CaptureTimeout: 10 * time.Second}}
		if edit != nil {
			edit(&o)
		}
		return o
	}
	for _, tc := range []struct {
		args []string
		want engine.Options
	}{
		{nil, defaults(nil)},
		{[]string{"--strict"}, defaults(func(o *engine.Options) { o.Policy = plan.Policy{Strict: true, CleanupFails: true} })},
		{[]string{"--check", "--diff"}, defaults(func(o *engine.Options) { o.Check, o.Diff, o.Policy = true, true, plan.Policy{} })},
		{[]string{"--unregister"}, defaults(func(o *engine.Options) { o.Remove, o.Policy = engine.Unregister, plan.Policy{} })},
		{[]string{"-p", "/srv/gr", "--service-instance", "gpu", "--hostname", "node7", "--fleet", "hpc", "--refresh",
			"--tag-schema", "/s.json", "--capture-tags", "/c", "--capture-timeout", "3s", "--omit-auto-tags", "architecture,digitless_hostname",
			"--concurrency", "1", "--runner-pid", "42", "--reload-wait", "9s", "--lock-timeout", "7s", "--request-timeout", "8s", "--timeout", "2m"},
			defaults(func(o *engine.Options) {
				o.Prefix, o.Instance, o.Hostname, o.Fleet, o.Refresh = "/srv/gr", "gpu", "node7", "hpc", true
				o.Tags = tags.Options{SchemaFile: "/s.json", CaptureProgram: "/c", CaptureTimeout: 3 * time.Second, Omit: []string{"architecture", "digitless_hostname"}}
				o.Limits = engine.Limits{Concurrency: 1, Timeout: 2 * time.Minute, Lock: 7 * time.Second, Request: 8 * time.Second}
				o.Runner = engine.RunnerProcess{PID: 42, Wait: 9 * time.Second}
			})},
	} {
		f := &fakes{res: &engine.Result{}}
		mustExit(t, runFake(f, tc.args...), exitOK)
		if f.sync == nil {
			t.Fatalf("%v: the engine did not run", tc.args)
		}
		if d := cmp.Diff(tc.want, *f.sync, ignored); d != "" {
			t.Errorf("%v: options (-want +got):\n%s", tc.args, d)
		}
		for o, flag := range map[input.Option]string{input.Instance: "--service-instance", input.LockTimeout: "--lock-timeout", input.Strict: "--strict"} {
			if got := f.sync.Names(o); got != flag {
				t.Errorf("option %s is named %q, want %q", o, got, flag)
			}
		}
		if f.sync.Secrets == nil || f.sync.Log == nil {
			t.Errorf("%v: the run has no redactor or no log", tc.args)
		}
	}
}

func TestPruneFlagsParseIntoOptions(t *testing.T) {
	f := &fakes{pruneRes: &prune.Result{}}
	mustExit(t, runFake(f, "prune"), exitOK)
	want := prune.Options{MinIdle: plan.StaleAfter, SeenFile: prune.DefaultSeenFile(), Fleet: fleet.Default, Pattern: prune.DefaultPattern,
		MaxDelete: 20, Concurrency: engine.DefaultConcurrency, RequestTimeout: 20 * time.Second, Timeout: 5 * time.Minute}
	if d := cmp.Diff(want, *f.prune, ignored); d != "" {
		t.Errorf("defaults (-want +got):\n%s", d)
	}
	mustExit(t, runFake(f, "prune", "--url", "https://gl", "--personal-access-token-file", "/pat", "--tls-ca-file", "/ca",
		"--group", "ops/ci", "--project-id", "7", "--fleet", "hpc", "--include-unmarked", "--tag", "main,gpu", "--tag", "x",
		"--description-pattern", "^n", "--keep", "1,2", "--keep", "3", "--keep-file", "/k", "--hosts-expected", "a,b", "--hosts-reported", "a",
		"--min-idle", "3d", "--seen-file", "/seen", "--max-delete", "5", "--check", "--concurrency", "2", "--request-timeout", "4s", "--timeout", "1m"), exitOK)
	want = prune.Options{URL: "https://gl", PATFile: "/pat", CAFile: "/ca", Group: "ops/ci", ProjectID: 7, Fleet: "hpc", IncludeUnmarked: true,
		Tags: []string{"main", "gpu", "x"}, Pattern: "^n", Keep: []int64{1, 2, 3}, KeepFile: "/k", HostsExpected: []string{"a", "b"}, HostsReported: []string{"a"},
		MinIdle: 72 * time.Hour, SeenFile: "/seen", MaxDelete: 5, Check: true, Concurrency: 2, RequestTimeout: 4 * time.Second, Timeout: time.Minute}
	if d := cmp.Diff(want, *f.prune, ignored); d != "" {
		t.Errorf("every flag (-want +got):\n%s", d)
	}
	if f.prune.Names(input.Option("max_delete")) != "--max-delete" {
		t.Errorf("max_delete is named %q", f.prune.Names(input.Option("max_delete")))
	}
}

// A command line that cannot be parsed runs nothing and exits 2.
func TestUsageErrorsRunNothing(t *testing.T) {
	for _, args := range [][]string{{"--no-such-flag"}, {"--output", "yaml"}, {"stray", "args"}, {"--concurrency", "many"},
		{"prune", "--min-idle", "a week"}, {"prune", "--min-idle", "-1d"}, {"prune", "--output", "xml"}, {"prune", "stray"}} {
		f := &fakes{}
		r := runFake(f, args...)
		mustExit(t, r, exitInput)
		if f.sync != nil || f.prune != nil || r.stdout != "" || !strings.HasPrefix(r.stderr, "register-runner") {
			t.Errorf("%v: ran %v %v; stdout %q, stderr %q", args, f.sync != nil, f.prune != nil, r.stdout, r.stderr)
		}
	}
}

// An error naming an option names it as the command's flag, on stderr and
// in the JSON report's fields; every line on stderr carries the command's
// prefix (journald tags each line on its own), a log message of several
// lines and an error of several included.
func TestErrorsAreRenderedWithFlagNames(t *testing.T) {
	f := &fakes{res: &engine.Result{Warnings: []string{}},
		err: errors.Join(input.OptionErrorf(input.Instance, "bad"), input.OptionErrorf(input.LockTimeout, "too short").WithFix("raise"),
			errors.New("GitLab said no\nin two lines")),
		log: "warning: first line\nsecond line"}
	r := runFake(f)
	mustExit(t, r, exitInput)
	for _, l := range lines(r.stderr) {
		if !strings.HasPrefix(l, "register-runner: ") {
			t.Errorf("stderr line without the prefix: %q", l)
		}
	}
	if !hasLine(r.stderr, "register-runner: error: --service-instance: ") || !hasLine(r.stderr, "register-runner: error: --lock-timeout: ") {
		t.Errorf("the errors do not begin with the flags:\n%s", r.stderr)
	}
	j := runFake(f, "--output", "json")
	got := inputErrors(t, j.stdout)
	if len(got) != 2 || got[0].Option != "--service-instance" || got[1].Option != "--lock-timeout" {
		t.Errorf("input_errors %+v, want the two flags", got)
	}
	// The clean-up's refusal names its flags too.
	f = &fakes{pruneRes: &prune.Result{}, err: &prune.TooManyError{Would: []int64{1, 2}, Max: 1}}
	r = runFake(f, "prune")
	mustExit(t, r, exitFail)
	if !hasLine(r.stderr, "register-runner prune: error: ", "--max-delete", "--keep", "--hosts-expected") {
		t.Errorf("the refusal names no flag:\n%s", r.stderr)
	}
}

// The text report of a removal of the instance says which file went.
func TestUnregisterSaysWhatItRemoved(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.main.toml")
	f := &fakes{res: &engine.Result{ConfigPath: path, ConfigRemoved: true, Changed: true,
		Runners: []engine.RunnerResult{{Name: "shell", ID: 3, Action: plan.Delete, Reason: "unregistering"}}}}
	r := runFake(f, "--unregister")
	mustExit(t, r, exitOK)
	wantLines(t, "stdout", r.stdout, "deleted shell (id 3)")
	if !hasLine(r.stderr, "register-runner: removed ", path) || strings.Contains(r.stderr, "wrote ") || !reason(r.stderr, "delete", "shell") {
		t.Fatalf("stderr:\n%s", r.stderr)
	}
}

// --help and --version print and run nothing.
func TestHelpAndVersion(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"--version"}, {"prune", "--help"}} {
		f := &fakes{}
		r := runFake(f, args...)
		mustExit(t, r, exitOK)
		if f.sync != nil || f.prune != nil || r.stdout == "" || r.stderr != "" {
			t.Errorf("%v: ran %v %v; stdout %q, stderr %q", args, f.sync != nil, f.prune != nil, r.stdout, r.stderr)
		}
	}
	if r := runFake(&fakes{}, "--version"); r.stdout != "register-runner "+version.Version+"\n" {
		t.Errorf("--version: %q", r.stdout)
	}
	if r := runFake(&fakes{}, "--help"); !strings.Contains(r.stdout, "--service-instance") {
		t.Errorf("--help lists no --service-instance:\n%s", r.stdout)
	}
}

// A removal left to a pass the run did not make is not reported made;
// check mode says what the next pass would do.
func TestTextReportOfPasses(t *testing.T) {
	f := &fakes{res: &engine.Result{Passes: 1, Runners: []engine.RunnerResult{{Name: "b", ID: 4, Action: plan.Delete, Deferred: true, Reason: "no longer declared"}}}}
	r := runFake(f)
	mustExit(t, r, exitOK)
	wantLines(t, "stdout", r.stdout, "will delete b (id 4)")
	f = &fakes{res: &engine.Result{Check: true, NextPass: "a second pass deletes runner 4", Runners: []engine.RunnerResult{{Name: "b", ID: 4, Action: plan.Delete}}}}
	r = runFake(f, "--check")
	wantLines(t, "stdout", r.stdout, "would delete b (id 4)")
	if !hasLine(r.stderr, "register-runner: next pass: ", "runner 4") {
		t.Fatalf("check mode does not say what the next pass does:\n%s", r.stderr)
	}
}

// Package engine is gitlab-runner-auth's sync engine: it loads what a host
// declares, observes GitLab, builds a plan (keep, create, adopt, replace,
// update, delete), carries it out and writes config.{instance}.toml. It
// prints nothing and knows nothing of flags or Ansible.
package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/config"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/fanout"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/fleet"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/gitlab"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/hostfs"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/input"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/plan"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/redact"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/tags"
)

// Bounds of parallel GitLab requests.
const (
	DefaultConcurrency = fanout.DefaultConcurrency
	MaxConcurrency     = 256
)

// Options configure one run. Both front ends fill it and call Run.
type Options struct {
	Prefix   string
	Instance string
	// Hostname names this host in tags and descriptions (default: the OS
	// host name, short form).
	Hostname string
	// Fleet names the fleet this host's runners belong to, for every
	// client_configs entry that names none (default fleet.Default): each
	// runner carries it in GitLab as its mark (package fleet), which the
	// fleet's prune requires before it deletes anything.
	Fleet string
	// Check plans the run's first pass and stops: no mutating request, no
	// write.
	Check bool
	// Diff fills Result.Before and After, the config before and after
	// with every secret redacted (for a diff; redacting costs more than
	// the rest of a steady-state run's work, so only when asked).
	Diff bool
	// Refresh reads every runner from GitLab to catch edits made by hand.
	Refresh bool
	// Remove removes the instance instead of syncing it: its runners
	// (Unregister), or its runners and then its files (Purge).
	Remove Removal
	// Policy is what failures do: serve what can be served (a service
	// start), fail on a removal GitLab does not confirm, refuse a degraded
	// start (--strict). Unregister is set by the run itself.
	Policy plan.Policy
	// Runner is the gitlab-runner that runs the config, when the front end
	// knows it, and how long it gets to take a new one.
	Runner RunnerProcess
	// Limits bound the run: parallel requests, time, retries.
	Limits Limits
	Tags   tags.Options
	// Declare, when set, is the instance as values (the Ansible module's
	// global, clients and executors): the engine renders the template and the
	// executor files from it, writes exactly those files (removing
	// undeclared executor files), syncs, and puts every file back as it
	// was if the run fails. Check mode plans against them unwritten.
	Declare *config.Declaration
	// Secrets collects every secret seen so output can be scrubbed.
	Secrets *redact.Redactor
	// Log receives progress and warnings (already redacted).
	Log func(string)
	// Names renders run options as the front end calls them, in warnings
	// and errors (default: input.Neutral).
	Names input.Names
	Now   func() time.Time
	// Machine overrides this machine's identity (tests, simulations); nil
	// reads it (hostfs.ReadMachine).
	Machine *hostfs.Machine
	// declared is what a declared run (Declare, Purge) passes to the run
	// it makes.
	declared declaredRun
}

// Removal is what removing an instance removes.
type Removal string

// The removals.
const (
	// Unregister deletes the instance's runners in GitLab and its
	// generated config and state file; template and executor files stay.
	Unregister Removal = "unregister"
	// Purge also removes the template, executor files and folder, and the
	// marker, so that no later restart registers anything.
	Purge Removal = "purge"
)

// RunnerProcess is the running gitlab-runner a front end knows of.
type RunnerProcess struct {
	// PID is it (systemd's $MAINPID in ExecReload; 0: none named): when
	// the config changes it is sent SIGHUP. Removals wait Wait for every
	// gitlab-runner running the config to take the new one.
	PID  int
	Wait time.Duration
}

// Limits bound a run.
type Limits struct {
	// Concurrency bounds parallel GitLab requests (1..MaxConcurrency; the
	// front ends default to DefaultConcurrency).
	Concurrency int
	// Timeout bounds the whole run (Run applies it; 0: no bound). Waits
	// that GitLab asks for (Retry-After) are honoured within it.
	Timeout time.Duration
	// Lock bounds the wait for another run on the same instance.
	Lock        time.Duration
	Request     time.Duration
	RetryBudget time.Duration
	MaxAttempts int
}

// declaredRun carries a declared run's files and namespaces into the run
// it makes.
type declaredRun struct {
	// overlay replaces the template and executor files read from disk;
	// prefixMayBeMissing lets check mode plan for a host whose prefix does
	// not exist yet (Ansible check mode on a new host).
	overlay            *config.Overlay
	prefixMayBeMissing bool
	// namespaces are group and project ids resolved for Declare, to keep
	// in the state file; cached those the state file had, to be verified
	// before a runner is registered in one; reresolve the keys whose
	// cached id named another namespace, and what it named.
	namespaces map[string]int64
	cached     map[string]plan.CachedNamespace
	reresolve  map[string]string
}

// setDefaults fills what was left empty and checks what a front end passed.
func (o *Options) setDefaults() error {
	if o.Instance == "" {
		o.Instance = "main"
	}
	if o.Hostname == "" {
		h, err := os.Hostname()
		if err != nil {
			return input.OptionErrorf(input.Hostname, "cannot read the host name (%v)", err).WithFix("give it explicitly")
		}
		o.Hostname = config.ShortHostname(h)
	}
	if o.Fleet != "" {
		if err := fleet.CheckName(o.Fleet); err != nil {
			return input.OptionErrorf(input.Fleet, "%v", err).WithFix("name the fleet with letters, digits, '.', '_' and '-'")
		}
	}
	if o.Limits.Concurrency < 1 || o.Limits.Concurrency > MaxConcurrency {
		return input.OptionErrorf(input.Concurrency, "must be between 1 and %d, not %d", MaxConcurrency, o.Limits.Concurrency)
	}
	if o.Limits.Lock <= 0 {
		o.Limits.Lock = 60 * time.Second
	}
	if o.Runner.Wait <= 0 {
		o.Runner.Wait = DefaultReloadWait
	}
	if o.Names == nil {
		o.Names = input.Neutral
	}
	if o.Secrets == nil {
		o.Secrets = redact.New()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Tags.Concurrency <= 0 {
		o.Tags.Concurrency = o.Limits.Concurrency
	}
	o.Policy.Unregister = o.Remove != ""
	return tags.CheckOmit(o.Tags.Omit)
}

// RunnerResult reports one runner of the run.
type RunnerResult struct {
	Name     string      `json:"name"`
	ID       int64       `json:"id"`
	URL      string      `json:"url"`
	Executor string      `json:"executor"`
	Action   plan.Action `json:"action"`
	Reason   string      `json:"reason,omitempty"`
	Error    string      `json:"error,omitempty"`
	// Pending: a removal GitLab did not confirm; the entry left the
	// config and later runs retry it (the state file records it).
	Pending bool `json:"pending,omitempty"`
	// Deferred: a removal left to the run's next pass, once gitlab-runner
	// has taken the config without the runner (a result shows it only
	// when that pass did not run).
	Deferred bool `json:"deferred,omitempty"`
	// LastGood: the entry is the last good one of an executor whose file
	// is invalid (see Skipped): kept as it was, or forgotten when GitLab
	// rejected its token.
	LastGood bool `json:"last_good,omitempty"`
	// Description and Tags are what the runner carries in GitLab once the
	// run is done (computed from the declaration; empty for deletes).
	Description string   `json:"description,omitempty"`
	Tags        []string `json:"tags,omitempty"`
	// SettingsBefore and SettingsAfter are the GitLab-side settings an
	// update changes: what GitLab held (when known) and what it gets.
	SettingsBefore *gitlab.Settings `json:"settings_before,omitempty"`
	SettingsAfter  *gitlab.Settings `json:"settings_after,omitempty"`
}

// SkippedExecutor is a declared executor the run did not serve, and why.
type SkippedExecutor struct {
	Name string `json:"name"`
	File string `json:"file,omitempty"`
	// Reason is "invalid", "needs GitLab", "registration failed" or "no
	// space on disk"; Cause the error; Fix what to do.
	Reason string `json:"reason"`
	Cause  string `json:"cause"`
	Fix    string `json:"fix,omitempty"`
	// Kept: its last good entry stays in the config (gitlab-runner runs it
	// as before).
	Kept bool `json:"kept"`
	// Since is when runs started skipping it (RFC 3339).
	Since string `json:"since,omitempty"`
}

// LeftRunner is a runner a run left alone, and why.
type LeftRunner struct {
	ID          int64  `json:"id"`
	URL         string `json:"url"`
	Description string `json:"description,omitempty"`
	// LastContact is its last contact with GitLab (RFC 3339), when known.
	LastContact string `json:"last_contact,omitempty"`
	Why         string `json:"why"`
}

// Result is the outcome of a run, as both front ends report it.
type Result struct {
	ConfigPath string `json:"config_path"`
	Check      bool   `json:"check"`
	// Changed: the plan does something to GitLab, or the config changes.
	Changed       bool `json:"changed"`
	ConfigChanged bool `json:"config_changed"`
	// ConfigRemoved: an unregister removed the config.
	ConfigRemoved bool `json:"config_removed,omitempty"`
	// Degraded: GitLab could not be reached and the run kept the tokens on
	// disk unverified (see Planned.Degraded).
	Degraded bool `json:"degraded,omitempty"`
	// Passes is how many passes the run made (reconcile.go); NextPass, in
	// check mode, what the run's next pass would do after the one shown.
	Passes   int            `json:"passes,omitempty"`
	NextPass string         `json:"next_pass,omitempty"`
	Runners  []RunnerResult `json:"runners"`
	Warnings []string       `json:"warnings,omitempty"`
	// LeftBehind are runners with this host's identity (or in its files)
	// that the run left alone: nothing proves they are this host's, or
	// another host uses them. An administrator, or the fleet clean-up
	// (prune), can remove them.
	LeftBehind []LeftRunner `json:"left_behind,omitempty"`
	// Reload says how the running gitlab-runner was made to take the new
	// config before runners that left it were deleted (nil: none runs it,
	// or nothing left the config).
	Reload *Reload `json:"reload,omitempty"`
	// Skipped are declared executors the run did not serve (Tolerant), or
	// those that made it fail: which, why, and whether their last good
	// entry stays.
	Skipped []SkippedExecutor `json:"skipped,omitempty"`
	// Before and After are the config with tokens redacted (for diffs;
	// filled when Options.Diff is set).
	Before string `json:"-"`
	After  string `json:"-"`
	// Files are the instance files a declared run (Options.Declare,
	// Options.Purge) wrote or removed.
	Files []FileChange `json:"-"`
}

// Run is the one entry point of both front ends: a sync, or a removal of
// the instance (Options.Remove), reconciled in passes (reconcile.go).
func Run(ctx context.Context, o Options) (*Result, error) {
	ctx, cancel := bound(ctx, o.Limits.Timeout)
	defer cancel()
	if o.Declare != nil || o.Remove == Purge {
		return runDeclared(ctx, o)
	}
	return reconcile(ctx, o)
}

// bound is ctx with a time bound (0: none).
func bound(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d > 0 {
		return context.WithTimeout(ctx, d)
	}
	return ctx, func() {}
}

// start checks the options, the names and the prefix and, unless in check
// mode, takes the instance's lock. The caller runs en.finish when done,
// whatever the error.
func start(ctx context.Context, o *Options) (*engine, *Result, error) {
	en := &engine{clients: map[string]*gitlab.Client{}}
	err := o.setDefaults()
	en.o = *o
	en.l = hostfs.Layout{Prefix: o.Prefix, Instance: o.Instance}
	res := &Result{ConfigPath: en.l.ConfigPath(), Check: o.Check, Runners: []RunnerResult{}}
	if err != nil {
		return en, res, err
	}
	if err := config.ValidateNames(o.Hostname, o.Instance); err != nil {
		return en, res, err
	}
	if err := o.checkPrefix(); err != nil {
		return en, res, err
	}
	if !o.Check {
		fl, err := hostfs.Lock(ctx, en.l, o.Limits.Lock)
		var busy *hostfs.BusyError
		if errors.As(err, &busy) {
			err = fmt.Errorf("%w (raise %s, or check for a stuck register-runner process)", err, o.Names(input.LockTimeout))
		}
		if err != nil {
			return en, res, err
		}
		en.lock = fl
		en.checkRunnerPID()
	}
	return en, res, nil
}

// fails is " (<option> fails instead)" in the front end's terms, or ""
// where the front end has no such option.
func (o Options) fails(opt input.Option) string {
	if n := o.Names(opt); n != "" {
		return " (" + n + " fails instead)"
	}
	return ""
}

func (o *Options) prefixMissing() bool {
	if !o.declared.prefixMayBeMissing || !o.Check || o.declared.overlay == nil {
		return false
	}
	_, err := os.Stat(o.Prefix)
	return errors.Is(err, os.ErrNotExist)
}

func (o *Options) checkPrefix() error {
	if o.prefixMissing() {
		return nil
	}
	return hostfs.CheckPrivate(o.Prefix, o.Prefix, "prefix directory")
}

// Package core is gitlab-runner-auth's sync engine: it loads what a host
// declares, observes GitLab, builds a plan (keep, create, adopt, replace,
// update, delete), carries it out and writes config.{instance}.toml. It
// prints nothing and knows nothing of flags or Ansible.
package core

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/gofrs/flock"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/gitlab"
)

// Version is set at build time.
var Version = "dev"

// Options configure one run.
type Options struct {
	Prefix   string
	Instance string
	Hostname string
	// Check builds the plan and stops: no mutating request, no write.
	Check bool
	// Refresh reads every runner from GitLab to catch edits made by hand.
	Refresh     bool
	Concurrency int
	Tags        TagOptions
	// LockTimeout bounds the wait for another run on the same instance.
	LockTimeout    time.Duration
	RequestTimeout time.Duration
	RetryBudget    time.Duration
	MaxAttempts    int
	// Overlay replaces the template and executor files read from disk.
	Overlay *Overlay
	// Secrets collects every secret seen so output can be scrubbed.
	Secrets *Redactor
	// Log receives progress and warnings (already redacted).
	Log func(string)
	Now func() time.Time
	// MachineIDPaths override where the machine id is read (tests).
	MachineIDPaths []string
	// PrefixMayBeMissing lets a check-mode run with an Overlay plan for a
	// host whose prefix does not exist yet (Ansible check mode on a new host).
	PrefixMayBeMissing bool
}

func (o *Options) defaults() {
	if o.Instance == "" {
		o.Instance = "main"
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 16
	}
	if o.LockTimeout <= 0 {
		o.LockTimeout = 60 * time.Second
	}
	if o.Secrets == nil {
		o.Secrets = NewRedactor()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MachineIDPaths == nil {
		o.MachineIDPaths = MachineIDPaths
	}
	if o.Tags.Concurrency <= 0 {
		o.Tags.Concurrency = o.Concurrency
	}
}

// RunnerResult reports one runner of the run.
type RunnerResult struct {
	Name     string `json:"name"`
	ID       int64  `json:"id"`
	URL      string `json:"url"`
	Executor string `json:"executor,omitempty"`
	Action   Action `json:"action"`
	Reason   string `json:"reason,omitempty"`
	Error    string `json:"error,omitempty"`
}

// Result is the outcome of a run.
type Result struct {
	ConfigPath string `json:"config_path"`
	Check      bool   `json:"check"`
	// Changed: the plan does something to GitLab, or the config changes.
	Changed       bool           `json:"changed"`
	ConfigChanged bool           `json:"config_changed"`
	Runners       []RunnerResult `json:"runners"`
	Warnings      []string       `json:"warnings,omitempty"`
	// Before and After are the config with tokens redacted (for diffs).
	Before string `json:"-"`
	After  string `json:"-"`
	Plan   Plan   `json:"-"`
}

// lock takes the per-instance advisory lock, waiting at most LockTimeout.
func lock(ctx context.Context, l Layout, timeout time.Duration) (*flock.Flock, error) {
	fl := flock.New(l.LockPath(), flock.SetPermissions(0o600))
	lctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ok, err := fl.TryLockContext(lctx, 50*time.Millisecond)
	if err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
		return nil, fmt.Errorf("lock %s: %w", l.LockPath(), err)
	}
	if !ok {
		return nil, fmt.Errorf("another run for instance %q holds the lock %s; gave up after %s (raise --lock-timeout, or check for a stuck register-runner process)", l.Instance, l.LockPath(), timeout)
	}
	return fl, nil
}

// begin checks the names and the prefix and, unless in check mode, takes
// the instance's lock; the caller runs the returned release when done.
func begin(ctx context.Context, o *Options) (Layout, *Result, func(), error) {
	o.defaults()
	l := Layout{Prefix: o.Prefix, Instance: o.Instance}
	res := &Result{ConfigPath: l.ConfigPath(), Check: o.Check, Runners: []RunnerResult{}}
	release := func() {}
	if err := ValidateNames(o.Hostname, o.Instance); err != nil {
		return l, res, release, err
	}
	if err := o.checkPrefix(); err != nil {
		return l, res, release, err
	}
	if !o.Check {
		fl, err := lock(ctx, l, o.LockTimeout)
		if err != nil {
			return l, res, release, err
		}
		release = func() { _ = fl.Unlock() }
	}
	return l, res, release, nil
}

// Sync runs the whole sync for one instance.
func Sync(ctx context.Context, o Options) (*Result, error) {
	l, res, release, err := begin(ctx, &o)
	defer release()
	if err != nil {
		return res, err
	}

	d, err := loadDesired(l, o.Hostname, o.Overlay, o.Secrets, o.prefixMissing())
	if err != nil {
		return res, err
	}
	if err := uniqueDescriptions(d); err != nil {
		return res, err
	}
	if err := ComputeTags(ctx, d, o.Tags); err != nil {
		return res, err
	}
	live, err := ReadLiveConfig(l, o.Secrets)
	if err != nil {
		return res, err
	}
	st, warn := ReadState(l)
	en := &engine{o: o, d: d, sem: make(chan struct{}, o.Concurrency), clients: map[string]*gitlab.Client{}}
	defer en.close()
	if warn != "" {
		en.warn("%s", warn)
	}
	sysID, writeID, err := SystemID(l, o.MachineIDPaths)
	if err != nil {
		return res, err
	}
	if writeID && !o.Check {
		// Persist before any request, so GitLab only ever sees this id.
		if _, err := writeFileAtomic(l.SystemIDPath(), []byte(sysID+"\n")); err != nil {
			return res, fmt.Errorf("writing %s: %w", l.SystemIDPath(), err)
		}
	}
	en.systemID = sysID

	prev := MatchPrevious(d, live, st)
	for _, f := range prev.Foreign {
		en.warn("config entry %q (id %d) does not carry this host's identity; keeping it as is", f.Name, f.ID)
	}
	obs, err := en.observe(ctx, prev, st)
	if err != nil {
		res.Warnings = en.warnings
		return res, err
	}
	plan := BuildPlan(d, prev, st, obs)
	res.Plan = plan
	res.Before = string(redactConfig(l, live))

	if o.Check {
		sections := composeSections(d, prev, plan, nil, nil)
		after := RenderConfig(l, d.Globals, sections, false)
		res.After = string(RenderConfig(l, d.Globals, sections, true))
		res.ConfigChanged = !bytes.Equal(after, live.Raw)
		res.Changed = plan.Changed() || res.ConfigChanged
		res.Runners = runnerResults(plan, nil)
		res.Warnings = en.warnings
		return res, nil
	}

	// A marker that outlives a killed or failed run: GitLab may still carry
	// out requests that run sent, so the next run settles their effects.
	_, statErr := os.Stat(l.IncompletePath())
	interrupted := statErr == nil
	if interrupted {
		en.warn("the previous run did not finish cleanly; checking for effects of its requests that GitLab finished late")
	}
	if plan.Changed() {
		if _, err := writeFileAtomic(l.IncompletePath(), []byte(fmt.Sprintf("pid %d started %s\n", os.Getpid(), o.Now().UTC().Format(time.RFC3339)))); err != nil {
			return res, fmt.Errorf("writing %s: %w", l.IncompletePath(), err)
		}
	}
	outcomes := en.apply(ctx, plan)
	var extra []RunnerResult
	if interrupted {
		extra = en.settle(ctx, plan, outcomes)
	}

	// gitlab-runner may have rotated a token while we worked: take token
	// fields from the file as it is now, never from the copy read earlier.
	fresh, ferr := ReadLiveConfig(l, o.Secrets)
	if ferr != nil {
		fresh = live
	}
	sections := composeSections(d, prev, plan, outcomes, fresh)
	data := RenderConfig(l, d.Globals, sections, false)
	wrote, werr := writeFileAtomic(l.ConfigPath(), data)
	res.ConfigChanged = wrote
	res.After = string(RenderConfig(l, d.Globals, sections, true))
	if werr == nil {
		if _, err := writeFileAtomic(l.StatePath(), newState(d, plan, outcomes, st).encode()); err != nil {
			en.warn("writing state file %s: %v", l.StatePath(), err)
		}
	}
	res.Runners = append(runnerResults(plan, outcomes), extra...)
	res.Changed = wrote || len(extra) > 0
	for i, s := range plan.Steps {
		if s.Action != Keep && (outcomes[i].Err == nil || outcomes[i].Creds != nil || outcomes[i].Deleted) {
			res.Changed = true
		}
	}
	res.Warnings = en.warnings

	var errs []error
	for _, oc := range outcomes {
		if oc.Err != nil {
			errs = append(errs, oc.Err)
		}
	}
	for _, r := range extra {
		if r.Error != "" {
			errs = append(errs, errors.New(r.Error))
		}
	}
	if werr != nil {
		errs = append(errs, fmt.Errorf("writing %s: %w", l.ConfigPath(), werr))
	}
	if len(errs) == 0 && (plan.Changed() || interrupted) {
		if err := os.Remove(l.IncompletePath()); err != nil && !errors.Is(err, os.ErrNotExist) {
			en.warn("removing %s: %v", l.IncompletePath(), err)
		}
	}
	return res, errors.Join(errs...)
}

func (o *Options) prefixMissing() bool {
	if !o.PrefixMayBeMissing || !o.Check || o.Overlay == nil {
		return false
	}
	_, err := os.Stat(o.Prefix)
	return errors.Is(err, os.ErrNotExist)
}

func (o *Options) checkPrefix() error {
	if o.prefixMissing() {
		return nil
	}
	return CheckPrivate(o.Prefix, "prefix directory")
}

// composeSections builds the [[runners]] entries to write: declared
// executors (sorted by name) with the credentials they hold after the run,
// then entries kept verbatim (deletes that failed, foreign entries). With
// nil outcomes it predicts the result of the plan (check mode).
func composeSections(d *Desired, prev Previous, plan Plan, outcomes []Outcome, fresh *LiveConfig) []Section {
	freshByID := map[int64]LiveRunner{}
	if fresh != nil {
		for _, r := range fresh.Runners {
			if r.ID != 0 {
				freshByID[r.ID] = r
			}
		}
	}
	var sections []Section
	var verbatim []Section
	for i, s := range plan.Steps {
		var oc *Outcome
		if outcomes != nil {
			oc = &outcomes[i]
		}
		if s.Action == Delete {
			if oc != nil && !oc.Deleted && s.Prev != nil {
				verbatim = append(verbatim, Section{Name: s.Prev.Name, Verbatim: s.Prev.Table})
			}
			continue
		}
		e := s.Executor
		sec := Section{Name: e.Description, URL: e.Client.URL, Executor: e.Type, TLSCAFile: e.Client.TLSCAFile, Keys: e.Keys}
		switch {
		case oc != nil && oc.Creds != nil:
			sec.ID, sec.Token, sec.TokenObtained, sec.TokenExpiresAt = oc.Creds.ID, oc.Creds.Token, oc.Obtained, oc.Creds.ExpiresAt
			if sec.ID == 0 {
				sec.ID = s.ID
			}
		case s.Prev != nil && (s.Action == Keep || s.Action == Update || (oc != nil && oc.Err != nil && !oc.Deleted)):
			// Kept or updated, or an adopt/replace that failed: the entry on
			// disk stays, so no token is ever dropped.
			p := *s.Prev
			if f, ok := freshByID[p.ID]; ok && f.Token != "" && f.Token != p.Token {
				p = f // rotated by gitlab-runner during the run
			} else if s.Verified != nil && s.Verified.Token == p.Token && !tomlTime(s.Verified.ExpiresAt).Equal(tomlTime(p.TokenExpiresAt)) {
				p.TokenExpiresAt = s.Verified.ExpiresAt // gitlab-runner rotates by this date
			}
			sec.ID, sec.Token, sec.TokenObtained, sec.TokenExpiresAt = p.ID, p.Token, p.TokenObtained, p.TokenExpiresAt
			if (s.Action == Keep || s.Action == Update) && s.ID != 0 {
				sec.ID = s.ID
			}
		case oc == nil:
			// Check mode: what the run would write. The token is not known yet.
			sec.ID = s.ID
		default:
			continue // failed create: nothing to write, the next run retries
		}
		sections = append(sections, sec)
	}
	for _, f := range prev.Foreign {
		verbatim = append(verbatim, Section{Name: f.Name, Verbatim: f.Table})
	}
	sort.SliceStable(verbatim, func(i, j int) bool { return verbatim[i].Name < verbatim[j].Name })
	return append(sections, verbatim...)
}

func newState(d *Desired, plan Plan, outcomes []Outcome, old *State) *State {
	st := &State{Version: 1, Runners: map[string]StateRunner{}}
	for i, s := range plan.Steps {
		if s.Action == Delete {
			continue
		}
		oc := outcomes[i]
		id := oc.ID
		if oc.Creds != nil && oc.Creds.ID != 0 {
			id = oc.Creds.ID
		}
		if id == 0 {
			continue
		}
		sr := StateRunner{ID: id, URL: s.Executor.Client.URL}
		switch {
		case oc.Applied != nil:
			a := *oc.Applied
			sr.Applied = &a
		case s.Action == Keep:
			// Kept means GitLab matches what is declared (or it is unknown
			// and cannot be checked without a PAT).
			a := s.Settings
			sr.Applied = &a
		default:
			if o, ok := old.Runners[s.Name]; ok && o.ID == id {
				sr.Applied = o.Applied
			}
		}
		st.Runners[s.Name] = sr
	}
	return st
}

func runnerResults(plan Plan, outcomes []Outcome) []RunnerResult {
	out := make([]RunnerResult, 0, len(plan.Steps))
	for i, s := range plan.Steps {
		r := RunnerResult{Name: s.Name, ID: s.ID, URL: s.URL, Action: s.Action, Reason: s.Reason}
		if s.Executor != nil {
			r.Executor = s.Executor.Type
		}
		if outcomes != nil {
			oc := outcomes[i]
			if oc.Creds != nil && oc.Creds.ID != 0 {
				r.ID = oc.Creds.ID
			}
			if oc.Err != nil {
				r.Error = oc.Err.Error()
			}
		}
		out = append(out, r)
	}
	return out
}

// ReadFileIfExists is a small helper for adapters: nil when absent.
func ReadFileIfExists(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return b, err
}

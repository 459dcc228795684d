package core

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/fanout"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/gitlab"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/hostfs"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/input"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/plan"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/redact"
)

// DefaultPrunePattern matches the descriptions the tool gives runners:
// "<host> <instance> <name> Runner".
const DefaultPrunePattern = `^\S+ \S+ \S+ Runner$`

// PruneOptions configure the fleet clean-up: which runners of which
// GitLab scope are the fleet's, which ids the fleet's hosts reported, and
// the bounds that keep a mistake from wiping a fleet.
type PruneOptions struct {
	URL string
	// PAT or PATFile (owner-only; relative to the working folder) is the
	// personal access token: read_api (or api) to list, manage_runner (or
	// api) to delete.
	PAT, PATFile string
	// CAFile is an extra CA bundle for this GitLab.
	CAFile string
	// RunnerType is the scope listed: instance_type (default; an
	// administrator's token), group_type with GroupID or Group (full
	// path), project_type with ProjectID or Project.
	RunnerType     string
	GroupID        int64
	ProjectID      int64
	Group, Project string
	// Tags: only runners carrying all of them are the fleet's (the
	// instance tag, say).
	Tags []string
	// Pattern is a regular expression a fleet runner's description
	// matches (default DefaultPrunePattern).
	Pattern string
	// Keep are the runner ids the fleet's hosts reported in this play;
	// KeepFile a file of more, one id per line ("#" starts a comment).
	Keep     []int64
	KeepFile string
	// HostsExpected are the hosts of the play; HostsReported those whose
	// sync succeeded. The runners of an expected host that did not report
	// are kept (by the host name their description and tags carry).
	HostsExpected, HostsReported []string
	// MinIdle: only runners nobody (runner or manager) used for at least
	// this long are deleted (the front ends' default is plan.StaleAfter,
	// GitLab's stale window).
	MinIdle time.Duration
	// MaxDelete refuses a run that would delete more (the front ends'
	// default is 20; 0 deletes nothing).
	MaxDelete int
	// Check lists and decides, and deletes nothing.
	Check       bool
	Concurrency int
	// Timeout bounds the whole run; 429 waits are honoured within it.
	Timeout, RequestTimeout time.Duration
	Secrets                 *redact.Redactor
	Names                   input.Names
	// Now is the clock idle times are measured on (default: GitLab's,
	// from its answers' Date, else the host's).
	Now func() time.Time
	Log func(string)
}

// PrunedRunner is one runner the clean-up looked at, and what it did.
type PrunedRunner struct {
	ID          int64    `json:"id"`
	Description string   `json:"description"`
	Tags        []string `json:"tags"`
	// LastContact is the runner's or a manager's last contact (RFC 3339).
	LastContact string `json:"last_contact,omitempty"`
	// Managers are "<system id> <last seen>" for each runner manager.
	Managers []string `json:"managers"`
	// Action is delete or keep; Rule the row of the clean-up's table.
	Action string `json:"action"`
	Rule   string `json:"rule"`
	Reason string `json:"reason"`
	Error  string `json:"error,omitempty"`
}

// PruneResult is the outcome of a clean-up.
type PruneResult struct {
	Check   bool           `json:"check"`
	Changed bool           `json:"changed"`
	Deleted int            `json:"deleted"`
	Runners []PrunedRunner `json:"runners"`
	// Refused are the runners the clean-up would have deleted when it
	// refused because they were more than MaxDelete: it deleted none.
	Refused []int64 `json:"refused,omitempty"`
	// Warnings say what could not be read.
	Warnings []string `json:"warnings,omitempty"`
	// Before and After list the fleet's runners, one per line, for diffs.
	Before string `json:"-"`
	After  string `json:"-"`
}

// TooManyError is a clean-up that would delete more than MaxDelete: it
// deleted nothing.
type TooManyError struct {
	Would []int64
	Max   int
}

func (e *TooManyError) Error() string { return e.Render(input.Neutral) }

// Render says it with the options named as a front end names them.
func (e *TooManyError) Render(names input.Names) string {
	ids := make([]string, len(e.Would))
	for i, id := range e.Would {
		ids[i] = fmt.Sprint(id)
	}
	max, keep, expected := names("max_delete"), names("keep"), names("hosts_expected")
	return fmt.Sprintf("the clean-up would delete %d runners, more than %s (%d), so it deleted none: %s; check %s and %s, or raise %s",
		len(e.Would), max, e.Max, strings.Join(ids, ", "), keep, expected, max)
}

// ParseAge reads a duration as Go writes it ("90m", "168h") or in days
// ("7d", "1.5d"), as min_idle is given.
func ParseAge(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseFloat(days, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("%q is not a number of days such as 7d", s)
		}
		return time.Duration(n * float64(24*time.Hour)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration such as 7d, 36h or 90m", s)
	}
	return d, nil
}

// readKeepFile reads runner ids, one per line; blank lines and "#"
// comments are skipped.
func readKeepFile(path string) ([]int64, error) {
	data, err := hostfs.ReadSmall(path, path)
	if err != nil {
		return nil, withOption(err, "keep_file")
	}
	var ids []int64
	for i, line := range strings.Split(string(data), "\n") {
		line, _, _ = strings.Cut(line, "#")
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		id, err := strconv.ParseInt(line, 10, 64)
		if err != nil || id <= 0 {
			return nil, &input.Error{Option: "keep_file", File: path, Line: i + 1, Msg: fmt.Sprintf("%q is not a runner id", line),
				Fix: "write one runner id (a positive number) per line"}
		}
		ids = append(ids, id)
	}
	return ids, nil
}

func (o *PruneOptions) defaults() error {
	if o.Secrets == nil {
		o.Secrets = redact.New()
	}
	if o.Names == nil {
		o.Names = input.Neutral
	}
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.Pattern == "" {
		o.Pattern = DefaultPrunePattern
	}
	if o.RunnerType == "" {
		o.RunnerType = "instance_type"
	}
	bad := func(opt, format string, args ...any) error {
		return &input.Error{Option: input.Option(opt), Msg: fmt.Sprintf(format, args...)}
	}
	switch {
	case o.URL == "":
		return bad("url", "is required: GitLab's base URL")
	case o.MinIdle < 0:
		return bad("min_idle", "must not be negative")
	case o.MaxDelete < 0:
		return bad("max_delete", "must not be negative")
	case o.PAT == "" && o.PATFile == "":
		return bad("personal_access_token", "is required (or personal_access_token_file): listing runners needs read_api, deleting them manage_runner (or api for both)")
	}
	if _, err := gitlab.NormalizeURL(o.URL); err != nil {
		return bad("url", "%v", err)
	}
	if _, err := regexp.Compile(o.Pattern); err != nil {
		return bad("description_pattern", "is not a regular expression: %v", err)
	}
	if o.KeepFile != "" {
		ids, err := readKeepFile(o.KeepFile)
		if err != nil {
			return err
		}
		o.Keep = append(o.Keep, ids...)
	}
	return nil
}

// Prune is the fleet clean-up: it lists the runners of a GitLab scope
// that carry the fleet's tags and description, keeps those the play's
// hosts reported, those of hosts that did not report, and those used
// within MinIdle, and deletes the others by id — none at all when they
// are more than MaxDelete. Check mode decides and deletes nothing.
func Prune(ctx context.Context, o PruneOptions) (*PruneResult, error) {
	res := &PruneResult{Check: o.Check, Runners: []PrunedRunner{}}
	if err := o.defaults(); err != nil {
		return res, err
	}
	ctx, cancel := bound(ctx, o.Timeout)
	defer cancel()
	c, err := o.client()
	if err != nil {
		return res, err
	}
	defer c.Close()
	if err := o.resolveScope(ctx, c); err != nil {
		return res, err
	}
	listed, denial, err := c.List(ctx, gitlab.ListOptions{RunnerType: o.RunnerType, GroupID: o.GroupID, ProjectID: o.ProjectID, Tags: o.Tags})
	switch {
	case err != nil:
		return res, fmt.Errorf("listing the fleet's runners: %w", err)
	case denial != nil:
		return res, fmt.Errorf("listing the fleet's runners on %s: %s", gitlab.SafeURL(o.URL), denial.Missing)
	}
	ev := o.evidence(ctx, c, listed, res)
	decisions := plan.Prune(ev)
	var doomed []int64
	for _, d := range decisions {
		if d.Row.Delete {
			doomed = append(doomed, d.ID)
		}
	}
	res.Runners = reportPrune(decisions, o.Secrets)
	res.Before = pruneList(decisions, nil)
	if len(doomed) > o.MaxDelete {
		res.After, res.Refused = res.Before, doomed
		return res, &TooManyError{Would: doomed, Max: o.MaxDelete}
	}
	gone := map[int64]bool{}
	if o.Check {
		for _, id := range doomed {
			gone[id] = true
		}
		res.After, res.Changed = pruneList(decisions, gone), len(doomed) > 0
		return res, nil
	}
	errs := make([]error, len(doomed))
	_ = fanout.Each(ctx, len(doomed), o.Concurrency, func(i int) error {
		errs[i] = c.Remove(ctx, doomed[i])
		return nil
	})
	for i, id := range doomed {
		for j := range res.Runners {
			if res.Runners[j].ID != id {
				continue
			}
			if errs[i] != nil {
				res.Runners[j].Error = o.Secrets.Redact(errs[i].Error())
				continue
			}
			gone[id] = true
			res.Deleted++
		}
	}
	res.After, res.Changed = pruneList(decisions, gone), res.Deleted > 0
	return res, errors.Join(errs...)
}

// client builds the GitLab client from the options' token and CA.
func (o *PruneOptions) client() (*gitlab.Client, error) {
	pat := o.PAT
	if pat == "" {
		b, err := hostfs.ReadTrusted(o.PATFile, o.PATFile, "personal_access_token_file", true)
		if err != nil {
			return nil, withOption(err, "personal_access_token_file")
		}
		pat = strings.TrimSpace(string(b))
	}
	o.Secrets.Add(pat)
	var ca []byte
	if o.CAFile != "" {
		var err error
		if ca, err = hostfs.ReadTrusted(o.CAFile, o.CAFile, "tls_ca_file", false); err != nil {
			return nil, withOption(err, "tls_ca_file")
		}
	}
	c, err := gitlab.New(gitlab.Config{URL: o.URL, PAT: pat, CAFile: o.CAFile, CAPEM: ca, Scrub: o.Secrets.Redact,
		RequestTimeout: o.RequestTimeout, RetryBudget: o.Timeout, MaxConns: o.Concurrency, UserAgent: "gitlab-runner-auth/" + Version})
	if err != nil {
		return nil, &input.Error{Option: "tls_ca_file", Msg: err.Error()}
	}
	return c, nil
}

// withOption names the option an input error about a file came from.
func withOption(err error, opt string) error {
	if ie := input.As(err); ie != nil && ie.Option == "" {
		ie.Option = input.Option(opt)
	}
	return err
}

// resolveScope turns a group or project path into its id.
func (o *PruneOptions) resolveScope(ctx context.Context, c *gitlab.Client) error {
	for _, ns := range []struct {
		kind, path string
		id         *int64
	}{{"group", o.Group, &o.GroupID}, {"project", o.Project, &o.ProjectID}} {
		if ns.path == "" {
			continue
		}
		found, presence, err := c.FindNamespace(ctx, ns.kind, strings.Trim(ns.path, "/"))
		switch {
		case err != nil:
			return fmt.Errorf("looking up %s %q: %w", ns.kind, ns.path, err)
		case presence != gitlab.Found:
			return &input.Error{Option: input.Option(ns.kind), Msg: fmt.Sprintf("%s %q does not exist on %s, or the token may not see it", ns.kind, ns.path, gitlab.SafeURL(o.URL))}
		}
		*ns.id = found.ID
	}
	switch {
	case o.GroupID != 0:
		o.RunnerType = "group_type"
	case o.ProjectID != 0:
		o.RunnerType = "project_type"
	}
	return nil
}

// evidence reads, for every listed runner of the fleet not reported by a
// host, its details and managers.
func (o *PruneOptions) evidence(ctx context.Context, c *gitlab.Client, listed []gitlab.Summary, res *PruneResult) plan.PruneEvidence {
	now := time.Now()
	if o.Now != nil {
		now = o.Now()
	} else if t, ok := c.Now(); ok {
		now = t
	}
	ev := plan.PruneEvidence{Listed: listed, Details: map[int64]gitlab.Runner{}, Managers: map[int64][]gitlab.Manager{},
		Unreadable: map[int64]string{}, Pattern: regexp.MustCompile(o.Pattern), Keep: map[int64]bool{}, Missing: map[string]bool{},
		MinIdle: o.MinIdle, Now: now}
	for _, id := range o.Keep {
		ev.Keep[id] = true
	}
	reported := map[string]bool{}
	for _, h := range o.HostsReported {
		reported[h] = true
	}
	for _, h := range o.HostsExpected {
		if !reported[h] {
			ev.Missing[h] = true
		}
	}
	var ids []int64
	for _, s := range listed {
		if ev.Pattern.MatchString(s.Description) && !ev.Keep[s.ID] {
			ids = append(ids, s.ID)
		}
	}
	var mu sync.Mutex
	_ = fanout.Each(ctx, len(ids), o.Concurrency, func(i int) error {
		id := ids[i]
		r, found, err := c.ReadRunner(ctx, id)
		var ms []gitlab.Manager
		var mfound gitlab.Presence
		var merr error
		if err == nil && found == gitlab.Found {
			ms, mfound, merr = c.ReadManagers(ctx, id)
		}
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err != nil:
			ev.Unreadable[id] = o.Secrets.Redact(err.Error())
		case found == gitlab.Forbidden:
			ev.Unreadable[id] = "403: the token may not read it"
		case found == gitlab.Gone:
			ev.Unreadable[id] = "gone while listing"
		case merr != nil:
			ev.Unreadable[id] = o.Secrets.Redact(merr.Error())
		default:
			ev.Details[id] = r
			if mfound == gitlab.Found {
				ev.Managers[id] = ms
			}
		}
		return nil
	})
	for _, id := range ids {
		if why, bad := ev.Unreadable[id]; bad {
			res.Warnings = append(res.Warnings, fmt.Sprintf("runner %d could not be read (%s); it is kept", id, why))
		}
	}
	return ev
}

func reportPrune(ds []plan.PruneDecision, sec *redact.Redactor) []PrunedRunner {
	out := make([]PrunedRunner, 0, len(ds))
	for _, d := range ds {
		if d.Row == plan.PruneForeign {
			continue // not the fleet's: not even listed in the result
		}
		r := PrunedRunner{ID: d.ID, Description: d.Description, Tags: d.Tags, Managers: []string{}, Rule: d.Row.Name, Reason: sec.Redact(d.Reason), Action: "keep"}
		if r.Tags == nil {
			r.Tags = []string{}
		}
		if d.Row.Delete {
			r.Action = "delete"
		}
		if !d.LastContact.IsZero() {
			r.LastContact = d.LastContact.UTC().Format(time.RFC3339)
		}
		for _, m := range d.Managers {
			seen := "never"
			if t := m.LastSeen(); !t.IsZero() {
				seen = t.UTC().Format(time.RFC3339)
			}
			r.Managers = append(r.Managers, m.SystemID+" "+seen)
		}
		out = append(out, r)
	}
	return out
}

// pruneList renders the fleet's runners (without those gone) for a diff.
func pruneList(ds []plan.PruneDecision, gone map[int64]bool) string {
	var lines []string
	for _, d := range ds {
		if d.Row == plan.PruneForeign || gone[d.ID] {
			continue
		}
		lines = append(lines, fmt.Sprintf("%d %s", d.ID, d.Description))
	}
	sort.Strings(lines)
	if len(lines) == 0 {
		return ""
	}
	return strings.Join(lines, "\n") + "\n"
}

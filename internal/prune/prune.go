package prune

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

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/fanout"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/fleet"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/gitlab"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/hostfs"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/input"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/plan"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/redact"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/version"
)

// DefaultPattern matches the descriptions the tool gives runners:
// "<host> <instance> <name> Runner".
const DefaultPattern = `^\S+ \S+ \S+ Runner$`

// Options configure the fleet clean-up: which runners of which
// GitLab scope are the fleet's, which ids the fleet's hosts reported, and
// the bounds that keep a mistake from wiping a fleet.
type Options struct {
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
	// Fleet is the fleet whose mark a runner must carry to be deleted
	// (default fleet.Default); IncludeUnmarked also takes runners with no
	// mark at all that match the tags and pattern (a one-time clean-up of
	// what versions before marks left).
	Fleet           string
	IncludeUnmarked bool
	// Tags narrow the listing: only runners carrying all of them (the
	// instance tag, say). Each must be a tag, not blank.
	Tags []string
	// Pattern is a regular expression a fleet runner's description
	// matches (default DefaultPattern); it narrows too.
	Pattern string
	// Keep are the runner ids the fleet's hosts reported in this play;
	// KeepFile a file of more, one id per line ("#" starts a comment).
	Keep     []int64
	KeepFile string
	// HostsExpected are the hosts of the play; HostsReported those whose
	// sync succeeded. The runners of an expected host that did not report
	// are kept (by the host their mark names, else by their description
	// and tags).
	HostsExpected, HostsReported []string
	// MinIdle: only runners whose known age (last use, creation, or first
	// sighting) is at least this on both clocks are deleted; at least
	// plan.MinIdleFloor (the front ends' default is plan.StaleAfter).
	MinIdle time.Duration
	// SeenFile is the controller's record of first sightings (default
	// DefaultSeenFile()).
	SeenFile string
	// MaxDelete refuses a run that would delete more (the front ends'
	// default is 20; 0 deletes nothing).
	MaxDelete int
	// Check lists and decides, and deletes and records nothing.
	Check       bool
	Concurrency int
	// Timeout bounds the whole run; 429 waits are honoured within it.
	Timeout, RequestTimeout time.Duration
	Secrets                 *redact.Redactor
	Names                   input.Names
	// Now is the controller's clock (default time.Now); GitLab's is read
	// from the Date of its answers.
	Now func() time.Time
}

// Runner is one runner the clean-up looked at, and what it did.
type Runner struct {
	ID          int64    `json:"id"`
	Description string   `json:"description"`
	Tags        []string `json:"tags"`
	// Fleet, Host and Instance are what the runner's mark names (empty:
	// unmarked, or not read).
	Fleet    string `json:"fleet,omitempty"`
	Host     string `json:"host,omitempty"`
	Instance string `json:"instance,omitempty"`
	// LastContact is the runner's or a manager's last contact or creation
	// (RFC 3339).
	LastContact string `json:"last_contact,omitempty"`
	// Managers are "<system id> <last seen>" for each runner manager.
	Managers []string `json:"managers"`
	// Action is delete or keep; Rule the row of the clean-up's table.
	Action string `json:"action"`
	Rule   string `json:"rule"`
	Reason string `json:"reason"`
	Error  string `json:"error,omitempty"`
}

// Result is the outcome of a clean-up.
type Result struct {
	Check   bool     `json:"check"`
	Changed bool     `json:"changed"`
	Deleted int      `json:"deleted"`
	Runners []Runner `json:"runners"`
	// Refused are the runners the clean-up would have deleted when it
	// refused because they were more than MaxDelete: it deleted none.
	Refused []int64 `json:"refused,omitempty"`
	// Unmarked counts the runners kept because they carry no fleet mark.
	Unmarked int `json:"unmarked"`
	// Warnings say what could not be read, and what the run suspects.
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

// ClockError is a clean-up that deleted nothing because GitLab's clock
// and the controller's disagree (or GitLab's is unknown): an age measured
// on either could be wrong by the difference.
type ClockError struct {
	// Skew is how far apart they are; Known is false when GitLab sent no
	// Date.
	Skew  time.Duration
	Known bool
}

func (e *ClockError) Error() string {
	if !e.Known {
		return "GitLab's answers carry no Date, so its clock cannot be checked against this controller's; the clean-up deleted nothing"
	}
	return fmt.Sprintf("GitLab's clock (the Date of its answers) and this controller's differ by %s, more than %s, so no age can be trusted; the clean-up deleted nothing: set both clocks right (NTP)",
		e.Skew.Truncate(time.Second), plan.ClockTolerance)
}

func (o *Options) defaults() error {
	if o.Secrets == nil {
		o.Secrets = redact.New()
	}
	if o.Names == nil {
		o.Names = input.Neutral
	}
	if o.Concurrency <= 0 {
		o.Concurrency = fanout.DefaultConcurrency
	}
	if o.Pattern == "" {
		o.Pattern = DefaultPattern
	}
	if o.RunnerType == "" {
		o.RunnerType = "instance_type"
	}
	if o.Fleet == "" {
		o.Fleet = fleet.Default
	}
	if o.SeenFile == "" {
		o.SeenFile = DefaultSeenFile()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	bad := func(opt, format string, args ...any) *input.Error {
		return &input.Error{Option: input.Option(opt), Msg: fmt.Sprintf(format, args...)}
	}
	switch {
	case o.URL == "":
		return bad("url", "is required: GitLab's base URL")
	case o.MinIdle < plan.MinIdleFloor:
		return bad("min_idle", "is %s; it must be at least %s: GitLab writes a runner's last contact to its database only every hour or so, and calls a runner online for two hours after its last contact (Ci::Runner::ONLINE_CONTACT_TIMEOUT) for that reason",
			o.MinIdle, plan.MinIdleFloor).WithFix("give 2h or more (the default is 7d, GitLab's stale window)")
	case o.MaxDelete < 0:
		return bad("max_delete", "must not be negative")
	case o.PAT == "" && o.PATFile == "":
		return bad("personal_access_token", "is required (or personal_access_token_file): listing runners needs read_api, deleting them manage_runner (or api for both)")
	}
	if err := fleet.CheckName(o.Fleet); err != nil {
		return bad("fleet", "%v", err).WithFix("give the fleet name sync marks the runners with")
	}
	for i, t := range o.Tags {
		if strings.TrimSpace(t) == "" {
			return bad(fmt.Sprintf("tags[%d]", i), "is blank; a blank tag would widen the listing to every runner of the scope").WithFix("remove it, or give the fleet's tag")
		}
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

// Prune is the fleet clean-up. It lists the runners of a GitLab scope
// that carry the fleet's tags and description, keeps those the play's
// hosts reported and those of hosts that did not report, reads every
// other by id, and deletes only those whose details carry the fleet's
// mark, lie in the scope asked for, and whose known age is MinIdle or more
// on GitLab's clock and the controller's (plan.Prune) — none at all when
// they are more than MaxDelete, or when the clocks disagree. Each runner
// is read by id again just before its DELETE. Check mode decides, and
// deletes and records nothing.
func Run(ctx context.Context, o Options) (*Result, error) {
	res := &Result{Check: o.Check, Runners: []Runner{}}
	if err := o.defaults(); err != nil {
		return res, err
	}
	if o.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Timeout)
		defer cancel()
	}
	c, err := o.client()
	if err != nil {
		return res, err
	}
	defer c.Close()
	key, _ := gitlab.NormalizeURL(o.URL)
	res.Warnings = o.cautions(key)
	seen, err := readSightings(o.SeenFile)
	if err != nil {
		return res, err
	}
	listed, err := o.list(ctx, c)
	if err != nil {
		return res, err
	}
	ev, decisions := o.decide(ctx, c, listed, seen.of(key))
	o.warnUnreadable(ev, decisions, res)
	if !o.Check {
		if err := o.recordSightings(seen, key, ev, decisions); err != nil {
			res.Warnings = append(res.Warnings, o.Secrets.Redact(err.Error()))
		}
	}
	doomed := o.report(decisions, res)
	if err := o.refuse(ev, doomed, res); err != nil {
		return res, err
	}
	if o.Check {
		res.After, res.Changed = pruneList(decisions, idSet(doomed)), len(doomed) > 0
		return res, nil
	}
	gone, errs := o.remove(ctx, c, ev, decisions, doomed, res)
	if len(gone) > 0 {
		seen.update(key, nil, doomed, plan.Sighting{})
		if err := seen.write(o.SeenFile); err != nil {
			res.Warnings = append(res.Warnings, o.Secrets.Redact(err.Error()))
		}
	}
	return res, o.reportRemoved(decisions, doomed, gone, errs, res)
}

// cautions are what the run warns of before it starts: a token sent over
// plain http, and a fleet left unnamed.
func (o *Options) cautions(key string) []string {
	var warnings []string
	if gitlab.PlainHTTPRemote(key) {
		warnings = append(warnings, fmt.Sprintf("GitLab %s is reached over plain http: the personal access token crosses the network unencrypted; use https", gitlab.SafeURL(o.URL)))
	}
	if o.Fleet == fleet.Default {
		warnings = append(warnings, "the fleet is not named (fleet "+fleet.Default+"): every fleet that leaves its name unset shares it, so name the fleet in sync and prune when another team's fleet shares this GitLab")
	}
	return warnings
}

// list lists the runners of the scope (a group or project path resolved
// to its id) that carry the fleet's tags.
func (o *Options) list(ctx context.Context, c *gitlab.Client) ([]gitlab.Summary, error) {
	if err := o.resolveScope(ctx, c); err != nil {
		return nil, err
	}
	listed, denial, err := c.ListRunners(ctx, gitlab.ListOptions{RunnerType: o.RunnerType, GroupID: o.GroupID, ProjectID: o.ProjectID, Tags: o.Tags})
	switch {
	case err != nil:
		return nil, fmt.Errorf("listing the fleet's runners: %w", err)
	case denial != nil:
		return nil, fmt.Errorf("listing the fleet's runners on %s: %s", gitlab.SafeURL(o.URL), denial.Missing)
	}
	return listed, nil
}

// decide reads what the listed runners' decisions need (evidence) and
// decides each (plan.Prune), again once the managers of those whose
// decision waits for them are read.
func (o *Options) decide(ctx context.Context, c *gitlab.Client, listed []gitlab.Summary, firstSeen map[int64]plan.Sighting) (plan.PruneEvidence, []plan.PruneDecision) {
	ev := o.evidence(ctx, c, listed, firstSeen)
	decisions := plan.Prune(ev)
	if o.readManagers(ctx, c, &ev, decisions) {
		decisions = plan.Prune(ev)
	}
	return ev, decisions
}

// report puts the decisions into the result (the runners, the unmarked
// count, the fleet as it stands) and gives the runners they delete.
func (o *Options) report(decisions []plan.PruneDecision, res *Result) (doomed []int64) {
	for _, d := range decisions {
		if d.Row.Delete {
			doomed = append(doomed, d.ID)
		}
		if d.Row == plan.PruneUnmarked {
			res.Unmarked++
		}
	}
	res.Runners = reportPrune(decisions, o.Secrets)
	res.Before = pruneList(decisions, nil)
	return doomed
}

// refuse stops a clean-up that must delete nothing: GitLab's clock and the
// controller's disagree (ClockError), or it would delete more than
// MaxDelete (TooManyError). The fleet then stays as it stands.
func (o *Options) refuse(ev plan.PruneEvidence, doomed []int64, res *Result) error {
	if skew, known := ev.SkewOf(); !known || skew > plan.ClockTolerance {
		res.After = res.Before
		return &ClockError{Skew: skew, Known: known}
	}
	if len(doomed) > o.MaxDelete {
		res.After, res.Refused = res.Before, doomed
		return &TooManyError{Would: doomed, Max: o.MaxDelete}
	}
	return nil
}

// reportRemoved puts what the deletions did into the result: the runners
// with their decisions read again and any failure, the fleet as it is
// left, and an error for each runner whose DELETE failed.
func (o *Options) reportRemoved(decisions []plan.PruneDecision, doomed []int64, gone map[int64]bool, errs map[int64]string, res *Result) error {
	res.Runners = reportPrune(decisions, o.Secrets)
	for i := range res.Runners {
		if msg, failed := errs[res.Runners[i].ID]; failed {
			res.Runners[i].Error = msg
		}
	}
	res.After, res.Changed, res.Deleted = pruneList(decisions, gone), len(gone) > 0, len(gone)
	var all []error
	for _, id := range doomed {
		if msg, failed := errs[id]; failed {
			all = append(all, fmt.Errorf("deleting runner %d: %s", id, msg))
		}
	}
	return errors.Join(all...)
}

// idSet is the set of the ids, as remove reports the runners it deleted.
func idSet(ids []int64) map[int64]bool {
	set := map[int64]bool{}
	for _, id := range ids {
		set[id] = true
	}
	return set
}

// remove deletes the doomed runners, each read by id again just before:
// its fresh details must still make it idle (plan.Prune on them), or it
// is kept and its decision says why. It returns the runners deleted and
// the failures, by id.
func (o *Options) remove(ctx context.Context, c *gitlab.Client, ev plan.PruneEvidence, decisions []plan.PruneDecision,
	doomed []int64, res *Result) (gone map[int64]bool, errs map[int64]string) {
	index := map[int64]int{}
	for i, d := range decisions {
		index[d.ID] = i
	}
	var mu sync.Mutex
	gone, errs = map[int64]bool{}, map[int64]string{}
	_ = fanout.Each(ctx, len(doomed), o.Concurrency, func(i int) error {
		id := doomed[i]
		mu.Lock()
		d := decisions[index[id]]
		mu.Unlock()
		again := recheck(ctx, c, ev, d, o.Now(), o.Secrets)
		var err error
		if again.Row.Delete {
			_, err = c.RemoveByID(ctx, id)
		}
		mu.Lock()
		defer mu.Unlock()
		decisions[index[id]] = again
		switch {
		case !again.Row.Delete:
		case err != nil:
			errs[id] = o.Secrets.Redact(err.Error())
		default:
			gone[id] = true
		}
		return nil
	})
	for _, id := range doomed {
		if d := decisions[index[id]]; !d.Row.Delete {
			res.Warnings = append(res.Warnings, fmt.Sprintf("runner %d was kept after all: read again just before deleting it, %s (%s)", id, d.Reason, d.Row.Name))
		}
	}
	return gone, errs
}

// recheck reads a runner by id again and decides it on what GitLab says
// now, with everything else as before.
func recheck(ctx context.Context, c *gitlab.Client, ev plan.PruneEvidence, d plan.PruneDecision, now time.Time, sec *redact.Redactor) plan.PruneDecision {
	one := ev
	one.Now = now
	one.Listed = []gitlab.Summary{{ID: d.ID, Description: d.Description}}
	one.Details, one.Unreadable, one.Gone = map[int64]gitlab.Runner{}, map[int64]string{}, map[int64]bool{}
	one.Managers = map[int64][]gitlab.Manager{d.ID: d.Managers}
	r, found, err := c.ReadRunner(ctx, d.ID)
	switch {
	case err != nil:
		one.Unreadable[d.ID] = sec.Redact(err.Error())
	case found == gitlab.Forbidden:
		one.Unreadable[d.ID] = "403: the token may not read it"
	case found == gitlab.Gone:
		one.Gone[d.ID] = true
	default:
		one.Details[d.ID] = r
	}
	if now, ok := c.Now(); ok {
		one.GitLabNow = now
	}
	return plan.Prune(one)[0]
}

// client builds the GitLab client from the options' token and CA.
func (o *Options) client() (*gitlab.Client, error) {
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
		RequestTimeout: o.RequestTimeout, RetryBudget: o.Timeout, MaxConns: o.Concurrency, UserAgent: version.UserAgent()})
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
func (o *Options) resolveScope(ctx context.Context, c *gitlab.Client) error {
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

// evidence reads by id every listed runner the clean-up must decide on:
// those that match the pattern, that no host reported, and whose
// description names no host that missed the play.
func (o *Options) evidence(ctx context.Context, c *gitlab.Client, listed []gitlab.Summary, firstSeen map[int64]plan.Sighting) plan.PruneEvidence {
	scope := plan.PruneScope{RunnerType: o.RunnerType, GroupID: o.GroupID, ProjectID: o.ProjectID}
	ev := plan.PruneEvidence{Listed: listed, Details: map[int64]gitlab.Runner{}, Managers: map[int64][]gitlab.Manager{},
		Unreadable: map[int64]string{}, Gone: map[int64]bool{}, Scope: scope, Fleet: o.Fleet, IncludeUnmarked: o.IncludeUnmarked,
		Tags: o.Tags, Pattern: regexp.MustCompile(o.Pattern), Keep: map[int64]bool{}, Missing: map[string]bool{},
		MinIdle: o.MinIdle, Now: o.Now(), FirstSeen: firstSeen}
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
	// Decided on the listing alone (not the fleet's shape, reported, a
	// missing host's by description): no read needed.
	var ids []int64
	listedAs := map[int64]string{}
	for _, d := range plan.Prune(ev) {
		if d.Row != plan.PruneForeign && d.Row != plan.PruneReported && d.Row != plan.PruneMissing {
			ids = append(ids, d.ID)
			listedAs[d.ID] = d.Description
		}
	}
	var mu sync.Mutex
	_ = fanout.Each(ctx, len(ids), o.Concurrency, func(i int) error {
		id := ids[i]
		r, found, err := c.ReadRunner(ctx, id)
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err != nil:
			ev.Unreadable[id] = o.Secrets.Redact(err.Error())
		case found == gitlab.Forbidden:
			ev.Unreadable[id] = "403: the token may not read it"
		case found == gitlab.Gone:
			ev.Gone[id] = true
		default:
			if r.Description == listedAs[id] {
				r.Description = listedAs[id] // one copy held, not two
			}
			r.Description = cut(r.Description, maxDescription)
			ev.Details[id] = r
		}
		return nil
	})
	if now, ok := c.Now(); ok {
		ev.GitLabNow = now
	}
	return ev
}

// maxDescription bounds what a runner's description may hold in memory
// (GitLab allows 1,024 characters in the UI; an API client may store
// more).
const maxDescription = 4096

func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// readManagers reads the managers of the runners whose decision waits for
// them (GET /runners/:id/managers, GitLab 17.1 and later). A GitLab
// without the route says so once; a 403 or 5xx makes the runner
// unreadable, and so kept.
func (o *Options) readManagers(ctx context.Context, c *gitlab.Client, ev *plan.PruneEvidence, ds []plan.PruneDecision) bool {
	var ids []int64
	for _, d := range ds {
		if d.NeedsManagers {
			ids = append(ids, d.ID)
		}
	}
	if len(ids) == 0 {
		return false
	}
	var mu sync.Mutex
	_ = fanout.Each(ctx, len(ids), o.Concurrency, func(i int) error {
		id := ids[i]
		ms, found, err := c.ReadManagers(ctx, id)
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err != nil:
			ev.Unreadable[id] = "its managers: " + o.Secrets.Redact(err.Error())
		case found == gitlab.Unsupported:
			ev.NoManagersRoute = true
		case found == gitlab.Forbidden:
			ev.Unreadable[id] = "its managers: 403, the token may not read them"
		case found == gitlab.Gone:
			ev.Gone[id] = true
		default:
			ev.Managers[id] = ms
		}
		return nil
	})
	if now, ok := c.Now(); ok {
		ev.GitLabNow = now
	}
	ev.Now = o.Now()
	return true
}

// warnUnreadable names every runner kept because GitLab could not tell
// about it.
func (o *Options) warnUnreadable(ev plan.PruneEvidence, ds []plan.PruneDecision, res *Result) {
	for _, d := range ds {
		if why, bad := ev.Unreadable[d.ID]; bad && d.Row == plan.PruneUnreadable {
			res.Warnings = append(res.Warnings, fmt.Sprintf("runner %d could not be read (%s); it is kept", d.ID, why))
		}
	}
}

// recordSightings keeps the controller's record of first sightings: the
// fleet's runners nobody has contacted are recorded when first seen (their
// age once GitLab gives none: before 17.1, or after it dropped their
// managers); a runner contacted since, or gone, leaves the record.
func (o *Options) recordSightings(seen *sightings, key string, ev plan.PruneEvidence, ds []plan.PruneDecision) error {
	var sighted, forget []int64
	for _, d := range ds {
		switch _, recorded := ev.FirstSeen[d.ID]; {
		case d.Sighted:
			sighted = append(sighted, d.ID)
		case recorded && (ev.Gone[d.ID] || d.Contacted):
			forget = append(forget, d.ID)
		}
	}
	at := plan.Sighting{GitLab: ev.GitLabNow, Local: ev.Now}
	if !seen.update(key, sighted, forget, at) {
		return nil
	}
	if o.SeenFile == "" {
		return fmt.Errorf("no home folder for the record of first sightings: give seen_file, or runners GitLab gives no age for are never deleted")
	}
	return seen.write(o.SeenFile)
}

func reportPrune(ds []plan.PruneDecision, sec *redact.Redactor) []Runner {
	out := make([]Runner, 0, len(ds))
	for _, d := range ds {
		if d.Row == plan.PruneForeign {
			continue // not the fleet's: not even listed in the result
		}
		r := Runner{ID: d.ID, Description: d.Description, Tags: d.Tags, Fleet: d.Mark.Fleet, Host: d.Mark.Host, Instance: d.Mark.Instance,
			Managers: []string{}, Rule: d.Row.Name, Reason: sec.Redact(d.Reason), Action: "keep"}
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

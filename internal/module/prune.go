package module

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/engine"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/input"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/plan"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/prune"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/redact"
)

// pruneOptions are the options of the prune module.
var pruneOptions = []string{"url", "personal_access_token", "personal_access_token_file", "tls_ca_file",
	"group", "group_id", "project", "project_id", "fleet", "include_unmarked", "tags", "description_pattern", "keep",
	"hosts_expected", "hosts_reported", "min_idle", "seen_file", "max_delete", "state", "concurrency", "timeout", "request_timeout"}

// PruneArgs are the prune module's options after validation.
type PruneArgs struct {
	Options prune.Options
	// State absent deletes the leftovers; listed only reports them.
	State string
	Diff  bool
}

// ParsePruneArgs validates the prune module's options (raw is Ansible's
// arguments, already decoded).
func ParsePruneArgs(raw map[string]any) (*PruneArgs, error) {
	if err := unknownOptions(raw, "prune", pruneOptions); err != nil {
		return nil, err
	}
	a := &PruneArgs{State: "absent", Options: prune.Options{MaxDelete: 20, MinIdle: plan.StaleAfter, Concurrency: engine.DefaultConcurrency,
		Timeout: defaultTimeout, RequestTimeout: defaultRequestTimeout}}
	o := &a.Options
	if err := a.readPruneStrings(raw); err != nil {
		return nil, err
	}
	if err := readPruneScope(raw, o); err != nil {
		return nil, err
	}
	if err := readPruneSelection(raw, o); err != nil {
		return nil, err
	}
	if err := readPruneBounds(raw, o); err != nil {
		return nil, err
	}
	var err error
	if o.Check, a.Diff, err = ansibleModes(raw); err != nil {
		return nil, err
	}
	if a.State == "listed" {
		o.Check = true
	}
	if err := expandPaths([]pathOption{{"personal_access_token_file", &o.PATFile}, {"tls_ca_file", &o.CAFile},
		{"seen_file", &o.SeenFile}}); err != nil {
		return nil, err
	}
	return a, nil
}

// readPruneStrings reads the options given as strings (the GitLab, its
// token, the scope's paths, the fleet, the pattern, the state and the
// record of sightings): url is required, state absent or listed, and
// exactly one of personal_access_token and personal_access_token_file.
func (a *PruneArgs) readPruneStrings(raw map[string]any) error {
	o := &a.Options
	if err := readStrings(raw, map[string]*string{"url": &o.URL, "personal_access_token": &o.PAT,
		"personal_access_token_file": &o.PATFile, "tls_ca_file": &o.CAFile, "group": &o.Group, "project": &o.Project,
		"description_pattern": &o.Pattern, "state": &a.State, "fleet": &o.Fleet, "seen_file": &o.SeenFile}); err != nil {
		return err
	}
	if o.URL == "" {
		return argErr("url", "missing required arguments: url")
	}
	if err := oneOf("state", a.State, "absent", "listed"); err != nil {
		return err
	}
	if o.PAT != "" && o.PATFile != "" {
		return argErr("personal_access_token", "parameters are mutually exclusive: personal_access_token|personal_access_token_file")
	}
	if o.PAT == "" && o.PATFile == "" {
		return argErr("personal_access_token", "one of the following is required: personal_access_token, personal_access_token_file")
	}
	return nil
}

// readPruneScope reads group_id and project_id; at most one of group,
// group_id, project and project_id names the scope.
func readPruneScope(raw map[string]any, o *prune.Options) error {
	if err := readInto(raw, map[string]*int64{"group_id": &o.GroupID, "project_id": &o.ProjectID}, toInt); err != nil {
		return err
	}
	scopes := 0
	for _, set := range []bool{o.Group != "", o.GroupID != 0, o.Project != "", o.ProjectID != 0} {
		if set {
			scopes++
		}
	}
	if scopes > 1 {
		return argErr("group", "parameters are mutually exclusive: group|group_id|project|project_id")
	}
	return nil
}

// readPruneSelection reads what picks the fleet's runners and what keeps
// them: tags (none blank), the hosts expected and reported, keep and
// include_unmarked.
func readPruneSelection(raw map[string]any, o *prune.Options) error {
	var err error
	for _, l := range []struct {
		key string
		dst *[]string
	}{{"tags", &o.Tags}, {"hosts_expected", &o.HostsExpected}, {"hosts_reported", &o.HostsReported}} {
		if *l.dst, err = strList(raw, l.key); err != nil {
			return err
		}
	}
	keep, _, err := optList(raw, "keep", "runner ids")
	if err != nil {
		return err
	}
	for i, el := range keep {
		id, err := toInt(el, fmt.Sprintf("keep[%d]", i))
		if err != nil {
			return err
		}
		o.Keep = append(o.Keep, id)
	}
	if o.IncludeUnmarked, err = optBool(raw, "include_unmarked", false); err != nil {
		return err
	}
	for i, t := range o.Tags {
		if strings.TrimSpace(t) == "" {
			return argErr(fmt.Sprintf("tags[%d]", i), "tags[%d] is blank; a blank tag would widen the listing to every runner of the scope", i)
		}
	}
	return nil
}

// readPruneBounds reads what bounds the clean-up: min_idle, max_delete,
// concurrency and the timeouts.
func readPruneBounds(raw map[string]any, o *prune.Options) error {
	if err := readMinIdle(raw, &o.MinIdle); err != nil {
		return err
	}
	n, given, err := optional(raw, "max_delete", toInt)
	switch {
	case err != nil:
		return err
	case given && n < 0:
		return argErr("max_delete", "max_delete must not be negative, got %d", n)
	case given:
		o.MaxDelete = int(n)
	}
	if err := readConcurrency(raw, &o.Concurrency); err != nil {
		return err
	}
	return readDurations(raw, map[string]*time.Duration{"timeout": &o.Timeout, "request_timeout": &o.RequestTimeout})
}

// readMinIdle reads min_idle, a duration as prune.ParseAge reads it ("7d"),
// no less than plan.MinIdleFloor.
func readMinIdle(raw map[string]any, dst *time.Duration) error {
	s, given, err := optional(raw, "min_idle", toStr)
	if err != nil || !given {
		return err
	}
	d, err := prune.ParseAge(s)
	if err != nil || d < 0 {
		return argErr("min_idle", "min_idle must be a duration such as 7d, 36h or 90m, got %q", s)
	}
	if d < plan.MinIdleFloor {
		return argErr("min_idle", "min_idle is %s; it must be at least %s: GitLab writes a runner's last contact to its database only every hour or so, and calls a runner online for two hours after its last contact (Ci::Runner::ONLINE_CONTACT_TIMEOUT) for that reason", s, plan.MinIdleFloor)
	}
	*dst = d
	return nil
}

// strList reads a list of strings (a single string is a list of one, as
// Ansible's list type has it).
func strList(raw map[string]any, key string) ([]string, error) {
	if s, ok := raw[key].(string); ok {
		return strings.Split(s, ","), nil
	}
	list, given, err := optList(raw, key, "strings")
	if err != nil || !given {
		return nil, err
	}
	out := make([]string, len(list))
	for i, el := range list {
		s, err := toStr(el, fmt.Sprintf("%s[%d]", key, i))
		if err != nil {
			return nil, err
		}
		out[i] = s
	}
	return out, nil
}

// runPrune is the prune module: the fleet clean-up, run once per play on
// the controller.
func runPrune(ctx context.Context, raw map[string]any, sec *redact.Redactor) map[string]any {
	a, err := ParsePruneArgs(raw)
	if err != nil {
		return map[string]any{"failed": true, "changed": false, "msg": err.Error(), "input_errors": input.Report(err, optionName)}
	}
	o := a.Options
	sec.Add(o.PAT)
	o.Secrets, o.Names = sec, pruneOptionName
	res, err := prune.Run(ctx, o)
	out := map[string]any{"changed": false, "runners": []any{}, "would_delete": []int64{}}
	if res != nil {
		b, _ := json.Marshal(res)
		_ = json.Unmarshal(b, &out)
		out["would_delete"] = wouldDelete(res)
		out["changed"] = res.Changed && a.State == "absent"
		out["msg"] = pruneSummary(res, a.State)
		if a.Diff {
			out["diff"] = []map[string]any{{"before_header": "GitLab runners of the fleet", "after_header": "GitLab runners of the fleet",
				"before": res.Before, "after": res.After}}
		}
	}
	if err != nil {
		var tm *prune.TooManyError
		if errors.As(err, &tm) {
			out["failed"], out["msg"] = true, tm.Render(pruneOptionName)
		} else {
			fail(out, err)
		}
	}
	return out
}

// wouldDelete are the runners the clean-up deletes (or, in check mode,
// would delete), in id order.
func wouldDelete(res *prune.Result) []int64 {
	ids := []int64{}
	for _, r := range res.Runners {
		if r.Action == "delete" {
			ids = append(ids, r.ID)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

func pruneSummary(res *prune.Result, state string) string {
	n := len(wouldDelete(res))
	kept := len(res.Runners) - n
	switch {
	case len(res.Refused) > 0:
		return fmt.Sprintf("refused: %d runners would be deleted", n)
	case res.Check && state == "listed":
		return fmt.Sprintf("%d runners no host owns, %d kept", n, kept)
	case res.Check:
		return fmt.Sprintf("check mode: %d runners to delete, %d kept", n, kept)
	}
	return fmt.Sprintf("%d runners deleted, %d kept", res.Deleted, kept)
}

// pruneOptionName names a clean-up option as this module does.
func pruneOptionName(o input.Option) string { return string(o) }

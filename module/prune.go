package module

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/core"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/input"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/plan"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/redact"
)

// pruneOptions are the options of the prune module.
var pruneOptions = []string{"url", "personal_access_token", "personal_access_token_file", "tls_ca_file",
	"group", "group_id", "project", "project_id", "fleet", "include_unmarked", "tags", "description_pattern", "keep",
	"hosts_expected", "hosts_reported", "min_idle", "seen_file", "max_delete", "state", "concurrency", "timeout", "request_timeout"}

// PruneArgs are the prune module's options after validation.
type PruneArgs struct {
	Options core.PruneOptions
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
	a := &PruneArgs{State: "absent", Options: core.PruneOptions{MaxDelete: 20, MinIdle: plan.StaleAfter, Concurrency: core.DefaultConcurrency}}
	o := &a.Options
	var err error
	if err = readStrings(raw, map[string]*string{"url": &o.URL, "personal_access_token": &o.PAT,
		"personal_access_token_file": &o.PATFile, "tls_ca_file": &o.CAFile, "group": &o.Group, "project": &o.Project,
		"description_pattern": &o.Pattern, "state": &a.State, "fleet": &o.Fleet, "seen_file": &o.SeenFile}); err != nil {
		return nil, err
	}
	if o.URL == "" {
		return nil, argErr("url", "missing required arguments: url")
	}
	if a.State != "absent" && a.State != "listed" {
		return nil, argErr("state", "value of state must be one of: absent, listed, got: %s", a.State)
	}
	if o.PAT != "" && o.PATFile != "" {
		return nil, argErr("personal_access_token", "parameters are mutually exclusive: personal_access_token|personal_access_token_file")
	}
	if o.PAT == "" && o.PATFile == "" {
		return nil, argErr("personal_access_token", "one of the following is required: personal_access_token, personal_access_token_file")
	}
	for _, n := range []struct {
		key string
		dst *int64
	}{{"group_id", &o.GroupID}, {"project_id", &o.ProjectID}} {
		if v, ok := raw[n.key]; ok && v != nil {
			if *n.dst, err = toInt(v, n.key); err != nil {
				return nil, err
			}
		}
	}
	scopes := 0
	for _, set := range []bool{o.Group != "", o.GroupID != 0, o.Project != "", o.ProjectID != 0} {
		if set {
			scopes++
		}
	}
	if scopes > 1 {
		return nil, argErr("group", "parameters are mutually exclusive: group|group_id|project|project_id")
	}
	for _, l := range []struct {
		key string
		dst *[]string
	}{{"tags", &o.Tags}, {"hosts_expected", &o.HostsExpected}, {"hosts_reported", &o.HostsReported}} {
		if *l.dst, err = strList(raw, l.key); err != nil {
			return nil, err
		}
	}
	if v, ok := raw["keep"]; ok && v != nil {
		list, ok := v.([]any)
		if !ok {
			return nil, argErr("keep", "keep must be a list of runner ids, got %s", jsonType(v))
		}
		for i, el := range list {
			id, err := toInt(el, fmt.Sprintf("keep[%d]", i))
			if err != nil {
				return nil, err
			}
			o.Keep = append(o.Keep, id)
		}
	}
	if o.IncludeUnmarked, err = optBool(raw, "include_unmarked", false); err != nil {
		return nil, err
	}
	for i, t := range o.Tags {
		if strings.TrimSpace(t) == "" {
			return nil, argErr(fmt.Sprintf("tags[%d]", i), "tags[%d] is blank; a blank tag would widen the listing to every runner of the scope", i)
		}
	}
	if v, ok := raw["min_idle"]; ok && v != nil {
		s, err := toStr(v, "min_idle")
		if err != nil {
			return nil, err
		}
		if o.MinIdle, err = core.ParseAge(s); err != nil || o.MinIdle < 0 {
			return nil, argErr("min_idle", "min_idle must be a duration such as 7d, 36h or 90m, got %q", s)
		}
		if o.MinIdle < plan.MinIdleFloor {
			return nil, argErr("min_idle", "min_idle is %s; it must be at least %s: GitLab writes a runner's last contact to its database only every hour or so, and calls a runner online for two hours after its last contact (Ci::Runner::ONLINE_CONTACT_TIMEOUT) for that reason", s, plan.MinIdleFloor)
		}
	}
	if v, ok := raw["max_delete"]; ok && v != nil {
		n, err := toInt(v, "max_delete")
		if err != nil {
			return nil, err
		}
		if n < 0 {
			return nil, argErr("max_delete", "max_delete must not be negative, got %d", n)
		}
		o.MaxDelete = int(n)
	}
	if err := readConcurrency(raw, &o.Concurrency); err != nil {
		return nil, err
	}
	o.Timeout, o.RequestTimeout = 5*time.Minute, 20*time.Second
	if err := readDurations(raw, map[string]*time.Duration{"timeout": &o.Timeout, "request_timeout": &o.RequestTimeout}); err != nil {
		return nil, err
	}
	if a.Diff, err = optBool(raw, "_ansible_diff", false); err != nil {
		return nil, err
	}
	if o.Check, err = optBool(raw, "_ansible_check_mode", false); err != nil {
		return nil, err
	}
	if a.State == "listed" {
		o.Check = true
	}
	for _, p := range []struct {
		key string
		dst *string
	}{{"personal_access_token_file", &o.PATFile}, {"tls_ca_file", &o.CAFile}, {"seen_file", &o.SeenFile}} {
		if *p.dst, err = expandHome(*p.dst, p.key); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// strList reads a list of strings (a single string is a list of one, as
// Ansible's list type has it).
func strList(raw map[string]any, key string) ([]string, error) {
	v, ok := raw[key]
	if !ok || v == nil {
		return nil, nil
	}
	if s, ok := v.(string); ok {
		return strings.Split(s, ","), nil
	}
	list, ok := v.([]any)
	if !ok {
		return nil, argErr(key, "%s must be a list of strings, got %s", key, jsonType(v))
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
	res, err := core.Prune(ctx, o)
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
		var tm *core.TooManyError
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
func wouldDelete(res *core.PruneResult) []int64 {
	ids := []int64{}
	for _, r := range res.Runners {
		if r.Action == "delete" {
			ids = append(ids, r.ID)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

func pruneSummary(res *core.PruneResult, state string) string {
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

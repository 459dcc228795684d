// Package module is the Ansible binary module gitlab_runner_auth.runner.sync
// (its read-only companion info, and the fleet clean-up prune): it reads Ansible's arguments file,
// turns the options into engine.Options, runs the engine, and prints one
// JSON result in Ansible's terms. Core owns the instance's files and every
// rule; secrets never reach the result.
package module

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/engine"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/input"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/plan"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/redact"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/tags"
)

// Main runs the module with the arguments file at path and prints the
// result as JSON. It returns the process exit code.
func Main(path string, stdout io.Writer) int {
	sec := redact.New()
	var result map[string]any
	data, err := os.ReadFile(path)
	if err != nil {
		result = map[string]any{"failed": true, "msg": fmt.Sprintf("cannot read the module arguments file: %v", err)}
	} else {
		result = Run(context.Background(), data, sec)
	}
	return emit(stdout, result, sec)
}

// emit prints the result as one JSON object, every string in it redacted
// before it is encoded (encoding escapes characters a secret may hold),
// and the text again.
func emit(w io.Writer, result map[string]any, sec *redact.Redactor) int {
	b, err := json.Marshal(sec.Value(result))
	if err != nil {
		b = []byte(`{"failed": true, "msg": "cannot encode the result"}`)
	}
	_, _ = io.WriteString(w, sec.Redact(string(b))+"\n")
	if f, _ := result["failed"].(bool); f {
		return 1
	}
	return 0
}

// Run executes the module on raw arguments and returns its result.
func Run(ctx context.Context, raw []byte, sec *redact.Redactor) map[string]any {
	if doc, err := decodeArgs(raw); err == nil && doc[moduleArg] == "prune" {
		return runPrune(ctx, doc, sec)
	}
	a, err := ParseArgs(raw)
	if err != nil {
		return map[string]any{"failed": true, "changed": false, "msg": err.Error(), "input_errors": input.Report(err, optionName)}
	}
	if a.Declare != nil {
		for _, c := range a.Declare.Clients {
			for _, k := range []string{"personal_access_token", "registration_token"} {
				if s, ok := c.Values[k].(string); ok {
					sec.Add(s)
				}
			}
		}
	}
	if a.Module == "info" {
		return runInfo(ctx, a, sec)
	}
	out := map[string]any{"changed": false, "config_path": "", "runners": []map[string]any{}}
	res, err := engine.Run(ctx, a.options(sec))
	if res != nil {
		report(out, res)
		out["msg"] = summary(res)
		if a.Diff {
			out["diff"] = diffs(res)
		}
	}
	if err != nil {
		fail(out, err)
	}
	return out
}

// fail reports err: msg says it, input_errors gives each input error's
// parts as fields.
func fail(out map[string]any, err error) {
	out["failed"] = true
	out["msg"] = input.Describe(err, optionName)
	if ies := input.Report(err, optionName); len(ies) > 0 {
		out["input_errors"] = ies
	}
}

func (a *Args) options(sec *redact.Redactor) engine.Options {
	o := engine.Options{
		Prefix: a.Prefix, Instance: a.Instance, Hostname: a.Hostname, Fleet: a.Fleet, Check: a.CheckMode, Diff: a.Diff, Refresh: a.Refresh,
		Declare: a.Declare, Secrets: sec, Names: optionName,
		// A task is all or nothing; a removal GitLab does not confirm fails
		// it unless ignore_cleanup_errors.
		Policy: plan.Policy{CleanupFails: !a.IgnoreCleanupErrors},
		Tags:   tags.Options{CaptureProgram: a.CaptureTags, SchemaFile: a.TagSchema, CaptureTimeout: a.CaptureTimeout, Omit: a.OmitAutoTags},
		// A module run waits behind a systemd restart, but not forever.
		Limits: engine.Limits{Concurrency: a.Concurrency, Lock: a.LockTimeout, Timeout: a.Timeout, Request: a.RequestTimeout},
	}
	if a.State == "absent" {
		o.Remove = engine.Purge
	}
	return o
}

// report copies the engine's result into the module's.
func report(out map[string]any, res *engine.Result) {
	b, _ := json.Marshal(res)
	_ = json.Unmarshal(b, &out)
	out["changed"] = res.Changed
}

// runInfo is the info module: a read-only report, never a change.
func runInfo(ctx context.Context, a *Args, sec *redact.Redactor) map[string]any {
	opts := a.options(sec)
	opts.Check, opts.Remove, opts.Declare = true, "", nil
	// A report: an executor whose file is invalid is shown skipped, and why.
	opts.Policy.Serve = true
	out := map[string]any{"changed": false, "runners": []any{}}
	info, err := engine.Inspect(ctx, opts)
	if info != nil {
		b, _ := json.Marshal(info)
		_ = json.Unmarshal(b, &out)
		if info.Plan != nil {
			out["msg"] = summary(info.Plan)
			out["would_change"] = info.Plan.Changed
		}
	}
	out["changed"] = false
	if err != nil {
		fail(out, err)
	}
	return out
}

func summary(res *engine.Result) string {
	counts := map[plan.Action]int{}
	for _, r := range res.Runners {
		counts[r.Action]++
	}
	var parts []string
	for _, act := range []plan.Action{plan.Create, plan.Adopt, plan.Replace, plan.Update, plan.Delete, plan.Keep} {
		if n := counts[act]; n > 0 {
			verb := act.Past()
			if res.Check {
				verb = "to " + string(act)
			}
			parts = append(parts, fmt.Sprintf("%d %s", n, verb))
		}
	}
	s := "no runners"
	if len(parts) > 0 {
		s = strings.Join(parts, ", ")
	}
	if res.Check {
		return "check mode: " + s
	}
	return s
}

// diffs returns Ansible's list of before/after pairs: the instance files
// that change, the generated config and the GitLab-side settings, all
// with secrets redacted.
func diffs(res *engine.Result) []map[string]any {
	out := []map[string]any{}
	for _, f := range res.Files {
		after := f.Path
		if f.Removed {
			after += " (removed)"
		}
		out = append(out, map[string]any{"before_header": f.Path, "after_header": after, "before": f.Before, "after": f.After})
	}
	if res.Before != res.After {
		after := res.ConfigPath
		if res.ConfigRemoved {
			after += " (removed)"
		}
		out = append(out, map[string]any{"before_header": res.ConfigPath, "after_header": after,
			"before": redact.TOML(res.Before), "after": redact.TOML(res.After)})
	}
	for _, r := range res.Runners {
		if r.SettingsAfter == nil {
			continue
		}
		before := "(unknown: not read from GitLab)\n"
		if r.SettingsBefore != nil {
			before = r.SettingsBefore.Text()
		}
		h := fmt.Sprintf("GitLab runner %s (id %d)", r.Name, r.ID)
		out = append(out, map[string]any{"before_header": h, "after_header": h, "before": before, "after": r.SettingsAfter.Text()})
	}
	return out
}

// optionName names a run option as this module's option.
func optionName(o input.Option) string {
	switch o {
	case input.Unregister:
		return "state: absent"
	case input.Strict:
		return "" // the module has no such option
	}
	return string(o)
}

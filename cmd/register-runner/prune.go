package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/pmezard/go-difflib/difflib"
	"github.com/spf13/pflag"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/engine"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/fleet"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/plan"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/prune"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/redact"
)

const pruneUsageHead = `Usage: register-runner prune [options]

Deletes, from a GitLab scope, the runners of this fleet that no host owns
any more. It lists the runners that carry every --tag and whose description
matches the pattern, and deletes only those whose details, read by id just
before, carry the mark of --fleet (which the fleet's sync writes), lie in the
scope asked for, that no host reported (--keep, --keep-file), whose host did
not miss the run (--hosts-expected, --hosts-reported), and whose known age is
--min-idle or more on GitLab's clock and this machine's. It deletes none when
they are more than --max-delete, or when the two clocks disagree.

Options:
`

const pruneUsageTail = `
Exit status: 0 success (changed or not), 1 GitLab failed the run or it would
delete more than --max-delete, 2 invalid input or usage.
`

// ageValue is a pflag value read by prune.ParseAge ("7d", "36h").
type ageValue struct{ d *time.Duration }

func (a ageValue) String() string {
	if *a.d != 0 && *a.d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", *a.d/(24*time.Hour))
	}
	return a.d.String()
}

func (a ageValue) Set(s string) error {
	d, err := prune.ParseAge(s)
	if err == nil && d < 0 {
		err = errors.New("must not be negative")
	}
	if err != nil {
		return err
	}
	*a.d = d
	return nil
}

func (ageValue) Type() string { return "age" }

// pruneInvocation is register-runner prune's command line parsed: the
// options the clean-up runs with, or a text printed instead (--help).
type pruneInvocation struct {
	opts   prune.Options
	output string
	diff   bool
	print  string
}

// parsePrune parses register-runner prune's flags into
// prune.Options. Its error is a usage error; what the options hold is
// the clean-up's to check.
func parsePrune(args []string) (command, error) {
	inv := pruneInvocation{opts: prune.Options{MinIdle: plan.StaleAfter, SeenFile: prune.DefaultSeenFile()}}
	o := &inv.opts
	var help bool
	fs := pflag.NewFlagSet("register-runner prune", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.SortFlags = false
	fs.StringVar(&o.URL, "url", "", "GitLab's base URL")
	fs.StringVar(&o.PATFile, "personal-access-token-file", "", "FILE holding a personal access token (owner-only): read_api to list, manage_runner (or api) to delete")
	fs.StringVar(&o.CAFile, "tls-ca-file", "", "extra CA bundle for GitLab")
	fs.StringVar(&o.Group, "group", "", "look at the runners of this group (full path); default: the instance runners (an administrator's token)")
	fs.Int64Var(&o.GroupID, "group-id", 0, "the same, by id")
	fs.StringVar(&o.Project, "project", "", "look at the runners of this project (full path)")
	fs.Int64Var(&o.ProjectID, "project-id", 0, "the same, by id")
	fs.StringVar(&o.Fleet, "fleet", fleet.Default, "the fleet whose mark (written by its sync) a runner must carry to be deleted")
	fs.BoolVar(&o.IncludeUnmarked, "include-unmarked", false, "also take runners that carry no fleet mark at all (what versions before marks left) for the fleet's: for a one-time clean-up")
	fs.StringSliceVar(&o.Tags, "tag", nil, "list only runners carrying this tag (repeat or comma-separate for several)")
	fs.StringVar(&o.Pattern, "description-pattern", prune.DefaultPattern, "regular expression a fleet runner's description matches")
	fs.Int64SliceVar(&o.Keep, "keep", nil, "runner id a host reported: never deleted (repeat or comma-separate)")
	fs.StringVar(&o.KeepFile, "keep-file", "", "FILE of runner ids to keep, one per line ('#' comments)")
	fs.StringSliceVar(&o.HostsExpected, "hosts-expected", nil, "host names that should have reported (their runners are kept when they did not)")
	fs.StringSliceVar(&o.HostsReported, "hosts-reported", nil, "host names that reported (their sync succeeded)")
	fs.Var(ageValue{&o.MinIdle}, "min-idle", "only delete runners whose known age is this long on both clocks (7d, 36h; at least 2h)")
	fs.StringVar(&o.SeenFile, "seen-file", o.SeenFile, "the record of when this machine first saw runners GitLab gives no age for")
	fs.IntVar(&o.MaxDelete, "max-delete", 20, "delete none when more than this many would go")
	fs.BoolVar(&o.Check, "check", false, "list and decide; delete nothing")
	fs.BoolVar(&inv.diff, "diff", false, "show the fleet's runner list before and after")
	fs.IntVar(&o.Concurrency, "concurrency", engine.DefaultConcurrency, "GitLab requests in parallel")
	fs.DurationVar(&o.RequestTimeout, "request-timeout", 20*time.Second, "timeout of one HTTP request")
	fs.DurationVar(&o.Timeout, "timeout", 5*time.Minute, "bound on the whole run")
	fs.StringVar(&inv.output, "output", "text", "text or json")
	fs.BoolVarP(&help, "help", "h", false, "show this help")

	if err := fs.Parse(args); err != nil {
		return inv, err
	}
	switch {
	case help:
		inv.print = pruneUsageHead + fs.FlagUsages() + pruneUsageTail
	case fs.NArg() > 0:
		return inv, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case inv.output != "text" && inv.output != "json":
		return inv, fmt.Errorf("--output must be text or json, not %q", inv.output)
	}
	o.Names = flagOf
	return inv, nil
}

func (inv pruneInvocation) shown() string { return inv.print }

// execute runs a parsed clean-up with the engine given, prints its report
// and gives the exit status.
func (inv pruneInvocation) execute(e engines, sec *redact.Redactor, out, errw redactingWriter) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	opts := inv.opts
	opts.Secrets = sec
	res, err := e.prune(ctx, opts)
	if inv.output == "json" {
		printPruneJSON(out, res, err, inv.diff)
	} else {
		pruneText(out, errw, res, inv.diff)
	}
	return failure(errw, "register-runner prune", err)
}

func pruneText(out, errw redactingWriter, res *prune.Result, diff bool) {
	if res == nil {
		return
	}
	for _, r := range res.Runners {
		verb := "kept"
		switch {
		case r.Action != "delete":
		case r.Error != "":
			verb = "failed to delete"
		case res.Check || len(res.Refused) > 0:
			verb = "would delete"
		default:
			verb = "deleted"
		}
		out.print(fmt.Sprintf("%s %d %q (%s): %s\n", verb, r.ID, r.Description, r.Rule, r.Reason))
		if r.Error != "" {
			errw.log(fmt.Sprintf("delete %d: %s", r.ID, r.Error))
		}
	}
	for _, w := range res.Warnings {
		errw.log("warning: " + w)
	}
	if diff {
		printRemovals(out, res.Before, res.After, "GitLab runners of the fleet")
	}
}

// printPruneJSON prints prune.Result as JSON, plus the diff and the
// failure as the sync command gives them. The runners, and the diff's
// lists, are encoded and printed a piece at a time: a fleet's report may
// hold tens of thousands of runners.
func printPruneJSON(out redactingWriter, res *prune.Result, err error, diff bool) {
	if res == nil {
		out.print(jsonDoc(nil, false, err, diff, "", "") + "\n")
		return
	}
	head := *res
	head.Runners = nil
	doc := jsonDoc(&head, true, err, false, "", "")
	// The head's one top-level "runners": null (a string holding those
	// characters has its quotes escaped) is where the list goes.
	const hole = `"runners": null`
	i := strings.Index(doc, hole)
	if i < 0 {
		out.print(doc + "\n")
		return
	}
	out.print(doc[:i] + `"runners": [`)
	for j, r := range res.Runners {
		b, _ := json.MarshalIndent(r, "    ", "  ")
		sep := ",\n    "
		if j == 0 {
			sep = "\n    "
		}
		out.print(sep + string(b))
	}
	if len(res.Runners) > 0 {
		out.print("\n  ")
	}
	rest := doc[i+len(hole):]
	if !diff {
		out.print("]" + rest + "\n")
		return
	}
	out.print("]" + strings.TrimSuffix(rest, "\n}") + ",\n  \"diff\": {\n    \"before\": ")
	printJSONString(out, res.Before)
	out.print(",\n    \"after\": ")
	printJSONString(out, res.After)
	out.print("\n  }\n}\n")
}

// printJSONString prints s as a JSON string, some lines at a time (a
// secret never spans lines, so each piece is redacted whole).
func printJSONString(out redactingWriter, s string) {
	out.print(`"`)
	for s != "" {
		n := min(len(s), 64<<10)
		if k := strings.IndexByte(s[n:], '\n'); k >= 0 {
			n += k + 1
		} else {
			n = len(s)
		}
		b, _ := json.Marshal(s[:n])
		out.print(string(b[1 : len(b)-1]))
		s = s[n:]
	}
	out.print(`"`)
}

// printRemovals prints, as a unified diff, what after lacks of before: the
// runners a clean-up deleted (after holds the others in the same order).
// One pass, a hunk at a time, whatever the size of the fleet — a general
// diff of two lists of tens of thousands of lines takes seconds.
func printRemovals(out redactingWriter, before, after, name string) {
	if before == after {
		return
	}
	const context = 3
	a, b := difflib.SplitLines(before), difflib.SplitLines(after)
	gone := make([]bool, len(a))
	for i, j := 0, 0; i < len(a); i++ {
		if j < len(b) && a[i] == b[j] {
			j++
			continue
		}
		gone[i] = true
	}
	out.print(fmt.Sprintf("--- %s (before)\n+++ %s (after)\n", name, name))
	kept := 0 // lines of before kept up to the hunk, for its position in after
	for i := 0; i < len(a); {
		if !gone[i] {
			i, kept = i+1, kept+1
			continue
		}
		// A hunk: from context lines before the first removal to context
		// lines after the last removal that is within 2*context of the next.
		start, end := max(0, i-context), i
		for end < len(a) {
			next := end
			for next < len(a) && !gone[next] {
				next++
			}
			if next == len(a) || next-end > 2*context {
				break
			}
			for next < len(a) && gone[next] {
				next++
			}
			end = next
		}
		stop := min(len(a), end+context)
		removed := 0
		for k := start; k < stop; k++ {
			if gone[k] {
				removed++
			}
		}
		lines := stop - start
		var h strings.Builder
		fmt.Fprintf(&h, "@@ -%s +%s @@\n", unifiedRange(start, lines), unifiedRange(kept-(i-start), lines-removed))
		for k := start; k < stop; k++ {
			mark := " "
			if gone[k] {
				mark = "-"
			}
			h.WriteString(mark + a[k])
			if !strings.HasSuffix(a[k], "\n") {
				h.WriteString("\n")
			}
		}
		out.print(h.String())
		for k := i; k < stop; k++ {
			if !gone[k] {
				kept++
			}
		}
		i = stop
	}
}

// unifiedRange is a hunk's range as unified diffs write it (difflib's
// formatRangeUnified): "start,length", the length left out when it is 1,
// the start the line before when it is 0.
func unifiedRange(start, length int) string {
	switch length {
	case 1:
		return fmt.Sprint(start + 1)
	case 0:
		return fmt.Sprintf("%d,0", start)
	}
	return fmt.Sprintf("%d,%d", start+1, length)
}

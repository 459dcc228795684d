package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/core"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/fleet"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/plan"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/redact"
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

// ageValue is a pflag value read by core.ParseAge ("7d", "36h").
type ageValue struct{ d *time.Duration }

func (a ageValue) String() string {
	if *a.d != 0 && *a.d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", *a.d/(24*time.Hour))
	}
	return a.d.String()
}

func (a ageValue) Set(s string) error {
	d, err := core.ParseAge(s)
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

func runPrune(args []string, stdout, stderr io.Writer) int {
	sec := redact.New()
	out := redactingWriter{stdout, sec}
	errw := redactingWriter{stderr, sec}

	o := core.PruneOptions{MinIdle: plan.StaleAfter, SeenFile: core.DefaultSeenFile()}
	var output string
	var diff, help bool
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
	fs.StringVar(&o.Pattern, "description-pattern", core.DefaultPrunePattern, "regular expression a fleet runner's description matches")
	fs.Int64SliceVar(&o.Keep, "keep", nil, "runner id a host reported: never deleted (repeat or comma-separate)")
	fs.StringVar(&o.KeepFile, "keep-file", "", "FILE of runner ids to keep, one per line ('#' comments)")
	fs.StringSliceVar(&o.HostsExpected, "hosts-expected", nil, "host names that should have reported (their runners are kept when they did not)")
	fs.StringSliceVar(&o.HostsReported, "hosts-reported", nil, "host names that reported (their sync succeeded)")
	fs.Var(ageValue{&o.MinIdle}, "min-idle", "only delete runners whose known age is this long on both clocks (7d, 36h; at least 2h)")
	fs.StringVar(&o.SeenFile, "seen-file", o.SeenFile, "the record of when this machine first saw runners GitLab gives no age for")
	fs.IntVar(&o.MaxDelete, "max-delete", 20, "delete none when more than this many would go")
	fs.BoolVar(&o.Check, "check", false, "list and decide; delete nothing")
	fs.BoolVar(&diff, "diff", false, "show the fleet's runner list before and after")
	fs.IntVar(&o.Concurrency, "concurrency", core.DefaultConcurrency, "GitLab requests in parallel")
	fs.DurationVar(&o.RequestTimeout, "request-timeout", 20*time.Second, "timeout of one HTTP request")
	fs.DurationVar(&o.Timeout, "timeout", 5*time.Minute, "bound on the whole run")
	fs.StringVar(&output, "output", "text", "text or json")
	fs.BoolVarP(&help, "help", "h", false, "show this help")

	if err := fs.Parse(args); err != nil {
		errw.print(fmt.Sprintf("register-runner prune: %v\n", err))
		errw.print("Try 'register-runner prune --help'.\n")
		return exitInput
	}
	if help {
		out.print(pruneUsageHead + fs.FlagUsages() + pruneUsageTail)
		return exitOK
	}
	if fs.NArg() > 0 {
		errw.print(fmt.Sprintf("register-runner prune: unexpected argument %q\nTry 'register-runner prune --help'.\n", fs.Arg(0)))
		return exitInput
	}
	if output != "text" && output != "json" {
		errw.print(fmt.Sprintf("register-runner prune: --output must be text or json, not %q\n", output))
		return exitInput
	}
	o.Secrets, o.Names = sec, flagOf
	o.Log = errw.log

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	res, err := core.Prune(ctx, o)
	if output == "json" {
		out.print(pruneJSON(res, err, diff, sec) + "\n")
	} else {
		pruneText(out, errw, res, diff)
	}
	return failure(errw, "register-runner prune", err, describePrune)
}

func pruneText(out, errw redactingWriter, res *core.PruneResult, diff bool) {
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
		out.print(unifiedText(res.Before, res.After, "GitLab runners of the fleet"))
	}
}

// pruneJSON is core.PruneResult as JSON, plus the diff and the failure as
// the sync command gives them.
func pruneJSON(res *core.PruneResult, err error, diff bool, sec *redact.Redactor) string {
	var before, after string
	if res != nil {
		before, after = res.Before, res.After
	}
	return jsonDoc(res, res != nil, err, describePrune, diff, before, after, sec)
}

// describePrune renders an error naming options as flags.
func describePrune(err error) string {
	var tm *core.TooManyError
	if errors.As(err, &tm) {
		return tm.Render(flagOf)
	}
	return describe(err)
}

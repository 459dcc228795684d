package core

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/gitlab"
)

// Remove unregisters every runner of this host and instance — those in the
// live config and, with a PAT, those GitLab lists under this host's identity
// — and removes the generated config and state file. Template and executor
// files are left alone. Entries without this host's identity are kept.
func Remove(ctx context.Context, o Options) (*Result, error) {
	l, res, release, err := begin(ctx, &o)
	defer release()
	if err != nil {
		return res, err
	}
	d := &Desired{Layout: l, Hostname: o.Hostname}
	var tpl []byte
	if o.Overlay != nil && o.Overlay.Template != nil {
		tpl = o.Overlay.Template
	} else if _, err := os.Stat(l.TemplatePath()); err == nil {
		if err := CheckPrivate(l.TemplatePath(), "template"); err != nil {
			return res, err
		}
		data, err := readSmall(l.TemplatePath(), l.rel(l.TemplatePath()))
		if err != nil {
			return res, err
		}
		tpl = data
	}
	if tpl != nil {
		if err := d.parseTemplate(l.rel(l.TemplatePath()), tpl, o.Secrets); err != nil {
			return res, err
		}
	}
	live, err := ReadLiveConfig(l, o.Secrets)
	if err != nil {
		return res, err
	}
	st, _ := ReadState(l)
	en := &engine{o: o, d: d, sem: make(chan struct{}, o.Concurrency), clients: map[string]*gitlab.Client{}}
	defer en.close()
	prev := MatchPrevious(d, live, st)
	obs := newObservation()
	var scopes []lookupScope
	for _, c := range d.Clients {
		if c.PAT != "" {
			scopes = append(scopes, lookupScope{c.Key, c.RunnerType, c.GroupID, c.ProjectID})
		}
	}
	if obs.Found, err = en.lookup(ctx, scopes); err != nil {
		return res, err
	}
	plan := BuildPlan(d, prev, st, obs)
	res.Plan = plan
	res.Before = string(redactConfig(l, live))
	if o.Check {
		sections := composeSections(d, prev, plan, nil, nil)
		if len(sections) > 0 {
			res.After = string(RenderConfig(l, d.Globals, sections, true))
		}
		res.Changed = plan.Changed() || (live.Exists && len(sections) == 0)
		res.ConfigChanged = live.Exists
		res.Runners = runnerResults(plan, nil)
		res.Warnings = en.warnings
		return res, nil
	}
	outcomes := en.apply(ctx, plan)
	sections := composeSections(d, prev, plan, outcomes, nil)
	var errs []error
	for _, oc := range outcomes {
		if oc.Err != nil {
			errs = append(errs, oc.Err)
			res.Changed = res.Changed || oc.Deleted
		} else {
			res.Changed = true
		}
	}
	if len(sections) > 0 {
		// Something must stay: a failed delete (its token is kept for the
		// next attempt) or an entry that is not this host's.
		wrote, err := writeFileAtomic(l.ConfigPath(), RenderConfig(l, d.Globals, sections, false))
		if err != nil {
			errs = append(errs, fmt.Errorf("writing %s: %w", l.ConfigPath(), err))
		}
		res.ConfigChanged = wrote
		res.After = string(RenderConfig(l, d.Globals, sections, true))
	} else {
		for _, p := range []string{l.ConfigPath(), l.StatePath()} {
			if err := os.Remove(p); err == nil {
				res.ConfigChanged = res.ConfigChanged || p == l.ConfigPath()
			} else if !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, fmt.Errorf("removing %s: %w", p, err))
			}
		}
	}
	res.Changed = res.Changed || res.ConfigChanged
	res.Runners = runnerResults(plan, outcomes)
	res.Warnings = en.warnings
	return res, errors.Join(errs...)
}

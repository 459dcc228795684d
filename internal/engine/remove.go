package engine

import (
	"context"
	"os"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/config"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/hostfs"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/plan"
)

// planRemoval plans a pass of the removal of the instance (Options.Remove):
// every runner of this host and instance — those in the live config and,
// with a PAT, those GitLab lists under this host's identity — then, once
// none is left (nor pending), the generated config and state file. It is a
// sync with zero executors: the same evidence, plan, preview and apply.
// Template and executor files are left alone; entries without this host's
// identity are kept. The template is optional: without it only runners
// whose token is in the live config can be deleted.
func (en *engine) planRemoval(ctx context.Context) (*Planned, error) {
	o, l := en.o, en.l
	d := &config.Desired{Layout: l, Hostname: o.Hostname, Fleet: o.Fleet}
	var tpl []byte
	if ov := o.declared.overlay; ov != nil && ov.Template != nil {
		tpl = ov.Template
	} else if _, err := os.Stat(l.TemplatePath()); err == nil {
		if err := hostfs.CheckPrivate(l.TemplatePath(), l.Rel(l.TemplatePath()), "template"); err != nil {
			return nil, err
		}
		if tpl, err = hostfs.ReadTrusted(l.TemplatePath(), l.Rel(l.TemplatePath()), "template", true); err != nil {
			return nil, err
		}
	}
	if tpl != nil {
		if err := d.ParseTemplate(l.Rel(l.TemplatePath()), tpl, o.Secrets); err != nil {
			return nil, err
		}
	}
	if en.d == nil {
		en.warnPlainHTTP(d)
	}
	en.d = d
	ds, err := en.readDisk()
	if err != nil {
		return nil, err
	}
	p, err := en.evidence(ds, d)
	if err != nil {
		return nil, err
	}
	var scopes []lookupScope
	for _, c := range d.Clients {
		if c.PAT != "" {
			scopes = append(scopes, lookupScope{c.Key, c.RunnerType, c.GroupID, c.ProjectID})
		}
	}
	if err := en.verifyAll(ctx, &p.ev); err != nil {
		return nil, err
	}
	if p.ev.Found, p.ev.ListDenied, err = en.lookup(ctx, scopes); err != nil {
		return nil, err
	}
	// Runners found by id are deleted only when provably this host's, and
	// so are entries whose token GitLab rejects.
	w := en.wants(&p.ev)
	for key, list := range p.ev.Found {
		for _, s := range list {
			if _, ours := en.identityOf(key, s.Description); ours {
				w.managers[plan.Ref{ClientKey: key, ID: s.ID}] = true
			}
		}
	}
	en.readRunners(ctx, nil, w.managers, &p.ev)
	p.Plan = plan.Build(p.ev)
	en.leftBehind(p.Plan.Left)
	for i := range p.Plan.Steps {
		p.Plan.Steps[i].Reason = "unregistering instance " + l.Instance
	}
	return p, nil
}

package engine

import (
	"context"
	"errors"
	"os"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/config"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/hostfs"
)

// Validate loads and checks everything a run would plan against — the
// names, the template, every executor file, descriptions and tags — taking
// the Overlay's contents in place of the files in the prefix, and makes no
// request and no write. A front end that writes those files runs it first,
// so that content the engine would refuse never reaches the disk.
func Validate(ctx context.Context, o Options) error {
	if err := o.setDefaults(); err != nil {
		return err
	}
	if err := config.ValidateNames(o.Hostname, o.Instance); err != nil {
		return err
	}
	l := hostfs.Layout{Prefix: o.Prefix, Instance: o.Instance}
	_, statErr := os.Stat(o.Prefix)
	missing := errors.Is(statErr, os.ErrNotExist)
	if o.Remove != "" {
		if ov := o.declared.overlay; ov != nil && ov.Template != nil {
			d := &config.Desired{Layout: l, Hostname: o.Hostname, Fleet: o.Fleet}
			return d.ParseTemplate(l.Rel(l.TemplatePath()), ov.Template, o.Secrets)
		}
		return nil
	}
	_, err := loadDeclared(ctx, o, missing)
	return err
}

package core

import (
	"context"
	"errors"
	"fmt"
	"os"
)

// ValidateInstanceName checks an instance name on its own, before any path
// is built from it: it names files in the prefix and must never leave it.
func ValidateInstanceName(instance string) error {
	if !reInstance.MatchString(instance) {
		return optionErr(OptInstance, "%q is not a valid instance name (letters, digits, '.', '_', '-'; e.g. main)", instance)
	}
	return nil
}

// ValidateExecutorName checks an executor name (the stem of its file).
func ValidateExecutorName(name string) error {
	if !reExecutorName.MatchString(name) {
		return fmt.Errorf("%q is not a valid executor name (letters, digits, '.', '_', '+', '-'; it names a file in the executor folder)", name)
	}
	return nil
}

// Validate loads and checks everything a run would plan against — the
// names, the template, every executor file, descriptions and tags — taking
// the Overlay's contents in place of the files in the prefix, and makes no
// request and no write. A front end that writes those files runs it first,
// so that content core would refuse never reaches the disk.
func Validate(ctx context.Context, o Options) error {
	if err := o.setDefaults(); err != nil {
		return err
	}
	if err := validateNames(o.Hostname, o.Instance); err != nil {
		return err
	}
	l := Layout{Prefix: o.Prefix, Instance: o.Instance}
	_, statErr := os.Stat(o.Prefix)
	missing := errors.Is(statErr, os.ErrNotExist)
	if o.Unregister {
		if o.Overlay == nil || o.Overlay.Template == nil {
			return nil
		}
		d := &Desired{Layout: l, Hostname: o.Hostname}
		return d.parseTemplate(l.rel(l.TemplatePath()), o.Overlay.Template, o.Secrets)
	}
	_, err := loadDeclared(ctx, o, missing)
	return err
}

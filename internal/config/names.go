package config

import (
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/hostfs"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/input"
)

// Patterns are compiled on first use, not when the package loads.
var (
	reInstance     = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`) })
	reExecutorName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.+-]{0,62}$`) })
	reDigits       = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`[0-9]+`) })
	reSeparators   = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`[-_.]{2,}`) })
)

// ShortHostname drops the domain: node12.cluster.example.org -> node12.
func ShortHostname(h string) string {
	if i := strings.IndexByte(h, '.'); i > 0 {
		return h[:i]
	}
	return h
}

// DigitlessHostname is the hostname with digits removed and the separators
// left behind collapsed and trimmed (node12 -> node, ip-10-0-0-12 -> ip,
// rack-04-node-12 -> rack-node); "" when nothing remains (12-34).
func DigitlessHostname(h string) string {
	s := reDigits().ReplaceAllString(h, "")
	s = reSeparators().ReplaceAllStringFunc(s, func(run string) string { return run[:1] })
	return strings.Trim(s, "-_.")
}

// ValidateNames checks the instance and host names.
func ValidateNames(hostname, instance string) error {
	if hostname == "" {
		return input.OptionErrorf(input.Hostname, "the host name is empty").WithFix("give the short host name")
	}
	if strings.ContainsAny(hostname, " ,\t\n") {
		return input.OptionErrorf(input.Hostname, "%q contains spaces or commas", hostname).WithFix("give the short host name")
	}
	if err := ValidateInstanceName(instance); err != nil {
		return err
	}
	if instance == hostname || (DigitlessHostname(hostname) != "" && instance == DigitlessHostname(hostname)) {
		return input.OptionErrorf(input.Instance, "instance name %q equals the host name (%s); its tag would be meaningless", instance, hostname).
			WithFix("choose another instance name")
	}
	return nil
}

// DefaultDescription is the description a runner gets unless its file sets one.
func DefaultDescription(hostname, instance, name string) string {
	return fmt.Sprintf("%s %s %s Runner", hostname, instance, name)
}

// IdentityPattern matches the default description of any executor of this
// host and instance: "<hostname> <instance> <name> Runner".
func IdentityPattern(hostname, instance string) *regexp.Regexp {
	return regexp.MustCompile("^" + regexp.QuoteMeta(hostname) + " " + regexp.QuoteMeta(instance) + ` (\S+) Runner$`)
}

// ValidateInstanceName checks an instance name on its own, before any path
// is built from it: it names files in the prefix and must never leave it.
func ValidateInstanceName(instance string) error {
	if !reInstance().MatchString(instance) {
		return input.OptionErrorf(input.Instance, "%q is not a valid instance name (letters, digits, '.', '_', '-'; e.g. main)", instance)
	}
	// Every instance's files sit side by side in the prefix: no name may
	// make one of them another instance's.
	if c, clash := (hostfs.Layout{Instance: instance}).Collision(reInstance().MatchString); clash {
		theirs := fmt.Sprintf("the %s of instance %q", c.Theirs, c.Other)
		if c.Other == "" {
			theirs = fmt.Sprintf("the %s every instance shares", c.Theirs)
		}
		return input.OptionErrorf(input.Instance, "instance name %q would make its %s %s, %s", instance, c.Mine.What, c.Mine.Path, theirs).
			WithFix("choose another instance name")
	}
	return nil
}

// ValidateExecutorName checks an executor name (the stem of its file).
func ValidateExecutorName(name string) error {
	if !reExecutorName().MatchString(name) {
		return fmt.Errorf("%q is not a valid executor name (letters, digits, '.', '_', '+', '-'; it names a file in the executor folder)", name)
	}
	return nil
}

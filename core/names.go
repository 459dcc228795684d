package core

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"
)

var (
	reInstance     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)
	reExecutorName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.+-]{0,62}$`)
	reDigits       = regexp.MustCompile(`[0-9]+`)
	reSeparators   = regexp.MustCompile(`[-_.]{2,}`)
)

// ShortHostname drops the domain: node12.cluster.example.org -> node12.
func ShortHostname(h string) string {
	if i := strings.IndexByte(h, '.'); i > 0 {
		return h[:i]
	}
	return h
}

// digitlessHostname is the hostname with digits removed and the separators
// left behind collapsed and trimmed (node12 -> node, ip-10-0-0-12 -> ip,
// rack-04-node-12 -> rack-node); "" when nothing remains (12-34).
func digitlessHostname(h string) string {
	s := reDigits.ReplaceAllString(h, "")
	s = reSeparators.ReplaceAllStringFunc(s, func(run string) string { return run[:1] })
	return strings.Trim(s, "-_.")
}

// validateNames checks the instance and host names.
func validateNames(hostname, instance string) error {
	if hostname == "" {
		return optionErr(OptHostname, "the host name is empty; give the short host name")
	}
	if strings.ContainsAny(hostname, " ,\t\n") {
		return optionErr(OptHostname, "%q contains spaces or commas; give the short host name", hostname)
	}
	if err := ValidateInstanceName(instance); err != nil {
		return err
	}
	if instance == hostname || (digitlessHostname(hostname) != "" && instance == digitlessHostname(hostname)) {
		return optionErr(OptInstance, "instance name %q equals the host name (%s); its tag would be meaningless, choose another instance name", instance, hostname)
	}
	return nil
}

// NormalizeURL gives scheme://host[:port]/path with no trailing slash and
// default ports removed, the form used to match executors to clients.
func NormalizeURL(raw string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("%q is not an http(s) URL; write GitLab's base URL, e.g. https://gitlab.example.com", SafeURL(raw))
	}
	if u.User != nil {
		return "", fmt.Errorf("the URL must not contain credentials; use personal_access_token instead")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%q has a query or fragment; write GitLab's base URL only", SafeURL(raw))
	}
	scheme := strings.ToLower(u.Scheme)
	host := strings.ToLower(u.Hostname())
	port := u.Port()
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	hp := host
	if port != "" {
		hp = net.JoinHostPort(host, port)
	} else if strings.Contains(host, ":") {
		hp = "[" + host + "]"
	}
	return scheme + "://" + hp + strings.TrimRight(u.EscapedPath(), "/"), nil
}

// SafeURL is a URL as messages may show it: without user name, password,
// query or fragment (private_token=...), whether or not it parses.
func SafeURL(raw string) string {
	s := strings.TrimSpace(raw)
	if i := strings.IndexAny(s, "?#"); i >= 0 {
		s = s[:i] + "?..."
	}
	scheme, rest := "", s
	if i := strings.Index(s, "://"); i >= 0 {
		scheme, rest = s[:i+3], s[i+3:]
	}
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		rest = "...@" + rest[at+1:]
	}
	return scheme + rest
}

// PlainHTTPRemote reports a normalised GitLab URL that is plain http to
// another host: tokens would cross the network in clear.
func PlainHTTPRemote(key string) bool {
	u, err := url.Parse(key)
	if err != nil || u.Scheme != "http" {
		return false
	}
	h := u.Hostname()
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return false
	}
	ip := net.ParseIP(h)
	return ip == nil || !ip.IsLoopback()
}

// DefaultDescription is the description a runner gets unless its file sets one.
func DefaultDescription(hostname, instance, name string) string {
	return fmt.Sprintf("%s %s %s Runner", hostname, instance, name)
}

// identityPattern matches the default description of any executor of this
// host and instance: "<hostname> <instance> <name> Runner".
func identityPattern(hostname, instance string) *regexp.Regexp {
	return regexp.MustCompile("^" + regexp.QuoteMeta(hostname) + " " + regexp.QuoteMeta(instance) + ` (\S+) Runner$`)
}

package gitlab

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
)

// NormalizeURL gives scheme://host[:port]/path with no trailing slash and
// default ports removed, the form used to match executors to clients.
func NormalizeURL(raw string) (string, error) {
	if v, ok := normalized.Load(raw); ok {
		n := v.(normalizedURL)
		return n.key, n.err
	}
	key, err := normalizeURL(raw)
	if normalizedCount.Add(1) <= maxNormalized {
		normalized.Store(raw, normalizedURL{key, err})
	}
	return key, err
}

// A run compares the same few URLs thousands of times (every entry of
// the config, state file and plan names one): each is parsed once.
var (
	normalized      sync.Map // raw URL → normalizedURL
	normalizedCount atomic.Int64
)

// maxNormalized bounds the URLs remembered.
const maxNormalized = 4096

type normalizedURL struct {
	key string
	err error
}

func normalizeURL(raw string) (string, error) {
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

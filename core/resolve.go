package core

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/gitlab"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/hostfs"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/input"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/redact"
)

// NamespaceRequest names a group or project by full path, to be turned
// into the numeric id the template and GitLab's runner API take.
type NamespaceRequest struct {
	URL string
	// PAT or PATFile (owner-only, relative to Prefix unless absolute)
	// authenticate the lookup.
	PAT, PATFile, Prefix string
	CAFile               string
	// Kind is "group" or "project"; Path is its full path ("ops/ci").
	Kind, Path     string
	RequestTimeout time.Duration
	Secrets        *redact.Redactor
}

// ResolveNamespace reads the group or project from GitLab (one GET, no
// change) and returns its id.
func ResolveNamespace(ctx context.Context, r NamespaceRequest) (int64, error) {
	pat := r.PAT
	abs := func(p string) string {
		if p != "" && !filepath.IsAbs(p) {
			return filepath.Join(r.Prefix, p)
		}
		return p
	}
	if pat == "" && r.PATFile != "" {
		// The same checked, capped, non-blocking read as every token file.
		b, err := hostfs.ReadTrusted(abs(r.PATFile), abs(r.PATFile), "personal_access_token_file", true)
		if err != nil {
			return 0, err
		}
		pat = strings.TrimSpace(string(b))
		r.Secrets.Add(pat)
	}
	if pat == "" {
		return 0, &input.Error{Msg: fmt.Sprintf("a personal access token is needed to look up %s %q", r.Kind, r.Path),
			Fix: fmt.Sprintf("give personal_access_token or its file, or the numeric %s_id", r.Kind)}
	}
	var ca []byte
	if r.CAFile != "" {
		var err error
		if ca, err = hostfs.ReadTrusted(abs(r.CAFile), abs(r.CAFile), "tls_ca_file", false); err != nil {
			return 0, err
		}
	}
	c, err := gitlab.New(gitlab.Config{URL: r.URL, PAT: pat, CAFile: abs(r.CAFile), CAPEM: ca, Scrub: r.Secrets.Redact,
		RequestTimeout: r.RequestTimeout, MaxConns: 1, UserAgent: "gitlab-runner-auth/" + Version})
	if err != nil {
		return 0, err
	}
	defer c.Close()
	ns, found, err := c.FindNamespace(ctx, r.Kind, r.Path)
	switch {
	case err != nil:
		return 0, fmt.Errorf("looking up %s %q on %s: %w", r.Kind, r.Path, r.URL, err)
	case found != gitlab.Found:
		return 0, fmt.Errorf("%s %q does not exist on %s, or the personal access token may not see it", r.Kind, r.Path, r.URL)
	}
	if ns.ID == 0 {
		return 0, fmt.Errorf("%s %q on %s: GitLab returned no id", r.Kind, r.Path, r.URL)
	}
	return ns.ID, nil
}

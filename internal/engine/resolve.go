package engine

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/gitlab"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/hostfs"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/input"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/plan"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/redact"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/version"
)

// staleNamespaces: group or project ids the state file cached are no
// longer the paths they were resolved from (edited, or the group moved).
// Nothing was changed; the declared run looks the paths up again.
type staleNamespaces struct {
	// keys maps each state file key to what was found.
	keys map[string]string
}

func (e *staleNamespaces) Error() string {
	msgs := make([]string, 0, len(e.keys))
	for _, m := range e.keys {
		msgs = append(msgs, m)
	}
	sort.Strings(msgs)
	return strings.Join(msgs, "; ")
}

// verifyNamespaces makes sure, before a runner is registered in a group
// or project whose id the state file cached, that GitLab still gives that
// id the path it was resolved from (one read by id; none in a steady
// state, which registers nothing). An id that is now another path, or
// none, is stale; one GitLab cannot tell about fails the run before any
// change.
func (en *engine) verifyNamespaces(ctx context.Context, p plan.Plan) error {
	cached := make([]plan.CachedNamespace, 0, len(en.o.declared.cached))
	for _, c := range en.o.declared.cached {
		cached = append(cached, c)
	}
	sort.Slice(cached, func(i, j int) bool { return cached[i].Key < cached[j].Key })
	todo := plan.NamespacesToVerify(p, cached)
	if len(todo) == 0 {
		return nil
	}
	found := make([]gitlab.Namespace, len(todo))
	presence := make([]gitlab.Presence, len(todo))
	err := en.each(ctx, len(todo), func(i int) error {
		c, err := en.gitlabFor(todo[i].ClientKey)
		if err == nil {
			found[i], presence[i], err = c.FindNamespace(ctx, todo[i].Kind, strconv.FormatInt(todo[i].ID, 10))
		}
		if err != nil {
			return fmt.Errorf("checking that %s id %d on %s is still %q before registering a runner in it: %w; nothing was registered",
				todo[i].Kind, todo[i].ID, todo[i].ClientKey, todo[i].Path, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	stale := &staleNamespaces{keys: map[string]string{}}
	for i, c := range todo {
		full := found[i].FullPath
		if c.Kind == "project" {
			full = found[i].PathWithNamespace
		}
		if presence[i] == gitlab.Found && plan.SameNamespace(c.Path, full) {
			continue
		}
		now := "does not exist (or the personal access token may not see it)"
		if presence[i] == gitlab.Found {
			now = fmt.Sprintf("is %q", full)
		}
		stale.keys[c.Key] = fmt.Sprintf("the state file's %s id %d for %q on %s %s now; %q was looked up again before registering a runner",
			c.Kind, c.ID, c.Path, c.ClientKey, now, c.Path)
	}
	if len(stale.keys) > 0 {
		return stale
	}
	return nil
}

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
		RequestTimeout: r.RequestTimeout, MaxConns: 1, UserAgent: version.UserAgent()})
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

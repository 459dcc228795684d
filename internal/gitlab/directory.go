package gitlab

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
)

// Namespace is a group or a project as GitLab describes it.
type Namespace struct {
	ID int64 `json:"id"`
	// FullPath is a group's full path ("ops/ci").
	FullPath string `json:"full_path"`
	// PathWithNamespace is a project's full path ("ops/ci/app").
	PathWithNamespace string `json:"path_with_namespace"`
}

// FindNamespace reads a group or project ("group", "project") by numeric
// id or full path (GET /groups/:id, /projects/:id, the path URL-encoded
// as GitLab requires); Gone means it does not exist or the token may not
// see it (GitLab answers 404 for both).
func (c *Client) FindNamespace(ctx context.Context, kind, idOrPath string) (Namespace, Presence, error) {
	var ns Namespace
	var path string
	switch kind {
	case "group":
		path = "/api/v4/groups/" + url.PathEscape(idOrPath)
	case "project":
		path = "/api/v4/projects/" + url.PathEscape(idOrPath)
	default:
		return ns, 0, fmt.Errorf("unknown namespace kind %q", kind)
	}
	err := c.do(ctx, call{method: http.MethodGet, path: path, auth: authPAT, idempotent: true, out: &ns})
	p, err := presenceOf(err)
	return ns, p, err
}

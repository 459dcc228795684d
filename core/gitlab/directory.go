package gitlab

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
)

// Namespace is a group or a project as GitLab describes it.
type Namespace struct {
	ID int64 `json:"id"`
	// FullPath is a group's full path ("ops/ci").
	FullPath string `json:"full_path"`
	// PathWithNamespace is a project's full path ("ops/ci/app").
	PathWithNamespace string `json:"path_with_namespace"`
}

// GetGroup reads a group by numeric id or full path (GET /groups/:id, the
// path URL-encoded as GitLab requires).
func (c *Client) GetGroup(ctx context.Context, idOrPath string) (Namespace, error) {
	var out Namespace
	err := c.do(ctx, call{method: http.MethodGet, path: "/api/v4/groups/" + url.PathEscape(idOrPath), auth: authPAT, idempotent: true, out: &out})
	return out, err
}

// GetProject reads a project by numeric id or full path (GET /projects/:id).
func (c *Client) GetProject(ctx context.Context, idOrPath string) (Namespace, error) {
	var out Namespace
	err := c.do(ctx, call{method: http.MethodGet, path: "/api/v4/projects/" + url.PathEscape(idOrPath), auth: authPAT, idempotent: true, out: &out})
	return out, err
}

// RunnerStatus is what GET /runners/:id says of a runner's life: whether
// it is online and when it last contacted GitLab.
type RunnerStatus struct {
	Runner
	Online      *bool  `json:"online"`
	Status      string `json:"status"`
	ContactedAt string `json:"contacted_at"`
}

// GetRunnerStatus reads one runner with its status (GET /runners/:id).
func (c *Client) GetRunnerStatus(ctx context.Context, id int64) (RunnerStatus, error) {
	var out RunnerStatus
	err := c.do(ctx, call{method: http.MethodGet, path: "/api/v4/runners/" + strconv.FormatInt(id, 10), auth: authPAT, idempotent: true, out: &out})
	return out, err
}

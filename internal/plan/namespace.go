package plan

import "strings"

// CachedNamespace is a group or project id the state file holds for a
// full path (resolved once, so that a steady state sends no lookup).
type CachedNamespace struct {
	// Key is its key in the state file (hostfs.NamespaceKey).
	Key string
	// ClientKey is the normalised URL of its GitLab.
	ClientKey  string
	Kind, Path string
	ID         int64
}

// NamespacesToVerify are the cached ids a runner of this plan would be
// registered in (a create or replace whose executor takes the id): before
// that, GitLab must say the id is still that path — an id edited in the
// state file, or a group moved since, must never register a runner in
// another group or project. A plan that registers nothing verifies
// nothing.
func NamespacesToVerify(p Plan, cached []CachedNamespace) []CachedNamespace {
	var out []CachedNamespace
	seen := map[string]bool{}
	for _, s := range p.Steps {
		if s.Executor == nil || s.Fault != "" || (s.Action != Create && s.Action != Replace) {
			continue
		}
		e := s.Executor
		for _, c := range cached {
			id := e.GroupID
			if c.Kind == "project" {
				id = e.ProjectID
			}
			if c.ClientKey == e.Client.Key && c.ID == id && !seen[c.Key] {
				seen[c.Key] = true
				out = append(out, c)
			}
		}
	}
	return out
}

// SameNamespace reports whether GitLab's full path for an id is the path
// it was resolved from (GitLab finds paths case-insensitively).
func SameNamespace(path, fullPath string) bool {
	return fullPath != "" && strings.EqualFold(strings.Trim(path, "/"), strings.Trim(fullPath, "/"))
}

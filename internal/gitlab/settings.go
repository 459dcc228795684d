package gitlab

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
)

// Settings are the runner attributes GitLab stores server-side.
type Settings struct {
	Description     string   `json:"description"`
	TagList         []string `json:"tag_list"`
	RunUntagged     bool     `json:"run_untagged"`
	Locked          bool     `json:"locked"`
	Paused          bool     `json:"paused"`
	AccessLevel     string   `json:"access_level"`
	MaximumTimeout  int64    `json:"maximum_timeout,omitempty"`
	MaintenanceNote string   `json:"maintenance_note"`
}

// settingFields is the one table of those attributes: their names in
// GitLab's API and how to read each from Settings. Comparing, diffing,
// sending and showing settings all walk it.
var settingFields = []struct {
	name  string
	value func(Settings) any
	// unset: the value GitLab's create endpoints are not sent (GitLab's
	// own default then applies).
	unset any
}{
	{"description", func(s Settings) any { return s.Description }, nil},
	{"tag_list", func(s Settings) any { return s.TagList }, nil},
	{"run_untagged", func(s Settings) any { return s.RunUntagged }, nil},
	{"locked", func(s Settings) any { return s.Locked }, nil},
	{"paused", func(s Settings) any { return s.Paused }, nil},
	{"access_level", func(s Settings) any { return s.AccessLevel }, nil},
	{"maximum_timeout", func(s Settings) any { return s.MaximumTimeout }, int64(0)},
	{"maintenance_note", func(s Settings) any { return s.MaintenanceNote }, ""},
}

// Normalized returns the settings with sorted tags and GitLab's defaults
// filled in, so two values compare equal when GitLab would store the same.
func (s Settings) Normalized() Settings {
	n := s
	n.TagList = append([]string{}, s.TagList...)
	sort.Strings(n.TagList)
	if n.AccessLevel == "" {
		n.AccessLevel = "not_protected"
	}
	return n
}

// Diff names the attributes that differ, once normalised.
func (s Settings) Diff(o Settings) []string {
	a, b := s.Normalized(), o.Normalized()
	var out []string
	for _, f := range settingFields {
		if !reflect.DeepEqual(f.value(a), f.value(b)) {
			out = append(out, f.name)
		}
	}
	return out
}

// Equal compares normalised settings.
func (s Settings) Equal(o Settings) bool { return len(s.Diff(o)) == 0 }

// params is the request body for creating a runner.
func (s Settings) params() map[string]any {
	n := s.Normalized()
	m := map[string]any{}
	for _, f := range settingFields {
		v := f.value(n)
		if f.unset != nil && v == f.unset {
			continue
		}
		m[f.name] = v
	}
	m["tag_list"] = append([]string{}, s.TagList...) // in the order given
	return m
}

// Text shows the settings one per line, for diffs.
func (s Settings) Text() string {
	var b strings.Builder
	for _, f := range settingFields {
		v := f.value(s)
		if f.unset != nil && v == f.unset && f.name == "maximum_timeout" {
			continue
		}
		j, _ := json.Marshal(v)
		if f.name == "tag_list" {
			j, _ = json.Marshal(append([]string{}, s.TagList...))
			j = []byte(strings.ReplaceAll(string(j), `","`, `", "`))
		}
		fmt.Fprintf(&b, "%s: %s\n", f.name, j)
	}
	return b.String()
}

package hostfs

import (
	"reflect"
	"testing"
)

// TestLayoutListsEveryPath: instance names are checked against
// Layout.Paths (and SharedPaths); a file added to the layout must be
// listed there, or a name could make it another instance's.
func TestLayoutListsEveryPath(t *testing.T) {
	l := Layout{Prefix: "/p", Instance: "main"}
	listed := map[string]bool{}
	for _, p := range append(l.Paths(), l.SharedPaths()...) {
		listed[p.Path] = true
	}
	v := reflect.ValueOf(l)
	strType := reflect.TypeFor[string]()
	for i := range v.NumMethod() {
		m := v.Type().Method(i)
		if m.Type.NumIn() != 1 || m.Type.NumOut() != 1 || m.Type.Out(0) != strType {
			continue // not a path of the layout (Rel, Paths, ...)
		}
		if p := v.Method(i).Call(nil)[0].String(); !listed[p] {
			t.Errorf("Layout.%s (%s) is in neither Paths nor SharedPaths", m.Name, p)
		}
	}
}

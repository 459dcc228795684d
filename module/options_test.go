package module

import (
	"strings"
	"testing"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/coretest"
)

// Errors from core name the module's options, never the CLI's flags.
func TestCoreErrorsNameModuleOptions(t *testing.T) {
	p := coretest.NewPrefix(t, "main")
	for _, tc := range []struct {
		args map[string]any
		want string
	}{
		{map[string]any{"prefix": p.Dir, "hostname": "vm", "instance": "vm"}, "instance: instance name \"vm\" equals the host name"},
		{map[string]any{"prefix": p.Dir, "hostname": "node 1"}, "hostname: \"node 1\" contains spaces"},
	} {
		out := runModule(t, tc.args)
		msg, _ := out["msg"].(string)
		if out["failed"] != true || !strings.HasPrefix(msg, tc.want) || strings.Contains(msg, "--") {
			t.Errorf("%v: msg %q, want it to start with %q and name no flag", tc.args, msg, tc.want)
		}
	}
}

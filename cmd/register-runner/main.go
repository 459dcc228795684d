// Command register-runner keeps a gitlab-runner service instance registered
// with GitLab. It is meant for systemd's ExecStartPre: it registers the
// executors declared under the prefix, keeps tokens that still work,
// removes what is no longer declared and writes config.{instance}.toml.
//
// Invoked with a single argument that is not a flag (an Ansible arguments
// file), the same binary acts as the collection's modules (sync, info,
// prune). "register-runner prune" is the fleet clean-up.
package main

import (
	"os"
	"strings"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/module"
)

func main() {
	args := os.Args[1:]
	if len(args) == 1 && !strings.HasPrefix(args[0], "-") && args[0] != "prune" {
		os.Exit(module.Main(args[0], os.Stdout))
	}
	os.Exit(run(args, os.Stdout, os.Stderr))
}

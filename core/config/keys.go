package config

import (
	"strings"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/table"
)

// ExecutorKeyKinds are the executor-file keys core reads by name: the
// GitLab-side settings, url and executor. Every other key goes verbatim
// into the executor's [[runners]] section.
var ExecutorKeyKinds = map[string]table.Kind{
	"url": table.KindString, "executor": table.KindString, "tags": table.KindStringList, "env_tags": table.KindStringList,
	"description": table.KindString, "run_untagged": table.KindBool, "locked": table.KindBool, "paused": table.KindBool,
	"access_level": table.KindString, "maximum_timeout": table.KindInt, "maintenance_note": table.KindString,
	"runner_type": table.KindString, "group_id": table.KindInt, "project_id": table.KindInt,
}

// ClientKeys are the keys of a client_configs entry, in documentation order.
var ClientKeys = []string{"url", "personal_access_token", "personal_access_token_file", "registration_token",
	"registration_token_file", "runner_type", "group_id", "project_id", "tls_ca_file"}

// ClientKeyKinds gives each client key's kind.
var ClientKeyKinds = map[string]table.Kind{
	"url": table.KindString, "personal_access_token": table.KindString, "personal_access_token_file": table.KindString,
	"registration_token": table.KindString, "registration_token_file": table.KindString, "runner_type": table.KindString,
	"group_id": table.KindInt, "project_id": table.KindInt, "tls_ca_file": table.KindString,
}

// RunnerTypes are the values of runner_type.
var RunnerTypes = []string{"instance_type", "group_type", "project_type"}

// ExecutorFileExts are the endings of executor files.
var ExecutorFileExts = []string{".toml", ".yaml", ".yml"}

// ExecutorFileExt returns the executor-file ending of a file name, or "".
func ExecutorFileExt(name string) string {
	for _, ext := range ExecutorFileExts {
		if strings.HasSuffix(name, ext) {
			return ext
		}
	}
	return ""
}

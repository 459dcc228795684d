package core

import "strings"

// KeyKind is the type a key that core reads by name must have.
type KeyKind int

// The kinds of keys.
const (
	KindString KeyKind = iota + 1
	KindBool
	KindInt
	KindStringList
)

// String is what a value of this kind must be, for messages: "must be %s".
func (k KeyKind) String() string {
	switch k {
	case KindBool:
		return "true or false"
	case KindInt:
		return "an integer"
	case KindStringList:
		return "a list of strings"
	}
	return "a string"
}

// ExecutorKeyKinds are the executor-file keys core reads by name: the
// GitLab-side settings, url and executor. Every other key goes verbatim
// into the executor's [[runners]] section.
var ExecutorKeyKinds = map[string]KeyKind{
	"url": KindString, "executor": KindString, "tags": KindStringList, "env_tags": KindStringList,
	"description": KindString, "run_untagged": KindBool, "locked": KindBool, "paused": KindBool,
	"access_level": KindString, "maximum_timeout": KindInt, "maintenance_note": KindString,
	"runner_type": KindString, "group_id": KindInt, "project_id": KindInt,
}

// ClientKeys are the keys of a client_configs entry, in documentation order.
var ClientKeys = []string{"url", "personal_access_token", "personal_access_token_file", "registration_token",
	"registration_token_file", "runner_type", "group_id", "project_id", "tls_ca_file"}

// ClientKeyKinds gives each client key's kind.
var ClientKeyKinds = map[string]KeyKind{
	"url": KindString, "personal_access_token": KindString, "personal_access_token_file": KindString,
	"registration_token": KindString, "registration_token_file": KindString, "runner_type": KindString,
	"group_id": KindInt, "project_id": KindInt, "tls_ca_file": KindString,
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

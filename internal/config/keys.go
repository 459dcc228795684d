package config

import (
	"strings"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/table"
)

// Key is a key the tool reads by name, and the kind its value must be.
type Key struct {
	Name string
	Kind table.Kind
}

// executorKeys are the executor-file keys the tool reads by name: url,
// executor and what GitLab stores (sent to GitLab, never written into
// config.toml). Every other key goes verbatim into the executor's
// [[runners]] section. The one table of them.
var executorKeys = []Key{
	{"url", table.KindString}, {"executor", table.KindString},
	{"tags", table.KindStringList}, {"env_tags", table.KindStringList}, {"description", table.KindString},
	{"run_untagged", table.KindBool}, {"locked", table.KindBool}, {"paused", table.KindBool},
	{"access_level", table.KindString}, {"maximum_timeout", table.KindInt}, {"maintenance_note", table.KindString},
	{"runner_type", table.KindString}, {"group_id", table.KindInt}, {"project_id", table.KindInt},
}

// clientKeys are the keys of a client_configs entry, in documentation order.
var clientKeys = []Key{
	{"url", table.KindString}, {"personal_access_token", table.KindString}, {"personal_access_token_file", table.KindString},
	{"registration_token", table.KindString}, {"registration_token_file", table.KindString}, {"runner_type", table.KindString},
	{"group_id", table.KindInt}, {"project_id", table.KindInt}, {"tls_ca_file", table.KindString}, {"fleet", table.KindString},
}

// ExecutorKeys lists the executor-file keys the tool reads by name.
func ExecutorKeys() []Key { return append([]Key(nil), executorKeys...) }

// ClientKeys lists the keys of a client_configs entry, in documentation order.
func ClientKeys() []Key { return append([]Key(nil), clientKeys...) }

// lookupKey finds a key by name; fold also matches regardless of case, as
// gitlab-runner's TOML decoder compares keys (strings.EqualFold, so the
// Kelvin sign matches k).
func lookupKey(keys []Key, name string, fold bool) (Key, bool) {
	for _, k := range keys {
		if k.Name == name {
			return k, true
		}
	}
	if fold {
		for _, k := range keys {
			if strings.EqualFold(k.Name, name) {
				return k, true
			}
		}
	}
	return Key{}, false
}

// ClientKey finds a client_configs key by its exact name.
func ClientKey(name string) (Key, bool) { return lookupKey(clientKeys, name, false) }

func clientKeyNames() string {
	names := make([]string, len(clientKeys))
	for i, k := range clientKeys {
		names[i] = k.Name
	}
	return strings.Join(names, ", ")
}

// RunnerTypes are the values of runner_type.
func RunnerTypes() []string { return []string{"instance_type", "group_type", "project_type"} }

// executorFileExts are the endings of executor files.
var executorFileExts = []string{".toml", ".yaml", ".yml"}

// ExecutorFileExt returns the executor-file ending of a file name, or "".
func ExecutorFileExt(name string) string {
	for _, ext := range executorFileExts {
		if strings.HasSuffix(name, ext) {
			return ext
		}
	}
	return ""
}

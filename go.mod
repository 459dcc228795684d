module github.com/gitlab-runner-auth/gitlab-runner-auth

go 1.26.0

require (
	github.com/BurntSushi/toml v1.6.0
	github.com/go-resty/resty/v2 v2.17.2
	github.com/gofrs/flock v0.13.2
	github.com/google/go-cmp v0.7.0
	github.com/google/jsonschema-go v0.4.3
	github.com/google/renameio/v2 v2.0.2
	github.com/pmezard/go-difflib v1.0.0
	github.com/spf13/pflag v1.1.0
	golang.org/x/sync v0.25.0
	gopkg.in/yaml.v3 v3.0.1
)

require (
	golang.org/x/net v0.43.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
)

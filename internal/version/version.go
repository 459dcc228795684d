// Package version is the tool's version, set at build time:
// go build -ldflags "-X github.com/gitlab-runner-auth/gitlab-runner-auth/internal/version.Version=1.2.3".
package version

// Version is set at build time ("dev" otherwise).
var Version = "dev"

// UserAgent is what the tool tells GitLab it is.
func UserAgent() string { return "gitlab-runner-auth/" + Version }

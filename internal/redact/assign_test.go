package redact

import "testing"

// Assignments of secret names in scripts and command lines lose their
// value, however the shell is told; other assignments, comparisons and
// references to variables stay.
func TestSecretAssignments(t *testing.T) {
	for in, want := range map[string]string{
		"export AWS_SECRET_ACCESS_KEY=abc/def+g==":             "export AWS_SECRET_ACCESS_KEY=<redacted>",
		"GH_PAT=x1 DOCKER_CREDS='a b' make":                    "GH_PAT=<redacted> DOCKER_CREDS=<redacted> make",
		`export GH_TOKEN="a \"b\" c";echo`:                     "export GH_TOKEN=<redacted>;echo",
		"declare -x JWT=e.y.J && local COOKIE=c|x":             "declare -x JWT=<redacted> && local COOKIE=<redacted>|x",
		`docker run -e "BEARER=tok en" -e 'API_KEY=k' img`:     `docker run -e "BEARER=<redacted>" -e 'API_KEY=<redacted>' img`,
		"$env:SLACK_WEBHOOK = \"https://hooks/x\"\nWrite-Host": "$env:SLACK_WEBHOOK = <redacted>\nWrite-Host",
		"set DB_PASSWORD=with spaces & echo":                   "set DB_PASSWORD=<redacted> & echo",
		"x=$(GH_TOKEN=v cmd)":                                  "x=$(GH_TOKEN=<redacted> cmd)",
		"--build-arg=NPM_TOKEN=v":                              "--build-arg=NPM_TOKEN=<redacted>",
		"paſſword=v":                                           "paſſword=<redacted>",
	} {
		if got := redactAssignments(in); got != want {
			t.Errorf("%q redacted to %q, want %q", in, got, want)
		}
		if again := redactAssignments(want); again != want {
			t.Errorf("%q redacted again to %q", want, again)
		}
	}
	for _, in := range []string{
		"export PATH=/usr/bin:$PATH", "export GITLAB_TOKEN=$CI_JOB_TOKEN", `GH_TOKEN="${CI_JOB_TOKEN}" cmd`,
		`if [ "$GH_TOKEN" == "x" ]; then`, "TOKEN+=x", "a_TOKEN = b", "export GH_TOKEN=", "executor=shell",
		"builds_dir=/builds", "url=https://x/?a=b", "GH_TOKEN=<redacted>", `-e "GH_TOKEN=<redacted>"`, "9TOKEN=x",
		"mytoken.x=1",
	} {
		if got := redactAssignments(in); got != in {
			t.Errorf("%q redacted to %q", in, got)
		}
	}
}

// Package ansible tests the collection through real ansible-playbook runs
// with the ansible-core first on PATH: option errors, platform selection,
// the module's cache on the host and its -vvv line, failures after the
// module ran, all-or-nothing tasks, the collection's packaging, and
// (TestResultsAgreeAcrossAnsibleVersions) the same play's results under
// every ansible-core version. make test runs the package once per version
// in ANSIBLE_VERSIONS (2.14, 2.17, 2.19), each with the tools
// tests/ansible/toolchain selects. The Molecule scenarios run under
// Molecule itself (make molecule).
package ansible

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/testkit/coretest"
)

var env struct {
	root        string
	collections string // ANSIBLE_COLLECTIONS_PATH with the installed collection
	tarball     string
	simBin      string
	rrBin       string
	version     string // ansible-core's version, as ansible-playbook --version says
	python      string // the Python ansible-playbook runs on
	setupErr    error
}

const installHint = "install Ansible: apt-get install -y ansible-core (or select a version: eval \"$(tests/ansible/toolchain 2.19)\")"

func TestMain(m *testing.M) {
	env.setupErr = setup()
	os.Exit(m.Run())
}

func run(dir string, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

var (
	coreVersion = regexp.MustCompile(`\[core ([0-9][0-9.]*)`)
	corePython  = regexp.MustCompile(`(?m)^  python version = .*\((/[^)]*)\)$`)
)

// setup builds the binaries and the collection tarball and installs it,
// exactly as a user would (ansible-galaxy collection install).
func setup() error {
	for _, tool := range []string{"ansible-playbook", "ansible-galaxy", "ansible-doc"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s not found: %s", tool, installHint)
		}
	}
	_, file, _, _ := runtime.Caller(0)
	env.root = filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
	out, err := run(env.root, "ansible-playbook", "--version")
	m := coreVersion.FindStringSubmatch(out)
	if err != nil || m == nil {
		return fmt.Errorf("ansible-playbook --version: %v\n%s", err, out)
	}
	env.version = m[1]
	if p := corePython.FindStringSubmatch(out); p != nil {
		env.python = p[1]
	}
	// make ansible-tests builds the collection once and runs the versions
	// side by side, naming the tarball; alone, the package builds it.
	if env.tarball = os.Getenv("GRA_COLLECTION_TARBALL"); env.tarball == "" {
		if out, err := run(env.root, "make", "build", "collection"); err != nil {
			return fmt.Errorf("make build collection: %v\n%s", err, out)
		}
		tars, _ := filepath.Glob(filepath.Join(env.root, "dist", "gitlab_runner_auth-runner-*.tar.gz"))
		if len(tars) != 1 {
			return fmt.Errorf("want one collection tarball in dist/, found %v", tars)
		}
		env.tarball = tars[0]
	}
	dir, err := os.MkdirTemp("", "gra-collections-")
	if err != nil {
		return err
	}
	if out, err := run(env.root, "ansible-galaxy", "collection", "install", "--force", "-p", dir, env.tarball); err != nil {
		return fmt.Errorf("ansible-galaxy collection install: %v\n%s", err, out)
	}
	env.collections = dir
	env.simBin = filepath.Join(env.root, "build", "gitlab-sim")
	env.rrBin = filepath.Join(env.root, "build", "register-runner")
	return nil
}

func needSetup(t *testing.T) {
	t.Helper()
	if env.setupErr != nil {
		t.Fatalf("cannot run the Ansible tests: %v", env.setupErr)
	}
	t.Logf("ansible-core %s", env.version)
}

// playbookEnv is the environment of ansible-playbook: the installed
// collection, plain output, temporary folders under eph, and the tasks on
// the controller run by ansible-playbook's own Python unless the
// environment names one.
func playbookEnv(eph string) []string {
	e := os.Environ()
	if os.Getenv("ANSIBLE_PYTHON_INTERPRETER") == "" && env.python != "" {
		e = append(e, "ANSIBLE_PYTHON_INTERPRETER="+env.python)
	}
	return append(e,
		"ANSIBLE_COLLECTIONS_PATH="+env.collections,
		"ANSIBLE_NOCOLOR=1",
		"ANSIBLE_FORCE_COLOR=0",
		"ANSIBLE_RETRY_FILES_ENABLED=0",
		"ANSIBLE_LOCALHOST_WARNING=0",
		"ANSIBLE_LOCAL_TEMP="+filepath.Join(eph, ".ansible-local"),
		"ANSIBLE_REMOTE_TEMP="+filepath.Join(eph, ".ansible-remote"),
	)
}

type playbookRun struct {
	out  string
	err  error
	args []string
}

// secretsIn returns the secret values a test generated (under eph/secrets),
// so outputs can be checked for them.
func secretsIn(eph string) []string {
	var out []string
	files, _ := filepath.Glob(filepath.Join(eph, "secrets", "*"))
	for _, f := range files {
		if b, err := os.ReadFile(f); err == nil && len(bytes.TrimSpace(b)) > 0 {
			out = append(out, string(bytes.TrimSpace(b)))
		}
	}
	return out
}

// record keeps an output for the secret sweep at the end of make test,
// named by the ansible-core version too (the package runs once per version).
func record(t *testing.T, what string, data []byte) {
	t.Helper()
	recordAs(t, what, env.version, data)
}

func recordAs(t *testing.T, what, version string, data []byte) {
	t.Helper()
	coretest.Record(t, what+" ansible-core "+version, data)
}

// versionOf is the ansible-core version an environment selects (with
// tests/ansible/toolchain), or the one of this test run.
func versionOf(envv []string) string {
	v := env.version
	for _, kv := range envv {
		if strings.HasPrefix(kv, "GRA_ANSIBLE_VERSION=") {
			v = kv[len("GRA_ANSIBLE_VERSION="):]
		}
	}
	return v
}

// ansiblePlaybook runs one playbook at -vvv and checks its whole output for
// secrets before anything else.
func ansiblePlaybook(t *testing.T, envv []string, eph, what string, args ...string) playbookRun {
	t.Helper()
	full := append([]string{"-vvv"}, args...)
	cmd := exec.Command(lookPath(envv, "ansible-playbook"), full...)
	cmd.Env = envv
	cmd.Dir = env.root
	outb, err := cmd.CombinedOutput()
	out := string(outb)
	recordAs(t, what, versionOf(envv), outb)
	for _, s := range secretsIn(eph) {
		if strings.Contains(out, s) {
			t.Errorf("ansible-playbook -vvv output of %s contains a secret generated by the test", what)
		}
	}
	// meta/runtime.yml's requires_ansible covers every tested version.
	if strings.Contains(out, "does not support Ansible version") {
		t.Errorf("ansible-playbook %s (ansible-core %s) warns that the collection does not support it", what, versionOf(envv))
	}
	return playbookRun{out: out, err: err, args: full}
}

// lookPath finds a program on the PATH of envv (the last PATH= wins, as for
// the command's own environment), so that a test can run the tools of
// another ansible-core than its own.
func lookPath(envv []string, name string) string {
	path := ""
	for _, kv := range envv {
		if strings.HasPrefix(kv, "PATH=") {
			path = kv[len("PATH="):]
		}
	}
	for _, dir := range filepath.SplitList(path) {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	return name
}

var recapLine = regexp.MustCompile(`(?m)^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)`)

// tail keeps the end of a long -vvv log for the failure message.
func tail(s string) string {
	const n = 12000
	if len(s) > n {
		return "...\n" + s[len(s)-n:]
	}
	return s
}

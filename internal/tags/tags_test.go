package tags

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/config"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/hostfs"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/input"
)

// hpcSchema is a tag schema with the traits of one a large HPC centre
// used with the original tool: a "$schema" no draft defines
// ("http://json-schema.org/schema/"), a top-level key of its own
// ("custom-name"), its property names (executor_type, architecture,
// micro-architecture, custom, ...) and "env" as an array. It is written
// for this repository (testdata/hpc-tag-schema.json) rather than read from
// the centre's file, which may not be copied here, so the tests need
// nothing outside the repository.
const hpcSchema = "testdata/hpc-tag-schema.json"

// hpcSchemaFile is a copy of hpcSchema, mode 0644 whatever the umask the
// repository was checked out with: a schema group or other may write is
// refused.
func hpcSchemaFile(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(hpcSchema)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), filepath.Base(hpcSchema))
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func tagHost(t *testing.T, execType string) *config.Desired {
	c := &config.ClientConfig{URL: "https://gl", Key: "https://gl"}
	return &config.Desired{Layout: hostfs.Layout{Prefix: t.TempDir(), Instance: "main"}, Hostname: "quartz12",
		Executors: []*config.Executor{{Name: "e", File: "main/e.toml", Client: c, Type: execType, EnvTags: []string{"CLUSTER"}}}}
}

func tagOptions(schema string) Options {
	return Options{SchemaFile: schema, Arch: "x86_64", Concurrency: 1,
		LookPath: func(string) (string, error) { return "", os.ErrNotExist },
		Getenv:   func(n string) (string, bool) { return map[string]string{"CLUSTER": "quartz"}[n], n == "CLUSTER" }}
}

func TestRealWorldSchemaAcceptsAHost(t *testing.T) {
	d := tagHost(t, "shell")
	if err := Compute(context.Background(), d, tagOptions(hpcSchemaFile(t))); err != nil {
		t.Fatalf("the HPC schema rejects an ordinary host: %v", err)
	}
	if got := strings.Join(d.Executors[0].Tags, ","); got != "main,quartz,quartz12,shell,x86_64" {
		t.Fatalf("tags %s", got)
	}
}

// A violation is an input error at the schema (how it is worded, naming
// the property, is kept in the bad-input catalogue's golden case).
func TestRealWorldSchemaRefusesAnExecutorTypeItDoesNotList(t *testing.T) {
	d := tagHost(t, "kubernetes") // not in the schema's executor_type enum
	schema := hpcSchemaFile(t)
	err := Compute(context.Background(), d, tagOptions(schema))
	if ie := input.As(err); ie == nil || ie.Option != input.TagSchema || ie.File != schema {
		t.Fatalf("got %#v, want an input error at the tag schema %s", err, schema)
	}
	if d.Executors[0].Tags != nil {
		t.Fatalf("tags %v computed although the schema refuses them", d.Executors[0].Tags)
	}
}

// A schema file that is not JSON, or JSON that is no schema, is an input
// error at the schema, carrying the parser's error as its cause.
func TestSchemaThatIsNotJSONSchema(t *testing.T) {
	dir := t.TempDir()
	for body, isJSON := range map[string]bool{`{not json`: false, `{"type": 12}`: true} {
		path := filepath.Join(dir, "s.json")
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		err := Compute(context.Background(), tagHost(t, "shell"), tagOptions(path))
		ie := input.As(err)
		var syntax *json.SyntaxError
		if ie == nil || ie.Option != input.TagSchema || ie.File != path || ie.Err == nil || errors.As(err, &syntax) == isJSON {
			t.Errorf("%s: got %#v, want an input error at %s (a JSON syntax error: %v)", body, err, path, !isJSON)
		}
	}
}

func TestDigitOnlyHostGetsNoEmptyTag(t *testing.T) {
	d := tagHost(t, "shell")
	d.Hostname = "10-0-0-12"
	o := tagOptions("")
	if err := Compute(t.Context(), d, o); err != nil {
		t.Fatal(err)
	}
	for _, tag := range d.Executors[0].Tags {
		if tag == "" || tag == "---" {
			t.Fatalf("tags %q hold an empty digit-less host name", d.Executors[0].Tags)
		}
	}
	if err := config.ValidateNames("10-0-0-12", "main"); err != nil {
		t.Fatal(err)
	}
	if err := config.ValidateNames("ip-10-0-0-12", "ip"); err == nil {
		t.Fatal("instance ip equals the digit-less host name of ip-10-0-0-12 but was accepted")
	}
}

// Each automatic tag family can be switched off alone; the others, static
// tags and env_tags stay, and the schema's properties do not change.
func TestOmitEachAutomaticFamily(t *testing.T) {
	all := map[string]string{Hostname: "quartz12", DigitlessHostname: "quartz", Instance: "main", ExecutorType: "custom",
		Architecture: "x86_64", Scheduler: "slurm"}
	for _, family := range Families {
		t.Run(family, func(t *testing.T) {
			d := tagHost(t, "custom")
			d.Executors[0].StaticTags = []string{"gpu"}
			d.Executors[0].EnvTags = []string{"SITE"}
			o := tagOptions(hpcSchemaFile(t))
			o.Omit = []string{family}
			o.LookPath = func(c string) (string, error) {
				if c == "sbatch" {
					return "/usr/bin/sbatch", nil
				}
				return "", os.ErrNotExist
			}
			o.Getenv = func(n string) (string, bool) { return "llnl", n == "SITE" }
			if err := Compute(t.Context(), d, o); err != nil {
				t.Fatal(err)
			}
			got := map[string]bool{}
			for _, tag := range d.Executors[0].Tags {
				got[tag] = true
			}
			for f, tag := range all {
				if got[tag] == (f == family) {
					t.Errorf("omitting %s: tag %s (%s) present %v; tags %v", family, tag, f, got[tag], d.Executors[0].Tags)
				}
			}
			if !got["gpu"] || !got["llnl"] {
				t.Errorf("omitting %s dropped a static or env tag: %v", family, d.Executors[0].Tags)
			}
		})
	}
	d := tagHost(t, "shell")
	o := tagOptions("")
	o.Omit = Families
	if err := Compute(t.Context(), d, o); err != nil || strings.Join(d.Executors[0].Tags, ",") != "quartz" {
		t.Errorf("every family omitted: %v, tags %v; want only the env tag", err, d.Executors[0].Tags)
	}
}

// A name that is no family is an input error at the option, naming the
// families.
func TestOmitUnknownFamily(t *testing.T) {
	o := tagOptions("")
	o.Omit = []string{"digitless"}
	err := Compute(t.Context(), tagHost(t, "shell"), o)
	if ie := input.As(err); ie == nil || ie.Option != input.OmitAutoTags || !strings.Contains(ie.Fix, DigitlessHostname) {
		t.Fatalf("got %#v, want an input error at omit_auto_tags naming the families", err)
	}
	if got := IdentityTags("node1", "main", []string{Hostname}); strings.Join(got, ",") != "main" {
		t.Errorf("identity tags without the host name: %v", got)
	}
	if got := IdentityTags("node1", "main", Families); len(got) != 0 {
		t.Errorf("identity tags with both omitted: %v", got)
	}
}

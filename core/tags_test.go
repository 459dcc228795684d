package core

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// llnlSchema is the tag schema a large HPC centre used with the original
// tool (shared/examples beside the repository).
func llnlSchema(t *testing.T) string {
	t.Helper()
	path, err := filepath.Abs(filepath.Join("..", "..", "shared", "examples", "llnl-tag-schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("%v: the example schemas live in shared/examples beside the repository", err)
	}
	return path
}

func tagHost(t *testing.T, execType string) *Desired {
	c := &ClientConfig{URL: "https://gl", Key: "https://gl"}
	return &Desired{Layout: Layout{Prefix: t.TempDir(), Instance: "main"}, Hostname: "quartz12",
		Executors: []*Executor{{Name: "e", File: "main/e.toml", Client: c, Type: execType, EnvTags: []string{"CLUSTER"}}}}
}

func tagOptions(schema string) TagOptions {
	return TagOptions{SchemaFile: schema, Arch: "x86_64", Concurrency: 1,
		LookPath: func(string) (string, error) { return "", os.ErrNotExist },
		Getenv:   func(n string) (string, bool) { return map[string]string{"CLUSTER": "quartz"}[n], n == "CLUSTER" }}
}

func TestRealWorldSchemaAcceptsAHost(t *testing.T) {
	d := tagHost(t, "shell")
	if err := computeTags(context.Background(), d, tagOptions(llnlSchema(t))); err != nil {
		t.Fatalf("the LLNL schema rejects an ordinary host: %v", err)
	}
	if got := strings.Join(d.Executors[0].Tags, ","); got != "main,quartz,quartz12,shell,x86_64" {
		t.Fatalf("tags %s", got)
	}
}

func TestRealWorldSchemaNamesTheViolatingProperty(t *testing.T) {
	d := tagHost(t, "kubernetes") // not in the schema's executor_type enum
	err := computeTags(context.Background(), d, tagOptions(llnlSchema(t)))
	if err == nil || !IsInputError(err) || !strings.Contains(err.Error(), "property /executor_type") ||
		!strings.Contains(err.Error(), "kubernetes") {
		t.Fatalf("got %v, want an input error naming /executor_type", err)
	}
}

func TestSchemaThatIsNotJSONSchema(t *testing.T) {
	dir := t.TempDir()
	for body, want := range map[string]string{
		`{not json`:    "not valid JSON",
		`{"type": 12}`: "not a valid JSON Schema",
	} {
		path := filepath.Join(dir, "s.json")
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		err := computeTags(context.Background(), tagHost(t, "shell"), tagOptions(path))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want %q", body, err, want)
		}
	}
}

package module

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/input"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/testkit/coretest"
)

// Errors from the engine name the module's options, never the CLI's flags: in
// the fields and in the message.
func TestCoreErrorsNameModuleOptions(t *testing.T) {
	p := coretest.NewPrefix(t, "main")
	for _, tc := range []struct {
		args   map[string]any
		option string
	}{
		{map[string]any{"prefix": p.Dir, "hostname": "vm", "instance": "vm"}, "instance"},
		{map[string]any{"prefix": p.Dir, "hostname": "node 1"}, "hostname"},
	} {
		out := runModule(t, tc.args)
		got := resultInputErrors(t, out)
		msg, _ := out["msg"].(string)
		if out["failed"] != true || len(got) != 1 || got[0].Option != tc.option || got[0].Fix == "" {
			t.Errorf("%v: input_errors %+v, want the option %s with a fix", tc.args, got, tc.option)
		}
		if !strings.HasPrefix(msg, tc.option+": ") || strings.Contains(msg, "--") {
			t.Errorf("%v: msg %q, want it to begin with the option %s and name no flag", tc.args, msg, tc.option)
		}
	}
}

// resultInputErrors decodes a result's input_errors.
func resultInputErrors(t *testing.T, out map[string]any) []input.Fields {
	t.Helper()
	b, err := json.Marshal(out["input_errors"])
	if err != nil {
		t.Fatal(err)
	}
	var fields []input.Fields
	if err := json.Unmarshal(b, &fields); err != nil {
		t.Fatalf("input_errors %s: %v", b, err)
	}
	return fields
}

// A failed result gives each input error as fields, options named as
// this module's: bad options, and what the engine refused in the declaration.
func TestFailedResultGivesInputErrorsAsFields(t *testing.T) {
	sim := coretest.NewSim(t, coretest.SimOptions())
	prefix := filepath.Join(t.TempDir(), "prefix")
	for _, tc := range []struct {
		name string
		edit func(m map[string]any)
		want input.Fields // Message and Fix: only whether they are set
	}{
		{"bad option", func(m map[string]any) { m["executors"].([]any)[1].(map[string]any)["paused"] = "sometimes" },
			input.Fields{Option: "executors[1].paused", Message: "x"}},
		{"url of no client", func(m map[string]any) {
			m["executors"].([]any)[0].(map[string]any)["url"] = "https://elsewhere.example"
		},
			input.Fields{Option: "executors[0].url", Message: "x", Fix: "x"}},
		{"instance equal to the host name", func(m map[string]any) { m["instance"] = "node5" },
			input.Fields{Option: "instance", Message: "x", Fix: "x"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := declared(sim, prefix, "a", "b")
			tc.edit(in)
			out := runModule(t, in)
			got := resultInputErrors(t, out)
			if out["failed"] != true || len(got) != 1 {
				t.Fatalf("result %v: want a failure with one input error", out)
			}
			g := got[0]
			if g.Option != tc.want.Option || g.File != "" || g.Key != "" || (g.Message != "") != (tc.want.Message != "") || (g.Fix != "") != (tc.want.Fix != "") {
				t.Fatalf("input_errors %+v, want option %s (fix: %v)", got, tc.want.Option, tc.want.Fix != "")
			}
		})
	}
	if out := runModule(t, declared(sim, prefix, "a")); out["failed"] == true || out["input_errors"] != nil {
		t.Fatalf("a good run: %v", out)
	}
}

// The collection's launcher reads its own keys from the arguments file it
// shares with the module (plugins/modules/sync): sync, info and prune
// accept them and nothing else of the kind.
func TestLauncherKeysAreAccepted(t *testing.T) {
	launch := `"_gra_launch": "keep linux/x86_64=amd64:00", "_gra_cache_dir": ""`
	for _, args := range []string{`{` + launch + `, "prefix": "/p", "hostname": "node1"}`,
		`{` + launch + `, "_gra_module": "info", "prefix": "/p", "hostname": "node1"}`} {
		if _, err := ParseArgs([]byte(args)); err != nil {
			t.Errorf("%s: %v", args, err)
		}
	}
	if _, err := ParsePruneArgs(map[string]any{"_gra_launch": "keep", "_gra_cache_dir": "/c", "url": "https://gl",
		"personal_access_token": "glpat-x"}); err != nil {
		t.Errorf("prune: %v", err)
	}
	if _, err := ParseArgs([]byte(`{"_gra_other": "x", "prefix": "/p"}`)); err == nil || !strings.Contains(err.Error(), "_gra_other") {
		t.Errorf("an unknown hidden key: %v, want it refused", err)
	}
}

// omit_auto_tags reaches the engine (sync and info alike); a name that is
// no family is an error at its list element.
func TestOmitAutoTagsReachesTheEngine(t *testing.T) {
	sim := coretest.NewSim(t, coretest.SimOptions())
	prefix := filepath.Join(t.TempDir(), "prefix")
	in := declared(sim, prefix, "a")
	in["omit_auto_tags"] = []any{"digitless_hostname", "executor_type"}
	if out := runModule(t, in); out["failed"] == true {
		t.Fatalf("result %v", out)
	}
	for _, r := range sim.Runners() {
		for _, tag := range r.TagList {
			if tag == "node" || tag == "shell" {
				t.Errorf("runner %s carries the omitted tag %s: %v", r.Description, tag, r.TagList)
			}
		}
		if !slices.Contains(r.TagList, "node5") || !slices.Contains(r.TagList, "t-a") {
			t.Errorf("runner %s lost a tag it keeps: %v", r.Description, r.TagList)
		}
	}
	info := runModule(t, map[string]any{"prefix": prefix, "hostname": "node5", "_gra_module": "info",
		"omit_auto_tags": []any{"digitless_hostname", "executor_type"}})
	if info["failed"] == true || info["would_change"] != false {
		t.Errorf("info with the same families: %v, want nothing to change", info)
	}
	in["omit_auto_tags"] = []any{"executor_type", "digitless"}
	got := resultInputErrors(t, runModule(t, in))
	if len(got) != 1 || got[0].Option != "omit_auto_tags[1]" {
		t.Fatalf("input_errors %+v, want omit_auto_tags[1]", got)
	}
}

package core

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/config"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/gitlab"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/hostfs"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/redact"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/core/table"
)

var benchSizes = []int{10, 100, 1000}

func benchDesired(n int) (*config.Desired, *hostfs.LiveConfig, *hostfs.State, Observation) {
	c := &config.ClientConfig{URL: "https://gitlab.example.com", Key: "https://gitlab.example.com", PAT: "p"}
	d := &config.Desired{Layout: hostfs.Layout{Prefix: "/p", Instance: "main"}, Hostname: "node1", Clients: []*config.ClientConfig{c}, Globals: table.New()}
	d.Globals.Set("concurrent", int64(8))
	live := &hostfs.LiveConfig{Exists: true}
	st := &hostfs.State{Version: 1, Runners: map[string]hostfs.StateRunner{}}
	obs := newObservation()
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("exec%04d", i)
		keys := table.New()
		keys.Set("builds_dir", "/scratch/"+name)
		dk := table.New()
		dk.Set("image", "alpine:3.20")
		dk.Set("volumes", []any{"/cache"})
		keys.Set("docker", dk)
		e := &config.Executor{Name: name, Client: c, Type: "docker", Description: config.DefaultDescription("node1", "main", name),
			AccessLevel: "not_protected", RunnerType: "instance_type", Tags: []string{"docker", "main", "node", "node1", "x86_64"}, Keys: keys}
		d.Executors = append(d.Executors, e)
		id := int64(i + 1)
		live.Runners = append(live.Runners, hostfs.LiveRunner{Name: e.Description, URL: c.URL, ID: id, Token: fmt.Sprintf("tok-%d", id)})
		s := e.Settings()
		st.Runners[name] = hostfs.StateRunner{ID: id, URL: c.URL, Applied: &s}
		obs.Verified[name] = VerifyOutcome{Alive: true, Creds: gitlab.Credentials{ID: id}}
	}
	return d, live, st, obs
}

func BenchmarkBuildPlan(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("executors=%d", n), func(b *testing.B) {
			d, live, st, obs := benchDesired(n)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				prev := matchPrevious(d, live, st)
				if p := BuildPlan(d, prev, st, obs); p.Changed() {
					b.Fatal("steady state planned a change")
				}
			}
		})
	}
}

func BenchmarkRenderConfig(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("executors=%d", n), func(b *testing.B) {
			d, live, st, obs := benchDesired(n)
			prev := matchPrevious(d, live, st)
			plan := BuildPlan(d, prev, st, obs)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				sections := composeSections(d, prev, plan, nil, live, nil)
				_ = hostfs.RenderConfig(d.Layout, d.Globals, sections, false)
			}
		})
	}
}

func BenchmarkLoadDesired(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("executors=%d", n), func(b *testing.B) {
			dir := b.TempDir()
			l := hostfs.Layout{Prefix: dir, Instance: "main"}
			must := func(err error) {
				if err != nil {
					b.Fatal(err)
				}
			}
			must(os.MkdirAll(l.ExecutorDir(), 0o700))
			must(os.Chmod(dir, 0o700))
			must(os.WriteFile(l.TemplatePath(), []byte("concurrent = 8\n[[client_configs]]\nurl = \"https://gitlab.example.com\"\npersonal_access_token = \"glpat-benchmarkbenchmark\"\n"), 0o600))
			for i := 0; i < n; i++ {
				body := "url = \"https://gitlab.example.com\"\nexecutor = \"docker\"\ntags = [\"gpu\"]\n[docker]\nimage = \"alpine\"\n"
				ext := ".toml"
				if i%2 == 1 {
					body = "url: https://gitlab.example.com\nexecutor: docker\ntags: [gpu]\ndocker:\n  image: alpine\n"
					ext = ".yaml"
				}
				must(os.WriteFile(filepath.Join(l.ExecutorDir(), fmt.Sprintf("e%04d%s", i, ext)), []byte(body), 0o600))
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				d, err := config.Load(l, "node1", nil, redact.New(), false)
				if err != nil || len(d.Executors) != n {
					b.Fatal(err)
				}
			}
		})
	}
}

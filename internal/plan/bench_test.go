package plan

import (
	"fmt"
	"testing"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/config"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/gitlab"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/hostfs"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/table"
)

var benchSizes = []int{10, 100, 1000}

func benchEvidence(n int) (Evidence, *hostfs.LiveConfig) {
	c := &config.ClientConfig{URL: "https://gitlab.example.com", Key: "https://gitlab.example.com", PAT: "p"}
	d := &config.Desired{Layout: hostfs.Layout{Prefix: "/p", Instance: "main"}, Hostname: "node1", Clients: []*config.ClientConfig{c}, Globals: table.New()}
	d.Globals.Set("concurrent", int64(8))
	live := &hostfs.LiveConfig{Exists: true}
	st := &hostfs.State{Version: 1, Runners: map[string]hostfs.StateRunner{}}
	ev := NewEvidence()
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
		ev.Verified[name] = gitlab.Verification{State: gitlab.TokenAlive, Creds: gitlab.Credentials{ID: id}}
	}
	ev.Desired, ev.State, ev.SystemID = d, st, "s_this"
	ev.Prev = MatchPrevious(d, live, st)
	return ev, live
}

func BenchmarkBuildPlan(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("executors=%d", n), func(b *testing.B) {
			ev, live := benchEvidence(n)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				ev.Prev = MatchPrevious(ev.Desired, live, ev.State)
				if p := Build(ev); p.Changed() {
					b.Fatal("steady state planned a change")
				}
			}
		})
	}
}

func BenchmarkRenderConfig(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("executors=%d", n), func(b *testing.B) {
			ev, live := benchEvidence(n)
			p := Build(ev)
			oc := p.Predict()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				sections := Sections(ev.Prev, p, oc, live, nil)
				_ = hostfs.RenderConfig(ev.Desired.Layout, ev.Desired.Globals, sections, false)
			}
		})
	}
}

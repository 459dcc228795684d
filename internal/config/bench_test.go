package config

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/hostfs"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/redact"
)

var benchSizes = []int{10, 100, 1000}

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
				d, err := Load(b.Context(), LoadOptions{Layout: l, Hostname: "node1", Secrets: redact.New()})
				if err != nil || len(d.Executors) != n {
					b.Fatal(err)
				}
			}
		})
	}
}

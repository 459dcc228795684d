package config

import (
	"bytes"
	"testing"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/hostfs"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/input"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/redact"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/table"
)

func fuzzDesired() *Desired {
	c := &ClientConfig{URL: "https://gitlab.example.com", Key: "https://gitlab.example.com", PAT: "x"}
	return &Desired{Layout: hostfs.Layout{Prefix: "/p", Instance: "main"}, Hostname: "node1", Clients: []*ClientConfig{c}}
}

// FuzzParseExecutor: any bytes give an executor or an input.Error, never a
// panic; a parsed executor's settings render to TOML that parses back to
// the same rendering.
func FuzzParseExecutor(f *testing.F) {
	f.Add([]byte("url = \"https://gitlab.example.com\"\nexecutor = \"shell\"\ntags = [\"a\"]\n[cache]\nType = \"s3\"\n"), false)
	f.Add([]byte("url: https://gitlab.example.com\nexecutor: docker\ndocker:\n  image: alpine\n  volumes: [/cache]\n"), true)
	f.Add([]byte("url: https://gitlab.example.com\nbase: &b {x: 1}\nother: *b\n"), true)
	f.Fuzz(func(t *testing.T, data []byte, yaml bool) {
		name := "main/x.toml"
		if yaml {
			name = "main/x.yaml"
		}
		e, err := fuzzDesired().parseExecutor("x", name, data)
		if err != nil {
			if !input.Is(err) {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		out := table.EncodeTOML(e.Keys)
		back, err := table.ParseTOML(out)
		if err != nil {
			t.Fatalf("rendered settings do not parse: %v\n%s", err, out)
		}
		if again := table.EncodeTOML(back); !bytes.Equal(out, again) {
			t.Fatalf("render is not stable:\n%s\n---\n%s", out, again)
		}
	})
}

// FuzzParseTemplate: any template gives clients or an input.Error.
func FuzzParseTemplate(f *testing.F) {
	f.Add([]byte("concurrent = 1\n[[client_configs]]\nurl = \"https://gitlab.example.com\"\nregistration_token = \"abcdefgh\"\n"))
	f.Add([]byte("[[client_configs]]\nurl = \"http://[::1]:8080/gitlab/\"\npersonal_access_token = \"{x}\"\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		d := &Desired{Layout: hostfs.Layout{Prefix: "/nonexistent", Instance: "main"}, Hostname: "node1"}
		if err := d.ParseTemplate("template.main.toml", data, redact.New()); err != nil {
			if !input.Is(err) {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		if len(d.Clients) == 0 {
			t.Fatal("a template without clients was accepted")
		}
		for _, c := range d.Clients {
			if c.PAT == "" && c.RegistrationToken == "" {
				t.Fatal("a client without any token was accepted")
			}
		}
	})
}

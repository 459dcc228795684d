package core

import (
	"bytes"
	"errors"
	"testing"
)

func fuzzDesired() *Desired {
	c := &ClientConfig{URL: "https://gitlab.example.com", Key: "https://gitlab.example.com", PAT: "x"}
	return &Desired{Layout: Layout{Prefix: "/p", Instance: "main"}, Hostname: "node1", Clients: []*ClientConfig{c}}
}

// FuzzParseExecutor: any bytes give an executor or an InputError, never a
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
			var ie *InputError
			if !errors.As(err, &ie) {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		out := EncodeTOML(e.Keys)
		back, err := parseTOMLTable(out)
		if err != nil {
			t.Fatalf("rendered settings do not parse: %v\n%s", err, out)
		}
		if again := EncodeTOML(back); !bytes.Equal(out, again) {
			t.Fatalf("render is not stable:\n%s\n---\n%s", out, again)
		}
	})
}

// FuzzParseTemplate: any template gives clients or an InputError.
func FuzzParseTemplate(f *testing.F) {
	f.Add([]byte("concurrent = 1\n[[client_configs]]\nurl = \"https://gitlab.example.com\"\nregistration_token = \"abcdefgh\"\n"))
	f.Add([]byte("[[client_configs]]\nurl = \"http://[::1]:8080/gitlab/\"\npersonal_access_token = \"{x}\"\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		d := &Desired{Layout: Layout{Prefix: "/nonexistent", Instance: "main"}, Hostname: "node1"}
		if err := d.parseTemplate("config.template.main.toml", data, NewRedactor()); err != nil {
			var ie *InputError
			if !errors.As(err, &ie) {
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

// FuzzRenderRoundTrip: render -> parse -> render is stable for any TOML
// document, and the rendering parses.
func FuzzRenderRoundTrip(f *testing.F) {
	f.Add([]byte("a = 1\nb = \"x\\ty\"\nc = 1.5\nd = 1979-05-27T07:32:00Z\ne = 1979-05-27\nf = 07:32:00\n[t]\nx = [1, 2]\n[[arr]]\ny = {z = true}\n"))
	f.Add([]byte("\"quoted key\" = 'lit'\nnan = nan\ninf = -inf\n[a.b.c]\nd = 1979-05-27T00:32:00.999999-07:00\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tb, err := parseTOMLTable(data)
		if err != nil {
			return
		}
		out := EncodeTOML(tb)
		back, err := parseTOMLTable(out)
		if err != nil {
			t.Fatalf("rendering does not parse: %v\ninput:\n%s\nrendered:\n%s", err, data, out)
		}
		if again := EncodeTOML(back); !bytes.Equal(out, again) {
			t.Fatalf("render -> parse -> render changed:\n%s\n---\n%s", out, again)
		}
		l := Layout{Prefix: "/p", Instance: "main"}
		cfg := RenderConfig(l, tb, []Section{{Name: "n", URL: "https://g", ID: 1, Token: "t", Executor: "shell", Keys: tb}}, false)
		if _, err := parseTOMLTable(cfg); err != nil {
			t.Fatalf("config does not parse: %v\n%s", err, cfg)
		}
	})
}

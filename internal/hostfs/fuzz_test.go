package hostfs

import (
	"bytes"
	"testing"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/table"
)

// FuzzRenderRoundTrip: render -> parse -> render is stable for any TOML
// document, and the rendering parses.
func FuzzRenderRoundTrip(f *testing.F) {
	f.Add([]byte("a = 1\nb = \"x\\ty\"\nc = 1.5\nd = 1979-05-27T07:32:00Z\ne = 1979-05-27\nf = 07:32:00\n[t]\nx = [1, 2]\n[[arr]]\ny = {z = true}\n"))
	f.Add([]byte("\"quoted key\" = 'lit'\nnan = nan\ninf = -inf\n[a.b.c]\nd = 1979-05-27T00:32:00.999999-07:00\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tb, err := table.ParseTOML(data)
		if err != nil {
			return
		}
		out := table.EncodeTOML(tb)
		back, err := table.ParseTOML(out)
		if err != nil {
			t.Fatalf("rendering does not parse: %v\ninput:\n%s\nrendered:\n%s", err, data, out)
		}
		if again := table.EncodeTOML(back); !bytes.Equal(out, again) {
			t.Fatalf("render -> parse -> render changed:\n%s\n---\n%s", out, again)
		}
		l := Layout{Prefix: "/p", Instance: "main"}
		cfg := RenderConfig(l, tb, []Section{{Name: "n", URL: "https://g", ID: 1, Token: "t", Executor: "shell", Keys: tb}}, false)
		if _, err := table.ParseTOML(cfg); err != nil {
			t.Fatalf("config does not parse: %v\n%s", err, cfg)
		}
	})
}

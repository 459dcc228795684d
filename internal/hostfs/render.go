package hostfs

import (
	"bytes"
	"fmt"
	"time"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/redact"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/table"
)

// configHeader opens every generated config.{instance}.toml.
const configHeader = "# Written by register-runner (gitlab-runner-auth) from %s and %s/.\n" +
	"# Edit those files instead: changes made here are replaced on the next run.\n"

// Section is one [[runners]] entry of the generated config.
type Section struct {
	Name           string // gitlab-runner's "name": the runner's description
	URL            string
	ID             int64
	Token          string
	TokenObtained  time.Time
	TokenExpiresAt time.Time // zero: never expires
	Executor       string
	TLSCAFile      string
	// Keys are the executor's own settings, copied verbatim.
	Keys *table.Table
	// Verbatim, when set, is written as-is (an entry this run must keep
	// but does not manage, for example one whose deletion failed).
	Verbatim *table.Table
}

func (s Section) table(masked bool) *table.Table {
	if s.Verbatim != nil {
		t := s.Verbatim.Clone()
		if masked {
			if _, ok := t.Get("token"); ok {
				t.Set("token", redact.Placeholder)
			}
		}
		return t
	}
	t := table.New()
	t.Set("name", s.Name)
	t.Set("url", s.URL)
	t.Set("id", s.ID)
	tok := s.Token
	if masked {
		tok = redact.Placeholder
	}
	t.Set("token", tok)
	t.Set("token_obtained_at", TOMLTime(s.TokenObtained))
	t.Set("token_expires_at", TOMLTime(s.TokenExpiresAt))
	t.Set("executor", s.Executor)
	keys := s.Keys
	if keys == nil {
		keys = table.New()
	}
	if s.TLSCAFile != "" {
		if _, ok := keys.Get("tls-ca-file"); !ok {
			t.Set("tls-ca-file", s.TLSCAFile)
		}
	}
	for _, k := range keys.Keys() {
		v, _ := keys.Get(k)
		t.Set(k, table.CloneValue(v))
	}
	return t
}

// TOMLTime is how gitlab-runner writes token times: UTC, whole seconds,
// 0001-01-01T00:00:00Z for "never".
func TOMLTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}.UTC()
	}
	return t.UTC().Truncate(time.Second)
}

// RenderConfig produces config.{instance}.toml: the template's global keys,
// then one [[runners]] per section, in the order given. Same input, same
// bytes.
func RenderConfig(l Layout, globals *table.Table, sections []Section, masked bool) []byte {
	doc := table.New()
	if globals != nil {
		for _, k := range globals.Keys() {
			v, _ := globals.Get(k)
			doc.Set(k, v)
		}
	}
	if len(sections) > 0 {
		rs := make([]any, len(sections))
		for i, s := range sections {
			rs[i] = s.table(masked)
		}
		doc.Set("runners", rs)
	}
	if masked {
		// Every secret setting, not only the token: bearer_token,
		// SecretKey, password, secret environment entries...
		doc = redact.Table(doc)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, configHeader, "config.template."+l.Instance+".toml", l.Instance)
	b.WriteString("\n")
	b.Write(table.EncodeTOML(doc))
	out := b.Bytes()
	for bytes.Contains(out, []byte("\n\n\n")) {
		out = bytes.ReplaceAll(out, []byte("\n\n\n"), []byte("\n\n"))
	}
	return out
}

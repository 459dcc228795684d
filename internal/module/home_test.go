package module

import (
	"path/filepath"
	"strings"
	"testing"
)

// Every option of type path expands ~ as prefix does, to the home folder
// of the user the module runs as; ~user/ is refused.
func TestPathOptionsExpandHome(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	a, err := ParseArgs([]byte(`{"prefix": "~/gr", "tag_schema": "~/schema.json", "capture_tags": "~/capture",
		"clients": [{"url": "https://gl", "personal_access_token_file": "~/pat", "registration_token_file": "reg",
		"tls_ca_file": "~/ca.pem"}], "executors": [{"name": "shell", "url": "https://gl"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	c := a.Declare.Clients[0].Values
	for got, want := range map[string]string{a.Prefix: "gr", a.TagSchema: "schema.json", a.CaptureTags: "capture",
		c["personal_access_token_file"].(string): "pat", c["tls_ca_file"].(string): "ca.pem"} {
		if got != filepath.Join(home, want) {
			t.Errorf("got %q, want %q", got, filepath.Join(home, want))
		}
	}
	if c["registration_token_file"] != "reg" {
		t.Errorf("a relative *_file stays relative to the prefix, got %v", c["registration_token_file"])
	}
	_, err = ParseArgs([]byte(`{"clients": [{"url": "https://gl", "personal_access_token_file": "~bob/pat"}],
		"executors": [{"name": "shell", "url": "https://gl"}]}`))
	if err == nil || !strings.Contains(err.Error(), "clients[0].personal_access_token_file") {
		t.Errorf("~bob/ was not refused naming the option: %v", err)
	}
}

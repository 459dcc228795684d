package module

import (
	"errors"
	"testing"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/input"
)

// FuzzParseArgs: any arguments give Args or an input error naming the
// problem, never a panic.
func FuzzParseArgs(f *testing.F) {
	f.Add([]byte(`{"prefix": "/p", "clients": [{"url": "https://g", "personal_access_token": "x"}], "executors": [{"name": "a", "url": "https://g", "tags": ["x"], "docker": {"image": "i"}}], "_ansible_check_mode": true}`))
	f.Add([]byte(`{"concurrency": "16", "refresh": "yes", "state": "absent"}`))
	f.Add([]byte(`{"executors": [{"name": 1}], "clients": [7]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := ParseArgs(data)
		if err != nil {
			var ae *input.Error
			if !errors.As(err, &ae) || ae.Msg == "" {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		if a.Concurrency < 1 || a.Concurrency > 256 || (a.State != "present" && a.State != "absent") {
			t.Fatalf("accepted out-of-range arguments: %+v", a)
		}
		if a.Declare == nil {
			return
		}
		for _, e := range a.Declare.Executors {
			if _, ok := e["name"].(string); !ok {
				t.Fatalf("accepted an executor without a string name: %v", e)
			}
		}
	})
}

package table

import (
	"regexp"
	"testing"
	"unicode/utf8"

	"github.com/BurntSushi/toml"
)

// Strings and keys written by EncodeTOML read back as they were, through
// the fast path (plain ASCII) and the escaping one alike; a key is written
// bare exactly when TOML allows it.
func TestQuotedStringsAndKeysReadBack(t *testing.T) {
	bare := regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
	alphabet := []string{"a", "Z", "0", "_", "-", " ", ".", "\"", "\\", "\t", "\n", "\x01", "\x7f", "é", "€", "=", "#", "'", "glrt-x"}
	seed := uint64(7)
	next := func(n int) int {
		seed = seed*6364136223846793005 + 1442695040888963407
		return int((seed >> 33) % uint64(n))
	}
	for range 5000 {
		s := ""
		for range next(10) {
			s += alphabet[next(len(alphabet))]
		}
		if got, want := isBareKey(s), bare.MatchString(s); got != want {
			t.Fatalf("isBareKey(%q) = %v, TOML's bare keys say %v", s, got, want)
		}
		var m map[string]any
		doc := encodeKey("k"+s) + " = " + Quote(s) + "\n"
		if _, err := toml.Decode(doc, &m); err != nil {
			t.Fatalf("%q does not read back: %v", doc, err)
		}
		if !utf8.ValidString(s) {
			continue
		}
		if m["k"+s] != s {
			t.Fatalf("%q reads back as %q, not %q", doc, m["k"+s], s)
		}
	}
}

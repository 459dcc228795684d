package redact

import (
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// Look-alike keys gitlab-runner's TOML decoder reads as the real setting:
// BurntSushi/toml (v1.6.0, decode.go, unifyStruct) takes a key for a field
// when the names are equal under strings.EqualFold, Unicode simple case
// folding, so "paſſword" (U+017F, a long s) sets password and "AccountKey"
// spelled with a Kelvin sign (U+212A) sets AccountKey.
var lookAlikes = []string{"pa\u017f\u017fword", "Account\u212Aey", "\u017fecret\u212Aey", "bearer_to\u212Aen", "PA\u017f\u017fWORD"}

func TestGitLabRunnersDecoderFoldsLookAlikes(t *testing.T) {
	var cfg struct {
		Password   string `toml:"password"`
		AccountKey string `toml:"AccountKey"`
		SecretKey  string `toml:"SecretKey"`
		Bearer     string `toml:"bearer_token"`
	}
	in := ""
	for _, k := range lookAlikes[:4] {
		in += `"` + k + `" = "SECRET-` + k + "\"\n"
	}
	if _, err := toml.Decode(in, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Password == "" || cfg.AccountKey == "" || cfg.SecretKey == "" || cfg.Bearer == "" {
		t.Fatalf("the decoder does not fold these keys: %+v", cfg)
	}
}

// Keys are compared after simple case folding: every look-alike above is
// a secret key and a secret name, and its value is redacted in TOML, YAML
// and text read line by line.
func TestLookAlikeKeysAreSecret(t *testing.T) {
	for _, k := range lookAlikes {
		if !IsSecretKey(k) || !IsSecretName(k) {
			t.Errorf("%q: secret key %v, name %v", k, IsSecretKey(k), IsSecretName(k))
		}
		for _, in := range []string{
			"[runners.ssh]\n  user = \"ci\"\n  \"" + k + "\" = \"SECRET-a\"\n",
			"ssh:\n  user: ci\n  " + k + ": SECRET-a\n",
			"ssh = {\n  " + k + " = SECRET-a\n",   // neither TOML nor YAML
			"# " + k + " = \"SECRET-a\"\nx = 1\n", // commented out
			"environment = [\"" + strings.ToUpper(k) + "=SECRET-a\"]\n",
		} {
			for name, got := range map[string]string{"as TOML": File("x.toml", in), "as YAML": File("x.yaml", in), "Keys": Keys(in)} {
				if strings.Contains(got, "SECRET-") {
					t.Errorf("%s(%q) = %q", name, in, got)
				}
			}
		}
	}
	// A look-alike that does not fold to the real key is another key.
	for _, k := range []string{"p\u0430ssword", "pässword"} { // Cyrillic a; a with diaeresis
		if IsSecretKey(k) {
			t.Errorf("%q is a secret key", k)
		}
	}
}

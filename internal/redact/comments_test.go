package redact

import (
	"strings"
	"testing"
)

// A commented-out value that goes on past its line goes on in the
// comment lines after it: a "#" line that continues a secret's block is
// part of it, and none of its lines is shown. What follows the block (a
// key, a comment that starts another entry) is shown as it was.
func TestCommentedBlocksAreSecret(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"toml-pem", "[runners.cache.gcs]\n  AccessID = \"x\"\n  # PrivateKey = \"\"\"\n  # -----BEGIN PRIVATE KEY-----\n  # MIIEvSECRET-1\n  # SECRET-2\n  # -----END PRIVATE KEY-----\n  # \"\"\"\n  CredentialsFile = \"/etc/gcs.json\"\n",
			"[runners.cache.gcs]\n  AccessID = \"x\"\n  # PrivateKey = \"<redacted>\"\n  CredentialsFile = \"/etc/gcs.json\"\n"},
		{"toml-multiline", "executor = \"shell\"\n# password = \"\"\"\n# SECRET-1\n# SECRET-2 \"\"\"\n# builds_dir = \"/b\"\n",
			"executor = \"shell\"\n# password = \"<redacted>\"\n# builds_dir = \"/b\"\n"},
		{"toml-literal", "executor = \"shell\"\n#token = '''SECRET-1\n#\n#SECRET-2\n#'''\nshell = \"bash\"\n",
			"executor = \"shell\"\n#token = \"<redacted>\"\nshell = \"bash\"\n"},
		{"toml-array", "shell = \"bash\"\n# secrets = [\n#   \"SECRET-1\",\n#   [\"SECRET-2\"],\n# ]\n# executor = \"docker\"\n",
			"shell = \"bash\"\n# secrets = \"<redacted>\"\n# executor = \"docker\"\n"},
		{"toml-env", "# environment = [\n#   \"GH_PAT=SECRET-1\",\n#   \"PLAIN=x\",\n# ]\nshell = \"bash\"\n",
			"# environment = [\n#   \"GH_PAT=<redacted>\",\n#   \"PLAIN=x\",\n# ]\nshell = \"bash\"\n"},
		{"yaml-literal", "executor: shell\n# password: |\n#   SECRET-1\n#\n#   SECRET-2\n# builds_dir: /b\n",
			"executor: shell\n# password: \"<redacted>\"\n# builds_dir: /b\n"},
		{"yaml-nested", "ssh:\n  user: ci\n  # password: >-\n  #   SECRET-1\n  #   SECRET-2\n  host: h\n",
			"ssh:\n  user: ci\n  # password: \"<redacted>\"\n  host: h\n"},
		{"yaml-prose-inside", "executor: shell\n# password: |\n#   SECRET-1\n# SECRET-2 (wrongly indented)\n#   SECRET-3\n# shell: bash\n",
			"executor: shell\n# password: \"<redacted>\"\n# shell: bash\n"},
		{"yaml-list", "# tokens:\n# - SECRET-1\n# - SECRET-2\n# executor: shell\nexecutor: docker\n",
			"# tokens: \"<redacted>\"\n# executor: shell\nexecutor: docker\n"},
		{"yaml-plain-continued", "# password: SECRET-1\n#   SECRET-2\n# shell: bash\nshell: sh\n",
			"# password: \"<redacted>\"\n# shell: bash\nshell: sh\n"},
		{"yaml-quoted", "# password: \"SECRET-1\n#   SECRET-2\"\n# shell: bash\nshell: sh\n",
			"# password: \"<redacted>\"\n# shell: bash\nshell: sh\n"},
		{"block-ends-at-code", "executor = \"shell\"\n# password = \"\"\"\n# SECRET-1\nbuilds_dir = \"/b\"\n# SECRET-looking but after the block\n",
			"executor = \"shell\"\n# password = \"<redacted>\"\nbuilds_dir = \"/b\"\n# SECRET-looking but after the block\n"},
	} {
		for _, name := range []string{"x.toml", "x.yaml"} {
			got := File(name, tc.in)
			if got == Hidden && strings.HasSuffix(name, filepathExt(tc.name)) {
				t.Errorf("%s as %s: hidden whole", tc.name, name)
			}
			if strings.Contains(strings.ReplaceAll(got, "SECRET-looking", ""), "SECRET-") {
				t.Errorf("%s as %s: a secret is left:\n%s", tc.name, name, got)
			}
		}
		if got := Keys(tc.in); got != tc.want {
			t.Errorf("%s: got\n%s\nwant\n%s", tc.name, got, tc.want)
		}
	}
}

func filepathExt(caseName string) string {
	if strings.HasPrefix(caseName, "yaml") {
		return ".yaml"
	}
	return ".toml"
}

// In a text that is neither TOML nor YAML, a commented-out block is
// redacted the same way, and the rest of the text is shown.
func TestCommentedBlocksInBrokenText(t *testing.T) {
	in := "executor = \"shell\"\n# password = \"\"\"\n# SECRET-1\n# \"\"\"\noops =\n"
	want := "executor = \"shell\"\n# password = \"<redacted>\"\noops =\n"
	for _, got := range []string{Keys(in), TOML(in), YAML(in)} {
		if got != want {
			t.Errorf("got\n%s\nwant\n%s", got, want)
		}
	}
	// Half uncommented: the lines that may go on with the value are not
	// comments; the text is hidden rather than guessed.
	for _, in := range []string{
		"# password = \"\"\"\nSECRET-1\n\"\"\"\n",
		"# secrets = [\n  \"SECRET-1\",\n]\n",
		"# password: |\n  SECRET-1\nbroken: %\n",
	} {
		for _, got := range []string{Keys(in), File("x.toml", in), File("x.yaml", in)} {
			if strings.Contains(got, "SECRET-") {
				t.Errorf("%q redacted to %q", in, got)
			}
		}
	}
}

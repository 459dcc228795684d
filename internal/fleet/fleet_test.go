package fleet

import (
	"strings"
	"testing"
)

func TestMarkRoundTrips(t *testing.T) {
	m := Mark{Fleet: "hpc-a", Host: "node12", Instance: "main"}
	for _, own := range []string{"", "rack 4, ask ops", "two\nlines", "trailing newline\n"} {
		note := m.Note(own)
		got, gotOwn, ok := Parse(note)
		if !ok || got != m {
			t.Fatalf("Parse(%q) = %+v, %v; want %+v", note, got, ok, m)
		}
		if want := strings.TrimRight(own, "\n"); gotOwn != want {
			t.Errorf("own note of %q = %q, want %q", note, gotOwn, want)
		}
		if Own(note) != strings.TrimRight(own, "\n") {
			t.Errorf("Own(%q) = %q", note, Own(note))
		}
	}
}

func TestParseRefusesWhatIsNoMark(t *testing.T) {
	for _, note := range []string{
		"",
		"rack 4",
		"[gitlab-runner-auth] fleet=hpc host=node12",                           // instance missing
		"[gitlab-runner-auth] fleet=hpc host=node12 instance=main extra=1",     // more than a mark
		"[gitlab-runner-auth] fleet=hpc host=node12 instance=main\nnote below", // not the last line
		" [gitlab-runner-auth] fleet=hpc host=node12 instance=main",            // indented
		"[gitlab-runner-auth] fleet=-x host=node12 instance=main",              // not a fleet name
	} {
		if m, _, ok := Parse(note); ok {
			t.Errorf("Parse(%q) = %+v, a mark; want none", note, m)
		}
	}
}

func TestCheckName(t *testing.T) {
	for name, good := range map[string]bool{
		"default": true, "hpc-a": true, "team_x.ci": true, "A1": true,
		"": false, "-a": false, "a b": false, "a/b": false, "ä": false, strings.Repeat("a", MaxName+1): false,
	} {
		if err := CheckName(name); (err == nil) != good {
			t.Errorf("CheckName(%q) = %v, want ok %v", name, err, good)
		}
	}
}

func TestRoomLeavesSpaceForTheMark(t *testing.T) {
	m := Mark{Fleet: strings.Repeat("f", MaxName), Host: "node12", Instance: "main"}
	own := strings.Repeat("x", m.Room(1024))
	if n := len(m.Note(own)); n != 1024 {
		t.Errorf("a note of Room characters gives %d characters with the mark, want 1024", n)
	}
}

// Package fleet is the mark that proves a runner is a fleet's: sync writes
// it into each runner it creates or keeps, in GitLab itself, and prune
// deletes only runners whose details carry its own fleet's mark.
//
// The mark lives in the runner's maintenance_note, GitLab's free-text
// field "for administrators" (app/models/ci/runner.rb, at most 1,024
// characters). GitLab shows it only in a runner's details
// (Entities::Ci::RunnerDetails), and only to users who may update the
// runner, so a listing never carries it: prune reads every candidate by id
// and re-reads it just before deleting. The mark is the note's last line;
// an administrator's own note (an executor file's maintenance_note) stays
// above it, untouched.
package fleet

import (
	"fmt"
	"regexp"
	"strings"
	"sync"
	"unicode/utf8"
)

// Default is the fleet of a sync or prune that names none. Two teams that
// share a GitLab and both leave the name unset share this fleet: each
// team's prune would take the other's idle runners for its own, so a
// fleet that shares its GitLab must be named.
const Default = "default"

// MaxName bounds a fleet name, so that a mark and an administrator's note
// fit GitLab's 1,024 characters together.
const MaxName = 63

var reName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`) })

// CheckName refuses a fleet name the mark cannot carry unambiguously.
func CheckName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("is empty")
	case len(name) > MaxName:
		return fmt.Errorf("%q is longer than %d characters", name, MaxName)
	case !reName().MatchString(name):
		return fmt.Errorf("%q may hold only letters, digits, '.', '_' and '-', starting with a letter or digit", name)
	}
	return nil
}

// Mark names the fleet, host and instance a runner belongs to.
type Mark struct {
	Fleet, Host, Instance string
}

// prefix opens the mark's line.
const prefix = "[gitlab-runner-auth] "

var reMark = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^\[gitlab-runner-auth\] fleet=(\S+) host=(\S+) instance=(\S+)$`)
})

// String is the mark's line: "[gitlab-runner-auth] fleet=hpc host=node12 instance=main".
func (m Mark) String() string {
	return fmt.Sprintf("%sfleet=%s host=%s instance=%s", prefix, m.Fleet, m.Host, m.Instance)
}

// Note is the maintenance_note a runner carries: the administrator's own
// note, then the mark on a line of its own.
func (m Mark) Note(own string) string {
	own = strings.TrimRight(own, "\n")
	if own == "" {
		return m.String()
	}
	return own + "\n" + m.String()
}

// Room is how many characters of the administrator's own note fit beside
// the mark within GitLab's limit (characters, as GitLab counts them).
func (m Mark) Room(limit int) int { return limit - utf8.RuneCountInString(m.String()) - 1 }

// Parse reads the mark from a maintenance_note: the note's last line, and
// the administrator's own note above it. ok is false when the last line
// is no mark (a runner this tool never marked, or a note edited by hand).
func Parse(note string) (m Mark, own string, ok bool) {
	note = strings.TrimRight(note, "\r\n")
	own, last := "", note
	if i := strings.LastIndexByte(note, '\n'); i >= 0 {
		own, last = note[:i], note[i+1:]
	}
	sub := reMark().FindStringSubmatch(strings.TrimRight(last, "\r"))
	if sub == nil || CheckName(sub[1]) != nil {
		return Mark{}, note, false
	}
	return Mark{Fleet: sub[1], Host: sub[2], Instance: sub[3]}, strings.TrimRight(own, "\r\n"), true
}

// Own is the administrator's part of a note: the note without its mark.
func Own(note string) string {
	_, own, _ := Parse(note)
	return own
}

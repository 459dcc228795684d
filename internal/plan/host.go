package plan

import (
	"fmt"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/config"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/hostfs"
)

// HostStep is a change a pass makes to the host's own files before its
// first request that changes GitLab: the files a run acts on are only
// read while it observes, and what the lineage table decides is carried
// out here (check mode carries out none; the lineage's warning says what
// a fresh identity does).
type HostStep struct {
	Kind HostKind
	// SystemID is the id written (WriteSystemID).
	SystemID string
	Why      string
}

// HostKind is what a host step does.
type HostKind string

// The host steps.
const (
	// WriteSystemID writes .runner_system_id: it was missing, or the
	// prefix came from another machine.
	WriteSystemID HostKind = "write system id"
	// FreshIdentity starts the state file afresh: the prefix came from
	// another machine, whose runners this host never touches. The pass's
	// state file, written for this host, carries it out.
	FreshIdentity HostKind = "fresh identity"
)

// Disk is what a pass reads from the prefix before deciding: the live
// config, the state file, the system id file and this host's record.
type Disk struct {
	Live  *hostfs.LiveConfig
	State *hostfs.State
	// SystemID is .runner_system_id as the file holds it ("" when missing
	// or not a system id); Derived the id gitlab-runner would derive on
	// this machine; Random a random one in gitlab-runner's format, for a
	// clone whose derived id is the other machine's.
	SystemID, Derived, Random string
	// Host is this host now (name, machine, hardware; its SystemID unset).
	Host hostfs.HostRecord
}

// Identity is who this host is for the pass, from what the disk holds:
// the lineage table's verdict, the system id to use, the evidence that
// follows (for a clone, nothing of the other machine's is this host's),
// and the host steps that carry it out.
type Identity struct {
	Lineage LineageRow
	// SystemID is the id every request sends; Host the record the state
	// file is written for.
	SystemID string
	Host     hostfs.HostRecord
	// Live and State are what the plan works from: for a clone, an empty
	// config and a fresh state (keeping the tokens' and namespaces'
	// records, which are about GitLab), and Inherited the entries left
	// alone.
	Live      *hostfs.LiveConfig
	State     *hostfs.State
	Inherited []hostfs.LiveRunner
	Steps     []HostStep
	// Warnings say what the verdict means.
	Warnings []string
}

// Identify decides the pass's identity from the disk (pure).
func Identify(d Disk, hostname string) Identity {
	id := Identity{SystemID: d.SystemID, Host: d.Host, Live: d.Live, State: d.State}
	if id.SystemID == "" {
		id.SystemID = d.Derived
		id.Steps = append(id.Steps, HostStep{Kind: WriteSystemID, SystemID: d.Derived, Why: "no system id on disk: derived as gitlab-runner derives it"})
	}
	id.Host.SystemID = id.SystemID
	id.Lineage = Lineage(d.State.Host, id.Host)
	switch id.Lineage.Then {
	case Cloned:
		fresh := d.Derived
		if fresh == id.SystemID || (d.State.Host != nil && fresh == d.State.Host.SystemID) {
			fresh = d.Random
		}
		id.Warnings = append(id.Warnings, fmt.Sprintf("this prefix's files were generated on another machine (%s: %s); starting a fresh identity for this host (system id %s) and leaving that machine's runners alone", id.Lineage.Name, id.Lineage.When, fresh))
		id.SystemID, id.Host.SystemID = fresh, fresh
		id.Steps = []HostStep{{Kind: WriteSystemID, SystemID: fresh, Why: "the prefix came from another machine"},
			{Kind: FreshIdentity, Why: id.Lineage.Name + ": " + id.Lineage.When}}
		id.Inherited = d.Live.Runners
		id.State = &hostfs.State{Version: 1, Runners: map[string]hostfs.StateRunner{}, Tokens: d.State.Tokens, Namespaces: d.State.Namespaces}
		id.Live = &hostfs.LiveConfig{Exists: d.Live.Exists, Raw: d.Live.Raw}
	case Renamed:
		id.Warnings = append(id.Warnings, fmt.Sprintf("this host was renamed from %s to %s; it keeps its runners, whose descriptions and tags follow the new name", d.State.Host.Hostname, hostname))
	}
	return id
}

// Evidence starts the evidence of a pass from what is declared and the
// pass's identity: the live config matched to the declaration.
func (id Identity) Evidence(d *config.Desired) Evidence {
	ev := NewEvidence()
	ev.Desired, ev.State, ev.SystemID, ev.Inherited = d, id.State, id.SystemID, id.Inherited
	ev.Prev = MatchPrevious(d, id.Live, id.State)
	ev.HostSteps = id.Steps
	return ev
}

package plan

import "github.com/gitlab-runner-auth/gitlab-runner-auth/internal/hostfs"

// Kinship is how the host running now relates to the host the prefix's
// files were generated for.
type Kinship int

// The answers of Lineage.
const (
	// SameHost: the files are this host's (or nothing says otherwise).
	SameHost Kinship = iota
	// Renamed: the same machine under another host name: it keeps its
	// runners, whose descriptions and tags follow the new name.
	Renamed
	// Cloned: the files were copied from another machine (an image): this
	// host starts a fresh identity and never touches that machine's runners.
	Cloned
)

// LineageRow is one row of the lineage table.
type LineageRow struct {
	Name string
	When string
	Then Kinship
}

// The lineage table, in the order rows are tried. Machines are compared
// by fingerprints of the machine id (the id gitlab-runner derives its
// system id from) and of the hardware's own identity (DMI product UUID,
// else the permanent MAC addresses).
var (
	LineageUnrecorded      = LineageRow{"unrecorded", "the state file names no host (first run, or written by an older version)", SameHost}
	LineageOtherMachine    = LineageRow{"other machine id", "the machine id differs from the one the files were generated for", Cloned}
	LineageSame            = LineageRow{"same host", "same machine id and host name", SameHost}
	LineageOtherHardware   = LineageRow{"other hardware", "same machine id, another host name, and other hardware: a clone of an image with a fixed machine id", Cloned}
	LineageRenamed         = LineageRow{"renamed", "same machine id and hardware, another host name", Renamed}
	LineageUnknownHardware = LineageRow{"unknown hardware", "same machine id, another host name, and the hardware cannot be compared: a rename cannot be told from a clone, so it is taken for a clone (never touching another host's runners)", Cloned}
)

// LineageTable is the lineage table in the order rows are tried.
var LineageTable = []LineageRow{LineageUnrecorded, LineageOtherMachine, LineageSame, LineageOtherHardware, LineageRenamed, LineageUnknownHardware}

// Lineage decides whether the prefix's files were generated on this host.
func Lineage(recorded *hostfs.HostRecord, now hostfs.HostRecord) LineageRow {
	switch {
	case recorded == nil:
		return LineageUnrecorded
	case recorded.Machine != now.Machine:
		return LineageOtherMachine
	case recorded.Hostname == now.Hostname:
		return LineageSame
	case recorded.Hardware != "" && now.Hardware != "" && recorded.Hardware != now.Hardware:
		return LineageOtherHardware
	case recorded.Hardware != "" && recorded.Hardware == now.Hardware:
		return LineageRenamed
	}
	return LineageUnknownHardware
}

package plan

// Row is one rule of the decision table: when it applies and what the
// plan does. Rows are tried in the order of the table; the first that
// applies decides. "This host's" below is the ownership table's verdict
// (ownership.go): Mine, or Reclaimable where a row says so. docs/design.md
// shows both tables, and a test keeps them the same.
type Row struct {
	Name string
	When string
	Then Action
	Does string
}

// The rows for a declared executor whose token is on disk.
var (
	RowOrphaned = Row{"orphaned", "its token is on disk and GitLab says the runner is orphaned (its group or project is gone: 422, or 403 \"Runner is orphaned\" since 17.9)",
		Keep, "nothing; the executor fails alone, naming the fix"}
	RowVerified = Row{"verified", "verify accepts its token and the settings GitLab holds match (or are unknown)",
		Keep, "nothing"}
	RowDrifted = Row{"drifted", "verify accepts its token, the settings differ (a renamed host's description and tags, say), a personal access token is given",
		Update, "PUT /runners/:id"}
	RowUnmarkedNoPAT = Row{"unmarked, no PAT", "verify accepts its token, the settings differ only in the fleet's mark (a runner registered before marks), no personal access token is given",
		Keep, "nothing: the mark comes with the next create or update (prune keeps an unmarked runner)"}
	RowDriftedNoPAT = Row{"drifted, no PAT", "verify accepts its token, the settings differ, only a registration token is given",
		Replace, "register a new runner, then delete the old one by its token"}
	RowDriftedNoFix = Row{"drifted, no credentials", "verify accepts its token, the settings differ, no token can change them",
		Keep, "nothing"}
	RowRejectedUnreadable = Row{"rejected, unreadable", "verify rejects its token and GitLab could not tell about its runner (5xx, no answer)",
		Adopt, "nothing; the executor fails alone, so no duplicate is registered"}
	RowRejectedForbidden = Row{"rejected, forbidden", "verify rejects its token and the personal access token may not read its runner (403)",
		Replace, "nothing; the executor fails alone (a 403 never means gone)"}
	RowRejectedMine = Row{"rejected, heal", "verify rejects its token (expired while the host was off, revoked), its runner exists and is this host's",
		Adopt, "reset the token by id"}
	RowRejectedFound = Row{"rejected, found", "verify rejects its token, its own runner is not this host's to heal, and another runner with its identity is this host's or reclaimable",
		Adopt, "reset that runner's token"}
	RowRejectedGone = Row{"rejected, replace", "verify rejects its token and no runner of it is this host's (gone, another host's, or unprovable without a PAT: named)",
		Replace, "register a new runner"}
)

// The rows for a declared executor without a token on disk.
var (
	RowLostUnreadable = Row{"no token, unreadable", "a runner with its identity (or the one the state file names) could not be read (5xx, no answer)",
		Adopt, "nothing; the executor fails alone, so no duplicate is registered"}
	RowLostNamed = Row{"no token, named", "the state file names its runner, which exists and is this host's",
		Adopt, "reset its token by id (and PUT its settings if they differ)"}
	RowLostMayNotList = Row{"no token, may not list", "the personal access token may not list runners",
		Create, "nothing; the executor fails alone, so no duplicate is registered"}
	RowLostFound = Row{"no token, found", "a runner with its identity is this host's, or reclaimable (the state file's id first, then the newest)",
		Adopt, "reset its token (and PUT its settings if they differ)"}
	RowNew = Row{"new", "no runner with its identity is this host's or reclaimable",
		Create, "register a new runner; the runners with its identity left alone are named"}
)

// The rows for runners no declared executor keeps.
var (
	RowUndeclared = Row{"undeclared", "an entry of this host's config whose executor is no longer declared, its token works (or GitLab did not answer), no other host uses it (its managers read, or none readable without a PAT)",
		Delete, "DELETE /runners with its token"}
	RowUndeclaredShared = Row{"undeclared, shared", "such an entry whose token works, and another host uses the runner",
		Detach, "DELETE /runners/managers: only this host's manager goes"}
	RowUndeclaredMine = Row{"undeclared, token dead", "such an entry whose token is rejected, its runner exists and is this host's",
		Delete, "DELETE /runners/:id"}
	RowUndeclaredGone = Row{"undeclared, gone", "such an entry whose token is rejected and whose runner GitLab no longer has",
		Forget, "nothing to send: the entry leaves the config"}
	RowUndeclaredLeft = Row{"undeclared, not this host's", "such an entry whose token is rejected, and its runner is another host's or cannot be checked (no PAT)",
		Forget, "nothing to send: the entry leaves the config, the runner is named"}
	RowUndeclaredUnknown = Row{"undeclared, unknown", "such an entry whose runner GitLab could not tell about (whether it is this host's, or whether another host uses it), or that cannot be deleted without a PAT",
		Delete, "nothing; the entry stays, the run fails for it"}
	RowDuplicate = Row{"duplicate", "another runner with a declared executor's identity (left by an interrupted run, or by an earlier life of this host) is this host's or reclaimable",
		Delete, "DELETE /runners/:id"}
	RowLeftover = Row{"leftover", "a runner listed with this host's and instance's identity whose executor is not declared is this host's or reclaimable",
		Delete, "DELETE /runners/:id"}
	RowInherited = Row{"inherited", "an entry of a config this prefix brought from another machine (a copied image)",
		Forget, "nothing to send: the entry leaves this host's config; the runner is the other machine's, named"}
	RowNotMine = Row{"not this host's", "a runner with this host's identity that is neither this host's nor reclaimable",
		"", "nothing: left alone, and named in the result (left_behind) and a warning"}
)

// The rows for the last good entry of a declared executor whose file is
// invalid (a service start serves what it can: the executor is skipped,
// its runner neither deleted nor taken for a leftover). Its token is
// verified like any other; a token GitLab rejects is never kept.
var (
	RowHeldVerified = Row{"invalid file, token verified", "the executor's file is invalid and verify accepts the token of its last good entry (or says the runner is orphaned, as for any executor)",
		Keep, "nothing; the entry stays, verbatim, in its place"}
	RowHeldRejected = Row{"invalid file, token rejected", "the executor's file is invalid and verify rejects the token of its last good entry",
		Forget, "nothing; the entry leaves the config, the state file still names the runner (healed by id once the file is fixed)"}
	RowHeldUnverified = Row{"invalid file, GitLab silent", "the executor's file is invalid and GitLab did not answer the verify of its last good entry",
		Keep, "nothing; the entry stays unverified, as on a degraded start"}
)

// HeldTable is the table of held entries in the order rows are tried.
var HeldTable = []Row{RowHeldVerified, RowHeldRejected, RowHeldUnverified}

// The rows for a removal an earlier run could not finish (the state
// file's pending list): its entry has left the config. A host deletes
// only what it can prove its own, even from its own state file: the
// removal carries its proof — the runner's token, or this host's system
// id and the runner's description — and is made only when GitLab bears
// it out.
var (
	RowPendingToken = Row{"pending, token works", "the removal carries the runner's token and verify accepts it (or GitLab did not answer), no other host uses it (its managers read, or none readable without a PAT)",
		Delete, "DELETE /runners with its token"}
	RowPendingShared = Row{"pending, shared", "the removal carries the runner's token, verify accepts it, and another host uses the runner",
		Detach, "DELETE /runners/managers: only this host's manager goes"}
	RowPendingProven = Row{"pending, proven by id", "its token is dead or missing; read by id, the runner has the description the removal recorded and a manager with the system id it recorded (this host's), and no other host uses it",
		Delete, "DELETE /runners/:id"}
	RowPendingGone = Row{"pending, gone", "its token is dead or missing and GitLab no longer has the runner",
		Forget, "nothing: the removal is done"}
	RowPendingUnknown = Row{"pending, unknown", "the runner could not be read (5xx, no answer; a 403 when its token is dead): whether it is this host's, or whether another host uses it, is unknown",
		Delete, "nothing; the removal stays pending (a warning; --strict fails)"}
	RowPendingUnproven = Row{"pending, unproven", "anything else: no token that works and no proof GitLab bears out (no description or system id recorded, another description, no manager of this host, no personal access token to read it)",
		Forget, "nothing: the removal is dropped, the runner named (left_behind)"}
)

// PendingTable is the table of pending removals in the order rows are
// tried.
var PendingTable = []Row{RowPendingToken, RowPendingShared, RowPendingProven, RowPendingGone, RowPendingUnknown, RowPendingUnproven}

// Table is the decision table in the order rows are tried.
var Table = []Row{
	RowOrphaned, RowVerified, RowDrifted, RowUnmarkedNoPAT, RowDriftedNoPAT, RowDriftedNoFix,
	RowRejectedUnreadable, RowRejectedForbidden, RowRejectedMine, RowRejectedFound, RowRejectedGone,
	RowLostUnreadable, RowLostNamed, RowLostMayNotList, RowLostFound, RowNew,
	RowUndeclared, RowUndeclaredShared, RowUndeclaredMine, RowUndeclaredGone, RowUndeclaredLeft, RowUndeclaredUnknown,
	RowDuplicate, RowLeftover, RowInherited, RowNotMine,
}

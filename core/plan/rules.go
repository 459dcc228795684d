package plan

// Row is one rule of the decision table: when it applies and what the
// plan does. Rows are tried in the order of the table; the first that
// applies decides. The README's "How it works" shows this table, and a
// test keeps the two the same.
type Row struct {
	Name string
	When string
	Then Action
	Does string
}

// The rows for a declared executor whose token is on disk.
var (
	RowOrphaned = Row{"orphaned", "its token is on disk and verify says the runner is orphaned (its group or project is gone)",
		Keep, "nothing; the executor fails alone, naming the fix"}
	RowVerified = Row{"verified", "verify accepts its token and the settings GitLab holds match (or are unknown)",
		Keep, "nothing"}
	RowDrifted = Row{"drifted", "verify accepts its token, the settings differ, a personal access token is given",
		Update, "PUT /runners/:id"}
	RowDriftedNoPAT = Row{"drifted, no PAT", "verify accepts its token, the settings differ, only a registration token is given",
		Replace, "register a new runner, then delete the old one by its token"}
	RowDriftedNoFix = Row{"drifted, no credentials", "verify accepts its token, the settings differ, no token can change them",
		Keep, "nothing"}
	RowRejectedUnreadable = Row{"rejected, unreadable", "verify rejects its token and GitLab could not tell about its runner (5xx, no answer)",
		Adopt, "nothing; the executor fails alone, so no duplicate is registered"}
	RowRejectedForbidden = Row{"rejected, forbidden", "verify rejects its token and the personal access token may not read its runner (403)",
		Replace, "nothing; the executor fails alone (a 403 never means gone)"}
	RowRejectedMine = Row{"rejected, this host's", "verify rejects its token, its runner exists and its managers show this host",
		Adopt, "reset the token by id"}
	RowRejectedFound = Row{"rejected, found", "verify rejects its token and another runner with its identity is provably this host's",
		Adopt, "reset that runner's token"}
	RowRejectedGone = Row{"rejected, gone", "verify rejects its token and no runner of it is provably this host's",
		Replace, "register a new runner"}
)

// The rows for a declared executor without a token on disk.
var (
	RowLostUnreadable = Row{"no token, unreadable", "a runner with its identity could not be read (5xx, no answer)",
		Adopt, "nothing; the executor fails alone, so no duplicate is registered"}
	RowLostMayNotList = Row{"no token, may not list", "the personal access token may not list runners",
		Create, "nothing; the executor fails alone, so no duplicate is registered"}
	RowLostFound = Row{"no token, found", "a runner with its identity is provably this host's (the state file's id first, then the newest)",
		Adopt, "reset its token (and PUT its settings if they differ)"}
	RowNew = Row{"new", "no runner with its identity is provably this host's",
		Create, "register a new runner"}
)

// The rows for runners no declared executor keeps.
var (
	RowUndeclared = Row{"undeclared", "an entry of this host's config whose executor is no longer declared, and its token works (or GitLab did not answer)",
		Delete, "DELETE /runners with its token"}
	RowUndeclaredMine = Row{"undeclared, token dead", "such an entry whose token is rejected, and its managers show this host",
		Delete, "DELETE /runners/:id"}
	RowUndeclaredGone = Row{"undeclared, gone", "such an entry whose token is rejected, and GitLab no longer has the runner (or cannot be asked without a PAT)",
		Delete, "nothing to send: the entry leaves the config"}
	RowUndeclaredNotMine = Row{"undeclared, not this host's", "such an entry whose token is rejected, and its runner is not provably this host's",
		Delete, "nothing to send: the entry leaves the config, the runner is left alone and named"}
	RowUndeclaredUnknown = Row{"undeclared, unknown", "such an entry whose runner GitLab could not tell about, or that cannot be deleted without a PAT",
		Delete, "nothing; the entry stays, the run fails for it"}
	RowDuplicate = Row{"duplicate", "another runner with a declared executor's identity (left by an interrupted run) is provably this host's",
		Delete, "DELETE /runners/:id"}
	RowLeftover = Row{"leftover", "a runner listed with this host's and instance's identity whose executor is not declared is provably this host's",
		Delete, "DELETE /runners/:id"}
	RowNotMine = Row{"not this host's", "a runner with this host's identity that is not provably this host's (another host's managers, or none)",
		"", "nothing: left alone, and named in a warning"}
)

// Table is the decision table in the order rows are tried.
var Table = []Row{
	RowOrphaned, RowVerified, RowDrifted, RowDriftedNoPAT, RowDriftedNoFix,
	RowRejectedUnreadable, RowRejectedForbidden, RowRejectedMine, RowRejectedFound, RowRejectedGone,
	RowLostUnreadable, RowLostMayNotList, RowLostFound, RowNew,
	RowUndeclared, RowUndeclaredMine, RowUndeclaredGone, RowUndeclaredNotMine, RowUndeclaredUnknown,
	RowDuplicate, RowLeftover, RowNotMine,
}

package gitlabsim

import (
	"sort"
	"time"
)

// The simulator's clock and what GitLab does as time passes: its hourly
// clean-up jobs and the way it records when runners and runner managers
// were last seen.
//
// The clock is Options.Now (the wall clock by default) plus an offset that
// Advance and SetNow move. Scheduled jobs run lazily: before any request or
// read of the state, every firing due since the last one is run in order,
// each at its own time, so a test that advances ten days sees what ten days
// of hourly runs would have left.

// Now is the simulator's current time.
func (s *Sim) Now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.now()
}

func (s *Sim) now() time.Time { return s.opts.Now().Add(s.offset).UTC() }

// Advance moves the clock forward by d (a negative d is ignored) and runs
// every scheduled job GitLab would have run meanwhile.
func (s *Sim) Advance(d time.Duration) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d > 0 {
		s.offset += d
	}
	s.housekeep()
	return s.now()
}

// SetNow sets the clock. Moving it forward runs the jobs due meanwhile;
// moving it back runs none (and none of the skipped ones again).
func (s *Sim) SetNow(t time.Time) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.offset = t.Sub(s.opts.Now())
	s.housekeep()
	return s.now()
}

// Housekeeping returns the runs of GitLab's scheduled jobs that deleted
// something, oldest first.
func (s *Sim) Housekeeping() []HousekeepingRun {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.housekeep()
	out := make([]HousekeepingRun, len(s.cronRuns))
	for i, r := range s.cronRuns {
		out[i] = r
		out[i].Deleted = append([]Deleted(nil), r.Deleted...)
	}
	return out
}

// HousekeepingRun is one run of a scheduled GitLab job that deleted
// something.
type HousekeepingRun struct {
	// Job is "stale-managers" or "stale-group-runners".
	Job     string    `json:"job"`
	At      time.Time `json:"at"`
	Deleted []Deleted `json:"deleted"`
}

// Deleted names what a job deleted: a runner manager (RunnerID and its
// SystemID) or a whole runner (SystemID empty).
type Deleted struct {
	RunnerID int64  `json:"runner_id"`
	SystemID string `json:"system_id,omitempty"`
}

// cronJob is one of GitLab's sidekiq-cron jobs that change what the runner
// API shows. Each runs hourly at minute `minute` (cron "M * * * *").
type cronJob struct {
	name   string
	minute int
	// due is the earliest time the job would find something to delete
	// (zero: nothing can be due until the state changes).
	due func(s *Sim) time.Time
	run func(s *Sim, at time.Time) []Deleted
	// source is where GitLab schedules and implements it.
	source string
}

var cronJobs = []cronJob{
	{
		name: "stale-group-runners", minute: 30, due: (*Sim).staleGroupRunnersDue, run: (*Sim).pruneStaleGroupRunners,
		source: "config/initializers/1_settings.rb (ee) ci_runners_stale_group_runners_prune_worker_cron '30 * * * *'; " +
			"ee/app/workers/ci/runners/stale_group_runners_prune_cron_worker.rb; ee/app/services/ci/runners/stale_group_runners_prune_service.rb",
	},
	{
		name: "stale-managers", minute: 36, due: (*Sim).staleManagersDue, run: (*Sim).cleanupStaleManagers,
		source: "config/initializers/1_settings.rb ci_runners_stale_machines_cleanup_worker '36 * * * *'; " +
			"app/workers/ci/runners/stale_machines_cleanup_cron_worker.rb; app/services/ci/runners/stale_managers_cleanup_service.rb",
	},
}

// housekeep runs, in time order, every firing of every job due up to now.
// Firings that cannot find anything to delete are skipped without running.
// Callers hold s.mu.
func (s *Sim) housekeep() {
	now := s.now()
	if now.Before(s.cronNext) {
		return // no firing since the last look
	}
	if s.cronLast == nil {
		s.cronLast = map[string]time.Time{}
	}
	for {
		var job *cronJob
		var at time.Time
		for i := range cronJobs {
			j := &cronJobs[i]
			due := j.due(s)
			if due.IsZero() {
				continue
			}
			from := s.cronLast[j.name]
			if from.IsZero() {
				from = s.started
			}
			if due.After(from) {
				from = due.Add(-time.Nanosecond)
			}
			t := nextFiring(from, j.minute)
			if t.After(now) {
				continue
			}
			if job == nil || t.Before(at) {
				job, at = j, t
			}
		}
		if job == nil {
			break
		}
		if deleted := job.run(s, at); len(deleted) > 0 {
			s.cronRuns = append(s.cronRuns, HousekeepingRun{Job: job.name, At: at, Deleted: deleted})
		}
		s.cronLast[job.name] = at
	}
	s.cronNext = time.Time{}
	for _, j := range cronJobs {
		if now.After(s.cronLast[j.name]) {
			s.cronLast[j.name] = now
		}
		if t := nextFiring(s.cronLast[j.name], j.minute); s.cronNext.IsZero() || t.Before(s.cronNext) {
			s.cronNext = t
		}
	}
}

// nextFiring is the first time after t at minute m of an hour.
func nextFiring(t time.Time, m int) time.Time {
	f := t.Truncate(time.Hour).Add(time.Duration(m) * time.Minute)
	if !f.After(t) {
		f = f.Add(time.Hour)
	}
	return f
}

// managerStaleAfter is Ci::RunnerManager::STALE_TIMEOUT (app/models/ci/runner_manager.rb).
const managerStaleAfter = 7 * 24 * time.Hour

// Limits of Ci::Runners::StaleManagersCleanupService.
const (
	staleManagersMax      = 1000 // MAX_DELETIONS
	staleManagersSubBatch = 100  // SUB_BATCH_LIMIT
)

// staleManagersDue: a manager is in Ci::RunnerManager.stale once both its
// created_at and its contacted_at *column* (NULL: never contacted) are at
// least STALE_TIMEOUT old.
func (s *Sim) staleManagersDue() time.Time {
	var due time.Time
	for _, r := range s.runners {
		for _, m := range r.Managers {
			t := later(m.CreatedAt, m.contactedDB).Add(managerStaleAfter)
			if due.IsZero() || t.Before(due) {
				due = t
			}
		}
	}
	return due
}

// cleanupStaleManagers is Ci::Runners::StaleManagersCleanupService#execute:
// sub-batches of 100 stale managers (`Ci::RunnerManager.stale.limit(100)`,
// in id order here), until a sub-batch deletes none or 1000 are gone.
func (s *Sim) cleanupStaleManagers(at time.Time) []Deleted {
	deadline := at.Add(-managerStaleAfter)
	type ref struct {
		runner int64
		m      Manager
	}
	var stale []ref
	for id, r := range s.runners {
		for _, m := range r.Managers {
			if !m.CreatedAt.After(deadline) && !m.contactedDB.After(deadline) {
				stale = append(stale, ref{id, m})
			}
		}
	}
	sort.Slice(stale, func(i, j int) bool { return stale[i].m.ID < stale[j].m.ID })
	var out []Deleted
	for len(out) < staleManagersMax && len(stale) > 0 {
		n := min(staleManagersSubBatch, len(stale))
		for _, st := range stale[:n] {
			delete(s.runners[st.runner].Managers, st.m.SystemID)
			out = append(out, Deleted{RunnerID: st.runner, SystemID: st.m.SystemID})
		}
		stale = stale[n:]
	}
	return out
}

// staleGroupRunnersDue: group runners of groups that turned on stale runner
// pruning become due once Ci::Runner.stale holds for them (created_at and
// the contacted_at column at least Profile.RunnerStaleAfter old).
func (s *Sim) staleGroupRunnersDue() time.Time {
	var due time.Time
	for _, r := range s.runners {
		if !s.prunes(r) {
			continue
		}
		t := s.profile.RunnerStaleAfter.After(later(r.CreatedAt, r.contactedDB))
		if due.IsZero() || t.Before(due) {
			due = t
		}
	}
	return due
}

// prunes tells whether the runner belongs directly to a group with
// namespace_ci_cd_settings.allow_stale_runner_pruning
// (`Ci::Runner.belonging_to_group(namespace_ids)`: not its subgroups').
func (s *Sim) prunes(r *Runner) bool {
	if r.RunnerType != "group_type" {
		return false
	}
	g := s.groupByID(r.GroupID)
	return g != nil && g.StaleRunnerPruning
}

// pruneStaleGroupRunners is Ci::Runners::StaleGroupRunnersPruneService:
// `stale_runners(namespace_ids).delete_all`, no limit.
func (s *Sim) pruneStaleGroupRunners(at time.Time) []Deleted {
	deadline := s.profile.RunnerStaleAfter.Before(at)
	var out []Deleted
	for id, r := range s.runners {
		if s.prunes(r) && !r.CreatedAt.After(deadline) && !r.contactedDB.After(deadline) {
			delete(s.runners, id)
			out = append(out, Deleted{RunnerID: id})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].RunnerID < out[j].RunnerID })
	return out
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// How GitLab records a contact (Ci::Runner#heartbeat,
// Ci::RunnerManager#heartbeat, RedisCacheable): the time goes to a Redis
// cache kept 24 hours (CACHED_ATTRIBUTES_EXPIRY_TIME) on every contact, and
// to the database column only when the column is older than a random
// 40–55 minutes (UPDATE_CONTACT_COLUMN_EVERY, persist_cached_data?). The
// API reads the cache, falling back to the column; the stale scopes and
// list filters query the column.
const (
	contactCacheTTL   = 24 * time.Hour
	contactWriteFloor = 40 * time.Minute
	contactWriteSpan  = 15 * time.Minute
)

// touch records a contact at now in the cache (*last) and, when due, in
// the column (*column). Callers hold s.mu.
func (s *Sim) touch(last, column *time.Time, now time.Time) {
	*last = now
	// Random.rand(40.minutes..55.minutes): whole seconds, both ends included.
	maxAge := contactWriteFloor + time.Duration(s.rng.IntN(int(contactWriteSpan/time.Second)+1))*time.Second
	if column.IsZero() || now.Sub(*column) >= maxAge {
		*column = now
	}
}

// seen is the contacted_at the API shows: the cached value while the cache
// lives, else the column (cached_attr_reader).
func seen(last, column, now time.Time) time.Time {
	if !last.IsZero() && now.Sub(last) < contactCacheTTL {
		return last
	}
	return column
}

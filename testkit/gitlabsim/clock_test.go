package gitlabsim

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// Time in the simulator, over HTTP: GitLab's hourly clean-ups, the way it
// records contacts, token expiry, and releases changing under a running
// simulator. Each test names the GitLab source it follows.

// t0 is a Monday 10:00 UTC.
var t0 = time.Date(2025, 3, 3, 10, 0, 0, 0, time.UTC)

func newClockSim(t *testing.T, opts Options) (*Sim, *httptest.Server) {
	t.Helper()
	opts.Now = func() time.Time { return t0 }
	opts.PATs = append(opts.PATs, PAT{Name: "admin", Value: "adm", Scopes: []string{"api"}, Admin: true})
	s := New(opts)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, srv
}

// createRunner creates an instance runner and returns its id and token.
func createRunner(t *testing.T, srv *httptest.Server) (string, string) {
	t.Helper()
	r := do(t, srv, "POST", "/api/v4/user/runners", "adm", map[string]any{"runner_type": "instance_type"})
	if r.status != 201 {
		t.Fatalf("create: %d %v", r.status, r.body)
	}
	return fmt.Sprint(r.body["id"]), r.body["token"].(string)
}

func poll(t *testing.T, srv *httptest.Server, token, systemID string) {
	t.Helper()
	if r := do(t, srv, "POST", "/api/v4/jobs/request", "", map[string]any{"token": token, "system_id": systemID}); r.status != 204 {
		t.Fatalf("job poll: %d %v", r.status, r.body)
	}
}

func managers(t *testing.T, srv *httptest.Server, id string) []map[string]any {
	t.Helper()
	r := do(t, srv, "GET", "/api/v4/runners/"+id+"/managers", "adm", nil)
	if r.status != 200 {
		t.Fatalf("managers: %d %v", r.status, r.body)
	}
	return r.list
}

func jsonTime(t *testing.T, v any) time.Time {
	t.Helper()
	s, _ := v.(string)
	tm, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatalf("not a time: %v", v)
	}
	return tm
}

// Ci::Runners::StaleManagersCleanupService, run by
// Ci::Runners::StaleMachinesCleanupCronWorker at minute 36 of every hour
// (config/initializers/1_settings.rb), deletes the managers in
// Ci::RunnerManager.stale: created and last contacted 7 days ago or more.
func TestStaleManagerCleanupRunsHourly(t *testing.T) {
	s, srv := newClockSim(t, Options{})
	id, token := createRunner(t, srv)
	poll(t, srv, token, "s_000000000001") // contacted at t0, written to the column (it was NULL)

	s.Advance(7*24*time.Hour - time.Hour)
	ms := managers(t, srv, id)
	if len(ms) != 1 || ms[0]["status"] != "offline" || !jsonTime(t, ms[0]["contacted_at"]).Equal(t0) {
		t.Fatalf("a day short of the stale window: %v", ms)
	}
	s.SetNow(t0.Add(7*24*time.Hour + 35*time.Minute))
	if ms := managers(t, srv, id); len(ms) != 1 || ms[0]["status"] != "stale" {
		t.Fatalf("stale, before the hourly run: %v", ms)
	}
	s.Advance(time.Minute)
	if ms := managers(t, srv, id); len(ms) != 0 {
		t.Fatalf("the 10:36 run must have deleted it: %v", ms)
	}
	runs := s.Housekeeping()
	want := t0.Add(7*24*time.Hour + 36*time.Minute)
	if len(runs) != 1 || runs[0].Job != "stale-managers" || !runs[0].At.Equal(want) || len(runs[0].Deleted) != 1 || runs[0].Deleted[0].SystemID != "s_000000000001" {
		t.Fatalf("housekeeping: %+v, want one run at %s", runs, want)
	}
	// The runner stays; its token works and makes a new manager.
	poll(t, srv, token, "s_000000000001")
	if ms := managers(t, srv, id); len(ms) != 1 || ms[0]["status"] != "online" {
		t.Fatalf("a contact after the clean-up records a new manager: %v", ms)
	}
}

// MAX_DELETIONS = 1000 a run, in sub-batches of SUB_BATCH_LIMIT = 100.
func TestStaleManagerCleanupDeletesAThousandARun(t *testing.T) {
	s, _ := newClockSim(t, Options{})
	ms := map[string]Manager{}
	for i := range 1500 {
		ms[fmt.Sprintf("s_%012d", i)] = Manager{CreatedAt: t0.Add(-8 * 24 * time.Hour)}
	}
	id := s.AddRunner(Runner{Managers: ms})
	s.Advance(time.Hour) // 10:36
	if r, _ := s.Runner(id); len(r.Managers) != 500 {
		t.Fatalf("after one run %d managers, want 500", len(r.Managers))
	}
	s.Advance(time.Hour) // 11:36
	if r, _ := s.Runner(id); len(r.Managers) != 0 {
		t.Fatalf("after two runs %d managers, want 0", len(r.Managers))
	}
	if runs := s.Housekeeping(); len(runs) != 2 || len(runs[0].Deleted) != 1000 || len(runs[1].Deleted) != 500 {
		t.Fatalf("runs: %d", len(runs))
	}
}

// Ci::RunnerManager#heartbeat writes contacted_at to the database only when
// the column is 40–55 minutes old (persist_cached_data?); the API reads the
// 24-hour Redis cache first (RedisCacheable). So after a day of silence the
// API shows the column, which is what the stale clean-up compares.
func TestContactedAtCacheAndColumn(t *testing.T) {
	s, srv := newClockSim(t, Options{Seed: 7})
	id, token := createRunner(t, srv)
	var last time.Time
	for i := range 13 { // every 10 minutes for two hours
		poll(t, srv, token, "s_000000000001")
		last = s.Now()
		if i < 12 {
			s.Advance(10 * time.Minute)
		}
	}
	if got := jsonTime(t, managers(t, srv, id)[0]["contacted_at"]); !got.Equal(last) {
		t.Fatalf("within a day the API shows the last contact %s, got %s", last, got)
	}
	if got := jsonTime(t, do(t, srv, "GET", "/api/v4/runners/"+id, "adm", nil).body["contacted_at"]); !got.Equal(last) {
		t.Fatalf("runner contacted_at %s, want %s", got, last)
	}
	s.SetNow(last.Add(25 * time.Hour))
	column := jsonTime(t, managers(t, srv, id)[0]["contacted_at"])
	if column.After(last) || last.Sub(column) > 55*time.Minute || column.Before(t0) {
		t.Fatalf("after a day the API shows the column: %s, last contact %s", column, last)
	}
	// The clean-up deletes at the first minute 36 once the column is 7 days old.
	s.SetNow(column.Add(7 * 24 * time.Hour))
	s.Advance(time.Hour)
	runs := s.Housekeeping()
	if len(runs) != 1 || runs[0].At.Sub(column) < 7*24*time.Hour || runs[0].At.Sub(column) >= 7*24*time.Hour+time.Hour {
		t.Fatalf("deleted %+v; column %s", runs, column)
	}
}

// The same seed and the same requests write the same times.
func TestContactTimesAreReproducible(t *testing.T) {
	run := func() time.Time {
		s, srv := newClockSim(t, Options{Seed: 42})
		id, token := createRunner(t, srv)
		for range 20 {
			poll(t, srv, token, "s_000000000001")
			s.Advance(7 * time.Minute)
		}
		s.Advance(2 * 24 * time.Hour)
		return jsonTime(t, managers(t, srv, id)[0]["contacted_at"])
	}
	if a, b := run(), run(); !a.Equal(b) {
		t.Fatalf("%s != %s", a, b)
	}
}

// authenticate_runner! (lib/api/ci/helpers/runner.rb): which runner-token
// requests are contacts, per release.
func TestWhichRequestsAreContacts(t *testing.T) {
	// Does a glrt- token's verify contact the runner and its manager? Not
	// up to 17.9 (`update_contacted_at: !registering_created_runner`, MR
	// 113753, MR 133858); probably from ≈18.2 (Ci::Runner#heartbeat lost
	// its update_contacted_at switch; Profile.VerifyContacts).
	verifyContacts := map[string]bool{"16.11": false, "17.0": false, "17.9": false, "18.5": true}
	for _, p := range Profiles() {
		t.Run(p.Version, func(t *testing.T) {
			s, srv := newClockSim(t, Options{Version: p.Version, RegistrationTokensAllowed: true, RegistrationToken: "reg"})
			id, token := createRunner(t, srv)
			contacted := func(id string) any { return do(t, srv, "GET", "/api/v4/runners/"+id, "adm", nil).body["contacted_at"] }

			do(t, srv, "POST", "/api/v4/runners/verify", "", map[string]any{"token": token, "system_id": "s_000000000001"})
			do(t, srv, "POST", "/api/v4/runners/verify", "", map[string]any{"token": token, "system_id": "s_000000000002"})
			c := contacted(id)
			switch want, ok := verifyContacts[p.Version]; {
			case !ok:
				t.Fatalf("no expectation for %s", p.Version)
			case want && (c == nil || !jsonTime(t, c).Equal(s.Now())):
				t.Fatalf("verify of a created runner must contact it in %s: %v", p.Version, c)
			case !want && c != nil:
				t.Fatalf("verify of a created runner contacted it in %s: %v", p.Version, c)
			}
			if p.ManagersRoute {
				want := "never_contacted"
				if verifyContacts[p.Version] {
					want = "online"
				}
				if ms := managers(t, srv, id); len(ms) != 2 || ms[0]["status"] != want || ms[1]["status"] != want {
					t.Fatalf("verify of a created runner records managers %s: %v", want, ms)
				}
			}
			// DELETE /runners/managers contacts the runner, not a manager
			// (`authenticate_runner!(ensure_runner_manager: false)`, 17.9;
			// whether 18.5 still does is not known: the newest helper only
			// heartbeats the runner `if ensure_runner_manager`).
			s.Advance(time.Minute)
			if r := do(t, srv, "DELETE", "/api/v4/runners/managers", "", map[string]any{"token": token, "system_id": "s_000000000001"}); r.status != 204 {
				t.Fatalf("delete manager: %d", r.status)
			}
			if c := contacted(id); !verifyContacts[p.Version] && (c == nil || !jsonTime(t, c).Equal(s.Now())) {
				t.Fatalf("DELETE /runners/managers must contact the runner: %v", c)
			}
			// A legacy token's verify contacts the runner and its manager.
			reg := do(t, srv, "POST", "/api/v4/runners", "", map[string]any{"token": "reg"})
			legacyID, legacy := fmt.Sprint(reg.body["id"]), reg.body["token"].(string)
			s.Advance(time.Minute)
			do(t, srv, "POST", "/api/v4/runners/verify", "", map[string]any{"token": legacy, "system_id": "s_000000000002"})
			if c := contacted(legacyID); c == nil || !jsonTime(t, c).Equal(s.Now()) {
				t.Fatalf("verify of a registered runner must contact it: %v", c)
			}
			if p.ManagersRoute {
				if ms := managers(t, srv, legacyID); len(ms) != 1 || ms[0]["status"] != "online" {
					t.Fatalf("verify of a registered runner contacts its manager: %v", ms)
				}
			}
		})
	}
}

// When DELETE /runners/managers removes a runner's last manager, GitLab
// clears the runner's contacted_at, cache and column, at once
// (Ci::Runners::UnregisterRunnerManagerService `runner.clear_heartbeat if
// runner.runner_managers.empty?`, MR 140572): the runner reads as never
// contacted, and a status=never_contacted listing finds it. Removing a
// manager that is not the last leaves the contact. Every release.
func TestLastManagerGoneClearsTheContact(t *testing.T) {
	for _, p := range Profiles() {
		t.Run(p.Version, func(t *testing.T) {
			s, srv := newClockSim(t, Options{Version: p.Version})
			id, token := createRunner(t, srv)
			poll(t, srv, token, "s_000000000001")
			poll(t, srv, token, "s_000000000002")
			s.Advance(10 * time.Minute)
			details := func() map[string]any { return do(t, srv, "GET", "/api/v4/runners/"+id, "adm", nil).body }
			unregister := func(sid string) {
				t.Helper()
				if r := do(t, srv, "DELETE", "/api/v4/runners/managers", "", map[string]any{"token": token, "system_id": sid}); r.status != 204 {
					t.Fatalf("delete manager %s: %d %v", sid, r.status, r.body)
				}
			}
			unregister("s_000000000001")
			if d := details(); d["contacted_at"] == nil || d["status"] != "online" {
				t.Fatalf("a manager is left, the contact stays: %v %v", d["contacted_at"], d["status"])
			}
			unregister("s_000000000002")
			d := details()
			if d["contacted_at"] != nil || d["status"] != "never_contacted" || d["online"] != false {
				t.Fatalf("the last manager gone, contacted_at must be cleared: %v %v %v", d["contacted_at"], d["status"], d["online"])
			}
			// The column too: the SQL filter finds it never contacted, now
			// and after the day the cache would have lived.
			s.Advance(25 * time.Hour)
			l := do(t, srv, "GET", "/api/v4/runners/all?status=never_contacted", "adm", nil)
			if len(l.list) != 1 || fmt.Sprint(l.list[0]["id"]) != id {
				t.Fatalf("status=never_contacted must list the runner: %v", l.list)
			}
			if d := details(); d["contacted_at"] != nil {
				t.Fatalf("the column was cleared too: %v", d["contacted_at"])
			}
		})
	}
}

// Runner tokens expire at token_expires_at, computed from
// runner_token_expiration_interval (Ci::Runner#compute_token_expiration),
// on the simulator's clock.
func TestTokenExpiryFollowsTheClock(t *testing.T) {
	s, srv := newClockSim(t, Options{TokenLifetime: 72 * time.Hour})
	r := do(t, srv, "POST", "/api/v4/user/runners", "adm", map[string]any{"runner_type": "instance_type"})
	token := r.body["token"].(string)
	if exp := jsonTime(t, r.body["token_expires_at"]); !exp.Equal(t0.Add(72 * time.Hour)) {
		t.Fatalf("token_expires_at %s", exp)
	}
	s.Advance(72*time.Hour - time.Second)
	if v := do(t, srv, "POST", "/api/v4/runners/verify", "", map[string]any{"token": token}); v.status != 200 {
		t.Fatalf("a second before expiry: %d", v.status)
	}
	// token_expires_at itself is still valid: TokenAuthenticatableStrategies::Base
	// finds tokens `token_expires_at >= NOW()` and #expired? is `exp.past?`.
	s.Advance(time.Second)
	if v := do(t, srv, "POST", "/api/v4/runners/verify", "", map[string]any{"token": token}); v.status != 200 {
		t.Fatalf("at the instant of expiry: %d, want 200 (the bound is inclusive)", v.status)
	}
	s.Advance(time.Millisecond)
	if v := do(t, srv, "POST", "/api/v4/runners/verify", "", map[string]any{"token": token}); v.status != 403 {
		t.Fatalf("after expiry: %d", v.status)
	}
}

// Ci::Runners::StaleGroupRunnersPruneCronWorker (ee, minute 30 of every
// hour) deletes the stale runners of groups that turned on stale runner
// pruning: only the group's own, stale by Ci::Runner::STALE_TIMEOUT (3
// months before MR 155795, 7 days after).
func TestStaleGroupRunnerPruning(t *testing.T) {
	for _, tc := range []struct {
		version string
		after   time.Duration
	}{
		{"16.11", t0.AddDate(0, 3, 0).Sub(t0)},
		{"18.5", 7 * 24 * time.Hour},
	} {
		t.Run(tc.version, func(t *testing.T) {
			s, _ := newClockSim(t, Options{Version: tc.version, Groups: []Group{
				{ID: 100, FullPath: "ops", StaleRunnerPruning: true}, {ID: 101, FullPath: "ops/sub"}, {ID: 102, FullPath: "dev"},
			}})
			pruned := s.AddRunner(Runner{RunnerType: "group_type", GroupID: 100})
			sub := s.AddRunner(Runner{RunnerType: "group_type", GroupID: 101})
			other := s.AddRunner(Runner{RunnerType: "group_type", GroupID: 102})
			s.SetNow(t0.Add(tc.after + 29*time.Minute))
			if _, ok := s.Runner(pruned); !ok {
				t.Fatal("pruned before the run at minute 30")
			}
			s.Advance(time.Minute)
			if _, ok := s.Runner(pruned); ok {
				t.Fatal("the run at minute 30 must delete the stale runner")
			}
			for _, id := range []int64{sub, other} {
				if _, ok := s.Runner(id); !ok {
					t.Fatalf("runner %d is not in a pruning group: kept", id)
				}
			}
		})
	}
}

// A release changing under a running simulator: an upgrade from 16.11 to
// 18.5 brings the managers route, turns registration tokens off (the 17.0
// migration, MR 150648) and gives new tokens the partition prefix; what
// exists stays.
func TestUpgradeMidLife(t *testing.T) {
	s, srv := newClockSim(t, Options{Version: "16.11", RegistrationToken: "reg"})
	reg := do(t, srv, "POST", "/api/v4/runners", "", map[string]any{"token": "reg"})
	if reg.status != 201 || strings.HasPrefix(reg.body["token"].(string), "t1_") {
		t.Fatalf("16.11 registers with an unprefixed token: %d %v", reg.status, reg.body)
	}
	id, legacy := fmt.Sprint(reg.body["id"]), reg.body["token"].(string)
	if r := do(t, srv, "GET", "/api/v4/runners/"+id+"/managers", "adm", nil); r.status != 404 || r.body["error"] != "404 Not Found" {
		t.Fatalf("16.11 has no managers route: %d %v", r.status, r.body)
	}
	if err := s.SetVersion("18.5"); err != nil {
		t.Fatal(err)
	}
	if r := do(t, srv, "POST", "/api/v4/runners", "", map[string]any{"token": "reg"}); r.status != 410 {
		t.Fatalf("after the upgrade registration tokens are off: %d", r.status)
	}
	if r := do(t, srv, "POST", "/api/v4/runners/verify", "", map[string]any{"token": legacy, "system_id": "s_000000000001"}); r.status != 200 {
		t.Fatalf("an old token still verifies: %d", r.status)
	}
	if ms := managers(t, srv, id); len(ms) != 1 {
		t.Fatalf("managers after the upgrade: %v", ms)
	}
	if _, token := createRunner(t, srv); !strings.HasPrefix(token, "glrt-t1_") {
		t.Fatalf("new token %q", token)
	}
	if err := s.SetVersion("9.0"); err == nil {
		t.Fatal("an unknown version must be refused")
	}
}

func TestPeriodCountsCalendarMonths(t *testing.T) {
	mar31 := time.Date(2024, 3, 31, 12, 0, 0, 0, time.UTC)
	if got := (Period{Months: 1}).Before(mar31); !got.Equal(time.Date(2024, 2, 29, 12, 0, 0, 0, time.UTC)) {
		t.Fatalf("1 month before Mar 31: %s", got)
	}
	if got := (Period{Months: 3}).After(time.Date(2024, 11, 30, 0, 0, 0, 0, time.UTC)); !got.Equal(time.Date(2025, 2, 28, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("3 months after Nov 30: %s", got)
	}
	if got := (Period{Days: 7}).Before(mar31); !got.Equal(mar31.AddDate(0, 0, -7)) {
		t.Fatalf("7 days: %s", got)
	}
}

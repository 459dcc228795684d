package gitlabsim

import (
	"fmt"
	"testing"
	"time"
)

// The values of the runner entities that differ between releases, over
// HTTP in the conformance world (newWorld). Which keys each release sends
// is keysets_test.go.

// job_execution_status (18.5: Profile.JobExecutionStatus) is "active" while
// the runner, or the manager, has an executing job, else "idle"
// (lib/api/ci/helpers/runner_job_execution_status_helper.rb,
// `with_executing_builds`: running or canceling).
func TestJobExecutionStatus(t *testing.T) {
	p, _ := LookupProfile("18.5")
	s, srv := newWorld(t, p)
	status := func() (runner, listed, manager any) {
		d := expect(t, srv, "GET", "/runners/1", "root-api", nil, 200)
		for _, item := range expectList(t, srv, "/runners/all", "root-api") {
			if idOf(t, item) == 1 {
				listed = item["job_execution_status"]
			}
		}
		for _, m := range expectList(t, srv, "/runners/1/managers", "root-api") {
			if m["system_id"] == "s_bbbbbbbbbbbb" {
				manager = m["job_execution_status"]
			}
		}
		return d["job_execution_status"], listed, manager
	}
	s.EnqueueJob(JobSpec{Script: []string{"true"}, RunnerID: 1})
	if r, l, _ := status(); r != "idle" || l != "idle" {
		t.Fatalf("a queued job is not executing: details %v, list %v", r, l)
	}
	expect(t, srv, "POST", "/runners/verify", "", map[string]any{"token": tokenOf(s, "$tok1"), "system_id": "s_aaaaaaaaaaaa"}, 200)
	// Runner 1 takes the job from host s_bbbbbbbbbbbb.
	code, _, raw := send(t, srv, "POST", "/api/v4/jobs/request", "", map[string]any{"token": tokenOf(s, "$tok1"), "system_id": "s_bbbbbbbbbbbb"})
	if code != 201 {
		t.Fatalf("job request: %d %s", code, raw)
	}
	if r, l, m := status(); r != "active" || l != "active" || m != "active" {
		t.Fatalf("running job: details %v, list %v, manager %v; want active", r, l, m)
	}
	for _, mg := range expectList(t, srv, "/runners/1/managers", "root-api") {
		if mg["system_id"] == "s_aaaaaaaaaaaa" && mg["job_execution_status"] != "idle" {
			t.Fatalf("the other host's manager runs nothing: %v", mg)
		}
	}
	if code, _, raw := send(t, srv, "PUT", "/api/v4/jobs/1", "", map[string]any{"token": tokenOf(s, "$job1"), "state": "success"}); code != 200 {
		t.Fatalf("job update: %d %s", code, raw)
	}
	if r, l, m := status(); r != "idle" || l != "idle" || m != "idle" {
		t.Fatalf("finished job: details %v, list %v, manager %v; want idle", r, l, m)
	}
}

// ip_address: the runner's last address in 16.11 (Ci::Runner's cached
// ip_address, set by every runner-token request), always null from 17.0
// (Profile.RunnerIPAddress). name: the info[name] of a legacy registration
// (`attributes_for_keys(%w[name], params['info'])`), else null.
func TestRunnerIPAddressAndName(t *testing.T) {
	wantIP := map[string]any{"16.11": "127.0.0.1", "17.0": nil, "17.9": nil, "18.5": nil}
	for _, p := range Profiles() {
		t.Run(p.Version, func(t *testing.T) {
			s, srv := newWorld(t, p)
			s.SetRegistrationTokensAllowed(true)
			reg := expect(t, srv, "POST", "/runners", "", map[string]any{"token": "inst-reg", "info": map[string]any{"name": "host-7"}}, 201)
			created := expect(t, srv, "POST", "/user/runners", "root-api", map[string]any{"runner_type": "instance_type"}, 201)
			for _, tok := range []any{reg["token"], created["token"]} {
				expect(t, srv, "POST", "/runners/verify", "", map[string]any{"token": tok, "system_id": "s_cccccccccccc"}, 200)
			}
			want, ok := wantIP[p.Version]
			if !ok {
				t.Fatalf("no expectation for %s", p.Version)
			}
			byID := map[int64]map[string]any{}
			for _, item := range expectList(t, srv, "/runners/all", "root-api") {
				byID[idOf(t, item)] = item
			}
			for _, id := range []int64{idOf(t, reg), idOf(t, created)} {
				d := expect(t, srv, "GET", fmt.Sprintf("/runners/%d", id), "root-api", nil, 200)
				if byID[id]["ip_address"] != want || d["ip_address"] != want {
					t.Errorf("runner %d ip_address: list %v, details %v; want %v", id, byID[id]["ip_address"], d["ip_address"], want)
				}
			}
			if n := byID[idOf(t, reg)]["name"]; n != "host-7" {
				t.Errorf("legacy registration's info[name]: %v", n)
			}
			if n := byID[idOf(t, created)]["name"]; n != nil {
				t.Errorf("a created runner has no name: %v", n)
			}
			// A runner nothing has contacted has no address either.
			if ip := byID[2]["ip_address"]; ip != nil {
				t.Errorf("runner 2 never called GitLab: ip_address %v", ip)
			}
		})
	}
}

// RunnerDetails' version, revision, platform and architecture: in 16.11
// the runner's own columns, which any runner-token request with info
// fills, a glrt- verify included; from 17.0 the most recently contacted
// manager's (Profile.DetailsInfoFromManager).
func TestDetailsVersionSource(t *testing.T) {
	for _, p := range Profiles() {
		t.Run(p.Version, func(t *testing.T) {
			s, srv := newWorld(t, p)
			created := expect(t, srv, "POST", "/user/runners", "root-api", map[string]any{"runner_type": "instance_type"}, 201)
			tok, id := created["token"], idOf(t, created)
			version := func() any {
				return expect(t, srv, "GET", fmt.Sprintf("/runners/%d", id), "root-api", nil, 200)["version"]
			}
			info := func(v string) map[string]any {
				return map[string]any{"version": v, "revision": "abc", "platform": "linux", "architecture": "amd64"}
			}
			expect(t, srv, "POST", "/runners/verify", "", map[string]any{"token": tok, "system_id": "s_cccccccccccc", "info": info("16.11.1")}, 200)
			// 16.x: the runner's own version; later the only manager's
			// (first by contacted_at DESC NULLS LAST, contacted or not).
			if v := version(); v != "16.11.1" {
				t.Fatalf("after a glrt- verify with info: version %v", v)
			}
			// Two hosts poll, an hour apart (so that each contact reaches
			// the column the ordering reads); the second polls last.
			s.Advance(time.Hour)
			code, _, _ := send(t, srv, "POST", "/api/v4/jobs/request", "", map[string]any{"token": tok, "system_id": "s_dddddddddddd", "info": info("17.0.0")})
			s.Advance(time.Hour)
			code2, _, _ := send(t, srv, "POST", "/api/v4/jobs/request", "", map[string]any{"token": tok, "system_id": "s_cccccccccccc", "info": info("17.1.0")})
			if code != 204 || code2 != 204 {
				t.Fatalf("polls: %d %d", code, code2)
			}
			if v := version(); v != "17.1.0" {
				t.Fatalf("the last contact's version: %v", v)
			}
			// The other host sends a new version with a verify: 16.11 shows
			// it (the runner's columns, written by any runner-token request);
			// 17.0 and 17.9 keep the latest contacted manager's, a glrt-
			// verify contacting nothing; 18.5's verify contacts the manager,
			// which becomes the latest.
			s.Advance(time.Hour)
			expect(t, srv, "POST", "/runners/verify", "", map[string]any{"token": tok, "system_id": "s_dddddddddddd", "info": info("17.2.0")}, 200)
			want, ok := map[string]any{"16.11": "17.2.0", "17.0": "17.1.0", "17.9": "17.1.0", "18.5": "17.2.0"}[p.Version]
			if !ok {
				t.Fatalf("no expectation for %s", p.Version)
			}
			if v := version(); v != want {
				t.Fatalf("after the verify: version %v, want %v", v, want)
			}
		})
	}
}

// maintenance_note in RunnerDetails: every reader gets it up to 17.9
// (`expose :maintenance_note`); 18.5 (probably; the fix of issue 551957,
// Profile.MaintenanceNoteToUpdaters) sends null to readers who may not
// update the runner. The list entity never has it.
func TestMaintenanceNoteReaders(t *testing.T) {
	for _, p := range Profiles() {
		t.Run(p.Version, func(t *testing.T) {
			s, srv := newWorld(t, p)
			s.UpdateRunner(2, func(r *Runner) { r.MaintenanceNote = "fleet=a" })
			s.UpdateRunner(1, func(r *Runner) { r.MaintenanceNote = "inst-note" })
			// bob maintains group ops: reads runner 2, may not update it;
			// dave reads instance runner 1 only.
			var hidden any = "fleet=a"
			var hiddenInst any = "inst-note"
			if p.MaintenanceNoteToUpdaters {
				hidden, hiddenInst = nil, nil
			}
			for _, c := range []struct {
				pat  string
				id   int
				want any
			}{{"alice-api", 2, "fleet=a"}, {"root-api", 2, "fleet=a"}, {"bob-api", 2, hidden}, {"dave-api", 1, hiddenInst}, {"root-api", 1, "inst-note"}} {
				d := expect(t, srv, "GET", fmt.Sprintf("/runners/%d", c.id), c.pat, nil, 200)
				if n, ok := d["maintenance_note"]; !ok || n != c.want {
					t.Errorf("%s reads runner %d's maintenance_note %v (present %v), want %v", c.pat, c.id, n, ok, c.want)
				}
			}
			for _, item := range expectList(t, srv, "/runners/all", "root-api") {
				if _, ok := item["maintenance_note"]; ok {
					t.Fatalf("the list entity has no maintenance_note: %v", item)
				}
			}
		})
	}
}

// A REST contacted_at may lag the last poll: GitLab caches every contact
// for 24 hours but writes the column only when it is 40–55 minutes old
// (Ci::Runner::UPDATE_CONTACT_COLUMN_EVERY, persist_cached_data?). Once the
// cache has expired the answer is the column, up to 55 minutes older than
// the last poll.
func TestContactedAtLagsOnceTheCacheExpired(t *testing.T) {
	for _, p := range Profiles() {
		t.Run(p.Version, func(t *testing.T) {
			s, srv := newClockSim(t, Options{Version: p.Version})
			id, token := createRunner(t, srv)
			contacted := func() any { return do(t, srv, "GET", "/api/v4/runners/"+id, "adm", nil).body["contacted_at"] }
			poll(t, srv, token, "s_000000000001") // t0: the column was NULL, so it is written
			s.Advance(39 * time.Minute)
			poll(t, srv, token, "s_000000000001") // t0+39m: cache only (the column is younger than 40 minutes)
			last := s.Now()
			if c := contacted(); c == nil || !jsonTime(t, c).Equal(last) {
				t.Fatalf("while the cache lives, the last poll: %v, want %s", c, last)
			}
			s.Advance(24*time.Hour + time.Minute)
			if c := contacted(); c == nil || !jsonTime(t, c).Equal(t0) {
				t.Fatalf("after the cache expired, the column: %v, want %s (39 minutes before the last poll %s)", c, t0, last)
			}
			d := do(t, srv, "GET", "/api/v4/runners/"+id, "adm", nil).body
			if d["status"] != "offline" {
				t.Fatalf("status from the lagging column: %v", d["status"])
			}
		})
	}
}

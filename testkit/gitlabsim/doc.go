// Package gitlabsim owns a stand-in for the GitLab REST API that runner
// hosts talk to: runner registration and verification, the runners API, the
// personal access token, user, group and project look-ups, and
// gitlab-runner's job traffic (poll, state updates, trace) — answering with
// GitLab's scopes, permissions, status codes and bodies, plus fault
// injection and a secret-free request log that tests assert on.
//
// It is an http.Handler, used like net/http/httptest:
//
//	sim := gitlabsim.New(gitlabsim.Options{Version: "17.9", ...})
//	srv := httptest.NewServer(sim)
//	sim.Advance(10 * 24 * time.Hour) // GitLab's hourly jobs run meanwhile
//	sim.SetVersion("18.5")           // an upgrade under running hosts
//
// Where the files live:
//
//	routes.go       the one route table: method, path, kind, scopes, handler, GitLab source
//	serve.go        plumbing: latency, faults, the request log, parameter parsing
//	auth.go         personal access tokens, scopes and Admin Mode (lib/api/api_guard.rb)
//	policy.go       who may see and change which runner, group and project (app/policies)
//	runner_api.go   endpoints authenticated by runner or registration token (lib/api/ci/runner.rb)
//	jobs_api.go     CI jobs: queued by tests, handed out by the job poll, driven by job-token endpoints
//	runners_api.go  endpoints authenticated by a PAT (lib/api/ci/runners.rb, lib/api/user_runners.rb)
//	directory_api.go users, tokens, groups and projects (lib/api/users.rb, groups.rb, projects.rb)
//	validate.go     the runner attributes GitLab accepts and its model validations (app/models/ci/runner.rb)
//	paginate.go     offset pagination and its headers (lib/gitlab/pagination/offset_pagination.rb)
//	wire.go         entities and error bodies exactly as GitLab writes them (lib/api/entities)
//	tokens.go       token shapes (glrt-t1_…, t1_…, routable tokens)
//	profile.go      the GitLab releases imitated: one Profile of switches each, with citations
//	clock.go        the simulator's clock, GitLab's hourly clean-ups, how contacts are recorded
//	sim.go, state.go the simulator's state and the Go API tests use to arrange it
//	control.go      the /-/sim/ control API for tests in other processes
//	faults.go       fault injection
//
// The simulator shares no types with the client in internal/gitlab on purpose:
// both are written against GitLab, not against each other.
package gitlabsim

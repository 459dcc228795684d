package gitlabsim

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// CI jobs, as far as a runner sees them: a test queues a job (EnqueueJob,
// POST /-/sim/jobs), gitlab-runner takes it with POST /jobs/request (201 and
// the job as Entities::Ci::JobRequest::Response), then reports its state
// with PUT /jobs/:id and appends its log with PATCH /jobs/:id/trace, both
// authenticated by the job's own token (lib/api/ci/runner.rb, namespace
// :jobs; lib/api/ci/helpers/runner.rb authenticate_job!). The simulator
// records the final state, failure reason, exit code and trace, so a test
// can tell whether a job running during a restart finished or was killed.
//
// There are no projects' repositories: a job's GIT_STRATEGY is "none"
// unless the spec says otherwise, and its script runs in an empty folder.

// Job states (app/models/commit_status.rb state machine, the ones a runner
// sees).
const (
	JobPending  = "pending"
	JobRunning  = "running"
	JobSuccess  = "success"
	JobFailed   = "failed"
	JobCanceled = "canceled"
)

// JobSpec is what a test queues: POST /-/sim/jobs takes it as JSON.
type JobSpec struct {
	// Name is the job's name in .gitlab-ci.yml (default "test").
	Name string `json:"name,omitempty"`
	// Script is the job's script: one shell command per line.
	Script []string `json:"script"`
	// RunnerID, when set, lets only that runner take the job (as a project
	// that enables just one specific runner); 0: any runner not paused.
	RunnerID int64 `json:"runner_id,omitempty"`
	// Variables are the job's own variables (.gitlab-ci.yml `variables:`),
	// sent after GitLab's predefined ones.
	Variables map[string]string `json:"variables,omitempty"`
	// Timeout is the job's timeout in seconds (runner_info.timeout; default 3600).
	Timeout int `json:"timeout,omitempty"`
	// Watched is someone looking at the job's page: GitLab then asks for
	// trace updates every 3 seconds instead of every 60
	// (Gitlab::Ci::Trace#update_interval, being_watched?).
	Watched bool `json:"watched,omitempty"`
}

// Job is the simulator's record of one CI job (Ci::Build).
type Job struct {
	ID       int64
	Spec     JobSpec
	Status   string
	RunnerID int64 // the runner that took it (0: still pending)
	SystemID string
	// FailureReason and ExitCode are what the runner reported with a
	// failed state.
	FailureReason string
	ExitCode      int
	Trace         []byte
	// Updates and TracePatches count the PUT /jobs/:id and PATCH
	// /jobs/:id/trace calls GitLab accepted (while the job was running).
	Updates      int
	TracePatches int
	CreatedAt    time.Time
	StartedAt    time.Time
	FinishedAt   time.Time

	token string
}

// JobView is a job as the control API shows it (no token).
type JobView struct {
	ID            int64     `json:"id"`
	Name          string    `json:"name"`
	Status        string    `json:"status"`
	RunnerID      int64     `json:"runner_id,omitempty"`
	SystemID      string    `json:"system_id,omitempty"`
	FailureReason string    `json:"failure_reason,omitempty"`
	ExitCode      int       `json:"exit_code"`
	Trace         string    `json:"trace"`
	Updates       int       `json:"updates"`
	TracePatches  int       `json:"trace_patches"`
	CreatedAt     time.Time `json:"created_at"`
	StartedAt     time.Time `json:"started_at,omitzero"`
	FinishedAt    time.Time `json:"finished_at,omitzero"`
}

// View returns the control API's view of a job.
func (j Job) View() JobView {
	return JobView{ID: j.ID, Name: j.Spec.Name, Status: j.Status, RunnerID: j.RunnerID, SystemID: j.SystemID,
		FailureReason: j.FailureReason, ExitCode: j.ExitCode, Trace: string(j.Trace), Updates: j.Updates,
		TracePatches: j.TracePatches, CreatedAt: j.CreatedAt, StartedAt: j.StartedAt, FinishedAt: j.FinishedAt}
}

// EnqueueJob queues a job and returns its id. As GitLab does when a build
// becomes pending (Ci::UpdateBuildQueueService#tick, Ci::Runner#pick_build!),
// it ticks the queue of every runner that may take it, so that a runner
// polling with the last X-GitLab-Last-Update it got looks for jobs again.
func (s *Sim) EnqueueJob(spec JobSpec) int64 {
	s.lockState()
	defer s.mu.Unlock()
	if spec.Name == "" {
		spec.Name = "test"
	}
	if spec.Timeout <= 0 {
		spec.Timeout = 3600
	}
	spec.Script = append([]string(nil), spec.Script...)
	vars := make(map[string]string, len(spec.Variables)+1)
	for k, v := range spec.Variables {
		vars[k] = v
	}
	if _, ok := vars["GIT_STRATEGY"]; !ok {
		vars["GIT_STRATEGY"] = "none"
	}
	spec.Variables = vars
	if s.jobs == nil {
		s.jobs = map[int64]*Job{}
	}
	s.nextJob++
	j := &Job{ID: s.nextJob, Spec: spec, Status: JobPending, CreatedAt: s.now(), token: jobToken()}
	s.jobs[j.ID] = j
	for _, r := range s.runners {
		if j.mayRun(r) {
			r.queueValue = newQueueValue()
		}
	}
	return j.ID
}

// Job returns a copy of one job.
func (s *Sim) Job(id int64) (Job, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	j, ok := s.jobs[id]
	if !ok {
		return Job{}, false
	}
	return j.clone(), true
}

// Jobs returns a copy of every job, by id.
func (s *Sim) Jobs() []Job {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Job, 0, len(s.jobs))
	for _, j := range s.jobs {
		out = append(out, j.clone())
	}
	sort.Slice(out, func(a, b int) bool { return out[a].ID < out[b].ID })
	return out
}

func (j *Job) clone() Job {
	c := *j
	c.Trace = append([]byte(nil), j.Trace...)
	c.Spec.Script = append([]string(nil), j.Spec.Script...)
	return c
}

// managerKey is the system id of the runner manager that took the job
// (build.runner_manager): "<legacy>" when the poll sent none.
func (j *Job) managerKey() string {
	if j.SystemID == "" {
		return legacySystemID
	}
	return j.SystemID
}

// executing is Ci::Build's `executing` scope (running or canceling; the
// simulator's jobs are never canceling).
func (j *Job) executing() bool { return j.Status == JobRunning }

// jobExecutionStatus is RunnerJobExecutionStatusHelper's value for a
// runner, or for one of its managers when systemID is set: "active" while
// it has an executing job (`with_executing_builds`), else "idle".
func (s *Sim) jobExecutionStatus(runnerID int64, systemID string) string {
	for _, j := range s.jobs {
		if j.RunnerID == runnerID && j.executing() && (systemID == "" || j.managerKey() == systemID) {
			return "active"
		}
	}
	return "idle"
}

// mayRun tells whether runner r may take the job now.
func (j *Job) mayRun(r *Runner) bool {
	return j.Status == JobPending && !r.Paused && (j.Spec.RunnerID == 0 || j.Spec.RunnerID == r.ID)
}

// jobToken is a CI job token (CI_JOB_TOKEN) in the shape GitLab gives it:
// the "glcbt-" prefix (Ci::Build::TOKEN_PREFIX) and 20 random characters.
func jobToken() string { return "glcbt-" + randomString(tokenAlphabet, 20) }

func newQueueValue() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// takeJob is the job part of POST /jobs/request for an authenticated,
// active runner (Ci::RegisterJobService): the oldest job the runner may
// take becomes running and its payload is the answer. Callers hold s.mu.
func (s *Sim) takeJob(c *call, r *Runner) bool {
	var next *Job
	for _, j := range s.jobs {
		if j.mayRun(r) && (next == nil || j.ID < next.ID) {
			next = j
		}
	}
	if next == nil {
		return false
	}
	now := s.now()
	next.Status, next.RunnerID, next.StartedAt = JobRunning, r.ID, now
	next.SystemID, _ = c.params["system_id"].(string)
	b, _ := json.Marshal(s.jobResponse(c, next, now))
	c.w.Header().Set("Content-Type", "application/json")
	c.w.WriteHeader(http.StatusCreated)
	_, _ = c.w.Write(b)
	return true
}

// failureReasons are the reasons a runner may report
// (Enums::Ci::CommitStatus.failure_reasons, sent as features.failure_reasons
// by Ci::Build#features): gitlab-runner falls back to an older reason for
// one GitLab does not list (common/network.go failureReasonsCompatibilityMap).
var failureReasons = []string{"unknown_failure", "script_failure", "api_failure", "stuck_or_timeout_failure",
	"runner_system_failure", "missing_dependency_failure", "runner_unsupported", "stale_schedule",
	"job_execution_timeout", "archived_failure", "unmet_prerequisites", "scheduler_failure",
	"data_integrity_failure", "forward_deployment_failure", "user_blocked", "project_deleted",
	"ci_quota_exceeded", "pipeline_loop_detected", "no_matching_runner", "trace_size_exceeded",
	"builds_disabled"}

// simProject is the project every simulated job belongs to.
const (
	simProjectID   = 1000
	simProjectPath = "sim/jobs"
)

// jobResponse is Entities::Ci::JobRequest::Response
// (lib/api/entities/ci/job_request/response.rb), as gitlab-runner decodes
// it into common.JobResponse: one script step, GitLab's predefined
// variables then the job's own, no image, services, artifacts, cache or
// dependencies.
func (s *Sim) jobResponse(c *call, j *Job, now time.Time) map[string]any {
	base := "http://" + c.r.Host
	if c.r.TLS != nil {
		base = "https://" + c.r.Host
	}
	repoURL := strings.Replace(base, "://", "://gitlab-ci-token:"+j.token+"@", 1) + "/" + simProjectPath + ".git"
	variable := func(k, v string, public, masked bool) map[string]any {
		return map[string]any{"key": k, "value": v, "public": public, "masked": masked}
	}
	id := strconv.FormatInt(j.ID, 10)
	vars := []any{
		variable("CI_JOB_ID", id, true, false),
		variable("CI_JOB_NAME", j.Spec.Name, true, false),
		variable("CI_JOB_STAGE", "test", true, false),
		variable("CI_JOB_TOKEN", j.token, false, true),
		variable("CI_JOB_URL", base+"/"+simProjectPath+"/-/jobs/"+id, true, false),
		variable("CI_PROJECT_ID", strconv.Itoa(simProjectID), true, false),
		variable("CI_PROJECT_PATH", simProjectPath, true, false),
		variable("CI_PROJECT_NAME", lastSegment(simProjectPath), true, false),
		variable("CI_PIPELINE_ID", id, true, false),
		variable("CI_SERVER_URL", base, true, false),
		variable("CI_REPOSITORY_URL", repoURL, false, false),
		variable("CI", "true", true, false),
		variable("GITLAB_CI", "true", true, false),
	}
	keys := make([]string, 0, len(j.Spec.Variables))
	for k := range j.Spec.Variables {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		vars = append(vars, variable(k, j.Spec.Variables[k], true, false))
	}
	return map[string]any{
		"id":              j.ID,
		"token":           j.token,
		"allow_git_fetch": true,
		"job_info": map[string]any{"id": j.ID, "name": j.Spec.Name, "stage": "test", "project_id": simProjectID,
			"project_name": lastSegment(simProjectPath), "time_in_queue_seconds": now.Sub(j.CreatedAt).Seconds(),
			"project_jobs_running_on_instance_runners_count": "+Inf"},
		"git_info": map[string]any{"repo_url": repoURL, "ref": "main", "sha": strings.Repeat("a", 40),
			"before_sha": strings.Repeat("0", 40), "ref_type": "branch", "refspecs": []string{"+refs/heads/main:refs/remotes/origin/main"},
			"depth": 20, "repo_object_format": "sha1"},
		"runner_info": map[string]any{"timeout": j.Spec.Timeout, "runner_session_url": nil},
		"variables":   vars,
		"steps": []any{map[string]any{"name": "script", "script": j.Spec.Script, "timeout": j.Spec.Timeout,
			"when": "on_success", "allow_failure": false}},
		"image":        nil,
		"services":     []any{},
		"artifacts":    nil,
		"cache":        []any{},
		"credentials":  []any{},
		"features":     map[string]any{"trace_sections": true, "failure_reasons": failureReasons},
		"dependencies": []any{},
	}
}

// jobFromToken is authenticate_job!: the job of the :id segment, which
// must exist and have the token given (the token parameter, else the
// JOB-TOKEN header), else 403 "403 Forbidden"; a job that is no longer
// running answers 403 "403 Forbidden - Job is not running" with its state
// in Job-Status (job_forbidden!). With heartbeat, the job's runner counts as
// contacted. It returns with s.mu held when it found the running job.
func (s *Sim) jobFromToken(c *call, heartbeat bool) (*Job, bool) {
	id, err := strconv.ParseInt(c.seg, 10, 64)
	if err != nil {
		paramError(c.w, "id is invalid")
		return nil, false
	}
	token, _ := c.params["token"].(string)
	if token == "" {
		token = c.r.Header.Get("Job-Token")
	}
	s.mu.Lock()
	j := s.jobs[id]
	if j == nil || token == "" || token != j.token {
		s.mu.Unlock()
		forbidden(c.w, "")
		return nil, false
	}
	if j.Status != JobRunning {
		s.mu.Unlock()
		c.w.Header().Set("Job-Status", j.Status)
		forbidden(c.w, "Job is not running")
		return nil, false
	}
	if r := s.runners[j.RunnerID]; heartbeat && r != nil {
		// `job.runner&.heartbeat` and `job.runner_manager&.heartbeat(get_runner_ip)`.
		s.touch(&r.ContactedAt, &r.contactedDB, s.now())
		if m, ok := r.Managers[j.managerKey()]; ok {
			if host, _, err := net.SplitHostPort(c.r.RemoteAddr); err == nil {
				m.IPAddress = host
			}
			s.touch(&m.ContactedAt, &m.contactedDB, s.now())
			r.Managers[m.SystemID] = m
		}
	}
	return j, true
}

// updateJob is PUT /jobs/:id (Ci::UpdateBuildStateService without live
// trace chunks, GitLab's default): "running" is a keep-alive, "success"
// and "failed" finish the job (failed with the runner's failure_reason and
// exit_code), anything else is 400. The answer is the code, also as its
// body; gitlab-runner reads only the code (network/gitlab.go UpdateJob).
func (s *Sim) updateJob(c *call) {
	if _, ok := c.params["token"].(string); !ok {
		paramError(c.w, "token is missing")
		return
	}
	j, ok := s.jobFromToken(c, true)
	if !ok {
		return
	}
	defer s.mu.Unlock()
	j.Updates++
	state, _ := c.params["state"].(string)
	switch state {
	case JobRunning:
	case JobSuccess:
		j.Status, j.FinishedAt = JobSuccess, s.now()
	case JobFailed:
		j.Status, j.FinishedAt = JobFailed, s.now()
		j.FailureReason, _ = c.params["failure_reason"].(string)
		if j.FailureReason == "" {
			j.FailureReason = "unknown_failure"
		}
		if n, ok := c.params["exit_code"].(json.Number); ok {
			code, _ := n.Int64()
			j.ExitCode = int(code)
		}
	default:
		statusBody(c.w, http.StatusBadRequest)
		return
	}
	statusBody(c.w, http.StatusOK)
}

// statusBody is `status result.status; body result.status.to_s` through
// GitLab's JSON formatter: the code as a JSON string.
func statusBody(w http.ResponseWriter, code int) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(strconv.Quote(strconv.Itoa(code))))
}

// Trace update intervals GitLab asks for (Gitlab::Ci::Trace::UPDATE_FREQUENCY_DEFAULT,
// UPDATE_FREQUENCY_WHEN_BEING_WATCHED).
const (
	traceUpdateDefault = "60"
	traceUpdateWatched = "3"
)

// appendTrace is PATCH /jobs/:id/trace (Ci::AppendBuildTraceService): the
// body is appended at the offset where Content-Range starts, which must be
// the trace's current size, else 416 with the size GitLab has in Range.
// The answer is 202 with Job-Status, Range "0-<size>" and the update
// interval (network/gitlab.go PatchTrace reads all three).
func (s *Sim) appendTrace(c *call) {
	j, ok := s.jobFromToken(c, true)
	if !ok {
		return
	}
	defer s.mu.Unlock()
	cr := c.r.Header.Get("Content-Range")
	if cr == "" {
		apiError(c.w, http.StatusBadRequest, "400 Missing header Content-Range")
		return
	}
	start, _ := strconv.Atoi(strings.SplitN(cr, "-", 2)[0])
	size := len(j.Trace)
	if start != size {
		c.w.Header().Set("Range", "0-"+strconv.Itoa(size))
		apiError(c.w, http.StatusRequestedRangeNotSatisfiable, "416 Range Not Satisfiable")
		return
	}
	j.Trace = append(j.Trace, c.body...)
	j.TracePatches++
	interval := traceUpdateDefault
	if j.Spec.Watched {
		interval = traceUpdateWatched
	}
	c.w.Header().Set("Job-Status", j.Status)
	c.w.Header().Set("Range", "0-"+strconv.Itoa(len(j.Trace)))
	c.w.Header().Set("X-GitLab-Trace-Update-Interval", interval)
	c.w.WriteHeader(http.StatusAccepted)
}

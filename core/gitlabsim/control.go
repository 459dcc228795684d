package gitlabsim

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// EnableControl turns on the /-/sim/ control API that the standalone
// simulator offers to tests in other processes (Molecule verify steps,
// benchmarks). It is not part of GitLab's API, is never logged, and never
// returns a token.
func (s *Sim) EnableControl() {
	s.mu.Lock()
	s.control = true
	s.mu.Unlock()
}

var reControlRunner = regexp.MustCompile(`^/-/sim/runners/(\d+)(/revoke|/expire)?$`)

// RunnerView is a runner as the control API shows it (no token).
type RunnerView struct {
	ID              int64    `json:"id"`
	Description     string   `json:"description"`
	RunnerType      string   `json:"runner_type"`
	GroupID         int64    `json:"group_id,omitempty"`
	ProjectID       int64    `json:"project_id,omitempty"`
	TagList         []string `json:"tag_list"`
	RunUntagged     bool     `json:"run_untagged"`
	Locked          bool     `json:"locked"`
	Paused          bool     `json:"paused"`
	AccessLevel     string   `json:"access_level"`
	MaximumTimeout  int64    `json:"maximum_timeout,omitempty"`
	MaintenanceNote string   `json:"maintenance_note,omitempty"`
	Legacy          bool     `json:"legacy"`
	SystemIDs       []string `json:"system_ids"`
}

// View returns the control API's view of a runner.
func (r Runner) View() RunnerView {
	v := RunnerView{ID: r.ID, Description: r.Description, RunnerType: r.RunnerType, GroupID: r.GroupID,
		ProjectID: r.ProjectID, TagList: append([]string{}, r.TagList...), RunUntagged: r.RunUntagged,
		Locked: r.Locked, Paused: r.Paused, AccessLevel: r.AccessLevel, MaximumTimeout: r.MaximumTimeout,
		MaintenanceNote: r.MaintenanceNote, Legacy: r.Legacy, SystemIDs: []string{}}
	for sid := range r.Managers {
		v.SystemIDs = append(v.SystemIDs, sid)
	}
	return v
}

// Settings are the simulator knobs the control API can change.
type Settings struct {
	LatencyMS            *int  `json:"latency_ms,omitempty"`
	RegistrationDisabled *bool `json:"registration_disabled,omitempty"`
}

func (s *Sim) serveControl(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	enabled := s.control
	s.mu.Unlock()
	if !enabled {
		apiError(w, 404, "404 Not Found")
		return
	}
	p := r.URL.Path
	switch {
	case p == "/-/sim/runners" && r.Method == "GET":
		views := []RunnerView{}
		for _, rr := range s.Runners() {
			views = append(views, rr.View())
		}
		writeJSON(w, 200, views)
	case p == "/-/sim/runners" && r.Method == "POST":
		var v RunnerView
		if err := json.NewDecoder(r.Body).Decode(&v); err != nil {
			apiError(w, 400, err.Error())
			return
		}
		id := s.AddRunner(Runner{Description: v.Description, RunnerType: v.RunnerType, GroupID: v.GroupID,
			ProjectID: v.ProjectID, TagList: v.TagList, RunUntagged: v.RunUntagged, Locked: v.Locked,
			Paused: v.Paused, AccessLevel: v.AccessLevel, MaximumTimeout: v.MaximumTimeout,
			MaintenanceNote: v.MaintenanceNote})
		writeJSON(w, 201, map[string]any{"id": id})
	case reControlRunner.MatchString(p):
		m := reControlRunner.FindStringSubmatch(p)
		id, _ := strconv.ParseInt(m[1], 10, 64)
		var ok bool
		switch {
		case m[2] == "" && r.Method == "DELETE":
			ok = s.DeleteRunner(id)
		case m[2] == "/revoke" && r.Method == "POST":
			ok = s.RevokeToken(id)
		case m[2] == "/expire" && r.Method == "POST":
			ok = s.ExpireToken(id)
		default:
			apiError(w, 405, "405 Method Not Allowed")
			return
		}
		if !ok {
			apiError(w, 404, "404 Runner Not Found")
			return
		}
		w.WriteHeader(204)
	case p == "/-/sim/verify" && r.Method == "POST":
		var body struct {
			Token string `json:"token"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			apiError(w, 400, "400 Bad request")
			return
		}
		id, ok := s.VerifyToken(body.Token)
		writeJSON(w, 200, map[string]any{"valid": ok, "id": id})
	case p == "/-/sim/requests" && r.Method == "GET":
		writeJSON(w, 200, s.Requests())
	case p == "/-/sim/counts" && r.Method == "GET":
		counts := map[string]int{}
		total, mutating := 0, 0
		for _, e := range s.Requests() {
			counts[e.Kind()]++
			total++
			if e.Mutating {
				mutating++
			}
		}
		writeJSON(w, 200, map[string]any{"total": total, "mutating": mutating, "by_kind": counts,
			"max_in_flight": s.MaxInFlight()})
	case p == "/-/sim/reset-log" && r.Method == "POST":
		s.ResetLog()
		w.WriteHeader(204)
	case p == "/-/sim/faults" && r.Method == "POST":
		var f Fault
		if err := json.NewDecoder(r.Body).Decode(&f); err != nil {
			apiError(w, 400, err.Error())
			return
		}
		s.InjectFault(f)
		w.WriteHeader(204)
	case p == "/-/sim/faults" && r.Method == "DELETE":
		s.ClearFaults()
		w.WriteHeader(204)
	case p == "/-/sim/settings" && (r.Method == "PUT" || r.Method == "POST"):
		var st Settings
		if err := json.NewDecoder(r.Body).Decode(&st); err != nil {
			apiError(w, 400, err.Error())
			return
		}
		if st.LatencyMS != nil {
			s.SetLatency(time.Duration(*st.LatencyMS) * time.Millisecond)
		}
		if st.RegistrationDisabled != nil {
			s.SetRegistrationDisabled(*st.RegistrationDisabled)
		}
		w.WriteHeader(204)
	default:
		apiError(w, 404, "404 Not Found: "+strings.TrimPrefix(p, "/-/sim/"))
	}
}

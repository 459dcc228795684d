package gitlabsim

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

var (
	reRunnerID      = regexp.MustCompile(`^/api/v4/runners/(\d+)$`)
	reRunnerReset   = regexp.MustCompile(`^/api/v4/runners/(\d+)/reset_authentication_token$`)
	reGroupRunners  = regexp.MustCompile(`^/api/v4/groups/(\d+)/runners$`)
	reProjectRunner = regexp.MustCompile(`^/api/v4/projects/(\d+)/runners$`)
)

// ServeHTTP implements http.Handler.
func (s *Sim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/-/sim/") {
		s.serveControl(w, r)
		return
	}
	s.mu.Lock()
	s.seq++
	seq := s.seq
	s.inflight++
	if s.inflight > s.maxIn {
		s.maxIn = s.inflight
	}
	latency := s.opts.Latency
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.inflight--
		s.mu.Unlock()
	}()

	entry := Entry{Seq: seq, Method: r.Method, Path: r.URL.Path, Start: time.Now(),
		Mutating: isMutating(r.Method, r.URL.Path), RequestID: r.Header.Get("X-Request-Id")}
	// Only filters go in the log's query: never a token.
	entry.Query = safeQuery(r.URL.Query())

	if latency > 0 {
		select {
		case <-time.After(latency):
		case <-r.Context().Done():
		}
	}

	params, perr := readParams(r)
	if sid, ok := params["system_id"].(string); ok {
		entry.SystemID = sid
	}

	f := s.takeFault(r.Method, r.URL.Path)
	if f != nil && f.Type == FaultEcho {
		b, _ := json.Marshal(params)
		f.body = string(b)
	}
	if f != nil && !f.After {
		entry.Fault = f.describe()
		entry.Mutating = false // the request never reached GitLab's logic
		entry.Status = f.inject(w, r)
		s.record(entry)
		return
	}

	rec := &recorder{header: http.Header{}}
	s.runHooks(entry, false)
	if perr != nil {
		apiError(rec, http.StatusBadRequest, "400 Bad request - "+perr.Error())
	} else {
		entry.Auth = s.route(rec, r, params)
	}
	s.runHooks(entry, true)
	if f != nil {
		entry.Fault = f.describe()
		entry.Status = f.inject(w, r)
		s.record(entry)
		return
	}
	rec.flush(w)
	entry.Status = rec.status
	s.record(entry)
}

func (s *Sim) record(e Entry) {
	e.End = time.Now()
	s.mu.Lock()
	s.log = append(s.log, e)
	s.mu.Unlock()
}

func isMutating(method, path string) bool {
	if method == http.MethodGet || method == http.MethodHead {
		return false
	}
	return path != "/api/v4/runners/verify"
}

func safeQuery(q url.Values) string {
	keep := url.Values{}
	for _, k := range []string{"tag_list", "type", "page", "per_page", "paused", "status"} {
		if v, ok := q[k]; ok {
			keep[k] = v
		}
	}
	return keep.Encode()
}

// recorder buffers a response so a fault can still discard it after GitLab
// "did" the work (a lost response).
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = 200
	}
	return r.body.Write(b)
}
func (r *recorder) WriteHeader(code int) { r.status = code }
func (r *recorder) flush(w http.ResponseWriter) {
	for k, v := range r.header {
		w.Header()[k] = v
	}
	if r.status == 0 {
		r.status = 200
	}
	w.WriteHeader(r.status)
	_, _ = w.Write(r.body.Bytes())
}

// readParams merges query, form and JSON body parameters as Grape does.
func readParams(r *http.Request) (map[string]any, error) {
	out := map[string]any{}
	for k, v := range r.URL.Query() {
		if len(v) > 0 {
			out[k] = v[len(v)-1]
		}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return out, err
	}
	ct := r.Header.Get("Content-Type")
	switch {
	case len(bytes.TrimSpace(body)) == 0:
	case strings.HasPrefix(ct, "application/json"):
		var m map[string]any
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		if err := dec.Decode(&m); err != nil {
			return out, err
		}
		for k, v := range m {
			out[k] = v
		}
	default:
		vals, err := url.ParseQuery(string(body))
		if err != nil {
			return out, err
		}
		for k, v := range vals {
			if strings.HasSuffix(k, "[]") {
				out[strings.TrimSuffix(k, "[]")] = append([]string(nil), v...)
			} else if len(v) > 0 {
				out[k] = v[len(v)-1]
			}
		}
	}
	return out, nil
}

func (s *Sim) route(w http.ResponseWriter, r *http.Request, p map[string]any) string {
	path := r.URL.Path
	switch {
	case r.Method == "POST" && path == "/api/v4/runners/verify":
		s.verify(w, p)
		return "runner-token"
	case r.Method == "POST" && path == "/api/v4/runners/reset_authentication_token":
		s.rotate(w, p)
		return "runner-token"
	case r.Method == "DELETE" && path == "/api/v4/runners":
		s.deleteByToken(w, p)
		return "runner-token"
	case r.Method == "POST" && path == "/api/v4/runners":
		s.register(w, p)
		return "registration-token"
	}

	pat, ok := s.authenticate(w, r)
	if !ok {
		return "pat:?"
	}
	auth := "pat:" + pat.Name
	switch {
	case r.Method == "POST" && path == "/api/v4/user/runners":
		if s.needScope(w, pat, "create_runner", "api") {
			s.createUserRunner(w, pat, p)
		}
	case r.Method == "GET" && path == "/api/v4/runners/all":
		if s.needScope(w, pat, "read_api", "api", "manage_runner") {
			if !pat.Admin {
				apiError(w, 403, "403 Forbidden")
				return auth
			}
			s.list(w, r, func(*Runner) bool { return true })
		}
	case r.Method == "GET" && path == "/api/v4/runners":
		if s.needScope(w, pat, "read_api", "api", "manage_runner") {
			// "Owned" runners: group and project runners the user manages.
			s.list(w, r, func(rr *Runner) bool { return rr.RunnerType != "instance_type" })
		}
	case r.Method == "GET" && reGroupRunners.MatchString(path):
		id := idFrom(reGroupRunners, path)
		if s.needScope(w, pat, "read_api", "api", "manage_runner") {
			s.list(w, r, func(rr *Runner) bool {
				return rr.RunnerType == "instance_type" || (rr.RunnerType == "group_type" && rr.GroupID == id)
			})
		}
	case r.Method == "GET" && reProjectRunner.MatchString(path):
		id := idFrom(reProjectRunner, path)
		if s.needScope(w, pat, "read_api", "api", "manage_runner") {
			s.list(w, r, func(rr *Runner) bool {
				return rr.RunnerType == "instance_type" || (rr.RunnerType == "project_type" && rr.ProjectID == id)
			})
		}
	case r.Method == "GET" && reRunnerID.MatchString(path):
		if s.needScope(w, pat, "read_api", "api", "manage_runner") {
			s.get(w, pat, idFrom(reRunnerID, path))
		}
	case r.Method == "PUT" && reRunnerID.MatchString(path):
		if s.needScope(w, pat, "api", "manage_runner") {
			s.update(w, pat, idFrom(reRunnerID, path), p)
		}
	case r.Method == "DELETE" && reRunnerID.MatchString(path):
		if s.needScope(w, pat, "api", "manage_runner") {
			s.deleteByID(w, pat, idFrom(reRunnerID, path))
		}
	case r.Method == "POST" && reRunnerReset.MatchString(path):
		if s.needScope(w, pat, "api", "manage_runner") {
			s.resetByID(w, pat, idFrom(reRunnerReset, path))
		}
	default:
		apiError(w, 404, "404 Not Found")
	}
	return auth
}

func idFrom(re *regexp.Regexp, path string) int64 {
	m := re.FindStringSubmatch(path)
	id, _ := strconv.ParseInt(m[1], 10, 64)
	return id
}

func (s *Sim) authenticate(w http.ResponseWriter, r *http.Request) (PAT, bool) {
	tok := r.Header.Get("PRIVATE-TOKEN")
	if tok == "" {
		if a := r.Header.Get("Authorization"); strings.HasPrefix(a, "Bearer ") {
			tok = strings.TrimPrefix(a, "Bearer ")
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.opts.PATs {
		if tok != "" && p.Value == tok && !p.Revoked {
			return p, true
		}
	}
	apiError(w, 401, "401 Unauthorized")
	return PAT{}, false
}

// needScope answers 403 insufficient_scope (GitLab's OAuth-style body) unless
// the token has one of the scopes.
func (s *Sim) needScope(w http.ResponseWriter, p PAT, scopes ...string) bool {
	for _, have := range p.Scopes {
		for _, want := range scopes {
			if have == want {
				return true
			}
		}
	}
	writeJSON(w, 403, map[string]any{
		"error":             "insufficient_scope",
		"error_description": "The request requires higher privileges than provided by the access token.",
		"scope":             strings.Join(scopes, " "),
	})
	return false
}

func (s *Sim) verify(w http.ResponseWriter, p map[string]any) {
	token, _ := p["token"].(string)
	if token == "" {
		writeJSON(w, 400, map[string]any{"error": "token is missing"})
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.byToken(token)
	if r == nil {
		apiError(w, 403, "403 Forbidden")
		return
	}
	sid, _ := p["system_id"].(string)
	if sid == "" {
		sid = "<legacy>"
	}
	r.Managers[sid] = s.now()
	writeJSON(w, 200, registrationDetails(r))
}

func (s *Sim) rotate(w http.ResponseWriter, p map[string]any) {
	token, _ := p["token"].(string)
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.byToken(token)
	if r == nil {
		apiError(w, 403, "403 Forbidden")
		return
	}
	s.resetToken(r)
	writeJSON(w, 201, tokenResult(r))
}

func (s *Sim) deleteByToken(w http.ResponseWriter, p map[string]any) {
	token, _ := p["token"].(string)
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.byToken(token)
	if r == nil {
		apiError(w, 403, "403 Forbidden")
		return
	}
	delete(s.runners, r.ID)
	w.WriteHeader(204)
}

func (s *Sim) register(w http.ResponseWriter, p map[string]any) {
	token, _ := p["token"].(string)
	s.mu.Lock()
	defer s.mu.Unlock()
	if token == "" || s.opts.RegistrationToken == "" || token != s.opts.RegistrationToken {
		if token != "" && s.opts.RegistrationDisabled {
			writeJSON(w, 410, map[string]any{"message": "410 Gone", "reason": "runner registration disallowed"})
			return
		}
		apiError(w, 403, "403 Forbidden - invalid token supplied")
		return
	}
	if s.opts.RegistrationDisabled {
		writeJSON(w, 410, map[string]any{"message": "410 Gone", "reason": "runner registration disallowed"})
		return
	}
	r := &Runner{RunnerType: "instance_type", AccessLevel: "not_protected", Legacy: true, RunUntagged: true, Locked: false}
	if msg := applySettings(r, p); msg != "" {
		writeJSON(w, 400, map[string]any{"error": msg})
		return
	}
	s.insert(r)
	writeJSON(w, 201, registrationDetails(r))
}

func (s *Sim) insert(r *Runner) {
	r.ID = s.nextID
	s.nextID++
	r.CreatedAt = s.now()
	r.Managers = map[string]time.Time{}
	s.resetToken(r)
	s.runners[r.ID] = r
}

func (s *Sim) createUserRunner(w http.ResponseWriter, pat PAT, p map[string]any) {
	rt, _ := p["runner_type"].(string)
	r := &Runner{RunnerType: rt, AccessLevel: "not_protected", RunUntagged: true}
	switch rt {
	case "":
		writeJSON(w, 400, map[string]any{"error": "runner_type is missing"})
		return
	case "instance_type":
		if !pat.Admin {
			apiError(w, 403, "403 Forbidden")
			return
		}
	case "group_type":
		id, ok := intParam(p, "group_id")
		if !ok || id <= 0 {
			writeJSON(w, 400, map[string]any{"message": "400 Bad request - group_id is required for group_type runners"})
			return
		}
		r.GroupID = id
	case "project_type":
		id, ok := intParam(p, "project_id")
		if !ok || id <= 0 {
			writeJSON(w, 400, map[string]any{"message": "400 Bad request - project_id is required for project_type runners"})
			return
		}
		r.ProjectID = id
	default:
		writeJSON(w, 400, map[string]any{"error": "runner_type does not have a valid value"})
		return
	}
	if msg := applySettings(r, p); msg != "" {
		writeJSON(w, 400, map[string]any{"error": msg})
		return
	}
	s.mu.Lock()
	s.insert(r)
	s.mu.Unlock()
	writeJSON(w, 201, registrationDetails(r))
}

// canManage mirrors GitLab's rule: instance runners need an administrator.
func canManage(p PAT, r *Runner) bool {
	return p.Admin || r.RunnerType != "instance_type"
}

func (s *Sim) get(w http.ResponseWriter, pat PAT, id int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.runners[id]
	if !ok {
		apiError(w, 404, "404 Runner Not Found")
		return
	}
	writeJSON(w, 200, details(r))
}

func (s *Sim) update(w http.ResponseWriter, pat PAT, id int64, p map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.runners[id]
	if !ok {
		apiError(w, 404, "404 Runner Not Found")
		return
	}
	if !canManage(pat, r) {
		apiError(w, 403, "403 Forbidden")
		return
	}
	c := *r
	if msg := applySettings(&c, p); msg != "" {
		writeJSON(w, 400, map[string]any{"error": msg})
		return
	}
	*r = c
	writeJSON(w, 200, details(r))
}

func (s *Sim) deleteByID(w http.ResponseWriter, pat PAT, id int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.runners[id]
	if !ok {
		apiError(w, 404, "404 Runner Not Found")
		return
	}
	if !canManage(pat, r) {
		apiError(w, 403, "403 Forbidden")
		return
	}
	delete(s.runners, id)
	w.WriteHeader(204)
}

func (s *Sim) resetByID(w http.ResponseWriter, pat PAT, id int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.runners[id]
	if !ok {
		apiError(w, 404, "404 Runner Not Found")
		return
	}
	if !canManage(pat, r) {
		apiError(w, 403, "403 Forbidden")
		return
	}
	s.resetToken(r)
	writeJSON(w, 201, tokenResult(r))
}

func (s *Sim) list(w http.ResponseWriter, r *http.Request, visible func(*Runner) bool) {
	q := r.URL.Query()
	var tags []string
	if v := q.Get("tag_list"); v != "" {
		for _, t := range strings.Split(v, ",") {
			if t = strings.TrimSpace(t); t != "" {
				tags = append(tags, t)
			}
		}
	}
	typ := q.Get("type")
	if typ != "" && typ != "instance_type" && typ != "group_type" && typ != "project_type" {
		writeJSON(w, 400, map[string]any{"error": "type does not have a valid value"})
		return
	}
	page, perPage := 1, 20
	if v := q.Get("page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			writeJSON(w, 400, map[string]any{"error": "page is invalid"})
			return
		}
		page = n
	}
	if v := q.Get("per_page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			writeJSON(w, 400, map[string]any{"error": "per_page is invalid"})
			return
		}
		perPage = min(n, 100)
	}

	s.mu.Lock()
	var matched []*Runner
	for _, rr := range s.runners {
		if !visible(rr) || (typ != "" && rr.RunnerType != typ) || !hasAllTags(rr.TagList, tags) {
			continue
		}
		matched = append(matched, rr)
	}
	sort.Slice(matched, func(i, j int) bool { return matched[i].ID < matched[j].ID })
	total := len(matched)
	from := min((page-1)*perPage, total)
	to := min(from+perPage, total)
	items := make([]map[string]any, 0, to-from)
	for _, rr := range matched[from:to] {
		items = append(items, summary(rr))
	}
	s.mu.Unlock()

	totalPages := (total + perPage - 1) / perPage
	if totalPages == 0 {
		totalPages = 1
	}
	h := w.Header()
	h.Set("X-Page", strconv.Itoa(page))
	h.Set("X-Per-Page", strconv.Itoa(perPage))
	h.Set("X-Total", strconv.Itoa(total))
	h.Set("X-Total-Pages", strconv.Itoa(totalPages))
	h.Set("X-Next-Page", "")
	h.Set("X-Prev-Page", "")
	var links []string
	link := func(p int, rel string) string {
		u := *r.URL
		qq := u.Query()
		qq.Set("page", strconv.Itoa(p))
		qq.Set("per_page", strconv.Itoa(perPage))
		u.RawQuery = qq.Encode()
		return "<" + u.RequestURI() + `>; rel="` + rel + `"`
	}
	if page < totalPages {
		h.Set("X-Next-Page", strconv.Itoa(page+1))
		links = append(links, link(page+1, "next"))
	}
	if page > 1 {
		h.Set("X-Prev-Page", strconv.Itoa(page-1))
		links = append(links, link(page-1, "prev"))
	}
	links = append(links, link(1, "first"), link(totalPages, "last"))
	h.Set("Link", strings.Join(links, ", "))
	writeJSON(w, 200, items)
}

func hasAllTags(have, want []string) bool {
	set := map[string]bool{}
	for _, t := range have {
		set[t] = true
	}
	for _, t := range want {
		if !set[t] {
			return false
		}
	}
	return true
}

func intParam(p map[string]any, key string) (int64, bool) {
	switch v := p[key].(type) {
	case json.Number:
		n, err := v.Int64()
		return n, err == nil
	case string:
		n, err := strconv.ParseInt(v, 10, 64)
		return n, err == nil
	case float64:
		return int64(v), true
	}
	return 0, false
}

func boolParam(v any) (bool, bool) {
	switch b := v.(type) {
	case bool:
		return b, true
	case string:
		switch b {
		case "true", "1", "yes":
			return true, true
		case "false", "0", "no":
			return false, true
		}
	}
	return false, false
}

// applySettings applies the writable runner attributes GitLab accepts on
// create, register and update; it returns a Grape-style error message.
func applySettings(r *Runner, p map[string]any) string {
	if v, ok := p["description"]; ok {
		s, _ := v.(string)
		r.Description = s
	}
	if v, ok := p["tag_list"]; ok {
		var tags []string
		switch t := v.(type) {
		case string:
			for _, x := range strings.Split(t, ",") {
				if x = strings.TrimSpace(x); x != "" {
					tags = append(tags, x)
				}
			}
		case []any:
			for _, x := range t {
				s, ok := x.(string)
				if !ok {
					return "tag_list is invalid"
				}
				tags = append(tags, s)
			}
		case []string:
			tags = t
		default:
			return "tag_list is invalid"
		}
		r.TagList = tags
	}
	for key, dst := range map[string]*bool{"run_untagged": &r.RunUntagged, "locked": &r.Locked, "paused": &r.Paused} {
		if v, ok := p[key]; ok {
			b, ok := boolParam(v)
			if !ok {
				return key + " is invalid"
			}
			*dst = b
		}
	}
	if v, ok := p["active"]; ok {
		b, ok := boolParam(v)
		if !ok {
			return "active is invalid"
		}
		r.Paused = !b
	}
	if v, ok := p["access_level"]; ok {
		s, _ := v.(string)
		if s != "not_protected" && s != "ref_protected" {
			return "access_level does not have a valid value"
		}
		r.AccessLevel = s
	}
	if _, ok := p["maximum_timeout"]; ok {
		n, ok := intParam(p, "maximum_timeout")
		if !ok {
			return "maximum_timeout is invalid"
		}
		if n != 0 && n < 600 {
			return "maximum_timeout needs to be at least 10 minutes"
		}
		r.MaximumTimeout = n
	}
	if v, ok := p["maintenance_note"]; ok {
		s, _ := v.(string)
		if len(s) > 1024 {
			return "maintenance_note is too long (maximum is 1024 characters)"
		}
		r.MaintenanceNote = s
	}
	return ""
}

func expiresJSON(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

func registrationDetails(r *Runner) map[string]any {
	return map[string]any{"id": r.ID, "token": r.Token, "token_expires_at": expiresJSON(r.TokenExpiresAt)}
}

func tokenResult(r *Runner) map[string]any {
	return map[string]any{"token": r.Token, "token_expires_at": expiresJSON(r.TokenExpiresAt)}
}

func status(r *Runner) string {
	if len(r.Managers) == 0 {
		return "never_contacted"
	}
	return "online"
}

func summary(r *Runner) map[string]any {
	return map[string]any{
		"id":          r.ID,
		"description": r.Description,
		"ip_address":  "",
		"active":      !r.Paused,
		"paused":      r.Paused,
		"is_shared":   r.RunnerType == "instance_type",
		"runner_type": r.RunnerType,
		"name":        "gitlab-runner",
		"online":      len(r.Managers) > 0,
		"status":      status(r),
	}
}

func details(r *Runner) map[string]any {
	m := summary(r)
	tags := append([]string{}, r.TagList...)
	m["tag_list"] = tags
	m["run_untagged"] = r.RunUntagged
	m["locked"] = r.Locked
	m["access_level"] = r.AccessLevel
	if r.MaximumTimeout > 0 {
		m["maximum_timeout"] = r.MaximumTimeout
	} else {
		m["maximum_timeout"] = nil
	}
	if r.MaintenanceNote != "" {
		m["maintenance_note"] = r.MaintenanceNote
	} else {
		m["maintenance_note"] = nil
	}
	m["contacted_at"] = nil
	m["architecture"] = nil
	m["platform"] = nil
	m["version"] = nil
	m["revision"] = nil
	m["projects"] = []any{}
	m["groups"] = []any{}
	if r.ProjectID > 0 {
		m["projects"] = []any{map[string]any{"id": r.ProjectID}}
	}
	if r.GroupID > 0 {
		m["groups"] = []any{map[string]any{"id": r.GroupID}}
	}
	return m
}

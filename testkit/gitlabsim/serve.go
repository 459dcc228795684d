package gitlabsim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// ServeHTTP implements http.Handler: control API, latency, faults, the
// route, and the request log.
func (s *Sim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/-/sim/") {
		s.serveControl(w, r)
		return
	}
	s.mu.Lock()
	s.housekeep()
	s.seq++
	seq := s.seq
	s.inflight++
	s.maxIn = max(s.maxIn, s.inflight)
	latency := s.opts.Latency
	profile := s.profile
	// GitLab's Date header is GitLab's clock, as every HTTP server's is.
	w.Header().Set("Date", s.now().Format(http.TimeFormat))
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.inflight--
		s.mu.Unlock()
	}()

	rt, seg := match(r.Method, r.URL.EscapedPath())
	entry := Entry{Seq: seq, Method: r.Method, Path: r.URL.Path, Start: time.Now(),
		RequestID: r.Header.Get("X-Request-Id"), Query: safeQuery(r.URL.Query())}
	if rt != nil {
		entry.kind, entry.Mutating = rt.kind, rt.mutating
	} else {
		entry.kind = r.Method + " " + strings.TrimPrefix(r.URL.Path, apiPrefix)
	}

	if latency > 0 {
		select {
		case <-time.After(latency):
		case <-r.Context().Done():
		}
	}

	params, raw, perr := readParams(r)
	if sid, ok := params["system_id"].(string); ok {
		entry.SystemID = sid
	}

	f := s.takeFault(r.Method, r.URL.Path, entry.kind)
	if f != nil && f.Type == FaultEcho {
		b, _ := json.Marshal(params)
		f.body = string(b)
	}
	if f != nil && !f.After {
		entry.Fault = f.describe()
		entry.Mutating = false // the request never reached GitLab's logic
		entry.Status = f.inject(w, r, s.Now())
		s.record(entry)
		return
	}

	rec := &recorder{header: http.Header{}}
	s.runHooks(entry, false)
	switch {
	case perr != nil:
		badRequest(rec, perr.Error())
	case rt == nil || (rt.present != nil && !rt.present(profile)):
		// lib/api/api.rb: `route :any, '*path' do error!('404 Not Found', 404)`,
		// also for a route this release does not have yet.
		entry.Mutating = false
		unknownRoute(rec)
	default:
		entry.Auth = s.dispatch(rt, &call{w: rec, r: r, params: params, body: raw, seg: seg})
	}
	s.runHooks(entry, true)
	if f != nil {
		entry.Fault = f.describe()
		entry.Status = f.inject(w, r, s.Now())
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
	out := s.opts.RequestLog
	s.mu.Unlock()
	if out != nil {
		target := e.Path
		if e.Query != "" {
			target += "?" + e.Query
		}
		line := fmt.Sprintf("gitlab-sim: #%d %s %s -> %d kind=%s auth=%s", e.Seq, e.Method, target, e.Status, e.Kind(), e.Auth)
		if e.SystemID != "" {
			line += " system_id=" + e.SystemID
		}
		if e.Fault != "" {
			line += " fault=" + strconv.Quote(e.Fault)
		}
		fmt.Fprintf(out, "%s %s\n", line, e.End.Sub(e.Start).Round(time.Microsecond))
	}
}

// safeQuery keeps only filters in the log's query: never a token.
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
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}
func (r *recorder) WriteHeader(code int) { r.status = code }
func (r *recorder) flush(w http.ResponseWriter) {
	for k, v := range r.header {
		w.Header()[k] = v
	}
	if r.status == 0 {
		r.status = http.StatusOK
	}
	w.WriteHeader(r.status)
	_, _ = w.Write(r.body.Bytes())
}

// readParams merges query, form and JSON body parameters as Grape does.
// Arrays arrive as JSON arrays or as repeated "key[]" form fields. A
// text/plain body (gitlab-runner's trace patches) is no parameters: Grape
// has no parser for it and the endpoint reads request.body itself; it comes
// back as raw.
func readParams(r *http.Request) (params map[string]any, raw []byte, err error) {
	out := map[string]any{}
	for k, v := range r.URL.Query() {
		if len(v) > 0 {
			out[k] = v[len(v)-1]
		}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return out, nil, err
	}
	ct := r.Header.Get("Content-Type")
	switch {
	case len(bytes.TrimSpace(body)) == 0:
	case strings.HasPrefix(ct, "text/plain"):
		return out, body, nil
	case strings.HasPrefix(ct, "application/json"):
		var m map[string]any
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		if err := dec.Decode(&m); err != nil {
			return out, body, err
		}
		for k, v := range m {
			out[k] = v
		}
	default:
		vals, err := url.ParseQuery(string(body))
		if err != nil {
			return out, body, err
		}
		for k, v := range vals {
			if strings.HasSuffix(k, "[]") {
				out[strings.TrimSuffix(k, "[]")] = append([]string(nil), v...)
			} else if len(v) > 0 {
				out[k] = v[len(v)-1]
			}
		}
	}
	return out, body, nil
}

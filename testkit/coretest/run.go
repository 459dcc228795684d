package coretest

import (
	"bytes"
	"context"
	"encoding/json"
	"sync"
	"testing"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/engine"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/redact"
)

// Outcome is one engine run: its result, its error and what it logged.
type Outcome struct {
	Res  *engine.Result
	Err  error
	Logs []string
}

// Run calls engine.Run with o, the one way tests run the engine in process.
// It fills in what o leaves empty for a test (a redactor, a log that
// collects), then records everything the run reports for the suite's
// secret sweep — the result as JSON, the config before and after, the
// logs, and the error as a front end prints it (through the run's
// redactor) — and fails the test if any of it holds a secret. It may be
// called from several goroutines of one test.
func Run(t testing.TB, ctx context.Context, o engine.Options) Outcome {
	t.Helper()
	if o.Secrets == nil {
		o.Secrets = redact.New()
	}
	var mu sync.Mutex
	var logs []string
	log := o.Log
	o.Log = func(s string) {
		mu.Lock()
		logs = append(logs, s)
		mu.Unlock()
		if log != nil {
			log(s)
		}
	}
	res, err := engine.Run(ctx, o)
	var out bytes.Buffer
	if res != nil {
		b, jerr := json.Marshal(res)
		if jerr != nil {
			t.Errorf("the result does not encode as JSON: %v", jerr)
		}
		out.Write(b)
		out.WriteString("\n" + res.Before + res.After)
	}
	mu.Lock()
	for _, l := range logs {
		out.WriteString(l + "\n")
	}
	mu.Unlock()
	if err != nil {
		out.WriteString(o.Secrets.Redact(err.Error()) + "\n")
	}
	Record(t, "result", out.Bytes())
	return Outcome{Res: res, Err: err, Logs: logs}
}

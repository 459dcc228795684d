package reliability

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/config"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/engine"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/testkit/coretest"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/testkit/gitlabsim"
)

// TestRateLimitedFleet: ten hosts register at once while GitLab answers
// every fourth request with 429 and Retry-After: 1. Every host converges,
// no runner is duplicated, and no retry comes sooner than GitLab asked.
func TestRateLimitedFleet(t *testing.T) {
	sim := coretest.NewSim(t, coretest.SimOptions())
	sim.InjectFault(gitlabsim.Fault{Type: gitlabsim.FaultRateLimit, RetryAfter: 1, Every: 4, Times: -1})
	const hosts = 10
	prefixes := make([]*coretest.Prefix, hosts)
	for h := range prefixes {
		p := coretest.NewPrefix(t, "main")
		p.Template("", coretest.ClientConfig{URL: sim.URL, PAT: coretest.AdminPAT})
		for _, n := range []string{"a", "b", "c", "d"} {
			p.Executor(n+".toml", executorFile(sim.URL, n, ""))
		}
		prefixes[h] = p
	}
	var wg sync.WaitGroup
	errs := make([]error, hosts)
	for h := range prefixes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[h] = coretest.Run(t, context.Background(), engine.Options{Prefix: prefixes[h].Dir, Instance: "main",
				Hostname: fmt.Sprintf("host%02d", h), Limits: engine.Limits{Concurrency: engine.DefaultConcurrency, RetryBudget: 30 * time.Second}}).Err
		}()
	}
	wg.Wait()
	for h, err := range errs {
		if err != nil {
			t.Fatalf("host %d failed under rate limiting: %v", h, err)
		}
	}
	limited := 0
	log := sim.Requests()
	for i, e := range log {
		if e.Status != 429 {
			continue
		}
		limited++
		for _, next := range log[i+1:] {
			if next.RequestID == e.RequestID {
				if gap := next.Start.Sub(e.End); gap < time.Second {
					t.Errorf("request %s was retried %s after a 429 with Retry-After: 1", e.RequestID, gap)
				}
				break
			}
		}
	}
	if limited == 0 {
		t.Fatal("no request was rate limited: the test tests nothing")
	}
	count := map[string]int{}
	for _, r := range sim.Runners() {
		count[r.Description]++
	}
	for h := 0; h < hosts; h++ {
		for _, n := range []string{"a", "b", "c", "d"} {
			if c := count[config.DefaultDescription(fmt.Sprintf("host%02d", h), "main", n)]; c != 1 {
				t.Errorf("host %d executor %s has %d runners", h, n, c)
			}
		}
	}
	reportf(t, "rate limits: %d hosts x 4 executors converged with %d of %d requests answered 429, no duplicate, no early retry", hosts, limited, len(log))
}

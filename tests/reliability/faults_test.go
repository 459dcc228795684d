package reliability

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/testkit/gitlabsim"
)

var faultKinds = []struct {
	name  string
	fault gitlabsim.Fault
}{
	{"http-500", gitlabsim.Fault{Type: gitlabsim.FaultStatus, Status: 500}},
	{"http-502", gitlabsim.Fault{Type: gitlabsim.FaultStatus, Status: 502}},
	{"dropped-connection", gitlabsim.Fault{Type: gitlabsim.FaultDrop}},
	{"answer-lost", gitlabsim.Fault{Type: gitlabsim.FaultDrop, After: true}},
	{"timeout", gitlabsim.Fault{Type: gitlabsim.FaultTimeout, Delay: time.Second}},
	{"timeout-after-acting", gitlabsim.Fault{Type: gitlabsim.FaultTimeout, Delay: time.Second, After: true}},
	{"http-429-retry-after", gitlabsim.Fault{Type: gitlabsim.FaultRateLimit, RetryAfter: 1}},
}

// TestFaultSweep fails request number k of a sync that keeps, adopts,
// updates, creates and deletes, for every k and every kind of failure, then
// proves that a clean run converges with no duplicate, no leftover and no
// lost token, and that the faulted run never left a torn config.
func TestFaultSweep(t *testing.T) {
	// How many requests does the sync make when nothing fails?
	w := baseline(t)
	if _, err := w.sync(t, context.Background()); err != nil {
		t.Fatalf("clean sync: %v", err)
	}
	w.converged(t, declared)
	n := len(w.sim.Requests())
	counts := w.sim.Counts()
	if counts["reset"] != 1 || counts["update"] != 1 || counts["create"] != 1 || counts["delete-token"] != 1 {
		t.Fatalf("the scenario must adopt, update, create and delete once each; requests %v", counts)
	}
	type job struct {
		k     int
		kind  int
		burst int
	}
	var jobs []job
	// make stress also fails two and three requests in a row.
	bursts := []int{1}
	if stress() {
		bursts = []int{1, 2, 3}
	}
	for _, burst := range bursts {
		for k := 1; k <= n; k++ {
			for i := range faultKinds {
				jobs = append(jobs, job{k, i, burst})
			}
		}
	}
	var cases, failedRuns atomic.Int64
	queue := make(chan job)
	var wg sync.WaitGroup
	for worker := 0; worker < 8; worker++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range queue {
				kind := faultKinds[j.kind]
				t.Run(fmt.Sprintf("request-%02d/%s/x%d", j.k, kind.name, j.burst), func(t *testing.T) {
					cases.Add(1)
					w := baseline(t)
					f := kind.fault
					f.Skip = j.k - 1
					f.Times = j.burst
					w.sim.InjectFault(f)
					_, err := w.syncFaulted(t, context.Background())
					if err != nil {
						failedRuns.Add(1)
					}
					if fired := w.sim.FaultsFired(); fired < 1 {
						t.Fatal("the fault never fired")
					}
					entries, ok := w.config(t)
					if !ok || len(entries) == 0 {
						t.Fatal("the faulted run left no config")
					}
					for _, e := range entries {
						if e.Token == "" || e.ID == 0 {
							t.Errorf("faulted run wrote an incomplete entry %+v", e.Name)
						}
					}
					w.sim.ClearFaults()
					if _, err := w.sync(t, context.Background()); err != nil {
						t.Fatalf("clean run after the fault failed: %v", err)
					}
					w.converged(t, declared)
				})
			}
		}()
	}
	for _, j := range jobs {
		queue <- j
	}
	close(queue)
	wg.Wait()
	reportf(t, "fault sweep: %d cases (%d requests x %d failure kinds x %d burst lengths), %d faulted runs failed and every one converged on the next run",
		cases.Load(), n, len(faultKinds), len(bursts), failedRuns.Load())
	if cases.Load() != int64(len(jobs)) {
		t.Fatalf("ran %d cases, want %d", cases.Load(), len(jobs))
	}
}

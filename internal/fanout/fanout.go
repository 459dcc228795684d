// Package fanout runs n independent calls with a bound on how many run at
// once: GitLab requests, executor files, capture programs. Every call
// runs to its end (a failure does not cancel the others: each says what
// it could not do); once ctx is done, calls not started yet are not.
package fanout

import (
	"context"
	"errors"
	"sync/atomic"

	"golang.org/x/sync/errgroup"
)

// DefaultConcurrency is how many GitLab requests run at once unless an
// option says otherwise.
const DefaultConcurrency = 16

// Each calls fn(i) for i in 0..n-1, at most limit at once, and returns
// their errors joined in index order. The calls are made by min(n, limit)
// workers that each take the next index: a goroutine per worker, not per
// call, so the stacks the calls grow are grown once per worker.
func Each(ctx context.Context, n, limit int, fn func(i int) error) error {
	errs := make([]error, n)
	var next atomic.Int64
	var g errgroup.Group
	for range min(n, max(limit, 1)) {
		g.Go(func() error {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return nil
				}
				if err := ctx.Err(); err != nil {
					errs[i] = err
					continue
				}
				errs[i] = fn(i)
			}
		})
	}
	_ = g.Wait()
	return errors.Join(errs...)
}

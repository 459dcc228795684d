// Package fanout runs n independent calls with a bound on how many run at
// once: GitLab requests, executor files, capture programs. Every call
// runs to its end (a failure does not cancel the others: each says what
// it could not do); once ctx is done, calls not started yet are not.
package fanout

import (
	"context"
	"errors"

	"golang.org/x/sync/errgroup"
)

// Each calls fn(i) for i in 0..n-1, at most limit at once, and returns
// their errors joined in index order.
func Each(ctx context.Context, n, limit int, fn func(i int) error) error {
	errs := make([]error, n)
	var g errgroup.Group
	g.SetLimit(max(limit, 1))
	for i := range n {
		if err := ctx.Err(); err != nil {
			errs[i] = err
			continue
		}
		g.Go(func() error {
			errs[i] = fn(i)
			return nil
		})
	}
	_ = g.Wait()
	return errors.Join(errs...)
}

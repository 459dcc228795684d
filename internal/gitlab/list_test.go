package gitlab

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/testkit/gitlabsim"
)

// hostileList serves every runner listing with pages of n runners, each
// with a description of pad bytes, and always points to a next page. It
// counts the pages served and fails the test if the client does not ask
// for pages of ListPerPage runners.
func hostileList(t *testing.T, n, pad int) (*Client, *atomic.Int64) {
	t.Helper()
	var served atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if got := r.URL.Query().Get("per_page"); got != strconv.Itoa(ListPerPage) {
			t.Errorf("asked for per_page=%q, want %d", got, ListPerPage)
		}
		served.Add(1)
		page, _ := strconv.Atoi(r.URL.Query().Get("page"))
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Next-Page", strconv.Itoa(page+1))
		var b strings.Builder
		b.WriteString("[")
		desc := strings.Repeat("x", pad)
		for i := range n {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `{"id":%d,"description":%q,"runner_type":"instance_type"}`, page*1000+i, desc)
		}
		b.WriteString("]")
		_, _ = w.Write([]byte(b.String()))
	}))
	t.Cleanup(srv.Close)
	c, err := New(Config{URL: srv.URL, PAT: pat, RequestTimeout: time.Minute, RetryBudget: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c, &served
}

// TestListingsAreBounded: a GitLab (or whatever answers at its url) that
// lists without end, or puts more on a page than was asked, ends the
// listing with a ListTooLargeError naming the list and the bound, within
// the run's deadline, never with a partial list taken for the whole.
func TestListingsAreBounded(t *testing.T) {
	cases := []struct {
		name      string
		perPage   int
		pad       int
		bound     ListBound
		limit     int
		maxServed int64
	}{
		// A page of 101 runners for per_page=100: refused at once.
		{"more runners on a page than asked", ListPerPage + 1, 0, BoundPage, ListPerPage, 1},
		// Pages of 100 runners of 40 KiB each (4 MiB a page): refused once
		// the answers pass 64 MiB, about 16 pages in.
		{"pages of 4 MiB without end", ListPerPage, 40 << 10, BoundBytes, ListMaxBytes, ListMaxBytes/(ListPerPage*40<<10) + 1},
		// Small full pages without end: refused past 50,000 runners.
		{"full pages without end", ListPerPage, 0, BoundRunners, ListMaxRunners, ListMaxRunners/ListPerPage + 1},
		// Empty pages that always point to another: refused past 1000 pages.
		{"empty pages without end", 0, 0, BoundPages, ListMaxPages, ListMaxPages},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, served := hostileList(t, tc.perPage, tc.pad)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			list, denial, err := c.ListRunners(ctx, ListOptions{RunnerType: "instance_type", Tags: []string{"node12", "main"}})
			var tl *ListTooLargeError
			if !errors.As(err, &tl) || list != nil || denial != nil {
				t.Fatalf("got %d runners, denial %v, error %v; want a ListTooLargeError", len(list), denial, err)
			}
			if tl.Bound != tc.bound || tl.Limit != tc.limit || tl.Path != "/api/v4/runners/all" || strings.Join(tl.Tags, ",") != "node12,main" {
				t.Errorf("got %+v, want bound %d (limit %d) on /api/v4/runners/all with the tags", tl, tc.bound, tc.limit)
			}
			if n := served.Load(); n > tc.maxServed {
				t.Errorf("%d pages read, want at most %d", n, tc.maxServed)
			}
		})
	}
}

// TestGroupAndProjectListingsNameTheirScope: the error names the list
// that went past its bound, so the administrator knows what to narrow.
func TestGroupAndProjectListingsNameTheirScope(t *testing.T) {
	c, _ := hostileList(t, ListPerPage+1, 0)
	for _, o := range []ListOptions{{RunnerType: "group_type", GroupID: 12}, {RunnerType: "project_type", ProjectID: 34}} {
		_, _, err := c.ListRunners(context.Background(), o)
		var tl *ListTooLargeError
		want := map[string]string{"group_type": "/api/v4/groups/12/runners", "project_type": "/api/v4/projects/34/runners"}[o.RunnerType]
		if !errors.As(err, &tl) || tl.Path != want || tl.Bound != BoundPage {
			t.Errorf("%s: got %v, want a ListTooLargeError on %s", o.RunnerType, err, want)
		}
	}
}

// TestListingWithinBoundsIsWhole: a listing of many pages within the
// bounds is read to its end.
func TestListingWithinBoundsIsWhole(t *testing.T) {
	s, c := setup(t)
	for range 2*ListPerPage + 7 {
		s.AddRunner(gitlabsim.Runner{Description: "node12 main a Runner", TagList: []string{"node12", "main"}})
	}
	list, _, err := c.ListRunners(context.Background(), ListOptions{RunnerType: "instance_type", Tags: []string{"node12"}})
	if err != nil || len(list) != 2*ListPerPage+7 {
		t.Fatalf("got %d runners, %v; want %d", len(list), err, 2*ListPerPage+7)
	}
}

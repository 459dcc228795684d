package gitlabsim

import (
	"net/url"
	"strconv"
	"strings"
)

// Offset pagination as lib/api/helpers/pagination.rb and
// lib/gitlab/pagination/offset_pagination.rb do it: page defaults to 1,
// per_page to 20 and at most 100 (Kaminari max_per_page); X-Next-Page and
// X-Prev-Page are empty at the ends; rows come in id order (add_default_order);
// above countLimit rows (Kaminari MAX_COUNT_LIMIT) `paginate_with_limit_optimization`
// switches to `without_count` and the header builder leaves out X-Total,
// X-Total-Pages and the "last" link.

const (
	defaultPerPage = 20
	maxPerPage     = 100
	countLimit     = 10000
)

type page struct{ number, size int }

// readPage reads page and per_page (Grape `type: Integer`: 400 "page is invalid").
func readPage(c *call) (page, bool) {
	pg := page{1, defaultPerPage}
	q := c.r.URL.Query()
	for key, dst := range map[string]*int{"page": &pg.number, "per_page": &pg.size} {
		v := q.Get(key)
		if v == "" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			paramError(c.w, key+" is invalid")
			return pg, false
		}
		*dst = n
	}
	pg.number = max(pg.number, 1)
	if pg.size < 1 {
		pg.size = defaultPerPage
	}
	pg.size = min(pg.size, maxPerPage)
	return pg, true
}

func (pg page) window(total int) (from, to int) {
	from = min((pg.number-1)*pg.size, total)
	return from, min(from+pg.size, total)
}

func (pg page) headers(c *call, total int) {
	pages := max((total+pg.size-1)/pg.size, 1)
	counted := total <= countLimit
	h := c.w.Header()
	h.Set("X-Page", strconv.Itoa(pg.number))
	h.Set("X-Per-Page", strconv.Itoa(pg.size))
	h.Set("X-Next-Page", "")
	h.Set("X-Prev-Page", "")
	if counted {
		h.Set("X-Total", strconv.Itoa(total))
		h.Set("X-Total-Pages", strconv.Itoa(pages))
	}
	link := func(p int, rel string) string {
		u := url.URL{Scheme: "http", Host: c.r.Host, Path: c.r.URL.Path}
		if c.r.TLS != nil {
			u.Scheme = "https"
		}
		qq := c.r.URL.Query()
		qq.Del("private_token")
		qq.Set("page", strconv.Itoa(p))
		qq.Set("per_page", strconv.Itoa(pg.size))
		u.RawQuery = qq.Encode()
		return "<" + u.String() + `>; rel="` + rel + `"`
	}
	var links []string
	if pg.number > 1 {
		h.Set("X-Prev-Page", strconv.Itoa(pg.number-1))
		links = append(links, link(pg.number-1, "prev"))
	}
	if pg.number*pg.size < total {
		h.Set("X-Next-Page", strconv.Itoa(pg.number+1))
		links = append(links, link(pg.number+1, "next"))
	}
	links = append(links, link(1, "first"))
	if counted {
		links = append(links, link(pages, "last"))
	}
	h.Set("Link", strings.Join(links, ", "))
}

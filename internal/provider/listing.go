package provider

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/simwatch/simwatch/internal/fleet"
)

// UnknownBit is the Unknown bit of an entity's field ("card" or "pool") when
// the fleet model lets that field be unknown (fleet.MayBeUnknown), and 0
// otherwise: a decoder marks a missing value unknown wherever rules can read
// it so, and nowhere else.
func UnknownBit(entity, name string) fleet.Unknown {
	if !fleet.MayBeUnknown(entity, name) {
		return 0
	}
	if entity == fleet.EntityPool {
		return fleet.PoolField(name)
	}
	return fleet.CardField(name)
}

// DefaultListAttempts is how many times a listing is fetched from scratch
// before an inconsistent listing fails.
const DefaultListAttempts = 3

// MaxPages bounds a listing: GSL documents page numbers 1..1000000, and a
// count needing more pages is not a fleet but a fault.
const MaxPages = 1_000_000

// Page is one decoded page of a listing.
type Page[T any] struct {
	Items []T
	// Records are cards a streamed page decoded: those of Items the
	// poller did not already know (see fleet.Listing).
	Records []fleet.Record
	// Count is the size of the whole listing as this page reports it (GSL
	// count, LinkCard Total).
	Count int64
	// PageCount is the number of pages this page reports (LinkCard
	// PageCount), when HasPageCount.
	PageCount    int
	HasPageCount bool
}

// ListingError is a listing that stayed inconsistent however often it was
// fetched again: pages that disagree on the count, a page short or long, an
// id listed twice, fewer distinct items than the count. It is not
// Temporary: the attempts are spent.
type ListingError struct {
	Provider string // "gsl", "linkcard"
	Listing  string // e.g. "GET /v1/sim-cards"
	Attempts int
	Reason   string // what was inconsistent on the last attempt
}

func (e *ListingError) Error() string {
	s := "attempts"
	if e.Attempts == 1 {
		s = "attempt"
	}
	return fmt.Sprintf("%s: %s: listing inconsistent after %d %s: %s", e.Provider, e.Listing, e.Attempts, s, e.Reason)
}

// Temporary is false: the listing was already fetched again.
func (e *ListingError) Temporary() bool { return false }

// RedirectError is a 3xx answer to a provider API request. Redirects are
// never followed: an API that redirects is misconfigured (a login page, a
// moved endpoint), and whatever answers there is not the listing.
type RedirectError struct {
	Provider string
	Op       string
	Status   int
	Host     string // the Location's host only: its query may carry signatures
}

func (e *RedirectError) Error() string {
	to := "redirect with no Location"
	if e.Host != "" {
		to = "redirect to " + e.Host
	}
	return fmt.Sprintf("%s: %s: HTTP %d %s not followed (check the endpoint)", e.Provider, e.Op, e.Status, to)
}

// Temporary is false: a redirect is configuration, not weather.
func (e *RedirectError) Temporary() bool { return false }

// NoRedirects returns a copy of hc (or of a zero client when nil) that
// returns 3xx answers instead of following them.
func NoRedirects(hc *http.Client) *http.Client {
	var cp http.Client
	if hc != nil {
		cp = *hc
	}
	cp.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &cp
}

// CheckRedirect returns a *RedirectError when resp is a 3xx answer, naming
// only the host of its Location (resolved against the request URL).
func CheckRedirect(providerName, op string, resp *http.Response) error {
	if resp.StatusCode/100 != 3 {
		return nil
	}
	e := &RedirectError{Provider: providerName, Op: op, Status: resp.StatusCode}
	if loc := resp.Header.Get("Location"); loc != "" {
		var u *url.URL
		var err error
		if resp.Request != nil && resp.Request.URL != nil {
			u, err = resp.Request.URL.Parse(loc)
		} else {
			u, err = url.Parse(loc)
		}
		if err == nil && u.Host != "" {
			e.Host = u.Host
		} else {
			e.Host = "an unreadable location"
		}
	}
	return e
}

// Listing fetches a paged listing completely or not at all: page 1 to learn
// the count, then the other pages concurrently, and then checks that the
// pages make one listing (DESIGN §6). An inconsistent listing is fetched
// again from scratch, since offset paging drifts while a fleet changes.
type Listing[T any] struct {
	Provider    string // "gsl", "linkcard": the prefix of errors
	Instance    string // the configured provider instance, for logs
	Name        string // e.g. "GET /v1/sim-cards"
	Noun        string // what an item is, in messages: "card", "pool"
	CountName   string // what the provider calls the count: "count" (default), "Total"
	PageSize    int
	Concurrency int
	Attempts    int           // fetches from scratch; 0 means DefaultListAttempts, negative means 1
	Backoff     time.Duration // first wait before fetching again, doubled each time; 0 means 500ms
	MaxBackoff  time.Duration // 0 means 30s
	Logger      *slog.Logger

	// Fetch fetches and decodes one page (from 1), with its own retries.
	Fetch func(ctx context.Context, page int) (Page[T], error)
	// ID is an item's id; every item a decoder returns has one.
	ID func(*T) string
}

// inconsistent cancels an attempt whose pages do not make one listing.
type inconsistent struct{ reason string }

func (e *inconsistent) Error() string { return e.reason }

// All fetches the listing, fetching it again while it is inconsistent. It
// returns every item in page order, or an error: the first page error after
// its retries, or a *ListingError when the attempts are spent.
func (l *Listing[T]) All(ctx context.Context) ([]T, error) {
	items, _, err := l.List(ctx)
	return items, err
}

// List is All, with the records the pages decoded (Page.Records).
func (l *Listing[T]) List(ctx context.Context) ([]T, []fleet.Record, error) {
	attempts := l.Attempts
	if attempts == 0 {
		attempts = DefaultListAttempts
	}
	attempts = max(attempts, 1)
	base, maxWait := l.Backoff, l.MaxBackoff
	if base <= 0 {
		base = 500 * time.Millisecond
	}
	if maxWait <= 0 {
		maxWait = 30 * time.Second
	}
	for n := 1; ; n++ {
		items, records, err := l.once(ctx)
		var inc *inconsistent
		if !errors.As(err, &inc) {
			return items, records, err
		}
		if n >= attempts {
			return nil, nil, &ListingError{Provider: l.Provider, Listing: l.Name, Attempts: n, Reason: inc.reason}
		}
		wait := Backoff(base, maxWait, n-1)
		if l.Logger != nil {
			l.Logger.Warn("provider listing inconsistent, fetching it again", "provider", l.Instance, "listing", l.Name,
				"attempt", n, "wait", wait, "reason", inc.reason)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, nil, fmt.Errorf("%s: %s: %w (after: listing inconsistent: %s)", l.Provider, l.Name, ctx.Err(), inc.reason)
		case <-t.C:
		}
	}
}

func (l *Listing[T]) plural() string { return l.Noun + "s" }

func (l *Listing[T]) countName() string {
	if l.CountName == "" {
		return "count"
	}
	return l.CountName
}

// once fetches the listing once; an *inconsistent error says why it is not
// one listing.
func (l *Listing[T]) once(ctx context.Context) ([]T, []fleet.Record, error) {
	first, err := l.Fetch(ctx, 1)
	if err != nil {
		return nil, nil, err
	}
	count, size := first.Count, int64(l.PageSize)
	switch {
	case count < 0:
		return nil, nil, &inconsistent{fmt.Sprintf("page 1 says %s %d", l.countName(), count)}
	case count > MaxPages*size:
		return nil, nil, &inconsistent{fmt.Sprintf("page 1 says %s %d, more than %d pages of %d", l.countName(), count, MaxPages, size)}
	}
	pages := int((count + size - 1) / size)
	if reason := l.check(1, pages, count, &first); reason != "" {
		return nil, nil, &inconsistent{reason}
	}
	// A count lower than the fleet shows as a last page longer than the
	// count allows, unless the count fills its last page: then the page
	// after it must be empty.
	last := pages
	if count > 0 && count%size == 0 {
		last++
	}
	results := make([][]T, max(last, 1))
	records := make([][]fleet.Record, max(last, 1))
	results[0], records[0] = first.Items, first.Records
	if last > 1 {
		if err := l.rest(ctx, last, pages, count, results, records); err != nil {
			return nil, nil, err
		}
	}
	results = results[:max(pages, 1)]
	// No id twice, and as many distinct ids as the count says.
	seen := make(map[string]struct{}, count)
	for p, items := range results {
		for i := range items {
			id := l.ID(&items[i])
			if _, dup := seen[id]; dup {
				return nil, nil, &inconsistent{l.twice(results, id, p+1)}
			}
			seen[id] = struct{}{}
		}
	}
	if int64(len(seen)) != count {
		return nil, nil, &inconsistent{fmt.Sprintf("%d distinct %s, %s says %d", len(seen), l.plural(), l.countName(), count)}
	}
	out := make([]T, 0, len(seen))
	for _, r := range results {
		out = append(out, r...)
	}
	var recs []fleet.Record
	for _, r := range records[:len(results)] {
		recs = append(recs, r...)
	}
	return out, recs, nil
}

// twice names the pages where id appears, the second being at.
func (l *Listing[T]) twice(results [][]T, id string, at int) string {
	for p := range at {
		for i := range results[p] {
			if l.ID(&results[p][i]) == id {
				if p+1 == at {
					return fmt.Sprintf("%s %s listed twice (page %d)", l.Noun, id, at)
				}
				return fmt.Sprintf("%s %s listed twice (pages %d and %d)", l.Noun, id, p+1, at)
			}
		}
	}
	return fmt.Sprintf("%s %s listed twice (page %d)", l.Noun, id, at)
}

// check is what one page must agree on with page 1: the count, the number
// of pages, and its own length (full but for the last page).
func (l *Listing[T]) check(page, pages int, count int64, p *Page[T]) string {
	if p.Count != count {
		return fmt.Sprintf("page %d says %s %d, page 1 said %d", page, l.countName(), p.Count, count)
	}
	if p.HasPageCount && p.PageCount != pages && !(count == 0 && p.PageCount == 1) {
		return fmt.Sprintf("page %d says PageCount %d, %s %d needs %d", page, p.PageCount, l.countName(), count, pages)
	}
	size := int64(l.PageSize)
	want := min(size, max(count-int64(page-1)*size, 0))
	if n := int64(len(p.Items)); n != want {
		if page > pages && page > 1 {
			return fmt.Sprintf("page %d, past the %s, has %d %s (%s %d)", page, l.countName(), n, l.plural(), l.countName(), count)
		}
		if n > size {
			return fmt.Sprintf("page %d has %d %s, more than the page size %d", page, n, l.plural(), size)
		}
		return fmt.Sprintf("page %d has %d %s, want %d (%s %d)", page, n, l.plural(), want, l.countName(), count)
	}
	return ""
}

// rest fetches pages 2..last into results, Concurrency at a time. The
// first failure cancels the others. An inconsistent page stops asking for
// more but lets the pages in flight finish: a failure among them (a
// redirect, an API error) says more than the inconsistency, and wins.
func (l *Listing[T]) rest(ctx context.Context, last, pages int, count int64, results [][]T, records [][]fleet.Record) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := make(chan struct{})
	var (
		mu      sync.Mutex
		inc     *inconsistent
		incPage int
	)
	next := make(chan int)
	var wg sync.WaitGroup
	for range max(1, min(l.Concurrency, last-1)) {
		wg.Go(func() {
			for page := range next {
				p, err := l.Fetch(ctx, page)
				if err != nil {
					cancel(err)
					continue
				}
				if reason := l.check(page, pages, count, &p); reason != "" {
					mu.Lock()
					if inc == nil {
						close(stop)
					}
					if inc == nil || page < incPage { // the first page that is wrong, whatever the timing
						inc, incPage = &inconsistent{reason}, page
					}
					mu.Unlock()
					continue
				}
				results[page-1], records[page-1] = p.Items, p.Records
			}
		})
	}
feed:
	for page := 2; page <= last; page++ {
		select {
		case next <- page:
		case <-ctx.Done():
			break feed
		case <-stop:
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return err
	}
	if inc != nil {
		return inc
	}
	return nil
}

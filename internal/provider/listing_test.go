package provider_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/fleet"
	"github.com/simwatch/simwatch/internal/provider"
)

type item struct{ id string }

// fleetOf is n items with ids 1..n.
func fleetOf(n int) []item {
	out := make([]item, n)
	for i := range out {
		out[i] = item{fmt.Sprint(i + 1)}
	}
	return out
}

// pager serves a fleet in pages of size, as offset paging does, with bend
// changing a page on a given attempt.
type pager struct {
	mu       sync.Mutex
	fleet    []item
	size     int
	pageNo   bool // report PageCount, as LinkCard does
	attempt  int  // page 1 fetches so far
	requests atomic.Int32
	bend     func(attempt, page int, p *provider.Page[item])
}

func (pg *pager) fetch(_ context.Context, page int) (provider.Page[item], error) {
	pg.requests.Add(1)
	pg.mu.Lock()
	if page == 1 {
		pg.attempt++
	}
	attempt := pg.attempt
	pg.mu.Unlock()
	n := len(pg.fleet)
	lo, hi := min((page-1)*pg.size, n), min(page*pg.size, n)
	p := provider.Page[item]{Items: append([]item(nil), pg.fleet[lo:hi]...), Count: int64(n)}
	if pg.pageNo {
		p.PageCount, p.HasPageCount = (n+pg.size-1)/pg.size, true
	}
	if pg.bend != nil {
		pg.bend(attempt, page, &p)
	}
	return p, nil
}

func (pg *pager) listing(log *slog.Logger) *provider.Listing[item] {
	return &provider.Listing[item]{
		Provider: "gsl", Instance: "hw", Name: "GET /v1/sim-cards", Noun: "card",
		PageSize: pg.size, Concurrency: 3, Backoff: time.Microsecond, MaxBackoff: time.Millisecond, Logger: log,
		Fetch: pg.fetch, ID: func(it *item) string { return it.id },
	}
}

func TestListingConsistent(t *testing.T) {
	for _, n := range []int{0, 1, 9, 10, 11, 25, 30, 101} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			pg := &pager{fleet: fleetOf(n), size: 10, pageNo: n%2 == 1}
			got, err := pg.listing(nil).All(context.Background())
			require.NoError(t, err)
			require.Equal(t, pg.fleet[:n:n], got[:n:n])
			pages := max(1, (n+9)/10)
			if n > 0 && n%10 == 0 {
				pages++ // the count fills its last page: the next must be empty
			}
			require.Equal(t, int32(pages), pg.requests.Load())
		})
	}
}

// Every way pages can disagree fails the listing, after the attempts, with
// a reason naming it.
func TestListingInconsistent(t *testing.T) {
	tests := []struct {
		name   string
		n      int
		pageNo bool
		bend   func(attempt, page int, p *provider.Page[item])
		want   string
	}{
		{"later page says another count", 25, false, func(_, page int, p *provider.Page[item]) {
			if page == 3 {
				p.Count = 24
			}
		}, "page 3 says count 24, page 1 said 25"},
		{"later page empty", 25, false, func(_, page int, p *provider.Page[item]) {
			if page == 2 {
				p.Items = nil
			}
		}, "page 2 has 0 cards, want 10 (count 25)"},
		{"page short by one", 25, false, func(_, page int, p *provider.Page[item]) {
			if page == 2 {
				p.Items = p.Items[:9]
			}
		}, "page 2 has 9 cards, want 10 (count 25)"},
		{"last page short", 25, false, func(_, page int, p *provider.Page[item]) {
			if page == 3 {
				p.Items = p.Items[:4]
			}
		}, "page 3 has 4 cards, want 5 (count 25)"},
		{"page longer than the page size", 25, false, func(_, page int, p *provider.Page[item]) {
			if page == 2 {
				p.Items = append(p.Items, item{"x"})
			}
		}, "page 2 has 11 cards, more than the page size 10"},
		{"count lower than the fleet", 25, false, func(_, _ int, p *provider.Page[item]) {
			p.Count = 22
		}, "page 3 has 5 cards, want 2 (count 22)"},
		{"count lower than the fleet, filling its pages", 25, false, func(_, _ int, p *provider.Page[item]) {
			p.Count = 20
		}, "page 3, past the count, has 5 cards (count 20)"},
		{"count higher than the fleet", 25, false, func(_, _ int, p *provider.Page[item]) {
			p.Count = 26
		}, "page 3 has 5 cards, want 6 (count 26)"},
		{"count zero with cards", 5, false, func(_, _ int, p *provider.Page[item]) {
			p.Count = 0
		}, "page 1 has 5 cards, want 0 (count 0)"},
		{"negative count", 5, false, func(_, _ int, p *provider.Page[item]) {
			p.Count = -1
		}, "page 1 says count -1"},
		{"absurd count", 5, false, func(_, _ int, p *provider.Page[item]) {
			p.Count = 1 << 60
		}, "page 1 says count 1152921504606846976, more than 1000000 pages of 10"},
		{"id on two pages", 25, false, func(_, page int, p *provider.Page[item]) {
			if page == 2 {
				p.Items[0] = item{"3"}
			}
		}, "card 3 listed twice (pages 1 and 2)"},
		{"id twice on a page", 25, false, func(_, page int, p *provider.Page[item]) {
			if page == 3 {
				p.Items[4] = p.Items[0]
			}
		}, "card 21 listed twice (page 3)"},
		{"PageCount disagrees with the count", 25, true, func(_, page int, p *provider.Page[item]) {
			if page == 2 {
				p.PageCount = 4
			}
		}, "page 2 says PageCount 4, count 25 needs 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pg := &pager{fleet: fleetOf(tt.n), size: 10, pageNo: tt.pageNo, bend: tt.bend}
			var logs bytes.Buffer
			items, err := pg.listing(slog.New(slog.NewTextHandler(&logs, nil))).All(context.Background())
			require.Nil(t, items)
			var le *provider.ListingError
			require.ErrorAs(t, err, &le)
			require.Equal(t, provider.ListingError{Provider: "gsl", Listing: "GET /v1/sim-cards", Attempts: 3, Reason: tt.want}, *le)
			require.EqualError(t, err, "gsl: GET /v1/sim-cards: listing inconsistent after 3 attempts: "+tt.want)
			require.False(t, provider.IsTemporary(err))
			require.Equal(t, 3, pg.attempt, "fetched from scratch each time")
			require.Equal(t, 2, strings.Count(logs.String(), "provider listing inconsistent, fetching it again"))
			require.Contains(t, logs.String(), tt.want)
		})
	}
}

// Drift is normal while a fleet changes: a listing inconsistent once is
// fetched again and then succeeds.
func TestListingDriftOnceRefetched(t *testing.T) {
	pg := &pager{fleet: fleetOf(25), size: 10, bend: func(attempt, page int, p *provider.Page[item]) {
		if attempt == 1 && page == 2 {
			p.Items = append([]item{{"10"}}, p.Items[:9]...) // a card added in front: page 2 repeats page 1's last
		}
	}}
	var logs bytes.Buffer
	got, err := pg.listing(slog.New(slog.NewTextHandler(&logs, nil))).All(context.Background())
	require.NoError(t, err)
	require.Equal(t, pg.fleet, got)
	require.Equal(t, 2, pg.attempt)
	require.Contains(t, logs.String(), "card 10 listed twice (pages 1 and 2)")
	require.Contains(t, logs.String(), "level=WARN")
}

func TestListingAttempts(t *testing.T) {
	for _, tt := range []struct{ attempts, want int }{{0, 3}, {-1, 1}, {1, 1}, {5, 5}} {
		pg := &pager{fleet: fleetOf(15), size: 10, bend: func(_, page int, p *provider.Page[item]) {
			if page == 2 {
				p.Items = nil
			}
		}}
		l := pg.listing(nil)
		l.Attempts = tt.attempts
		_, err := l.All(context.Background())
		var le *provider.ListingError
		require.ErrorAs(t, err, &le)
		require.Equal(t, tt.want, le.Attempts)
		require.Equal(t, tt.want, pg.attempt)
	}
}

// A page that fails after its own retries fails the listing at once: it is
// not an inconsistency to fetch again.
func TestListingPageErrorNotRefetched(t *testing.T) {
	pageErr := &provider.PageError{Provider: "gsl", Op: "GET /v1/sim-cards page 2", Err: errors.New("count: missing or null")}
	pg := &pager{fleet: fleetOf(25), size: 10}
	l := pg.listing(nil)
	fetch := l.Fetch
	l.Fetch = func(ctx context.Context, page int) (provider.Page[item], error) {
		if page == 2 {
			return provider.Page[item]{}, pageErr
		}
		return fetch(ctx, page)
	}
	_, err := l.All(context.Background())
	require.ErrorIs(t, err, pageErr)
	require.Equal(t, 1, pg.attempt)
}

// cancelOnLog cancels a context when a record is logged: the listing is
// then waiting to fetch again.
type cancelOnLog struct {
	slog.Handler
	cancel context.CancelFunc
}

func (h cancelOnLog) Enabled(context.Context, slog.Level) bool  { return true }
func (h cancelOnLog) Handle(context.Context, slog.Record) error { h.cancel(); return nil }

func TestListingCancelledWhileWaiting(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	pg := &pager{fleet: fleetOf(15), size: 10, bend: func(_, page int, p *provider.Page[item]) {
		if page == 2 {
			p.Items = nil
		}
	}}
	l := pg.listing(slog.New(cancelOnLog{slog.DiscardHandler, cancel}))
	l.Backoff, l.MaxBackoff = time.Hour, time.Hour
	_, err := l.All(ctx)
	require.ErrorIs(t, err, context.Canceled)
	require.EqualError(t, err, "gsl: GET /v1/sim-cards: context canceled (after: listing inconsistent: page 2 has 0 cards, want 5 (count 15))")
	require.Equal(t, 1, pg.attempt)
}

func TestRedirectsNotFollowed(t *testing.T) {
	var hits atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_, _ = w.Write([]byte(`{}`))
	}))
	defer other.Close()
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/abs":
			http.Redirect(w, r, other.URL+"/login?Signature=SECRET&AccessKeyId=AK", http.StatusFound)
		case "/rel":
			http.Redirect(w, r, "/elsewhere?token=SECRET", http.StatusMovedPermanently)
		default:
			w.WriteHeader(http.StatusTemporaryRedirect)
		}
	}))
	defer api.Close()
	configured := &http.Client{Timeout: time.Minute}
	hc := provider.NoRedirects(configured)
	require.Nil(t, configured.CheckRedirect, "the configured client is not changed")
	require.Equal(t, time.Minute, hc.Timeout)
	for path, want := range map[string]string{
		"/abs":  "gsl: GET /v1/sim-cards page 1: HTTP 302 redirect to " + strings.TrimPrefix(other.URL, "http://") + " not followed (check the endpoint)",
		"/rel":  "gsl: GET /v1/sim-cards page 1: HTTP 301 redirect to " + strings.TrimPrefix(api.URL, "http://") + " not followed (check the endpoint)",
		"/none": "gsl: GET /v1/sim-cards page 1: HTTP 307 redirect with no Location not followed (check the endpoint)",
	} {
		resp, err := hc.Get(api.URL + path)
		require.NoError(t, err)
		resp.Body.Close()
		err = provider.CheckRedirect("gsl", "GET /v1/sim-cards page 1", resp)
		var re *provider.RedirectError
		require.ErrorAs(t, err, &re)
		require.EqualError(t, err, want)
		require.NotContains(t, err.Error(), "SECRET")
		require.False(t, provider.IsTemporary(err))
	}
	require.Zero(t, hits.Load(), "the redirect target was never asked")
	require.Nil(t, provider.NoRedirects(nil).Transport)
}

func TestUnknownBit(t *testing.T) {
	require.Equal(t, fleet.CardField("flow_left"), provider.UnknownBit(fleet.EntityCard, "flow_left"))
	require.Equal(t, fleet.PoolField("quantity"), provider.UnknownBit(fleet.EntityPool, "quantity"))
	require.Zero(t, provider.UnknownBit(fleet.EntityCard, "iccid"), "a field that may not be unknown")
	require.Zero(t, provider.UnknownBit(fleet.EntityCard, "no_such_field"))
	for _, name := range []string{"imei", "act_date", "expire_time"} {
		require.Equal(t, fleet.MayBeUnknown(fleet.EntityCard, name), provider.UnknownBit(fleet.EntityCard, name) != 0, name)
	}
}

// A page that fails while another is inconsistent: the failure (here a
// redirect) is what the listing returns, whatever the timing.
func TestListingFailureWinsOverInconsistency(t *testing.T) {
	pg := &pager{fleet: fleetOf(35), size: 10, bend: func(_, page int, p *provider.Page[item]) {
		if page == 3 {
			p.Count = 0
		}
	}}
	l := pg.listing(nil)
	fetch := l.Fetch
	page3 := make(chan struct{})
	redirect := &provider.RedirectError{Provider: "gsl", Op: "GET /v1/sim-cards page 2", Status: 302, Host: "login.example"}
	l.Fetch = func(ctx context.Context, page int) (provider.Page[item], error) {
		switch page {
		case 2:
			<-page3
			return provider.Page[item]{}, redirect
		case 3:
			defer close(page3)
		}
		return fetch(ctx, page)
	}
	_, err := l.All(context.Background())
	require.ErrorIs(t, err, redirect)
	require.Equal(t, 1, pg.attempt)
}

package provider_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/fleet"
	"github.com/simwatch/simwatch/internal/provider"
	"github.com/simwatch/simwatch/internal/provider/gsl"
	"github.com/simwatch/simwatch/internal/provider/linkcard"
	"github.com/simwatch/simwatch/internal/sim"
)

// These tests run a client against the simulator inside a synctest bubble:
// the simulator's handler is called in memory, with a network latency in
// virtual time, so a listing of thousands of cards at 50 requests a second
// takes no real time and no socket.

// wire is an in-memory http.RoundTripper to the simulator that records
// when each request was sent and answered.
type wire struct {
	h       http.Handler
	latency time.Duration // one way

	mu       sync.Mutex
	inFlight int
	most     int
	trips    []trip
}

type trip struct {
	sent, answered time.Time
	status         int
	retryAfter     string
}

func (w *wire) RoundTrip(req *http.Request) (*http.Response, error) {
	sent := time.Now()
	w.mu.Lock()
	w.inFlight++
	w.most = max(w.most, w.inFlight)
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		w.inFlight--
		w.mu.Unlock()
	}()
	if err := w.travel(req.Context()); err != nil {
		return nil, err
	}
	rec := httptest.NewRecorder()
	w.h.ServeHTTP(rec, req)
	if err := w.travel(req.Context()); err != nil {
		return nil, err
	}
	resp := rec.Result()
	resp.Request = req
	w.mu.Lock()
	w.trips = append(w.trips, trip{sent: sent, answered: time.Now(), status: rec.Code, retryAfter: rec.Header().Get("Retry-After")})
	w.mu.Unlock()
	return resp, nil
}

func (w *wire) travel(ctx context.Context) error {
	if w.latency <= 0 {
		return nil
	}
	t := time.NewTimer(w.latency)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (w *wire) snapshot() ([]trip, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]trip(nil), w.trips...), w.most
}

// lister is what both provider clients offer.
type lister interface {
	Fetch(ctx context.Context) (fleet.Snapshot, error)
	RequestStats() provider.RequestStats
}

type ceilings struct {
	rate        float64
	concurrency int
}

var clients = []struct {
	name string
	// countsPages: the client counts listing pages in RequestStats.
	countsPages bool
	new         func(t *testing.T, rt http.RoundTripper, c ceilings, log *slog.Logger) lister
}{
	{"gsl", true, func(t *testing.T, rt http.RoundTripper, c ceilings, log *slog.Logger) lister {
		cl, err := gsl.New(gsl.Options{Name: "hw", Endpoint: "http://gsl.sim", Token: "t", PageSize: 10,
			Rate: c.rate, Concurrency: c.concurrency, HTTPClient: &http.Client{Transport: rt}, Logger: log})
		require.NoError(t, err)
		return cl
	}},
	{"linkcard", true, func(t *testing.T, rt http.RoundTripper, c ceilings, log *slog.Logger) lister {
		cl, err := linkcard.New(linkcard.Options{Name: "ali", Endpoint: "http://linkcard.sim", AccessKeyID: "id", AccessKeySecret: "secret", PageSize: 10,
			Rate: c.rate, Concurrency: c.concurrency, HTTPClient: &http.Client{Transport: rt}, Logger: log})
		require.NoError(t, err)
		return cl
	}},
}

func newSimWire(cards int, o sim.Options, latency time.Duration) (*sim.Server, *wire) {
	o.Fleet = sim.NewFleet(sim.FleetOptions{Cards: cards, Pools: 3, Seed: 7})
	s := sim.NewServer(o)
	return s, &wire{h: s.Handler(), latency: latency}
}

// Against a provider that throttles at 50 requests a second, the watcher
// finds the threshold and stays under it: the listing is complete, few
// requests are turned back, the pace in the second half is within the
// threshold, and throttling is one warning, not a line per request.
func TestAdaptiveConvergesUnderThreshold(t *testing.T) {
	for _, threshold := range []float64{5, 50, 200} {
		for _, cl := range clients {
			t.Run(fmt.Sprintf("%s at %v per second", cl.name, threshold), func(t *testing.T) {
				testConverges(t, cl.new, cl.countsPages, threshold)
			})
		}
	}
}

func testConverges(t *testing.T, newClient func(*testing.T, http.RoundTripper, ceilings, *slog.Logger) lister, countsPages bool, threshold float64) {
	{
		{ // same indentation as the other tests' bodies
			synctest.Test(t, func(t *testing.T) {
				s, w := newSimWire(4000, sim.Options{MaxRate: threshold}, 20*time.Millisecond)
				var logs bytes.Buffer
				c := newClient(t, w, ceilings{}, slog.New(slog.NewTextHandler(&logs, nil)))
				start := time.Now()
				snap, err := c.Fetch(t.Context())
				require.NoError(t, err)
				require.Len(t, snap.Cards, 4000)
				took := time.Since(start)

				st := c.RequestStats()
				trips, _ := w.snapshot()
				require.EqualValues(t, len(trips), st.Requests)
				require.EqualValues(t, s.Stats().Throttled, st.Throttled, "the client counts what the provider throttled")
				require.Positive(t, st.Throttled, "the threshold was found")
				share := float64(st.Throttled) / float64(st.Requests)
				require.Less(t, share, 0.10, "throttled share of requests")
				if countsPages {
					require.GreaterOrEqual(t, st.Pages, int64(400))
				}

				// The pace over the second half, throttled requests included.
				mid := start.Add(took / 2)
				n := 0
				for _, tr := range trips {
					if !tr.sent.Before(mid) {
						n++
					}
				}
				pace := float64(n) / (took / 2).Seconds()
				require.LessOrEqual(t, pace, threshold*1.1, "pace over the second half")
				require.Greater(t, pace, threshold*0.5, "and not far below it")
				require.Positive(t, st.Rate, "still paced at the end")
				require.LessOrEqual(t, st.Rate, threshold*1.25)
				require.Equal(t, 1, strings.Count(logs.String(), "level=WARN"), logs.String())
				t.Logf("%d requests in %v (%.1f/s), %d throttled (%.1f%%), second-half pace %.1f/s, end rate %.1f/s, concurrency %d",
					st.Requests, took, float64(st.Requests)/took.Seconds(), st.Throttled, 100*share, pace, st.Rate, st.Concurrency)
			})
		}
	}
}

// A provider that never throttles is listed as fast as the client may: no
// rate is ever set and requests in flight reach the ceiling.
func TestAdaptiveUnthrottledProviderRunsFree(t *testing.T) {
	for _, cl := range clients {
		t.Run(cl.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				_, w := newSimWire(4000, sim.Options{}, 20*time.Millisecond)
				c := cl.new(t, w, ceilings{}, nil)
				start := time.Now()
				snap, err := c.Fetch(t.Context())
				require.NoError(t, err)
				require.Len(t, snap.Cards, 4000)
				st := c.RequestStats()
				t.Logf("%d requests in %v (virtual)", st.Requests, time.Since(start))
				require.Zero(t, st.Throttled)
				require.Zero(t, st.Rate, "never rate-limited")
				require.Equal(t, provider.DefaultConcurrency, st.Concurrency)
				_, most := w.snapshot()
				require.Equal(t, provider.DefaultConcurrency, most, "requests in flight at once")
			})
		})
	}
}

// Configured ceilings hold from the first request: never more than rate
// requests in any second, never more than concurrency in flight.
func TestAdaptiveConfiguredCeilingsHold(t *testing.T) {
	for _, cl := range clients {
		t.Run(cl.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				_, w := newSimWire(600, sim.Options{}, 20*time.Millisecond)
				c := cl.new(t, w, ceilings{rate: 20, concurrency: 3}, nil)
				snap, err := c.Fetch(t.Context())
				require.NoError(t, err)
				require.Len(t, snap.Cards, 600)
				trips, most := w.snapshot()
				require.LessOrEqual(t, most, 3)
				for i, a := range trips {
					n := 0
					for _, b := range trips {
						if !b.sent.Before(a.sent) && b.sent.Sub(a.sent) < time.Second {
							n++
						}
					}
					require.LessOrEqual(t, n, 20, "requests in the second from request %d", i)
				}
				require.Equal(t, 20.0, c.RequestStats().Rate)
			})
		})
	}
}

// A Retry-After on a throttled answer holds back every request of the
// client, not only the one retried: nothing is sent until it has passed.
func TestAdaptiveRetryAfterPausesEveryRequest(t *testing.T) {
	for _, cl := range clients {
		t.Run(cl.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				_, w := newSimWire(1000, sim.Options{MaxRate: 20, ThrottleRetryAfter: 2 * time.Second}, 10*time.Millisecond)
				c := cl.new(t, w, ceilings{}, nil)
				snap, err := c.Fetch(t.Context())
				require.NoError(t, err)
				require.Len(t, snap.Cards, 1000)
				trips, _ := w.snapshot()
				paused := 0
				for _, th := range trips {
					if th.retryAfter == "" {
						continue
					}
					require.Equal(t, "2", th.retryAfter)
					paused++
					for _, tr := range trips {
						if tr.sent.After(th.answered) {
							require.GreaterOrEqual(t, tr.sent.Sub(th.answered), 2*time.Second, "a request went out during a Retry-After pause")
						}
					}
				}
				require.Positive(t, paused)
			})
		})
	}
}

// Cancelling during a long Retry-After pause returns at once, not when
// the pause ends.
func TestAdaptiveCancelDuringPause(t *testing.T) {
	for _, cl := range clients {
		t.Run(cl.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s, w := newSimWire(500, sim.Options{MaxRate: 1, ThrottleRetryAfter: time.Minute}, 0)
				c := cl.new(t, w, ceilings{}, nil)
				ctx, cancel := context.WithCancel(t.Context())
				done := make(chan error, 1)
				go func() { _, err := c.Fetch(ctx); done <- err }()
				for s.Stats().Throttled == 0 {
					time.Sleep(10 * time.Millisecond)
				}
				time.Sleep(time.Second)
				synctest.Wait()
				sent := len(w.trips)
				cancelled := time.Now()
				cancel()
				err := <-done
				require.ErrorIs(t, err, context.Canceled)
				require.Less(t, time.Since(cancelled), 100*time.Millisecond)
				trips, _ := w.snapshot()
				require.Len(t, trips, sent, "nothing sent after the cancel")
			})
		})
	}
}

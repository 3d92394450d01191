package provider_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/provider"
)

// throttleErr is an answer that throttles, optionally with a Retry-After.
type throttleErr struct{ after time.Duration }

func (e throttleErr) Error() string             { return "throttled" }
func (e throttleErr) Throttled() bool           { return true }
func (e throttleErr) Temporary() bool           { return true }
func (e throttleErr) RetryAfter() time.Duration { return e.after }

// busyErr is a server error that asks for a pause without throttling.
type busyErr struct{ after time.Duration }

func (e busyErr) Error() string             { return "busy" }
func (e busyErr) RetryAfter() time.Duration { return e.after }

func acquire(t *testing.T, a *provider.Adaptive) provider.Ticket {
	t.Helper()
	tk, err := a.Acquire(t.Context())
	require.NoError(t, err)
	return tk
}

// A provider that never throttles is never paced: no rate is ever set, and
// requests in flight grow from 4 to the ceiling on successes.
func TestAdaptiveUnthrottledRisesToCeiling(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := provider.NewAdaptive(provider.AdaptiveOptions{})
		require.Equal(t, provider.InitialConcurrency, a.Stats().Concurrency)
		start := time.Now()
		for range 500 {
			a.Done(acquire(t, a), nil)
			require.Zero(t, a.Stats().Rate)
		}
		require.Equal(t, start, time.Now(), "no request waited")
		st := a.Stats()
		require.Equal(t, provider.DefaultConcurrency, st.Concurrency)
		require.EqualValues(t, 500, st.Requests)
		require.Zero(t, st.Throttled)

		// The ceiling holds: DefaultConcurrency requests in flight, and one more
		// waits until one of them is done.
		var held []provider.Ticket
		for range provider.DefaultConcurrency {
			held = append(held, acquire(t, a))
		}
		got := make(chan provider.Ticket)
		go func() { tk, _ := a.Acquire(t.Context()); got <- tk }()
		synctest.Wait()
		select {
		case <-got:
			t.Fatal("a request over the concurrency ceiling went out")
		default:
		}
		a.Done(held[0], nil)
		a.Done(<-got, nil)
	})
}

// A burst of throttles from requests already in flight is one decrease, not
// one per answer: the rate halves once and concurrency halves once.
func TestAdaptiveOneDecreasePerBurst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var logs bytes.Buffer
		a := provider.NewAdaptive(provider.AdaptiveOptions{Name: "hw", Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		for range 500 { // warm up: concurrency at its ceiling
			a.Done(acquire(t, a), nil)
		}
		time.Sleep(time.Minute)
		// 100 requests in 1s, 16 of them in flight when the first throttle
		// comes back.
		for range 84 {
			time.Sleep(10 * time.Millisecond)
			a.Done(acquire(t, a), nil)
		}
		var burst []provider.Ticket
		for range 16 {
			time.Sleep(10 * time.Millisecond)
			burst = append(burst, acquire(t, a))
		}
		for _, tk := range burst {
			a.Done(tk, throttleErr{})
		}
		st := a.Stats()
		require.EqualValues(t, 16, st.Throttled)
		require.Equal(t, provider.DefaultConcurrency/2, st.Concurrency, "halved once")
		require.InDelta(t, 50, st.Rate, 10, "half the ~100/s measured")
		require.Equal(t, 1, strings.Count(logs.String(), "level=WARN"), logs.String())

		// A request sent after the decrease is a new signal.
		a.Done(acquire(t, a), throttleErr{})
		st = a.Stats()
		require.Equal(t, provider.DefaultConcurrency/4, st.Concurrency)
		require.Less(t, st.Rate, 30.0)
		require.Equal(t, 1, strings.Count(logs.String(), "level=WARN"), "one warning per episode: %s", logs.String())
	})
}

// However often the provider throttles, the rate stays at MinRate or above
// and one request may always be in flight.
func TestAdaptiveFloors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := provider.NewAdaptive(provider.AdaptiveOptions{})
		for range 50 {
			a.Done(acquire(t, a), throttleErr{})
		}
		st := a.Stats()
		require.Equal(t, 1, st.Concurrency)
		require.GreaterOrEqual(t, st.Rate, provider.MinRate)
		// Still sending, paced at about the floor.
		start := time.Now()
		for range 3 {
			a.Done(acquire(t, a), nil)
		}
		require.LessOrEqual(t, time.Since(start).Seconds(), 3/provider.MinRate+1)
	})
}

// Configured ceilings are never passed: a rate ceiling paces from the
// first request, and throttling only lowers it.
func TestAdaptiveRateCeiling(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := provider.NewAdaptive(provider.AdaptiveOptions{MaxRate: 10, MaxConcurrency: 2})
		require.Equal(t, 10.0, a.Stats().Rate)
		require.Equal(t, 2, a.Stats().Concurrency)
		start := time.Now()
		for range 101 {
			a.Done(acquire(t, a), nil)
		}
		require.GreaterOrEqual(t, time.Since(start), 10*time.Second, "101 requests at 10/s take 10s at least")
		require.Equal(t, 2, a.Stats().Concurrency)
		// Throttled at 10/s, then climbing back: never above 10.
		a.Done(acquire(t, a), throttleErr{})
		require.InDelta(t, 5, a.Stats().Rate, 0.6)
		for range 200 {
			time.Sleep(100 * time.Millisecond)
			require.LessOrEqual(t, a.Stats().Rate, 10.0)
		}
		require.Equal(t, 10.0, a.Stats().Rate, "recovered to the ceiling")
	})
}

// After the throttling stops the rate climbs back and the limit is lifted,
// logged once each way.
func TestAdaptiveRecovers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var logs bytes.Buffer
		a := provider.NewAdaptive(provider.AdaptiveOptions{Name: "ali", Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		for range 40 {
			time.Sleep(25 * time.Millisecond)
			a.Done(acquire(t, a), nil)
		}
		a.Done(acquire(t, a), throttleErr{})
		throttledAt := a.Stats().Rate
		require.Greater(t, throttledAt, 0.0)
		prev := throttledAt
		for a.Stats().Rate != 0 {
			time.Sleep(50 * time.Millisecond)
			a.Done(acquire(t, a), nil)
			r := a.Stats().Rate
			if r != 0 {
				require.GreaterOrEqual(t, r, prev, "the rate only rises without throttles")
				prev = r
			}
		}
		out := logs.String()
		require.Equal(t, 1, strings.Count(out, "level=WARN"), out)
		require.Equal(t, 1, strings.Count(out, "level=INFO"), out)
		require.Contains(t, out, "provider=ali")
		require.Contains(t, out, "request rate unlimited")
	})
}

// A Retry-After pauses every request of the client, not only the one it
// came with; absurd waits are capped; a pause from a server error counts
// as no throttle.
func TestAdaptiveRetryAfterPausesAll(t *testing.T) {
	tests := []struct {
		name      string
		err       error
		wait      time.Duration
		throttled int64
	}{
		{"throttle with Retry-After", throttleErr{after: 3 * time.Second}, 3 * time.Second, 1},
		{"server error with Retry-After", busyErr{after: 2 * time.Second}, 2 * time.Second, 0},
		{"a day is capped", throttleErr{after: 24 * time.Hour}, provider.MaxRetryAfter, 1},
		{"negative is none", busyErr{after: -time.Hour}, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				a := provider.NewAdaptive(provider.AdaptiveOptions{})
				other := acquire(t, a) // in flight when the answer comes back
				a.Done(acquire(t, a), tt.err)
				start := time.Now()
				var mu sync.Mutex
				var sent []time.Duration
				var wg sync.WaitGroup
				for range 3 {
					wg.Go(func() {
						tk := acquire(t, a)
						mu.Lock()
						sent = append(sent, time.Since(start))
						mu.Unlock()
						a.Done(tk, nil)
					})
				}
				wg.Wait()
				a.Done(other, nil)
				require.Len(t, sent, 3)
				for _, d := range sent {
					require.GreaterOrEqual(t, d, tt.wait, "a request went out during the pause")
				}
				require.Equal(t, tt.throttled, a.Stats().Throttled)
			})
		})
	}
}

// Waiting ends when ctx does, during a pause and while waiting for a slot.
func TestAdaptiveAcquireStopsWithContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := provider.NewAdaptive(provider.AdaptiveOptions{MaxConcurrency: 1})
		a.Done(acquire(t, a), throttleErr{after: time.Minute})
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		start := time.Now()
		_, err := a.Acquire(ctx)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.Equal(t, time.Second, time.Since(start))

		time.Sleep(time.Minute)
		held := acquire(t, a)
		ctx, cancel = context.WithCancel(t.Context())
		done := make(chan error)
		go func() { _, err := a.Acquire(ctx); done <- err }()
		synctest.Wait()
		cancel()
		require.True(t, errors.Is(<-done, context.Canceled))
		a.Done(held, nil)
		require.EqualValues(t, 2, a.Stats().Requests, "the cancelled waits sent nothing")
	})
}

// Many goroutines acquiring and finishing at once leave the counts exact
// (run with -race).
func TestAdaptiveConcurrentUse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := provider.NewAdaptive(provider.AdaptiveOptions{MaxConcurrency: 8})
		var mu sync.Mutex
		inFlight, most := 0, 0
		var wg sync.WaitGroup
		for i := range 32 {
			wg.Go(func() {
				for j := range 50 {
					tk := acquire(t, a)
					mu.Lock()
					inFlight++
					most = max(most, inFlight)
					mu.Unlock()
					time.Sleep(time.Millisecond)
					mu.Lock()
					inFlight--
					mu.Unlock()
					var err error
					if (i+j)%97 == 0 {
						err = throttleErr{}
					}
					a.Done(tk, err)
				}
			})
		}
		wg.Wait()
		st := a.Stats()
		require.EqualValues(t, 32*50, st.Requests)
		require.LessOrEqual(t, most, 8)
		require.Positive(t, st.Throttled)
	})
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"3", 3 * time.Second},
		{" 7 ", 7 * time.Second},
		{"0", 0},
		{"-5", 0},
		{"1.5", 0},
		{"soon", 0},
		{"99999999999999999999", 0}, // overflows int64: garbage
		{"86400", provider.MaxRetryAfter},
		{"9223372036", provider.MaxRetryAfter},
		{"Tue, 24 Nov 2026 12:00:30 GMT", 30 * time.Second},
		{"Tuesday, 24-Nov-26 12:01:00 GMT", time.Minute}, // RFC 850
		{"Tue Nov 24 12:00:10 2026", 10 * time.Second},   // asctime
		{"Tue, 24 Nov 2026 11:00:00 GMT", 0},             // past
		{"Wed, 25 Nov 2026 12:00:00 GMT", provider.MaxRetryAfter},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			require.Equal(t, tt.want, provider.ParseRetryAfter(tt.in, now))
		})
	}
}

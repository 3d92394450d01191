package notify

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/event"
)

type retryAfterErr struct{ d time.Duration }

func (e retryAfterErr) Error() string             { return "HTTP 429 slow down" }
func (e retryAfterErr) RetryAfter() time.Duration { return e.d }

func TestRetrier(t *testing.T) {
	e503 := errors.New("HTTP 503")
	tests := []struct {
		name         string
		results      []error // per attempt; nil = success
		retryable    bool
		max          int
		wantAttempts int
		wantErr      bool
		permanent    bool
		wantElapsed  time.Duration // exact, when set (no jitter at play)
		wantInfos    []RetryInfo
	}{
		{name: "success first", results: []error{nil}, max: 5, wantAttempts: 1},
		{name: "Retry-After above max_backoff is capped", results: []error{retryAfterErr{100000 * time.Second}, nil}, retryable: true,
			max: 5, wantAttempts: 2, wantElapsed: time.Minute,
			wantInfos: []RetryInfo{{Attempt: 1, Wait: time.Minute, Asked: 100000 * time.Second, Err: retryAfterErr{100000 * time.Second}}}},
		{name: "Retry-After below max_backoff is honoured", results: []error{retryAfterErr{30 * time.Second}, nil}, retryable: true,
			max: 5, wantAttempts: 2, wantElapsed: 30 * time.Second,
			wantInfos: []RetryInfo{{Attempt: 1, Wait: 30 * time.Second, Err: retryAfterErr{30 * time.Second}}}},
		{name: "gives up after max", results: []error{e503}, retryable: true, max: 3, wantAttempts: 3, wantErr: true},
		{name: "permanent not retried", results: []error{e503}, max: 5, wantAttempts: 1, wantErr: true, permanent: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				calls := 0
				n := NotifierFunc(func(context.Context, ...event.Event) (bool, error) {
					err := tt.results[min(calls, len(tt.results)-1)]
					calls++
					return tt.retryable, err
				})
				var infos []RetryInfo
				r := Retrier{Max: tt.max, Backoff: Backoff{Base: time.Second, Max: time.Minute},
					OnRetry: func(i RetryInfo) { infos = append(infos, i) }}
				begin := time.Now()
				sent, attempts, permanent, err := r.Run(context.Background(), n, []event.Event{{ID: "e"}})
				require.Equal(t, tt.wantAttempts, attempts)
				require.Equal(t, tt.wantAttempts, calls)
				require.Equal(t, tt.wantErr, err != nil)
				require.Equal(t, tt.permanent, permanent)
				require.Len(t, sent, 1)
				require.Len(t, infos, tt.wantAttempts-1, "OnRetry once per retried attempt")
				if tt.wantElapsed > 0 {
					require.Equal(t, tt.wantElapsed, time.Since(begin))
					require.Equal(t, tt.wantInfos, infos)
				}
			})
		})
	}
}

// Before runs before every attempt; when it leaves nothing to send (all
// muted meanwhile), Run stops with success and no further call.
func TestRetrierBeforeEmptiesTheSend(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		calls := 0
		n := NotifierFunc(func(context.Context, ...event.Event) (bool, error) { calls++; return true, errors.New("down") })
		befores := 0
		r := Retrier{Max: 10, Backoff: Backoff{Base: time.Second, Max: time.Second},
			Before: func(evs []event.Event) []event.Event {
				befores++
				if befores == 3 {
					return nil
				}
				return evs
			}}
		sent, attempts, _, err := r.Run(context.Background(), n, []event.Event{{ID: "e"}})
		require.NoError(t, err)
		require.Empty(t, sent)
		require.Equal(t, 2, attempts)
		require.Equal(t, 2, calls)
	})
}

func TestBackoffCappedWithJitter(t *testing.T) {
	b := Backoff{Base: 100 * time.Millisecond, Max: 2 * time.Second}
	for attempt := range 40 {
		d := b.Delay(attempt)
		want := min(100*time.Millisecond<<min(attempt, 30), 2*time.Second)
		require.GreaterOrEqual(t, d, want/2)
		require.LessOrEqual(t, d, want)
	}
}

// Through a Dispatcher: each failed attempt counts in Stats.Retried as it
// happens and logs a warning with its cause; a Retry-After over
// max_backoff is logged as capped.
func TestRetriesCountedAndLogged(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var log syncBuf
		var calls atomic.Int32
		n := NotifierFunc(func(context.Context, ...event.Event) (bool, error) {
			if calls.Add(1) == 1 {
				return true, retryAfterErr{time.Hour}
			}
			return true, errors.New("HTTP 503 upstream down")
		})
		cons := &fakeConsumer{}
		cons.add(firing("e1", "a", 1))
		d := NewDispatcher(Options{Name: "crm", Notifier: n, Consumer: cons.fn(), Ledger: openStore(t),
			DeadLetters: noDeadLetters{t}, MaxDeliver: 1000, Backoff: Backoff{Base: time.Second, Max: time.Minute},
			Logger: textLogger(&log)})
		start(t, d)
		time.Sleep(90 * time.Second)
		synctest.Wait()
		early := d.Stats.Retried.Load()
		require.GreaterOrEqual(t, early, int64(2), "counted while the outage lasts")
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		later := d.Stats.Retried.Load()
		require.Greater(t, later, early, "the counter keeps growing")

		out := log.String()
		require.Contains(t, out, `msg="Retry-After capped at max_backoff" notifier=crm retry_after=1h0m0s max_backoff=1m0s`)
		var warns int64
		for line := range strings.Lines(out) {
			if !strings.Contains(line, `msg="delivery failed; will retry"`) {
				continue
			}
			warns++
			require.Contains(t, line, "level=WARN")
			for _, key := range []string{"notifier=crm", "attempt=", "wait=", `err="HTTP `} {
				require.Contains(t, line, key)
			}
		}
		require.Contains(t, out, `err="HTTP 503 upstream down"`)
		require.GreaterOrEqual(t, warns, later, "one warning per retried attempt")
		require.Zero(t, d.Stats.DeadLettered.Load())
	})
}

// A receiver down for two hours (hundreds of attempts), then back: every
// event is delivered, each alert's in seq order, none dead-lettered.
func TestLongOutageThenBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := openStore(t)
		begin := time.Now()
		rec := &recorder{fail: func(int, []event.Event) (bool, error) {
			if time.Since(begin) < 2*time.Hour {
				return true, errors.New("HTTP 503")
			}
			return false, nil
		}}
		cons := &fakeConsumer{}
		d := NewDispatcher(Options{Name: "crm", Notifier: rec, Consumer: cons.fn(), Ledger: st,
			DeadLetters: noDeadLetters{t}, MaxDeliver: 100000, Backoff: Backoff{Base: time.Second, Max: 10 * time.Second}})
		start(t, d)
		// Two alerts fire, then resolve while the receiver is still down.
		cons.add(appendOutbox(t, st, []string{"crm"}, firing("fa", "a", 0), firing("fb", "b", 0))...)
		time.Sleep(time.Hour)
		cons.add(appendOutbox(t, st, []string{"crm"}, resolved("ra", "a", 0), resolved("rb", "b", 0))...)
		time.Sleep(time.Hour + 5*time.Minute)
		synctest.Wait()
		require.Equal(t, []string{"fa", "fb", "ra", "rb"}, rec.ids())
		require.Greater(t, rec.callCount(), 500, "hundreds of attempts")
		require.EqualValues(t, 4, d.Stats.Delivered.Load())
		require.Zero(t, d.Stats.DeadLettered.Load())
		require.Empty(t, inHand(t, st, "crm"))
		require.True(t, cons.allAcked())
	})
}

package notify

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/event"
)

type retryAfterErr struct{ d time.Duration }

func (e retryAfterErr) Error() string             { return "slow down" }
func (e retryAfterErr) RetryAfter() time.Duration { return e.d }

func TestRetry(t *testing.T) {
	tests := []struct {
		name         string
		results      []error // per attempt; nil = success
		retryable    bool
		max          int
		wantAttempts int
		wantErr      bool
		permanent    bool
		minElapsed   time.Duration
	}{
		{name: "success first", results: []error{nil}, max: 5, wantAttempts: 1},
		{name: "honours Retry-After", results: []error{retryAfterErr{30 * time.Second}, retryAfterErr{30 * time.Second}, nil}, retryable: true, max: 5, wantAttempts: 3, minElapsed: 60 * time.Second},
		{name: "gives up after max", results: []error{errors.New("503"), errors.New("503"), errors.New("503")}, retryable: true, max: 3, wantAttempts: 3, wantErr: true},
		{name: "permanent not retried", results: []error{errors.New("400")}, retryable: false, max: 5, wantAttempts: 1, wantErr: true, permanent: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				calls := 0
				n := NotifierFunc(func(ctx context.Context, events ...event.Event) (bool, error) {
					err := tt.results[min(calls, len(tt.results)-1)]
					calls++
					return tt.retryable, err
				})
				kept := 0
				start := time.Now()
				attempts, permanent, err := Retry(context.Background(), n, []event.Event{{ID: "e"}}, tt.max,
					Backoff{Base: time.Second, Max: time.Minute}, func() { kept++ }, 10*time.Second)
				require.Equal(t, tt.wantAttempts, attempts)
				require.Equal(t, tt.wantErr, err != nil)
				require.Equal(t, tt.permanent, permanent)
				require.GreaterOrEqual(t, time.Since(start), tt.minElapsed)
				if tt.minElapsed > 0 {
					require.GreaterOrEqual(t, kept, 4, "events kept alive while waiting")
				}
			})
		})
	}
}

func TestRetryStopsOnCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		n := NotifierFunc(func(ctx context.Context, events ...event.Event) (bool, error) { return true, errors.New("down") })
		go func() {
			time.Sleep(90 * time.Second)
			cancel()
		}()
		attempts, _, err := Retry(ctx, n, nil, 1000, Backoff{Base: time.Second, Max: 10 * time.Second}, nil, 0)
		require.ErrorIs(t, err, context.Canceled)
		require.Less(t, attempts, 20)
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

package notify

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/event"
	"github.com/simwatch/simwatch/internal/notify/slack"
)

// syncBuf is a log sink safe for concurrent writes.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A receiver asking for Retry-After: 100000 (over a day) is waited at most
// max_backoff, and the cap is logged.
func TestRetryAfterCappedAtMaxBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		calls := 0
		n := NotifierFunc(func(ctx context.Context, events ...event.Event) (bool, error) {
			calls++
			if calls == 1 {
				return true, retryAfterErr{100000 * time.Second}
			}
			return false, nil
		})
		var infos []RetryInfo
		start := time.Now()
		attempts, _, err := RetryNotify(context.Background(), n, []event.Event{{ID: "e"}}, 5,
			Backoff{Base: time.Second, Max: 2 * time.Minute}, nil, 0, func(r RetryInfo) { infos = append(infos, r) })
		require.NoError(t, err)
		require.Equal(t, 2, attempts)
		require.Equal(t, 2*time.Minute, time.Since(start), "waited max_backoff, not Retry-After")
		require.Len(t, infos, 1)
		require.Equal(t, 100000*time.Second, infos[0].Asked)
		require.Equal(t, 2*time.Minute, infos[0].Wait)
	})

	synctest.Test(t, func(t *testing.T) {
		var log syncBuf
		calls := 0
		n := NotifierFunc(func(ctx context.Context, events ...event.Event) (bool, error) {
			calls++
			if calls == 1 {
				return true, retryAfterErr{100000 * time.Second}
			}
			return false, nil
		})
		cons := &fakeConsumer{}
		cons.add(event.Event{ID: "e1", Kind: event.KindFiring, Rule: "r", EntityID: "a"})
		d := NewDispatcher(Options{Name: "crm", Notifier: n, Consumer: cons, Log: &memLog{ids: map[string]bool{}},
			DeadLetters: noDeadLetters{t}, MaxDeliver: 5, Backoff: Backoff{Base: time.Second, Max: time.Minute},
			Logger: slog.New(slog.NewTextHandler(&log, nil))})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { _ = d.Run(ctx); close(done) }()
		start := time.Now()
		for d.Stats.Delivered.Load() == 0 && time.Since(start) < time.Hour {
			time.Sleep(time.Second)
		}
		cancel()
		<-done
		require.EqualValues(t, 1, d.Stats.Delivered.Load())
		require.Less(t, time.Since(start), 2*time.Minute)
		require.Contains(t, log.String(), "Retry-After capped at max_backoff")
		require.Contains(t, log.String(), "retry_after=27h46m40s")
		require.Contains(t, log.String(), "max_backoff=1m0s")
	})
}

// During an outage every failed attempt that will be retried is counted at
// once (simwatch_notifier_retried_total reads Stats.Retried) and logged at
// Warn with stable keys, long before retries run out.
func TestRetriesCountedAndLoggedDuringOutage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var log syncBuf
		n := NotifierFunc(func(ctx context.Context, events ...event.Event) (bool, error) {
			return true, errors.New("HTTP 503")
		})
		cons := &fakeConsumer{}
		cons.add(event.Event{ID: "e1", Kind: event.KindFiring, Rule: "r", EntityID: "a"})
		d := NewDispatcher(Options{Name: "crm", Notifier: n, Consumer: cons, Log: &memLog{ids: map[string]bool{}},
			DeadLetters: noDeadLetters{t}, MaxDeliver: 1000, Backoff: Backoff{Base: time.Second, Max: time.Minute},
			Logger: slog.New(slog.NewTextHandler(&log, nil))})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { _ = d.Run(ctx); close(done) }()

		time.Sleep(10 * time.Second)
		synctest.Wait()
		early := d.Stats.Retried.Load()
		require.GreaterOrEqual(t, early, int64(2), "retries counted while the outage lasts")
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		later := d.Stats.Retried.Load()
		require.Greater(t, later, early, "the counter keeps growing")
		cancel()
		<-done

		var warns int
		for line := range strings.Lines(log.String()) {
			if !strings.Contains(line, `msg="delivery failed; will retry"`) {
				continue
			}
			warns++
			require.Contains(t, line, "level=WARN")
			for _, key := range []string{"notifier=crm", "event_id=e1", "attempt=", "wait=", `err="HTTP 503"`} {
				require.Contains(t, line, key)
			}
		}
		require.EqualValues(t, later, warns, "one warning per retried attempt")
		require.Zero(t, d.Stats.DeadLettered.Load())
	})
}

type recordDeadLetters struct{ reasons chan string }

func (d recordDeadLetters) DeadLetter(_ context.Context, _ string, _ []byte, _, reason string) error {
	d.reasons <- reason
	return nil
}

// An incoming-webhook URL is a secret: through a transport error (retried,
// logged) and a redirect (dead-lettered), it never shows in the logs or the
// dead letter's reason.
func TestSlackWebhookURLNeverLeaks(t *testing.T) {
	var calls atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("redirect followed")
	}))
	defer other.Close()
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			c, _, err := w.(http.Hijacker).Hijack()
			require.NoError(t, err)
			_ = c.Close() // a network error, which net/http reports with the url
			return
		}
		http.Redirect(w, r, other.URL+"/?k=v", http.StatusFound)
	}))
	defer hook.Close()
	const secret = "/services/T1/B2/verysecrettoken"
	sn, err := slack.New(slack.Options{Name: "ops", WebhookURL: hook.URL + secret})
	require.NoError(t, err)

	var log syncBuf
	cons := &fakeConsumer{}
	cons.add(event.Event{ID: "e1", Kind: event.KindFiring, Rule: "r", Provider: "hw", Entity: "card", EntityID: "a"})
	dl := recordDeadLetters{reasons: make(chan string, 1)}
	d := NewDispatcher(Options{Name: "ops", Notifier: sn, Consumer: cons, Log: &memLog{ids: map[string]bool{}},
		DeadLetters: dl, MaxDeliver: 5, Backoff: Backoff{Base: time.Millisecond, Max: time.Millisecond},
		Logger: slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = d.Run(ctx); close(done) }()
	var reason string
	select {
	case reason = <-dl.reasons:
	case <-time.After(30 * time.Second):
		t.Fatal("not dead-lettered")
	}
	cancel()
	<-done
	require.Contains(t, reason, "permanent error")
	require.Contains(t, reason, "not followed")
	require.EqualValues(t, 1, d.Stats.Retried.Load())
	require.Contains(t, log.String(), "delivery failed; will retry")
	for _, s := range []string{reason, log.String()} {
		require.NotContains(t, s, "verysecrettoken")
		require.NotContains(t, s, "/services/")
	}
}

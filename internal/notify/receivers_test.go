package notify_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/bus"
	"github.com/simwatch/simwatch/internal/event"
	"github.com/simwatch/simwatch/internal/notify"
	"github.com/simwatch/simwatch/internal/notify/slack"
	"github.com/simwatch/simwatch/internal/store"
)

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *lockedBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *lockedBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

const secretPath = "/services/T1/B2/verysecrettoken"

// leaks names what would give the webhook's secret away.
var leaks = []string{"verysecrettoken", "/services/", "T1/B2"}

// An incoming-webhook URL is a secret. Through a transport error (retried,
// logged), a 500 and a redirect (dead-lettered), it shows neither in the
// error, nor in the logs, nor in the dead letter's reason.
func TestSlackWebhookURLNeverLeaks(t *testing.T) {
	var calls atomic.Int32
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch calls.Add(1) {
		case 1:
			c, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				_ = c.Close() // a network error, which net/http reports with the url
			}
		case 2:
			http.Error(w, "oops at "+r.URL.Path, http.StatusInternalServerError)
		default:
			http.Redirect(w, r, "http://other.example"+r.URL.Path+"?k=v", http.StatusFound)
		}
	}))
	defer hook.Close()

	var log lockedBuf
	logger := slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	sn, err := slack.New(slack.Options{Name: "ops", WebhookURL: hook.URL + secretPath, Log: logger})
	require.NoError(t, err)

	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	require.NoError(t, err)
	srv.Start()
	require.True(t, srv.ReadyForConnections(10*time.Second))
	defer srv.Shutdown()
	b, err := bus.Open(context.Background(), bus.Options{URL: srv.ClientURL()})
	require.NoError(t, err)
	defer b.Close()
	st, err := store.Open(filepath.Join(t.TempDir(), "s.db"))
	require.NoError(t, err)
	defer func() { _ = st.Close() }()
	_, _, err = b.Consumer(context.Background(), "ops")
	require.NoError(t, err)

	d := notify.NewDispatcher(notify.Options{Name: "ops", Notifier: sn, Ledger: st, DeadLetters: b,
		Consumer: func(ctx context.Context) (notify.Consumer, error) {
			c, _, err := b.Consumer(ctx, "ops")
			return c, err
		},
		MaxDeliver: 5, Backoff: notify.Backoff{Base: time.Millisecond, Max: time.Millisecond}, Logger: logger})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = d.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	e := event.Event{ID: "e1", Seq: 1, Kind: event.KindFiring, Rule: "r", Provider: "hw", Entity: "card", EntityID: "a",
		StartsAt: time.Now(), ObservedAt: time.Now()}
	require.NoError(t, b.Publish(ctx, &e))
	require.Eventually(t, func() bool { return d.Stats.DeadLettered.Load() == 1 }, 10*time.Second, 5*time.Millisecond)

	dls, err := b.ListDeadLetters(ctx, "ops")
	require.NoError(t, err)
	require.Len(t, dls, 1)
	reason := dls[0].Error
	require.Contains(t, reason, "permanent error")
	require.Contains(t, reason, "redirect to other.example not followed")
	require.EqualValues(t, 2, d.Stats.Retried.Load(), "the network error and the 500 were retried")
	require.Contains(t, log.String(), "delivery failed; will retry")

	// And the error a caller gets from the notifier itself.
	_, nerr := sn.Notify(ctx, e)
	require.Error(t, nerr)
	for _, s := range []string{reason, d.LastDeadLetter(), log.String(), nerr.Error()} {
		for _, leak := range leaks {
			require.NotContains(t, s, leak)
		}
	}
}

// Each way a webhook post fails, the error names no part of the URL's path.
func TestSlackWebhookErrorsRedacted(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
	}{
		{name: "connection dropped", handler: func(w http.ResponseWriter, _ *http.Request) {
			if c, _, err := w.(http.Hijacker).Hijack(); err == nil {
				_ = c.Close()
			}
		}},
		{name: "404 echoing the path", handler: func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "no hook at "+r.URL.String(), http.StatusNotFound)
		}},
		{name: "500 echoing the path", handler: func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "failed "+r.URL.Path, http.StatusInternalServerError)
		}},
		{name: "redirect carrying the path", handler: func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "https://evil.example"+r.URL.Path, http.StatusMovedPermanently)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hook := httptest.NewServer(tt.handler)
			defer hook.Close()
			var log lockedBuf
			sn, err := slack.New(slack.Options{Name: "ops", WebhookURL: hook.URL + secretPath,
				Log: slog.New(slog.NewTextHandler(&log, nil))})
			require.NoError(t, err)
			_, err = sn.Notify(context.Background(), event.Event{ID: "e1", Kind: event.KindFiring, Rule: "r", EntityID: "a"})
			require.Error(t, err)
			for _, leak := range leaks {
				require.False(t, strings.Contains(err.Error(), leak), "error %q leaks %q", err, leak)
				require.NotContains(t, log.String(), leak)
			}
		})
	}
}

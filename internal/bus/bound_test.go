package bus

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/event"
)

// externalBus opens a bus on an external server whose max_payload is maxPayload.
func externalBus(t *testing.T, maxPayload int32) *Bus {
	t.Helper()
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(),
		NoLog: true, NoSigs: true, MaxPayload: maxPayload})
	require.NoError(t, err)
	srv.Start()
	require.True(t, srv.ReadyForConnections(5*time.Second))
	t.Cleanup(srv.Shutdown)
	b, err := Open(context.Background(), Options{URL: srv.ClientURL()})
	require.NoError(t, err)
	t.Cleanup(b.Close)
	return b
}

// bigEvent is an event whose values hold a 1.2 MB attribute.
func bigEvent(id string) event.Event {
	values, _ := json.Marshal(map[string]any{"id": id, "attributes": map[string]string{
		"customer_attribute1": strings.Repeat("a", 1_200_000)}})
	return event.Event{ID: id, Kind: event.KindFiring, Provider: "hw", Entity: "card", Rule: "r", Values: values}
}

// wideEvent is bigEvent with n labels of 1000 bytes, which Bound keeps
// until its last steps.
func wideEvent(id string, n int) event.Event {
	e := bigEvent(id)
	e.Labels = map[string]string{}
	for i := range n {
		e.Labels[string(rune('a'+i))] = strings.Repeat("l", 1000)
	}
	return e
}

// fetchAll returns the events a new consumer reads from the stream.
func fetchAll(t *testing.T, b *Bus, want int) map[string][]byte {
	t.Helper()
	c, err := b.js.CreateConsumer(context.Background(), EventsStream, jetstream.ConsumerConfig{
		Durable: "check", AckPolicy: jetstream.AckExplicitPolicy, DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	require.NoError(t, err)
	batch, err := c.Fetch(want, jetstream.FetchMaxWait(2*time.Second))
	require.NoError(t, err)
	got := map[string][]byte{}
	for m := range batch.Messages() {
		got[m.Headers().Get("Nats-Msg-Id")] = m.Data()
		require.NoError(t, m.Ack())
	}
	require.NoError(t, batch.Error())
	return got
}

func TestPublishBoundsToTheServersMaxPayload(t *testing.T) {
	tests := []struct {
		name       string
		maxPayload int32
		want       int // the bound
	}{
		{name: "default 1 MB server: event.MaxSize", maxPayload: 0, want: event.MaxSize},
		{name: "small server: its max_payload less header room", maxPayload: 16 << 10, want: 16<<10 - headerRoom - 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := externalBus(t, tt.maxPayload)
			require.Equal(t, tt.want, b.Limit("b1"))
			big := bigEvent("b1")
			n, err := b.PublishBatch(context.Background(), []event.Event{{ID: "a1", Rule: "r"}, big, {ID: "c1", Rule: "r"}})
			require.NoError(t, err)
			require.Equal(t, 3, n)
			require.Len(t, big.Values, 1_200_000+len(`{"attributes":{"customer_attribute1":""},"id":"b1"}`),
				"the caller's event is not written through")

			got := fetchAll(t, b, 3)
			require.Len(t, got, 3)
			require.LessOrEqual(t, len(got["b1"]), tt.want)
			var e event.Event
			require.NoError(t, json.Unmarshal(got["b1"], &e))
			require.True(t, e.Truncated)
			require.Contains(t, string(e.Values), "…[cut ")
			require.NoError(t, b.Publish(context.Background(), &big), "Publish bounds too")
		})
	}
}

func TestPublishBatchRefusedForGood(t *testing.T) {
	t.Run("over the server's max_payload", func(t *testing.T) {
		// Below event.MinLimit: an event bounded to MinLimit can still be too large for it.
		b := externalBus(t, 2<<10)
		n, err := b.PublishBatch(context.Background(), []event.Event{{ID: "a1", Rule: "r"}, wideEvent("b1", 3), {ID: "c1", Rule: "r"}})
		requireRejected(t, err, "b1", "maximum payload exceeded")
		require.Equal(t, 1, n, "the events before it are stored")
	})
	t.Run("over the stream's max message size", func(t *testing.T) {
		b := externalBus(t, 0)
		ctx := context.Background()
		s, err := b.js.Stream(ctx, EventsStream)
		require.NoError(t, err)
		cfg := s.CachedInfo().Config
		cfg.MaxMsgSize = 8 << 10
		_, err = b.js.UpdateStream(ctx, cfg)
		require.NoError(t, err)
		n, err := b.PublishBatch(ctx, []event.Event{{ID: "a1", Rule: "r"}, wideEvent("b1", 20), {ID: "c1", Rule: "r"}})
		requireRejected(t, err, "b1", "message size exceeds maximum")
		require.Equal(t, 1, n)
	})
}

func requireRejected(t *testing.T, err error, id, reason string) {
	t.Helper()
	var rej *RejectedError
	require.ErrorAs(t, err, &rej)
	require.Equal(t, id, rej.EventID)
	require.True(t, rej.Permanent())
	require.ErrorContains(t, err, reason)
}

// A server that is gone is a failure to retry, not a refusal.
func TestPublishBatchServerDownIsTransient(t *testing.T) {
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	require.NoError(t, err)
	srv.Start()
	require.True(t, srv.ReadyForConnections(5*time.Second))
	b, err := Open(context.Background(), Options{URL: srv.ClientURL()})
	require.NoError(t, err)
	defer b.Close()
	srv.Shutdown()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	n, err := b.PublishBatch(ctx, []event.Event{{ID: "a1", Rule: "r"}})
	require.Error(t, err)
	require.Zero(t, n)
	var rej *RejectedError
	require.False(t, errors.As(err, &rej), "not permanent: %v", err)
}

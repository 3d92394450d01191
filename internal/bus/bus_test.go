package bus

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/event"
)

func fetchIDs(t *testing.T, b *Bus, notifier string) []string {
	t.Helper()
	c, _, err := b.Consumer(context.Background(), notifier)
	require.NoError(t, err)
	batch, err := c.Fetch(10, jetstream.FetchMaxWait(300*time.Millisecond))
	require.NoError(t, err)
	var ids []string
	for m := range batch.Messages() {
		ids = append(ids, m.Headers().Get("Nats-Msg-Id"))
		require.NoError(t, m.DoubleAck(context.Background()))
	}
	return ids
}

func TestEmbeddedSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	b, err := Open(ctx, Options{DataDir: dir})
	require.NoError(t, err)
	_, _, err = b.Consumer(ctx, "crm")
	require.NoError(t, err)
	e := &event.Event{ID: "e1", Provider: "hw", Entity: "card", Rule: "r"}
	require.NoError(t, b.Publish(ctx, e))
	require.NoError(t, b.Publish(ctx, e)) // duplicate: dropped
	b.Close()

	b2, err := Open(ctx, Options{DataDir: dir})
	require.NoError(t, err)
	defer b2.Close()
	n, err := b2.Pending(ctx, "crm")
	require.NoError(t, err)
	require.EqualValues(t, 1, n, "the event and the consumer's position survived")
	require.Equal(t, []string{"e1"}, fetchIDs(t, b2, "crm"))
}

func TestExternalServer(t *testing.T) {
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	require.NoError(t, err)
	srv.Start()
	require.True(t, srv.ReadyForConnections(5*time.Second))
	defer srv.Shutdown()
	ctx := context.Background()
	b, err := Open(ctx, Options{URL: srv.ClientURL()})
	require.NoError(t, err)
	defer b.Close()
	_, _, err = b.Consumer(ctx, "crm")
	require.NoError(t, err)
	require.NoError(t, b.Publish(ctx, &event.Event{ID: "x.y*z", Provider: "h w", Entity: "card", Rule: "r>"}))
	require.Equal(t, []string{"x.y*z"}, fetchIDs(t, b, "crm"))
	require.NoError(t, b.DeadLetter(ctx, "crm", []byte(`{}`), "x", "HTTP 400"))
	require.NoError(t, b.DeadLetter(ctx, "crm", []byte(`{}`), "x", "HTTP 400"))
	n, err := b.DeadLetters(ctx, "crm")
	require.NoError(t, err)
	require.EqualValues(t, 1, n)
}

func TestOpenUnreachable(t *testing.T) {
	_, err := Open(context.Background(), Options{URL: "nats://127.0.0.1:1"})
	require.ErrorContains(t, err, "nats.url nats://127.0.0.1:1 is unreachable")
}

// A consumer lost with the server's data is recreated, says so, and reads
// what is published from then on (the caller republishes what it owes).
func TestConsumerRecreatedAfterDataLoss(t *testing.T) {
	ctx := context.Background()
	b, err := Open(ctx, Options{DataDir: t.TempDir()})
	require.NoError(t, err)
	defer b.Close()
	_, created, err := b.Consumer(ctx, "crm")
	require.NoError(t, err)
	require.True(t, created)
	_, created, err = b.Consumer(ctx, "crm")
	require.NoError(t, err)
	require.False(t, created, "an existing consumer is reused")

	require.NoError(t, b.js.DeleteStream(ctx, EventsStream))
	_, created, err = b.Consumer(ctx, "crm")
	require.NoError(t, err)
	require.True(t, created, "stream and consumer come back")
	e := &event.Event{ID: "e2", Provider: "hw", Entity: "card", Rule: "r"}
	require.NoError(t, b.Republish(ctx, "crm", e, []byte(`{"id":"e2"}`)))
	require.NoError(t, b.Republish(ctx, "crm", e, []byte(`{"id":"e2"}`)), "a second republish is not dropped as a duplicate")
	n, err := b.Pending(ctx, "crm")
	require.NoError(t, err)
	require.EqualValues(t, 2, n)
}

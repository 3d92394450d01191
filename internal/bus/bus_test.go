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
	c, err := b.Consumer(context.Background(), notifier)
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
	_, err = b.Consumer(ctx, "crm")
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
	_, err = b.Consumer(ctx, "crm")
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
	require.ErrorContains(t, err, "bus: connect")
}

package bus

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/event"
)

// The outbox's bytes go on the wire as they are, deduplicated by the
// event's id; only an event larger than the server accepts (an outbox of
// an older version) is bounded again.
func TestPublishEncodedSendsTheStoredBytes(t *testing.T) {
	b := externalBus(t, 16<<10)
	small := event.Event{ID: "a1", Kind: event.KindFiring, Provider: "hw", Entity: "card", Rule: "r", Summary: "ü \"q\""}
	data, err := small.Encode(event.MaxSize)
	require.NoError(t, err)
	big := bigEvent("b1")
	bigData, err := json.Marshal(big) // unbounded, as an older version stored it
	require.NoError(t, err)
	in := []event.Encoded{
		{ID: "a1", Subject: small.Subject(), Data: data},
		{ID: "b1", Subject: big.Subject(), Data: bigData},
		{ID: "a1", Subject: small.Subject(), Data: data}, // a repeat: the duplicate window drops it
	}
	n, err := b.PublishEncoded(context.Background(), in)
	require.NoError(t, err)
	require.Equal(t, 3, n)
	got := fetchAll(t, b, 3)
	require.Len(t, got, 2, "the repeat was dropped by its Nats-Msg-Id")
	require.Equal(t, string(data), string(got["a1"]), "byte for byte as stored")
	require.LessOrEqual(t, len(got["b1"]), b.Limit("b1"))
	var e event.Event
	require.NoError(t, json.Unmarshal(got["b1"], &e))
	require.True(t, e.Truncated)
	require.Equal(t, "b1", e.ID)
}

// An entry that is not an event and too large for the server is refused
// for good, so the relay sets it aside.
func TestPublishEncodedRefusesAnOversizedNonEvent(t *testing.T) {
	b := externalBus(t, 16<<10)
	junk := make([]byte, 20<<10)
	n, err := b.PublishEncoded(context.Background(), []event.Encoded{{ID: "j", Subject: "simwatch.events.x.y.z", Data: junk}})
	require.Zero(t, n)
	var rej *RejectedError
	require.ErrorAs(t, err, &rej)
}

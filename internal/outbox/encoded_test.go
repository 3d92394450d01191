package outbox

import (
	"context"
	"encoding/binary"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"github.com/simwatch/simwatch/internal/event"
	"github.com/simwatch/simwatch/internal/store"
)

// recordingPublisher keeps what it was handed.
type recordingPublisher struct{ got []event.Encoded }

func (p *recordingPublisher) PublishEncoded(_ context.Context, events []event.Encoded) (int, error) {
	p.got = append(p.got, events...)
	return len(events), nil
}

// The relay hands the publisher the stored bytes, with the id and subject
// from the entry's header; an entry of the previous version (the event's
// JSON) drains alike.
func TestDrainPublishesTheStoredBytes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	st, err := store.Open(path)
	require.NoError(t, err)
	old := event.Event{ID: "old", Kind: event.KindFiring, Provider: "hw", Entity: "card", Rule: "low.flow", Summary: "ü"}
	oldData, err := old.Encode(event.MaxSize)
	require.NoError(t, err)
	require.NoError(t, st.Close())
	db, err := bolt.Open(path, 0o600, nil)
	require.NoError(t, err)
	require.NoError(t, db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("outbox"))
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		return b.Put(binary.BigEndian.AppendUint64(nil, seq), oldData)
	}))
	require.NoError(t, db.Close())
	st = openStore(t, path)

	fresh := []event.Event{{ID: "n1", Kind: event.KindTransition, Provider: "gsl", Entity: "card", EntityID: "7", Rule: "r", Values: []byte(`{"flow_used":0.30000000000000004,"big":12345678901234567890}`)}}
	require.NoError(t, st.Update(func(tx *store.Tx) error { return tx.AppendOutbox(fresh) }))
	want, err := st.OutboxEncoded(10)
	require.NoError(t, err)

	pub := &recordingPublisher{}
	n, err := New(st, pub, 0, nil).Drain(context.Background())
	require.NoError(t, err)
	require.Equal(t, 2, n)
	require.Len(t, pub.got, 2)
	require.Equal(t, event.Encoded{ID: "old", Subject: "simwatch.events.hw.card.low_flow", Data: oldData}, pub.got[0])
	require.Equal(t, want[1].Encoded, pub.got[1])
	require.Equal(t, "simwatch.events.gsl.card.r", pub.got[1].Subject)
	require.Contains(t, string(pub.got[1].Data), `"big":12345678901234567890`, "the values' bytes as the rule wrote them")
	require.Zero(t, st.OutboxLen())
}

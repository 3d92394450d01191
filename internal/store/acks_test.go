package store

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"github.com/simwatch/simwatch/internal/event"
	"github.com/simwatch/simwatch/internal/rules"
)

// An ack lasts one episode of its alert: it is left out once the alert is
// gone, resolved or started again, and dropped from the bucket at the next
// ack; its announcement takes the alert's next seq in the same transaction.
func TestAckLastsOneEpisode(t *testing.T) {
	st, err := Open(filepath.Join(t.TempDir(), "s.db"))
	require.NoError(t, err)
	defer st.Close()
	t0 := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	put := func(id, state string, at time.Time) string {
		a := &rules.Alert{Rule: "r", Entity: "card", EntityID: id, State: state, ActiveAt: at}
		require.NoError(t, st.Update(func(tx *Tx) error {
			p, err := tx.Provider("hw")
			if err != nil {
				return err
			}
			return p.PutAlert(a.Key(), a)
		}))
		return a.Key()
	}
	announce := func(a *rules.Alert, k Ack) *event.Event {
		return &event.Event{ID: "ack-" + a.EntityID + k.Comment, Kind: event.KindAcknowledged, Rule: a.Rule, Provider: "hw",
			Entity: a.Entity, EntityID: a.EntityID, StartsAt: a.ActiveAt, ObservedAt: k.At}
	}
	ka, kb := put("a", rules.StateFiring, t0), put("b", rules.StatePending, t0)
	got, created, err := st.Ack(Ack{Provider: "hw", Alert: ka, By: "ops", Comment: "x", At: t0}, announce)
	require.NoError(t, err)
	require.True(t, created)
	require.True(t, got.ActiveAt.Equal(t0))
	out, err := st.Outbox(10)
	require.NoError(t, err)
	require.Len(t, out, 1)
	require.Equal(t, uint64(1), out[0].Event.Seq)

	_, _, err = st.Ack(Ack{Provider: "hw", Alert: "r\x00card\x00zz", By: "ops", Comment: "x", At: t0}, announce)
	require.True(t, errors.Is(err, ErrNoAlert), "%v", err)
	_, _, err = st.Ack(Ack{Provider: "nope", Alert: ka, By: "ops", Comment: "x", At: t0}, announce)
	require.True(t, errors.Is(err, ErrNoAlert), "%v", err)
	var providers int
	require.NoError(t, st.View(func(tx *Tx) error { providers = len(tx.Providers()); return nil }))
	require.Equal(t, 1, providers, "an ack of an unknown provider creates nothing")

	// The alert starts a new episode: the ack no longer counts.
	put("a", rules.StateFiring, t0.Add(time.Hour))
	_, ok, err := st.AckFor(AckKey("hw", ka))
	require.NoError(t, err)
	require.False(t, ok)
	acks, err := st.Acks()
	require.NoError(t, err)
	require.Empty(t, acks)

	// The next ack drops it from the bucket.
	_, _, err = st.Ack(Ack{Provider: "hw", Alert: kb, By: "ops", Comment: "y", At: t0}, announce)
	require.NoError(t, err)
	n := 0
	require.NoError(t, st.db.View(func(tx *bolt.Tx) error { n = tx.Bucket(bucketAcks).Stats().KeyN; return nil }))
	require.Equal(t, 1, n)

	put("b", rules.StateResolved, t0)
	_, _, err = st.Ack(Ack{Provider: "hw", Alert: kb, By: "ops", Comment: "z", At: t0}, announce)
	require.True(t, errors.Is(err, ErrAlertNotActive), "%v", err)
	acks, err = st.Acks()
	require.NoError(t, err)
	require.Empty(t, acks, "a resolved alert's ack is over")
}

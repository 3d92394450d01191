package store

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"github.com/simwatch/simwatch/internal/event"
)

// Events are not committed in the order they were observed: two providers
// poll concurrently, and the one whose cycle started later may commit
// first; an ack's time is the wall clock, a cycle's its start. On a fresh
// store the first commit sets where the index starts (keyIndexFrom); an
// event observed earlier but committed later is both in the index and
// below its start, where EventsPage scans too. Its entity's page must
// still show it once.
func TestHostile14IndexedEventBelowIndexStartShownOnce(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "s.db"))
	require.NoError(t, err)
	defer s.Close()
	t0 := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	ev := func(id, provider, card string, at time.Time) event.Event {
		return event.Event{ID: id, Kind: event.KindFiring, Rule: "r", Provider: provider, Entity: "card", EntityID: card, StartsAt: at, ObservedAt: at}
	}
	// Provider lc's cycle (started 10:00:05) commits first; hw's (started
	// 10:00:00) second.
	require.NoError(t, s.Update(func(tx *Tx) error {
		return tx.AppendOutbox([]event.Event{ev("lc-1", "lc", "7", t0.Add(5*time.Second))})
	}))
	require.NoError(t, s.Update(func(tx *Tx) error { return tx.AppendOutbox([]event.Event{ev("hw-1", "hw", "7", t0)}) }))

	page, err := s.EventsPage(EventQuery{EventFilter: EventFilter{Provider: "hw", EntityID: "7", Limit: 20}, Entity: "card"})
	require.NoError(t, err)
	var ids []string
	for _, e := range page.Events {
		ids = append(ids, e.ID)
	}
	require.Equal(t, []string{"hw-1"}, ids, "the card's one event, once")

	// The whole-history scan agrees.
	all, err := s.EventsPage(EventQuery{EventFilter: EventFilter{Provider: "hw", EntityID: "7", Limit: 20}})
	require.NoError(t, err)
	require.Len(t, all.Events, 1)
}

// Events past the retention go with their index entries, whichever holder
// lets them go last (the history or the outbox): the index keeps no stale
// entry, and the entity's page shows only what the history still has.
func TestHostile14IndexForgetsExpiredEvents(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "s.db"))
	require.NoError(t, err)
	defer s.Close()
	t0 := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	emit := func(id, card string, at time.Time) {
		require.NoError(t, s.Update(func(tx *Tx) error {
			return tx.AppendOutbox([]event.Event{{ID: id, Kind: event.KindTransition, Rule: "r", Provider: "hw", Entity: "card", EntityID: card, StartsAt: at, ObservedAt: at}})
		}))
	}
	drain := func() {
		entries, err := s.Outbox(1000)
		require.NoError(t, err)
		var seqs []uint64
		for _, e := range entries {
			seqs = append(seqs, e.Seq)
		}
		require.NoError(t, s.DeleteOutbox(seqs...))
	}
	emit("a", "1", t0)
	emit("b", "2", t0.Add(time.Hour))
	drain()                                 // a and b: published; the history alone holds them
	emit("c", "3", t0.Add(31*24*time.Hour)) // a and b expire; c stays in the outbox
	emit("d", "1", t0.Add(62*24*time.Hour)) // c expires while the outbox still holds it
	drain()                                 // c goes now, with the outbox's release

	count := func(bucket []byte) (n int) {
		require.NoError(t, s.db.View(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucket)
			if b == nil {
				return nil
			}
			return b.ForEach(func(k, _ []byte) error {
				if len(k) > hkeyLen {
					n++
				}
				return nil
			})
		}))
		return n
	}
	var events int
	require.NoError(t, s.db.View(func(tx *bolt.Tx) error { events = tx.Bucket(bucketEvents).Stats().KeyN; return nil }))
	require.Equal(t, 1, events, "only d is kept")
	require.Equal(t, 1, count(bucketEventIndex), "one index entry, d's")
	for card, want := range map[string]int{"1": 1, "2": 0, "3": 0} {
		page, err := s.EventsPage(EventQuery{EventFilter: EventFilter{Provider: "hw", EntityID: card, Limit: 20}, Entity: "card"})
		require.NoError(t, err)
		require.Len(t, page.Events, want, "card %s", card)
	}
}

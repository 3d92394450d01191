package store

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"github.com/simwatch/simwatch/internal/event"
)

// One entity's events come from the index, newest first and paged, the
// same as a scan of the whole history would give; events recorded before
// the index existed are still found.
func TestEntityEventsFromTheIndex(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "s.db"))
	require.NoError(t, err)
	defer s.Close()
	t0 := time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)
	var n int
	emit := func(ids ...string) {
		var evs []event.Event
		for _, id := range ids {
			n++
			evs = append(evs, event.Event{ID: fmt.Sprint("e", n), Kind: event.KindFiring, Rule: "r", Provider: "hw", Entity: "card",
				EntityID: id, StartsAt: t0, ObservedAt: t0.Add(time.Duration(n) * time.Minute)})
		}
		require.NoError(t, s.Update(func(tx *Tx) error { return tx.AppendOutbox(evs) }))
	}
	for range 5 {
		emit("1", "2", "3")
	}
	// Forget the index of the first events, as a store written before it.
	require.NoError(t, s.db.Update(func(tx *bolt.Tx) error {
		idx := tx.Bucket(bucketEventIndex)
		var drop [][]byte
		c := idx.Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			drop = append(drop, append([]byte(nil), k...))
		}
		for _, k := range drop {
			if err := idx.Delete(k); err != nil {
				return err
			}
		}
		_, err := tx.CreateBucketIfNotExists(bucketEventIndex)
		return err
	}))
	emit("1", "2") // indexed from here on
	emit("1")

	var got []string
	q := EventQuery{EventFilter: EventFilter{Provider: "hw", EntityID: "1", Limit: 2}, Entity: "card"}
	for {
		page, err := s.EventsPage(q)
		require.NoError(t, err)
		for _, e := range page.Events {
			got = append(got, e.ID)
		}
		if page.Next == "" || len(page.Events) == 0 {
			break
		}
		q.Before = page.Next
	}
	require.Equal(t, []string{"e18", "e16", "e13", "e10", "e7", "e4", "e1"}, got, "newest first, none twice, the unindexed ones too")
	page, err := s.EventsPage(EventQuery{EventFilter: EventFilter{Provider: "hw", EntityID: "2", Limit: 100}, Entity: "card"})
	require.NoError(t, err)
	require.Len(t, page.Events, 6)
}

// A search that matches little reads at most maxScan events per page, and
// says where it stopped: paging on from there finds every match, once.
func TestEventSearchIsBoundedAndResumes(t *testing.T) {
	defer func(n int) { maxScan = n }(maxScan)
	maxScan = 7
	s, err := Open(filepath.Join(t.TempDir(), "s.db"))
	require.NoError(t, err)
	defer s.Close()
	t0 := time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)
	var evs []event.Event
	for i := range 40 {
		rule := "quiet"
		if i%10 == 0 {
			rule = "rare"
		}
		evs = append(evs, event.Event{ID: fmt.Sprint("e", i), Kind: event.KindFiring, Rule: rule, Provider: "hw", Entity: "card",
			EntityID: fmt.Sprint(i), StartsAt: t0, ObservedAt: t0.Add(time.Duration(i) * time.Minute)})
	}
	require.NoError(t, s.Update(func(tx *Tx) error { return tx.AppendOutbox(evs) }))
	var got []string
	partial := 0
	q := EventQuery{EventFilter: EventFilter{Rule: "rare", Limit: 100}}
	for range 20 {
		page, err := s.EventsPage(q)
		require.NoError(t, err)
		for _, e := range page.Events {
			got = append(got, e.ID)
		}
		if page.Partial {
			partial++
		}
		if page.Next == "" {
			break
		}
		q.Before = page.Next
	}
	require.Equal(t, []string{"e30", "e20", "e10", "e0"}, got)
	require.Positive(t, partial, "the search stopped at its bound and went on")
}

package store

import (
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"github.com/simwatch/simwatch/internal/event"
)

// hostile15Store is a store holding legacy (unindexed) events, then indexed
// events committed out of observation order (two providers' cycles), with
// entity ids that are prefixes of each other or hold NUL bytes. It returns
// every event stored.
func hostile15Store(t *testing.T) (*Store, []event.Event) {
	s, err := Open(filepath.Join(t.TempDir(), "s.db"))
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	t0 := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	var all []event.Event
	n := 0
	emit := func(at time.Duration, specs ...[3]string) { // provider, entity, id
		var evs []event.Event
		for i, sp := range specs {
			n++
			e := event.Event{ID: fmt.Sprint("e", n), Kind: event.KindFiring, Rule: "r", Provider: sp[0], Entity: sp[1],
				EntityID: sp[2], StartsAt: t0, ObservedAt: t0.Add(at + time.Duration(i)*time.Second)}
			evs = append(evs, e)
		}
		all = append(all, evs...)
		require.NoError(t, s.Update(func(tx *Tx) error { return tx.AppendOutbox(evs) }))
	}
	c := func(p, id string) [3]string { return [3]string{p, "card", id} }
	// Providers with events have their state bucket (the poller's commits).
	require.NoError(t, s.Update(func(tx *Tx) error {
		for _, p := range []string{"hw", "hw2", "lc", "h"} {
			if _, err := tx.Provider(p); err != nil {
				return err
			}
		}
		return nil
	}))
	// Legacy: written before the index existed.
	emit(1*time.Minute, c("hw", "1"), c("hw", "10"), c("hw", "1\x00x"), c("hw2", "1"))
	emit(2*time.Minute, c("hw", "2"), c("hw", "3"), c("hw", "4"), c("hw", "1"))
	emit(3*time.Minute, c("hw", "5"), [3]string{"hw", "pool", "1"}, c("hw", "6"), c("h", "w\x00card\x001"))
	require.NoError(t, s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(bucketEventIndex); err != nil {
			return err
		}
		_, err := tx.CreateBucket(bucketEventIndex)
		return err
	}))
	// Indexed from here; lc's later-started cycle commits first, then hw's
	// events observed before it (below the index's start).
	emit(20*time.Minute, c("lc", "9"))
	emit(4*time.Minute, c("hw", "7"), c("hw", "1"), c("hw", "8"), c("hw", "9"), c("hw", "11"), c("hw", "1"))
	emit(5*time.Minute, c("hw", "12"), c("hw", "13"), c("hw", "10"), c("hw", "1\x00x"), c("hw", "14"))
	emit(30*time.Minute, c("hw", "1"), c("hw", "15"), c("hw2", "1"), c("hw", "16"))
	emit(40*time.Minute, c("hw", "17"), c("hw", "18"), c("hw", "1"))
	return s, all
}

// Paging an entity's events (index path), with any page size, scan bound,
// Until and Since, finds every match exactly once, newest first, and ends.
func TestHostile15EventPagingExactlyOnce(t *testing.T) {
	defer func(n int) { maxScan = n }(maxScan)
	s, all := hostile15Store(t)
	t0 := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	type qs struct {
		provider, entity, id string
		until, since         time.Duration
	}
	var queries []qs
	for _, id := range []string{"1", "10", "1\x00x", ""} {
		for _, p := range []string{"hw", ""} {
			for _, ent := range []string{"card", ""} {
				for _, b := range [][2]time.Duration{{0, 0}, {35 * time.Minute, 0}, {0, 4 * time.Minute}, {31 * time.Minute, 2 * time.Minute}} {
					queries = append(queries, qs{p, ent, id, b[0], b[1]})
				}
			}
		}
	}
	for _, scan := range []int{1, 2, 3, 5, 1000} {
		maxScan = scan
		for _, limit := range []int{1, 2, 3, 100} {
			for _, q := range queries {
				name := fmt.Sprintf("scan=%d limit=%d p=%q ent=%q id=%q until=%v since=%v", scan, limit, q.provider, q.entity, q.id, q.until, q.since)
				eq := EventQuery{EventFilter: EventFilter{Provider: q.provider, EntityID: q.id, Limit: limit}, Entity: q.entity}
				if q.until != 0 {
					eq.Until = t0.Add(q.until)
				}
				if q.since != 0 {
					eq.Since = t0.Add(q.since)
				}
				var want []string
				for _, e := range all {
					if eq.match(&e) && (q.entity == "" || e.Entity == q.entity) &&
						(eq.Until.IsZero() || !e.ObservedAt.After(eq.Until)) && (eq.Since.IsZero() || !e.ObservedAt.Before(eq.Since)) {
						want = append(want, e.ID)
					}
				}
				var got, cursors []string
				ended := false
				for range 500 {
					page, err := s.EventsPage(eq)
					require.NoError(t, err, name)
					for _, e := range page.Events {
						got = append(got, e.ID)
					}
					cursors = append(cursors, page.Cursors...)
					if page.Next == "" {
						ended = true
						break
					}
					require.NotEqual(t, eq.Before, page.Next, "%s: the cursor did not move", name)
					eq.Before = page.Next
				}
				require.True(t, ended, "%s: paging never ends", name)
				slices.Sort(want)
				sorted := slices.Clone(got)
				slices.Sort(sorted)
				require.Equal(t, want, sorted, "%s: every match exactly once (got in order %v)", name, got)
				require.True(t, slices.IsSortedFunc(cursors, func(a, b string) int { return -compareHex(a, b) }), "%s: newest first, got %v", name, got)
			}
		}
	}
}

func compareHex(a, b string) int {
	if a < b {
		return -1
	} else if a > b {
		return 1
	}
	return 0
}

// Smallest case: an event committed after the index began but observed
// before its start (another provider's cycle committed first) comes from
// the index on every page, so a search that stops at maxScan and pages on
// shows it again on each page that follows.
func TestHostile15PartialPageRepeatsIndexedEvent(t *testing.T) {
	defer func(n int) { maxScan = n }(maxScan)
	maxScan = 1
	s, err := Open(filepath.Join(t.TempDir(), "s.db"))
	require.NoError(t, err)
	defer s.Close()
	t0 := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	ev := func(id, provider, card string, at time.Time) event.Event {
		return event.Event{ID: id, Kind: event.KindFiring, Rule: "r", Provider: provider, Entity: "card", EntityID: card, StartsAt: at, ObservedAt: at}
	}
	require.NoError(t, s.Update(func(tx *Tx) error {
		return tx.AppendOutbox([]event.Event{ev("lc-1", "lc", "9", t0.Add(5*time.Second))})
	}))
	require.NoError(t, s.Update(func(tx *Tx) error {
		return tx.AppendOutbox([]event.Event{ev("hw-1", "hw", "1", t0), ev("hw-2", "hw", "2", t0.Add(time.Second))})
	}))
	var got []string
	q := EventQuery{EventFilter: EventFilter{Provider: "hw", EntityID: "1", Limit: 100}, Entity: "card"}
	for range 10 {
		page, err := s.EventsPage(q)
		require.NoError(t, err)
		for _, e := range page.Events {
			got = append(got, e.ID)
		}
		if page.Next == "" {
			break
		}
		q.Before = page.Next
	}
	require.Equal(t, []string{"hw-1"}, got, "the card's one event, once")
}

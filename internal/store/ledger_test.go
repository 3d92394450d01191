package store

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"github.com/simwatch/simwatch/internal/event"
)

// lt0 is the start of every alert's episode in the ledger tests.
var lt0 = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

// lev builds an event of the card_low_flow alert of card entity, routed to
// notifyTo (all notifiers when empty).
func lev(id, entity, kind string, notifyTo ...string) event.Event {
	return event.Event{ID: id, Kind: kind, Rule: "card_low_flow", Provider: "hw", Entity: "card",
		EntityID: entity, StartsAt: lt0, ObservedAt: lt0, Notify: notifyTo}
}

func alertOf(entity string) string {
	e := lev("", entity, event.KindFiring)
	return e.AlertKey()
}

// openLedger opens a store at a fresh path whose ledger keeps events for
// notifiers.
func openLedger(t *testing.T, notifiers ...string) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state.db")
	return reopenLedger(t, path, notifiers...), path
}

func reopenLedger(t *testing.T, path string, notifiers ...string) *Store {
	t.Helper()
	s, err := Open(path)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	released, err := s.SetNotifiers(notifiers)
	require.NoError(t, err)
	require.Zero(t, released)
	return s
}

// appendEvents appends events as a poll cycle does and returns them as
// stored (with their seq).
func appendEvents(t *testing.T, s *Store, evs ...event.Event) []event.Event {
	t.Helper()
	require.NoError(t, s.Update(func(tx *Tx) error { return tx.AppendOutbox(evs) }))
	return evs
}

// publish does what the relay does once the bus stored the outbox entries
// of these event ids.
func publish(t *testing.T, s *Store, ids ...string) {
	t.Helper()
	out, err := s.Outbox(100000)
	require.NoError(t, err)
	var pub []OutboxEntry
	for _, e := range out {
		if slices.Contains(ids, e.Event.ID) {
			pub = append(pub, e)
		}
	}
	require.Len(t, pub, len(ids), "outbox entries of %v", ids)
	require.NoError(t, s.Published(pub))
}

// receive has notifier take events from the bus as they were stored.
func receive(t *testing.T, s *Store, notifier string, replay bool, evs ...event.Event) []Received {
	t.Helper()
	in := make([]Incoming, len(evs))
	for i := range evs {
		data, err := evs[i].Encode(event.MaxSize)
		require.NoError(t, err)
		in[i] = Incoming{Event: evs[i], Data: data, Replay: replay}
	}
	out, err := s.Receive(notifier, in)
	require.NoError(t, err)
	require.Len(t, out, len(evs))
	return out
}

// lseqOf is the ledger place of an event id, 0 when the ledger lost it.
func lseqOf(t *testing.T, s *Store, id string) uint64 {
	t.Helper()
	var lseq uint64
	require.NoError(t, s.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketLedgerIDs); b != nil {
			if v := b.Get([]byte(id)); len(v) == 8 {
				lseq = binary.BigEndian.Uint64(v)
			}
		}
		return nil
	}))
	return lseq
}

// settleOne settles one event for a notifier as the dispatcher does.
func settleOne(t *testing.T, s *Store, notifier string, at time.Time, e event.Event, result string, mutedBy ...string) {
	t.Helper()
	o := Outcome{LSeq: lseqOf(t, s, e.ID), ID: e.ID, Result: result, Alert: e.AlertKey(), Kind: e.Kind, StartsAt: e.StartsAt}
	if len(mutedBy) == 2 {
		o.Silenced, o.Inhibited = mutedBy[0], mutedBy[1]
	}
	require.NoError(t, s.Settle(notifier, at, []Outcome{o}))
}

// ledgerTrace counts what the ledger's buckets hold of an event id: its
// entry, its data, its id, its alert index and each notifier owing it.
func ledgerTrace(t *testing.T, s *Store, id string) []string {
	t.Helper()
	var trace []string
	require.NoError(t, s.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketLedgerIDs); b != nil && b.Get([]byte(id)) != nil {
			trace = append(trace, "ledger_ids")
		}
		places := map[string]bool{}
		if b := tx.Bucket(bucketLedger); b != nil {
			_ = b.ForEach(func(k, v []byte) error {
				var e ledgerEntry
				require.NoError(t, json.Unmarshal(v, &e))
				if e.ID == id {
					places[string(k)] = true
					trace = append(trace, "ledger")
				}
				return nil
			})
		}
		if b := tx.Bucket(bucketLedgerEvents); b != nil {
			_ = b.ForEach(func(k, v []byte) error {
				data, err := eventData(tx, v)
				require.NoError(t, err)
				var e event.Event
				require.NoError(t, json.Unmarshal(data, &e))
				if e.ID == id {
					trace = append(trace, "ledger_events")
				}
				return nil
			})
		}
		if b := tx.Bucket(bucketLedgerAlerts); b != nil {
			_ = b.ForEach(func(k, _ []byte) error {
				if places[string(k[len(k)-8:])] {
					trace = append(trace, "ledger_alerts")
				}
				return nil
			})
		}
		if root := tx.Bucket(bucketLedgerOwed); root != nil {
			_ = root.ForEachBucket(func(name []byte) error {
				return root.Bucket(name).ForEach(func(k, _ []byte) error {
					if places[string(k)] {
						trace = append(trace, "owed by "+string(name))
					}
					return nil
				})
			})
		}
		return nil
	}))
	return trace
}

// ledgerSize counts the keys of each ledger bucket (owed: over all
// notifiers).
func ledgerSize(t *testing.T, s *Store) map[string]int {
	t.Helper()
	out := map[string]int{}
	require.NoError(t, s.db.View(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketLedger, bucketLedgerEvents, bucketLedgerIDs, bucketLedgerAlerts} {
			if b := tx.Bucket(name); b != nil {
				_ = b.ForEach(func(_, _ []byte) error { out[string(name)]++; return nil })
			}
		}
		if root := tx.Bucket(bucketLedgerOwed); root != nil {
			_ = root.ForEachBucket(func(n []byte) error {
				return root.Bucket(n).ForEach(func(_, _ []byte) error { out["ledger_owed"]++; return nil })
			})
		}
		return nil
	}))
	return out
}

func historyByID(t *testing.T, s *Store) map[string]event.Event {
	t.Helper()
	evs, err := s.Events(EventFilter{Limit: 100000})
	require.NoError(t, err)
	out := map[string]event.Event{}
	for _, e := range evs {
		out[e.ID] = e
	}
	return out
}

func ids(les []LedgerEvent) []string {
	out := make([]string, 0, len(les))
	for _, le := range les {
		out = append(out, le.Event.ID)
	}
	return out
}

// 1. Each alert numbers its events 1, 2, 3 … on its own, and the numbering
// survives a restart: a seq is never given twice.
func TestLedgerSeqPerAlert(t *testing.T) {
	type step struct {
		id, entity, kind string
		seq              uint64
	}
	cases := []struct {
		name   string
		before []step // appended one per cycle
		after  []step // appended after close and reopen
	}{
		{"one alert", []step{
			{"f1", "1", event.KindFiring, 1}, {"f1r", "1", event.KindFiring, 2}, {"r1", "1", event.KindResolved, 3},
		}, []step{
			{"f2", "1", event.KindFiring, 4}, {"r2", "1", event.KindResolved, 5},
		}},
		{"alerts count separately", []step{
			{"a1", "1", event.KindFiring, 1}, {"b1", "2", event.KindFiring, 1}, {"a2", "1", event.KindResolved, 2},
			{"c1", "10", event.KindFiring, 1}, {"b2", "2", event.KindResolved, 2},
		}, []step{
			{"b3", "2", event.KindFiring, 3}, {"c2", "10", event.KindTransition, 2}, {"a3", "1", event.KindFiring, 3},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, path := openLedger(t, "a")
			check := func(s *Store, steps []step, oneTx bool) {
				var evs []event.Event
				for _, st := range steps {
					evs = append(evs, lev(st.id, st.entity, st.kind))
				}
				if oneTx {
					evs = appendEvents(t, s, evs...)
				} else {
					for i := range evs {
						evs[i] = appendEvents(t, s, evs[i])[0]
					}
				}
				hist := historyByID(t, s)
				for i, st := range steps {
					require.Equal(t, st.seq, evs[i].Seq, "%s as appended", st.id)
					require.Equal(t, st.seq, hist[st.id].Seq, "%s in the history", st.id)
				}
			}
			check(s, tc.before, false)
			require.NoError(t, s.Close())
			check(reopenLedger(t, path, "a"), tc.after, true)
		})
	}
}

// 2. An event is owed to the notifiers it is for; once every one of them
// settled it, it leaves the ledger without a trace but stays in the history.
func TestLedgerOwedPerNotifier(t *testing.T) {
	cases := []struct {
		name   string
		notify []string
		owed   []string
	}{
		{"for everyone", nil, []string{"a", "b"}},
		{"for a only", []string{"a"}, []string{"a"}},
		{"for b and an unconfigured one", []string{"b", "zz"}, []string{"b"}},
		{"for no configured notifier", []string{"zz"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := openLedger(t, "a", "b")
			e := appendEvents(t, s, lev("e1", "1", event.KindFiring, tc.notify...))[0]
			want := map[string]int{}
			for _, n := range tc.owed {
				want[n] = 1
			}
			require.Equal(t, want, s.Owing())
			if len(tc.owed) == 0 {
				require.Empty(t, ledgerTrace(t, s, "e1"), "nobody owes it: not in the ledger")
			}
			publish(t, s, "e1")
			for i, n := range tc.owed {
				r := receive(t, s, n, false, e)
				require.True(t, r[0].Take, n)
				require.NotEmpty(t, ledgerTrace(t, s, "e1"), "still owed")
				settleOne(t, s, n, lt0, e, Delivered)
				require.Equal(t, len(tc.owed)-i-1, len(s.Owing()), "after %s settled", n)
				inHand, err := s.InHand(n)
				require.NoError(t, err)
				require.Empty(t, inHand)
			}
			require.Empty(t, s.Owing())
			require.Empty(t, ledgerTrace(t, s, "e1"))
			require.Empty(t, ledgerSize(t, s), "nothing left in the ledger")
			h, ok := historyByID(t, s)["e1"]
			require.True(t, ok, "kept in the history")
			require.EqualValues(t, 1, h.Seq)
			for _, n := range []string{"a", "b"} {
				got, err := s.Delivered(n, "e1")
				require.NoError(t, err)
				require.Equal(t, slices.Contains(tc.owed, n), got, "delivery log of %s", n)
			}
		})
	}
}

// 3. Receive: what a notifier takes from the bus, and what it skips.
func TestLedgerReceive(t *testing.T) {
	known := lev("k1", "1", event.KindFiring)      // appended, for a and b
	onlyB := lev("b1", "2", event.KindFiring, "b") // appended, for b only
	unknown := lev("u1", "3", event.KindFiring)    // never appended
	logged := lev("l1", "4", event.KindFiring)     // never appended, in a's delivery log
	cases := []struct {
		name  string
		steps func(t *testing.T, s *Store) []bool
		want  []bool
	}{
		{"first time taken, a repeat in hand skipped", func(t *testing.T, s *Store) []bool {
			r1 := receive(t, s, "a", false, known)
			r2 := receive(t, s, "a", false, known)
			require.Equal(t, lseqOf(t, s, "k1"), r1[0].LSeq)
			return []bool{r1[0].Take, r2[0].Take}
		}, []bool{true, false}},
		{"a repeat in one batch is taken once", func(t *testing.T, s *Store) []bool {
			r := receive(t, s, "a", false, known, known, unknown, unknown)
			return []bool{r[0].Take, r[1].Take, r[2].Take, r[3].Take}
		}, []bool{true, false, true, false}},
		{"settled: skipped", func(t *testing.T, s *Store) []bool {
			r1 := receive(t, s, "a", false, known)
			settleOne(t, s, "a", lt0, known, Delivered)
			require.NotEmpty(t, ledgerTrace(t, s, "k1"), "b still owes it")
			r2 := receive(t, s, "a", false, known)
			settleOne(t, s, "b", lt0, known, Delivered)
			require.Empty(t, ledgerTrace(t, s, "k1"))
			r3 := receive(t, s, "a", false, known) // from the delivery log
			r4 := receive(t, s, "b", false, known)
			return []bool{r1[0].Take, r2[0].Take, r3[0].Take, r4[0].Take}
		}, []bool{true, false, false, false}},
		{"muted or dead-lettered while still owed elsewhere: skipped", func(t *testing.T, s *Store) []bool {
			receive(t, s, "a", false, known)
			settleOne(t, s, "a", lt0, known, Muted, "s1", "")
			ra := receive(t, s, "a", false, known)
			receive(t, s, "b", false, known)
			settleOne(t, s, "b", lt0, known, DeadLettered)
			// b settled it last: it left the ledger (see
			// TestLedgerReceiveRepeatOfSettledEventAfterItLeftTheLedger).
			return []bool{ra[0].Take}
		}, []bool{false}},
		{"not routed to it: skipped", func(t *testing.T, s *Store) []bool {
			r := receive(t, s, "a", false, onlyB)
			require.Equal(t, map[string]int{"a": 1, "b": 2}, s.Owing())
			return []bool{r[0].Take}
		}, []bool{false}},
		{"unknown: taken, owed to it only", func(t *testing.T, s *Store) []bool {
			r := receive(t, s, "a", false, unknown)
			require.Equal(t, map[string]int{"a": 2, "b": 2}, s.Owing())
			require.Equal(t, lseqOf(t, s, "u1"), r[0].LSeq)
			inHand, err := s.InHand("a")
			require.NoError(t, err)
			require.Equal(t, []string{"u1"}, ids(inHand))
			un, err := s.Unreceived("a")
			require.NoError(t, err)
			require.Equal(t, []string{"k1"}, ids(un), "the unknown one came from the bus")
			return []bool{r[0].Take}
		}, []bool{true}},
		{"unknown but in its delivery log: skipped", func(t *testing.T, s *Store) []bool {
			require.NoError(t, s.MarkDelivered("a", lt0, "l1"))
			r := receive(t, s, "a", false, logged)
			require.Empty(t, ledgerTrace(t, s, "l1"))
			return []bool{r[0].Take}
		}, []bool{false}},
		{"replay of a delivered event that left the ledger: taken again", func(t *testing.T, s *Store) []bool {
			receive(t, s, "a", false, known)
			receive(t, s, "b", false, known)
			settleOne(t, s, "a", lt0, known, Delivered)
			settleOne(t, s, "b", lt0, known, DeadLettered)
			require.Empty(t, ledgerTrace(t, s, "k1"))
			r1 := receive(t, s, "b", true, known)
			require.Equal(t, []string{"ledger_ids", "ledger", "ledger_events", "ledger_alerts", "owed by b"}, ledgerTrace(t, s, "k1"))
			r2 := receive(t, s, "b", true, known) // a repeat of the replay
			return []bool{r1[0].Take, r2[0].Take}
		}, []bool{true, false}},
		{"replay of a delivered event still owed elsewhere: taken again", func(t *testing.T, s *Store) []bool {
			receive(t, s, "a", false, known)
			settleOne(t, s, "a", lt0, known, Delivered)
			r := receive(t, s, "a", true, known)
			require.Equal(t, lseqOf(t, s, "k1"), r[0].LSeq, "the same ledger place")
			return []bool{r[0].Take}
		}, []bool{true}},
		{"replay in the delivery log: taken", func(t *testing.T, s *Store) []bool {
			require.NoError(t, s.MarkDelivered("a", lt0, "l1"))
			r := receive(t, s, "a", true, logged)
			return []bool{r[0].Take}
		}, []bool{true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := openLedger(t, "a", "b")
			appendEvents(t, s, known, onlyB)
			publish(t, s, "k1", "b1")
			require.Equal(t, tc.want, tc.steps(t, s))
		})
	}
}

// An event the ledger does not know (on the bus from before the ledger
// existed) is for every notifier: each one that receives it must take it,
// not only the first.
func TestLedgerReceiveUnknownEventTakenByEachNotifier(t *testing.T) {
	s, _ := openLedger(t, "a", "b")
	old := lev("old1", "1", event.KindFiring) // published by a version without the ledger
	ra := receive(t, s, "a", false, old)
	rb := receive(t, s, "b", false, old)
	require.True(t, ra[0].Take, "a")
	require.True(t, rb[0].Take, "b must deliver it too: it never had it")
}

// A repeat from the bus (its ack was lost) of an event a notifier muted
// or dead-lettered must not be delivered, also once the event has left the
// ledger because every notifier settled it.
func TestLedgerReceiveRepeatOfSettledEventAfterItLeftTheLedger(t *testing.T) {
	for _, result := range []string{Muted, DeadLettered} {
		t.Run(result, func(t *testing.T) {
			s, _ := openLedger(t, "a")
			e := appendEvents(t, s, lev("e1", "1", event.KindFiring))[0]
			publish(t, s, "e1")
			require.True(t, receive(t, s, "a", false, e)[0].Take)
			settleOne(t, s, "a", lt0, e, result, "sil-1", "")
			require.Empty(t, ledgerTrace(t, s, "e1"), "settled by all: left the ledger")
			require.False(t, receive(t, s, "a", false, e)[0].Take, "a repeat of an event %s here", result)
		})
	}
}

// 4. What a notifier holds survives a restart, in ledger order; Unreceived
// lists what the bus holds for it and it has not taken.
func TestLedgerInHandAndUnreceived(t *testing.T) {
	s, path := openLedger(t, "a", "b")
	var evs []event.Event
	for i := 1; i <= 6; i++ {
		evs = append(evs, lev(fmt.Sprintf("e%d", i), fmt.Sprint(i%2), event.KindFiring, "a"))
	}
	evs = appendEvents(t, s, evs...)
	publish(t, s, "e1", "e2", "e4", "e5")
	r := receive(t, s, "a", false, evs[4], evs[0]) // e5 then e1
	require.True(t, r[0].Take)
	require.True(t, r[1].Take)
	require.Less(t, r[1].LSeq, r[0].LSeq, "ledger order is append order")
	require.NoError(t, s.Close())

	s = reopenLedger(t, path, "a", "b")
	inHand, err := s.InHand("a")
	require.NoError(t, err)
	require.Equal(t, []string{"e1", "e5"}, ids(inHand))
	for _, le := range inHand {
		require.Equal(t, lseqOf(t, s, le.Event.ID), le.LSeq)
		require.NotZero(t, le.Event.Seq)
		require.Contains(t, string(le.Data), le.Event.ID)
	}
	un, err := s.Unreceived("a")
	require.NoError(t, err)
	require.Equal(t, []string{"e2", "e4"}, ids(un), "published, not received")
	require.Equal(t, 4, s.UnreceivedCount("a"), "e2, e4 and the unpublished e3, e6")
	require.Equal(t, map[string]int{"a": 6}, s.Owing())
	for _, n := range []string{"b", "nobody"} {
		other, err := s.InHand(n)
		require.NoError(t, err)
		require.Empty(t, other)
		other, err = s.Unreceived(n)
		require.NoError(t, err)
		require.Empty(t, other)
		require.Zero(t, s.UnreceivedCount(n))
	}

	// Refilling the bus: the lost ones are received and then in hand.
	r = receive(t, s, "a", false, un[0].Event, un[1].Event)
	require.True(t, r[0].Take && r[1].Take)
	inHand, err = s.InHand("a")
	require.NoError(t, err)
	require.Equal(t, []string{"e1", "e2", "e4", "e5"}, ids(inHand))
	un, err = s.Unreceived("a")
	require.NoError(t, err)
	require.Empty(t, un)
	require.Equal(t, 2, s.UnreceivedCount("a"))
}

// 5. OwedBefore gives each alert's owed ledger places, so a later event of
// an alert waits for an earlier one.
func TestLedgerOwedBefore(t *testing.T) {
	s, _ := openLedger(t, "a", "b")
	evs := appendEvents(t, s,
		lev("x1", "1", event.KindFiring), lev("y1", "10", event.KindFiring),
		lev("x2", "1", event.KindResolved), lev("xb", "1", event.KindTransition, "b"))
	l := func(id string) uint64 { return lseqOf(t, s, id) }
	x, y, z := alertOf("1"), alertOf("10"), alertOf("100")

	steps := []struct {
		name   string
		settle []event.Event // settled at a before asking
		want   map[string][]uint64
	}{
		{"both owed", nil, map[string][]uint64{x: {l("x1"), l("x2")}, y: {l("y1")}}},
		{"first settled", []event.Event{evs[0]}, map[string][]uint64{x: {l("x2")}, y: {l("y1")}}},
		{"all settled", []event.Event{evs[1], evs[2]}, map[string][]uint64{}},
	}
	for _, st := range steps {
		for _, e := range st.settle {
			settleOne(t, s, "a", lt0, e, Delivered)
		}
		got, err := s.OwedBefore("a", []string{x, y, z})
		require.NoError(t, err)
		require.Equal(t, st.want, got, st.name)
	}
	got, err := s.OwedBefore("b", []string{x, y})
	require.NoError(t, err)
	require.Equal(t, map[string][]uint64{x: {l("x1"), l("x2"), l("xb")}, y: {l("y1")}}, got, "b settled nothing")
	got, err = s.OwedBefore("nobody", []string{x})
	require.NoError(t, err)
	require.Empty(t, got)
}

// 6. A muted event shows in the history what muted it; FiringOutcome tells
// per notifier whether the firing of an episode reached it, until its
// resolution.
func TestLedgerSettleMuted(t *testing.T) {
	cases := []struct {
		name                 string
		silenced, inhibited  string
		reason               string
		wantSilenced, wantIn string
	}{
		{"silence", "sil-42", "", "", "sil-42", ""},
		{"inhibition", "", "provider_unhealthy hw", "", "", "provider_unhealthy hw"},
		{"other reason", "", "", "its firing was muted", "", "its firing was muted"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := openLedger(t, "a", "b")
			e := appendEvents(t, s, lev("e1", "1", event.KindFiring))[0]
			o := Outcome{LSeq: lseqOf(t, s, "e1"), ID: "e1", Result: Muted, Alert: e.AlertKey(), Kind: e.Kind,
				StartsAt: e.StartsAt, Silenced: tc.silenced, Inhibited: tc.inhibited, Reason: tc.reason}
			require.NoError(t, s.Settle("a", lt0, []Outcome{o}))
			h := historyByID(t, s)["e1"]
			require.Equal(t, tc.wantSilenced, h.Silenced)
			require.Equal(t, tc.wantIn, h.Inhibited)
			require.Equal(t, map[string]int{"b": 1}, s.Owing(), "muted settles it for a")
		})
	}

	t.Run("firing outcome", func(t *testing.T) {
		s, _ := openLedger(t, "a", "b")
		f := appendEvents(t, s, lev("f1", "1", event.KindFiring))[0]
		alert := f.AlertKey()
		settleOne(t, s, "a", lt0, f, Delivered)
		settleOne(t, s, "b", lt0, f, Muted, "sil-1", "")
		type fo struct{ known, delivered bool }
		outcome := func(n string, start time.Time) fo {
			k, d, err := s.FiringOutcome(n, alert, start)
			require.NoError(t, err)
			return fo{k, d}
		}
		require.Equal(t, fo{true, true}, outcome("a", lt0))
		require.Equal(t, fo{true, false}, outcome("b", lt0))
		require.Equal(t, fo{false, false}, outcome("a", lt0.Add(time.Hour)), "another episode")
		require.Equal(t, fo{false, false}, outcome("c", lt0), "another notifier")

		// A reminder muted at a does not undo the firing delivered there.
		rem := appendEvents(t, s, lev("f1r", "1", event.KindFiring))[0]
		settleOne(t, s, "a", lt0, rem, Muted, "sil-2", "")
		require.Equal(t, fo{true, true}, outcome("a", lt0))
		// A reminder delivered at b: the episode reached it.
		settleOne(t, s, "b", lt0, rem, Delivered)
		require.Equal(t, fo{true, true}, outcome("b", lt0))

		r := appendEvents(t, s, lev("r1", "1", event.KindResolved))[0]
		settleOne(t, s, "a", lt0, r, Delivered)
		require.Equal(t, fo{false, false}, outcome("a", lt0), "resolved at a")
		require.Equal(t, fo{true, true}, outcome("b", lt0), "b has not settled the resolution")
		settleOne(t, s, "b", lt0, r, Delivered)
		require.Equal(t, fo{false, false}, outcome("b", lt0))
		require.Empty(t, ledgerSize(t, s))
		h := historyByID(t, s)
		require.Equal(t, "sil-1", h["f1"].Silenced, "muted at b")
		require.Equal(t, "sil-2", h["f1r"].Silenced, "muted at a")
		require.Empty(t, h["r1"].Silenced)
	})
}

// 7. Firing lists the latest firing event of each firing alert.
func TestLedgerFiring(t *testing.T) {
	steps := []struct {
		append []event.Event
		want   []string
	}{
		{[]event.Event{lev("x1", "1", event.KindFiring), lev("y1", "2", event.KindFiring)}, []string{"x1", "y1"}},
		{[]event.Event{lev("x2", "1", event.KindFiring)}, []string{"x2", "y1"}},
		{[]event.Event{lev("xt", "1", event.KindTransition), lev("ya", "2", event.KindAction)}, []string{"x2", "y1"}},
		{[]event.Event{lev("x3", "1", event.KindResolved)}, []string{"y1"}},
		{[]event.Event{lev("y2", "2", event.KindResolved), lev("x4", "1", event.KindFiring)}, []string{"x4"}},
	}
	s, path := openLedger(t, "a")
	for i, st := range steps {
		appendEvents(t, s, st.append...)
		got, err := s.Firing()
		require.NoError(t, err)
		var gotIDs []string
		for _, e := range got {
			gotIDs = append(gotIDs, e.ID)
			require.Equal(t, event.KindFiring, e.Kind)
			require.NotZero(t, e.Seq)
		}
		slices.Sort(gotIDs)
		require.Equal(t, st.want, gotIDs, "step %d", i)
	}
	require.NoError(t, s.Close())
	got, err := reopenLedger(t, path, "a").Firing()
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Equal(t, "x4", got[0].ID, "survives a restart")
}

// 8. A notifier removed from the config releases what it owed; one added
// owes only new events.
func TestLedgerSetNotifiers(t *testing.T) {
	s, _ := openLedger(t, "a", "b")
	evs := appendEvents(t, s,
		lev("all", "1", event.KindFiring), lev("bonly", "2", event.KindFiring, "b"), lev("aonly", "3", event.KindFiring, "a"))
	publish(t, s, "all", "bonly", "aonly")
	receive(t, s, "b", false, evs[0]) // one in hand, one not: both released

	released, err := s.SetNotifiers([]string{"a"})
	require.NoError(t, err)
	require.Equal(t, 2, released)
	require.Equal(t, map[string]int{"a": 2}, s.Owing())
	require.Empty(t, ledgerTrace(t, s, "bonly"), "owed only to b: gone")
	require.Equal(t, []string{"ledger_ids", "ledger", "ledger_events", "ledger_alerts", "owed by a"}, ledgerTrace(t, s, "all"))
	inHand, err := s.InHand("b")
	require.NoError(t, err)
	require.Empty(t, inHand)
	require.Zero(t, s.UnreceivedCount("b"))
	got, err := s.OwedBefore("b", []string{alertOf("1"), alertOf("2")})
	require.NoError(t, err)
	require.Empty(t, got)

	released, err = s.SetNotifiers([]string{"a", "c"})
	require.NoError(t, err)
	require.Zero(t, released)
	require.Equal(t, map[string]int{"a": 2}, s.Owing(), "c owes no old event")
	un, err := s.Unreceived("c")
	require.NoError(t, err)
	require.Empty(t, un)

	appendEvents(t, s, lev("new", "4", event.KindFiring))
	require.Equal(t, map[string]int{"a": 3, "c": 1}, s.Owing(), "c owes new events")

	released, err = s.SetNotifiers(nil)
	require.NoError(t, err)
	require.Equal(t, 4, released)
	require.Empty(t, s.Owing())
	require.Empty(t, ledgerSize(t, s))
	require.Len(t, historyByID(t, s), 4, "the history keeps them")
}

// 9. Pruning drops exactly the records older than the cut-off, however many.
func TestLedgerPrune(t *testing.T) {
	cut := lt0.Add(-24 * time.Hour)
	for _, n := range []int{0, 1, 7, 1000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			s, _ := openLedger(t, "a", "b")
			var old, fresh []Outcome
			for i := range n {
				old = append(old, Outcome{ID: fmt.Sprintf("old%04d", i), Result: Muted, Silenced: "s"})
			}
			for i := range 3 {
				fresh = append(fresh, Outcome{ID: fmt.Sprintf("new%d", i), Result: Muted, Inhibited: "x"})
			}
			require.NoError(t, s.Settle("a", cut.Add(-time.Nanosecond), old))
			require.NoError(t, s.Settle("a", cut, fresh)) // at the cut-off: kept
			got, err := s.PruneMutes(cut)
			require.NoError(t, err)
			require.Equal(t, n, got)
			require.Equal(t, 3, bucketLen(t, s, bucketMutes))
			got, err = s.PruneMutes(cut)
			require.NoError(t, err)
			require.Zero(t, got, "nothing left to prune")

			for i, o := range old {
				o.Result = Delivered
				old[i] = o
			}
			for i, o := range fresh {
				o.Result = Delivered
				fresh[i] = o
			}
			for _, nm := range []string{"a", "b"} {
				require.NoError(t, s.Settle(nm, cut.Add(-time.Hour), old))
				require.NoError(t, s.Settle(nm, cut, fresh))
			}
			got, err = s.PruneDelivered(cut)
			require.NoError(t, err)
			require.Equal(t, 2*n+n, got, "delivered at a and b, and a's record of muting them")
			for _, nm := range []string{"a", "b"} {
				for _, o := range old {
					ok, err := s.Delivered(nm, o.ID)
					require.NoError(t, err)
					require.False(t, ok, "%s %s pruned", nm, o.ID)
				}
				for _, o := range fresh {
					ok, err := s.Delivered(nm, o.ID)
					require.NoError(t, err)
					require.True(t, ok, "%s %s kept", nm, o.ID)
				}
			}
		})
	}
}

func bucketLen(t *testing.T, s *Store, name []byte) int {
	t.Helper()
	n := 0
	require.NoError(t, s.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(name); b != nil {
			return b.ForEach(func(_, _ []byte) error { n++; return nil })
		}
		return nil
	}))
	return n
}

// 10. A cycle whose transaction fails leaves nothing in the ledger and uses
// no seq.
func TestLedgerAppendRollback(t *testing.T) {
	cases := []struct {
		name string
		fail func(tx *Tx) error
	}{
		{"the cycle fails after appending", func(tx *Tx) error {
			if err := tx.AppendOutbox([]event.Event{lev("x2", "1", event.KindResolved), lev("y1", "2", event.KindFiring)}); err != nil {
				return err
			}
			return errBoom
		}},
		{"an event cannot be encoded", func(tx *Tx) error {
			bad := lev("y1", "2", event.KindFiring)
			bad.StartsAt = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
			return tx.AppendOutbox([]event.Event{lev("x2", "1", event.KindResolved), bad})
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := openLedger(t, "a")
			appendEvents(t, s, lev("x1", "1", event.KindFiring))
			before := ledgerSize(t, s)
			require.Error(t, s.Update(tc.fail))
			require.Equal(t, before, ledgerSize(t, s))
			require.Equal(t, map[string]int{"a": 1}, s.Owing())
			require.Empty(t, ledgerTrace(t, s, "x2"))
			require.Empty(t, ledgerTrace(t, s, "y1"))
			require.Equal(t, 1, s.OutboxLen())
			require.Len(t, historyByID(t, s), 1)
			f, err := s.Firing()
			require.NoError(t, err)
			require.Len(t, f, 1)
			require.Equal(t, "x1", f[0].ID, "the failed resolution did not clear it")

			evs := appendEvents(t, s, lev("x2", "1", event.KindResolved), lev("y1", "2", event.KindFiring))
			require.EqualValues(t, 2, evs[0].Seq, "no seq was used")
			require.EqualValues(t, 1, evs[1].Seq)
		})
	}
}

// The history keeps events for EventRetention: appending drops every
// event older than that, not every other one.
func TestLedgerHistoryRetentionDropsEveryExpired(t *testing.T) {
	for _, n := range []int{1, 2, 10, 1000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			s, _ := openLedger(t, "a")
			var old []event.Event
			for i := range n {
				old = append(old, lev(fmt.Sprintf("old%04d", i), fmt.Sprint(i), event.KindFiring))
			}
			appendEvents(t, s, old...)
			e := lev("new", "x", event.KindFiring)
			e.ObservedAt = lt0.Add(EventRetention + time.Hour)
			appendEvents(t, s, e)
			h := historyByID(t, s)
			var left []string
			for id := range h {
				left = append(left, id)
			}
			slices.Sort(left)
			require.Equal(t, []string{"new"}, left)
		})
	}
}

package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"github.com/simwatch/simwatch/internal/event"
)

// copiesIn counts how many times data occurs in the values of every bucket
// of the store, nested ones included.
func copiesIn(t *testing.T, s *Store, data []byte) int {
	t.Helper()
	n := 0
	var walk func(b *bolt.Bucket)
	walk = func(b *bolt.Bucket) {
		_ = b.ForEach(func(k, v []byte) error {
			if v == nil {
				if nb := b.Bucket(k); nb != nil {
					walk(nb)
				}
				return nil
			}
			n += bytes.Count(v, data)
			return nil
		})
	}
	require.NoError(t, s.db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(_ []byte, b *bolt.Bucket) error { walk(b); return nil })
	}))
	return n
}

// One cycle's events are stored once: the outbox, the ledger, the history
// and the firing bucket share the bytes, which are those the relay reads.
func TestEncodeOnceOneCopyOfEachEvent(t *testing.T) {
	s, _ := openLedger(t, "a", "b")
	values := json.RawMessage(`{"iccid":"8986\"q\" ü","flow_used":0.30000000000000004}`)
	evs := []event.Event{lev("f1", "1", event.KindFiring), lev("f2", "2", event.KindFiring), lev("r2", "2", event.KindResolved, "b")}
	for i := range evs {
		evs[i].Values = values
	}
	appendEvents(t, s, evs...)

	out, err := s.OutboxEncoded(10)
	require.NoError(t, err)
	require.Len(t, out, 3)
	for i, e := range out {
		require.NoError(t, e.Err)
		require.Equal(t, evs[i].ID, e.ID)
		require.Equal(t, evs[i].Subject(), e.Subject)
		want, err := evs[i].Encode(event.MaxSize)
		require.NoError(t, err)
		require.Equal(t, string(want), string(e.Data), "the stored bytes are the event's encoding, seq included")
		require.Equal(t, 1, copiesIn(t, s, e.Data), "event %s is stored once", e.ID)
	}
	got, err := s.Unreceived("a")
	require.NoError(t, err)
	require.Empty(t, got, "nothing published yet")
	publish(t, s, "f1", "f2", "r2")
	got, err = s.Unreceived("b")
	require.NoError(t, err)
	require.Equal(t, []string{"f1", "f2", "r2"}, ids(got))
	require.Equal(t, string(out[2].Data), string(got[2].Data), "the ledger hands out the same bytes")
	f, err := s.Firing()
	require.NoError(t, err)
	require.Len(t, f, 1)
	require.Equal(t, "f1", f[0].ID, "f2's alert resolved in the same cycle")
}

// An event stays readable past the history's retention while the outbox,
// a notifier or inhibition still needs it, leaves the history listing at
// the retention, and its bytes go with the last holder.
func TestEncodeOnceBytesLiveAsLongAsTheirLastHolder(t *testing.T) {
	s, _ := openLedger(t, "a")
	old := appendEvents(t, s, lev("old", "1", event.KindFiring))
	data, err := old[0].Encode(event.MaxSize)
	require.NoError(t, err)

	later := lev("later", "9", event.KindFiring)
	later.ObservedAt = lt0.Add(EventRetention + time.Hour)
	appendEvents(t, s, later)
	require.NotContains(t, historyByID(t, s), "old", "out of the history listing at the retention")
	require.Equal(t, 1, copiesIn(t, s, data), "still held by the outbox, the ledger and the firing bucket")

	out, err := s.OutboxEncoded(10)
	require.NoError(t, err)
	require.Equal(t, string(data), string(out[0].Data), "the relay still reads it")
	publish(t, s, "old", "later")
	got, err := s.Unreceived("a")
	require.NoError(t, err)
	require.Equal(t, []string{"old", "later"}, ids(got))
	require.Equal(t, string(data), string(got[0].Data))
	settleOne(t, s, "a", later.ObservedAt, old[0], Delivered)
	require.Equal(t, 1, copiesIn(t, s, data), "still the alert's firing event, for inhibition")
	f, err := s.Firing()
	require.NoError(t, err)
	require.Len(t, f, 2)

	res := lev("res", "1", event.KindResolved)
	res.ObservedAt = later.ObservedAt
	appendEvents(t, s, res)
	require.Zero(t, copiesIn(t, s, data), "gone with its last holder")
	f, err = s.Firing()
	require.NoError(t, err)
	require.Len(t, f, 1)
	require.Equal(t, "later", f[0].ID)
}

// Setting an entry aside keeps its bytes on record and releases them from
// the outbox.
func TestEncodeOnceSetAsideKeepsTheBytes(t *testing.T) {
	s, _ := openLedger(t, "a")
	evs := appendEvents(t, s, lev("x", "1", event.KindTransition))
	data, err := evs[0].Encode(event.MaxSize)
	require.NoError(t, err)
	out, err := s.OutboxEncoded(1)
	require.NoError(t, err)
	require.NoError(t, s.SetAsideOutbox(out[0].Seq, "too large", lt0))
	aside, err := s.SetAsideEntries()
	require.NoError(t, err)
	require.Len(t, aside, 1)
	require.JSONEq(t, string(data), string(aside[0].Event))
	require.Zero(t, s.Owing()["a"], "no notifier waits for it")
	require.Contains(t, historyByID(t, s), "x", "still in the history")
}

// appendOldFormat writes events as the previous version did: each
// bucket (outbox, history, ledger, firing) holding the event's JSON itself.
func appendOldFormat(t *testing.T, s *Store, evs []event.Event) {
	t.Helper()
	require.NoError(t, s.Update(func(t2 *Tx) error {
		tx := t2.tx
		seqs, err := tx.CreateBucketIfNotExists(bucketAlertSeq)
		if err != nil {
			return err
		}
		hist, err := tx.CreateBucketIfNotExists(bucketEvents)
		if err != nil {
			return err
		}
		firing, err := tx.CreateBucketIfNotExists(bucketFiring)
		if err != nil {
			return err
		}
		for i := range evs {
			e := &evs[i]
			e.Seq = 1
			if v := seqs.Get([]byte(e.AlertKey())); len(v) == 8 {
				e.Seq = uint64(len(v)) // alerts of this test have one event before at most
			}
			if err := seqs.Put([]byte(e.AlertKey()), u64(e.Seq)); err != nil {
				return err
			}
			v, err := e.Encode(event.MaxSize)
			if err != nil {
				return err
			}
			if e.Kind == event.KindFiring {
				if err := firing.Put([]byte(e.AlertKey()), v); err != nil {
					return err
				}
			}
			if _, err := putLedger(tx, e, v, false, []string{"a"}, owedUnreceived, nil); err != nil {
				return err
			}
			hseq, err := hist.NextSequence()
			if err != nil {
				return err
			}
			if err := hist.Put(historyKey(e.ObservedAt.UnixNano(), hseq), v); err != nil {
				return err
			}
			ob := tx.Bucket(bucketOutbox)
			oseq, err := ob.NextSequence()
			if err != nil {
				return err
			}
			if err := ob.Put(u64(oseq), v); err != nil {
				return err
			}
		}
		return nil
	}))
}

// A store written by the previous version (each bucket holding the event's
// JSON) is read and drained by this one, and new cycles write on top of it.
func TestEncodeOnceReadsAStoreOfThePreviousVersion(t *testing.T) {
	s, path := openLedger(t, "a")
	old := []event.Event{lev("o1", "1", event.KindFiring), lev("o2", "2", event.KindFiring)}
	appendOldFormat(t, s, old)
	require.NoError(t, s.Close())
	s = reopenLedger(t, path, "a")

	fresh := appendEvents(t, s, lev("n1", "3", event.KindFiring), lev("r1", "1", event.KindResolved))
	require.Equal(t, uint64(2), fresh[1].Seq, "seq goes on from the old entries")

	out, err := s.OutboxEncoded(10)
	require.NoError(t, err)
	var got []string
	for i, e := range out {
		require.NoError(t, e.Err)
		got = append(got, e.ID)
		all := append(append([]event.Event{}, old...), fresh...)
		want, err := all[i].Encode(event.MaxSize)
		require.NoError(t, err)
		require.Equal(t, string(want), string(e.Data))
		require.Equal(t, all[i].Subject(), e.Subject)
	}
	require.Equal(t, []string{"o1", "o2", "n1", "r1"}, got, "old entries first, in order")
	decoded, err := s.Outbox(10)
	require.NoError(t, err)
	require.Equal(t, "o2", decoded[1].Event.ID)

	f, err := s.Firing()
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"o2", "n1"}, []string{f[0].ID, f[1].ID}, "o1's alert resolved over its old entry")

	require.NoError(t, s.Published(out))
	require.Zero(t, s.OutboxLen())
	owed, err := s.Unreceived("a")
	require.NoError(t, err)
	require.Equal(t, []string{"o1", "o2", "n1", "r1"}, ids(owed))
	for _, e := range owed[:2] {
		settleOne(t, s, "a", lt0, e.Event, Delivered)
	}
	require.Equal(t, map[string]int{"a": 2}, s.Owing())
	h := historyByID(t, s)
	require.Len(t, h, 4, "old and new events in the history")

	later := lev("later", "9", event.KindTransition)
	later.ObservedAt = lt0.Add(EventRetention + time.Hour)
	appendEvents(t, s, later)
	h = historyByID(t, s)
	require.NotContains(t, h, "o1", "old history entries are pruned")
	require.Contains(t, h, "later")
	require.Equal(t, 0, copiesIn(t, s, []byte(`"id":"o1"`)), "o1 is gone: settled, resolved, past retention")
	require.Equal(t, 1, copiesIn(t, s, []byte(`"id":"o2"`)), "o2 is settled but still firing: its old-format firing entry is kept")
}

// A stored reference whose bytes are missing (a salvaged store) is an
// error for that entry, set aside by the relay, not a crash.
func TestEncodeOnceMissingBytesAreAnEntryError(t *testing.T) {
	s, _ := openLedger(t)
	appendEvents(t, s, lev("x", "1", event.KindTransition), lev("y", "2", event.KindTransition))
	require.NoError(t, s.db.Update(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketEvents).Cursor()
		k, _ := c.First()
		return tx.Bucket(bucketEvents).Delete(bytes.Clone(k))
	}))
	out, err := s.OutboxEncoded(10)
	require.NoError(t, err)
	require.Len(t, out, 2)
	require.ErrorContains(t, out[0].Err, "outbox entry 1")
	require.Equal(t, "x", out[0].ID, "the header still names it")
	require.NoError(t, out[1].Err)
	require.NoError(t, s.SetAsideOutbox(out[0].Seq, fmt.Sprint(out[0].Err), lt0))
	require.Equal(t, 1, s.OutboxLen())
}

package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/simwatch/simwatch/internal/event"
)

var bucketEvents = []byte("events")

// EventRetention is how long every event is kept for `watcher events`.
const EventRetention = 30 * 24 * time.Hour

// recordEvents keeps events' bytes in the history at their keys (see
// AppendOutbox), records who holds each (see eventdata.go), and drops what
// is older than the retention. Called with the outbox append, so every
// event that will be published is also on record.
func recordEvents(tx *bolt.Tx, events []event.Event, encoded, hkeys [][]byte, holders []byte) error {
	b, err := tx.CreateBucketIfNotExists(bucketEvents)
	if err != nil {
		return err
	}
	refs, err := tx.CreateBucketIfNotExists(bucketEventRefs)
	if err != nil {
		return err
	}
	for i := range events {
		if err := b.Put(hkeys[i], encoded[i]); err != nil {
			return err
		}
		if err := refs.Put(hkeys[i], []byte{holders[i]}); err != nil {
			return err
		}
	}
	if err := indexEvents(tx, events, hkeys); err != nil {
		return err
	}
	if len(events) == 0 {
		return nil
	}
	cutoff := uint64(events[len(events)-1].ObservedAt.Add(-EventRetention).UnixNano())
	// Collected first: a bbolt cursor skips keys when deleting as it walks.
	var expired [][]byte
	c := b.Cursor()
	for k, _ := c.First(); k != nil && len(k) >= 8 && binary.BigEndian.Uint64(k[:8]) < cutoff; k, _ = c.Next() {
		if pastRetention(refs.Get(k)) {
			continue // out of the history already, held by the outbox, the ledger or the firing bucket
		}
		expired = append(expired, bytes.Clone(k))
	}
	for _, k := range expired {
		if h := refs.Get(k); len(h) == 1 {
			if err := release(tx, k, refHistory); err != nil {
				return err
			}
			continue
		}
		if err := dropEvent(tx, k); err != nil {
			return err
		}
	}
	return nil
}

// EventFilter selects events from the history; zero fields match all.
type EventFilter struct {
	Rule     string
	ICCID    string
	EntityID string
	Provider string
	Kind     string
	Since    time.Time
	Limit    int // newest first; 0 means 100
}

func (f EventFilter) match(e *event.Event) bool {
	return (f.Rule == "" || e.Rule == f.Rule) && (f.ICCID == "" || e.ICCID == f.ICCID) &&
		(f.EntityID == "" || e.EntityID == f.EntityID) && (f.Provider == "" || e.Provider == f.Provider) &&
		(f.Kind == "" || e.Kind == f.Kind)
}

// Events lists events from the history, newest first.
func (s *Store) Events(f EventFilter) ([]event.Event, error) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	var out []event.Event
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketEvents)
		if b == nil {
			return nil
		}
		refs := tx.Bucket(bucketEventRefs)
		since := uint64(0)
		if !f.Since.IsZero() {
			since = uint64(f.Since.UnixNano())
		}
		c := b.Cursor()
		for k, v := c.Last(); k != nil && len(out) < f.Limit; k, v = c.Prev() {
			if binary.BigEndian.Uint64(k[:8]) < since {
				break
			}
			if refs != nil && pastRetention(refs.Get(k)) {
				continue // past the retention, kept only for the outbox, the ledger or inhibition
			}
			var e event.Event
			if err := json.Unmarshal(v, &e); err != nil {
				return err
			}
			if f.match(&e) {
				mutesOf(tx, &e)
				out = append(out, e)
			}
		}
		return nil
	})
	return out, err
}

// pastRetention reports whether an event's holders (see eventdata.go) no
// longer include the history: it is kept for the others only.
func pastRetention(holders []byte) bool {
	return len(holders) == 1 && holders[0]&refHistory == 0
}

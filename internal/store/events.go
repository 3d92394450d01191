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

// recordEvents keeps events in the history, keyed by time then sequence,
// and drops those older than the retention. Called with the outbox append,
// so every event that will be published is also on record.
func recordEvents(tx *bolt.Tx, events []event.Event, encoded [][]byte) error {
	b, err := tx.CreateBucketIfNotExists(bucketEvents)
	if err != nil {
		return err
	}
	for i := range events {
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		k := binary.BigEndian.AppendUint64(nil, uint64(events[i].ObservedAt.UnixNano()))
		k = binary.BigEndian.AppendUint64(k, seq)
		if err := b.Put(k, encoded[i]); err != nil {
			return err
		}
	}
	if len(events) == 0 {
		return nil
	}
	cutoff := uint64(events[len(events)-1].ObservedAt.Add(-EventRetention).UnixNano())
	// Collected first: a bbolt cursor skips keys when deleting as it walks.
	var expired [][]byte
	c := b.Cursor()
	for k, _ := c.First(); k != nil && len(k) >= 8 && binary.BigEndian.Uint64(k[:8]) < cutoff; k, _ = c.Next() {
		expired = append(expired, bytes.Clone(k))
	}
	for _, k := range expired {
		if err := b.Delete(k); err != nil {
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
		since := uint64(0)
		if !f.Since.IsZero() {
			since = uint64(f.Since.UnixNano())
		}
		c := b.Cursor()
		for k, v := c.Last(); k != nil && len(out) < f.Limit; k, v = c.Prev() {
			if binary.BigEndian.Uint64(k[:8]) < since {
				break
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

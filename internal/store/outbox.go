package store

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/simwatch/simwatch/internal/event"
)

// AppendOutbox adds events to the outbox, in order, in this transaction,
// keeps them in the event history, and writes them to the ledger owed to
// the notifiers they are routed to (see SetNotifiers). Each event gets the
// next seq of its alert, and is bounded in place to event.MaxSize (see
// event.Bound), so whatever a provider sent, no stored event is larger.
func (t *Tx) AppendOutbox(events []event.Event) error {
	// Each event is encoded once, for the outbox, the history and the ledger.
	encoded := make([][]byte, len(events))
	if err := t.ledgerEvents(events, encoded); err != nil {
		return err
	}
	if err := recordEvents(t.tx, events, encoded); err != nil {
		return err
	}
	b := t.tx.Bucket(bucketOutbox)
	for _, v := range encoded {
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		if err := b.Put(u64(seq), v); err != nil {
			return err
		}
	}
	return nil
}

// OutboxEntry is an event waiting to be published.
type OutboxEntry struct {
	Seq   uint64
	Event event.Event
	// Err is set when the stored bytes do not decode as an event; such an
	// entry can never be published, and Event is zero but for what could be
	// read.
	Err error
}

// Outbox returns up to limit events waiting to be published, oldest first.
// An entry that does not decode is returned with Err set, so the caller can
// set it aside rather than stall behind it.
func (s *Store) Outbox(limit int) ([]OutboxEntry, error) {
	var out []OutboxEntry
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketOutbox).Cursor()
		for k, v := c.First(); k != nil && len(out) < limit; k, v = c.Next() {
			var e OutboxEntry
			e.Seq = binary.BigEndian.Uint64(k)
			if err := json.Unmarshal(v, &e.Event); err != nil {
				e.Err = fmt.Errorf("store: outbox entry %d: %w", e.Seq, err)
			}
			out = append(out, e)
		}
		return nil
	})
	return out, err
}

var bucketSetAside = []byte("outbox_set_aside")

// SetAside is an outbox entry the bus refused for good, kept on record.
type SetAside struct {
	Seq    uint64    `json:"seq"` // its place in the outbox
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
	// Event is the entry as it was stored.
	Event json.RawMessage `json:"event"`
}

// SetAsideOutbox moves an outbox entry that can never be published (the bus
// refuses it for good, or it does not decode) out of the outbox into a
// set-aside bucket, with the reason, in one transaction: the events behind it
// flow on and it stays on record. No notifier waits for it any more (the
// ledger releases it), so the later events of its alert are not held back
// behind it. An entry already gone is not an error.
func (s *Store) SetAsideOutbox(seq uint64, reason string, at time.Time) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketOutbox)
		v := b.Get(u64(seq))
		if v == nil {
			return nil
		}
		raw := json.RawMessage(v)
		if !json.Valid(v) { // keep the bytes, as a JSON string
			raw, _ = json.Marshal(string(v))
		}
		rec, err := json.Marshal(SetAside{Seq: seq, Reason: reason, At: at, Event: raw})
		if err != nil {
			return err
		}
		aside, err := tx.CreateBucketIfNotExists(bucketSetAside)
		if err != nil {
			return err
		}
		if err := aside.Put(u64(seq), rec); err != nil {
			return err
		}
		var ev struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(v, &ev) == nil && ev.ID != "" {
			if err := releaseUnpublished(tx, ev.ID); err != nil {
				return err
			}
		}
		return b.Delete(u64(seq))
	})
	if err != nil {
		return fmt.Errorf("store: set aside outbox entry %d: %w", seq, err)
	}
	return nil
}

// SetAsideEntries lists the outbox entries set aside, oldest first.
func (s *Store) SetAsideEntries() ([]SetAside, error) {
	var out []SetAside
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSetAside)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var e SetAside
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("store: set-aside entry %d: %w", binary.BigEndian.Uint64(k), err)
			}
			out = append(out, e)
			return nil
		})
	})
	return out, err
}

// OutboxLen counts the events waiting to be published.
func (s *Store) OutboxLen() int {
	n := 0
	_ = s.db.View(func(tx *bolt.Tx) error { n = tx.Bucket(bucketOutbox).Stats().KeyN; return nil })
	return n
}

// Published removes events the bus has stored from the outbox, and marks
// them published in the ledger, in one transaction.
func (s *Store) Published(entries []OutboxEntry) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketOutbox)
		ids := make([]string, 0, len(entries))
		for _, e := range entries {
			if err := b.Delete(u64(e.Seq)); err != nil {
				return err
			}
			ids = append(ids, e.Event.ID)
		}
		return markPublished(tx, ids)
	})
}

// DeleteOutbox removes published events.
func (s *Store) DeleteOutbox(seqs ...uint64) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketOutbox)
		for _, seq := range seqs {
			if err := b.Delete(u64(seq)); err != nil {
				return err
			}
		}
		return nil
	})
}

// Delivered reports whether the notifier's delivery log has the event.
func (s *Store) Delivered(notifier, eventID string) (bool, error) {
	found := false
	err := s.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketDelivered).Bucket([]byte(notifier)); b != nil {
			found = b.Get([]byte(eventID)) != nil
		}
		return nil
	})
	return found, err
}

// MarkDelivered records in the notifier's delivery log that the receiver
// accepted these events at.
func (s *Store) MarkDelivered(notifier string, at time.Time, eventIDs ...string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.Bucket(bucketDelivered).CreateBucketIfNotExists([]byte(notifier))
		if err != nil {
			return err
		}
		v := binary.BigEndian.AppendUint64(nil, uint64(at.UnixNano()))
		for _, id := range eventIDs {
			if err := b.Put([]byte(id), v); err != nil {
				return err
			}
		}
		return nil
	})
}

// PruneDelivered drops delivery-log entries (and the records of events
// settled otherwise) older than before, so the logs stay bounded. It
// returns how many it dropped.
func (s *Store) PruneDelivered(before time.Time) (int, error) {
	n := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		for _, root := range []*bolt.Bucket{tx.Bucket(bucketDelivered), tx.Bucket(bucketSettled)} {
			if err := pruneStamped(root, before, &n); err != nil {
				return err
			}
		}
		return nil
	})
	return n, err
}

// pruneStamped drops the entries stamped before `before` from every
// notifier's bucket under root, adding their number to n.
func pruneStamped(root *bolt.Bucket, before time.Time, n *int) error {
	if root == nil {
		return nil
	}
	return root.ForEachBucket(func(name []byte) error {
		d, err := deleteWhere(root.Bucket(name), func(_, v []byte) bool {
			return len(v) == 8 && int64(binary.BigEndian.Uint64(v)) < before.UnixNano()
		})
		*n += d
		return err
	})
}

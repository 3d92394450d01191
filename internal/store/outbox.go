package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
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
//
// Each event is encoded once, and its bytes are stored once, in the
// history; the outbox, the ledger and the firing bucket refer to them (see
// eventdata.go). The bytes are those the relay publishes.
func (t *Tx) AppendOutbox(events []event.Event) error {
	encoded, err := t.appendOutbox(events, nil)
	if err == nil {
		t.rec.appended(encoded)
	}
	return err
}

// appendOutbox is AppendOutbox. With kept (Apply: events another watcher
// appended, decoded from their bytes in kept), each event keeps its seq
// and its bytes are kept as they are. It returns the events' bytes.
func (t *Tx) appendOutbox(events []event.Event, kept [][]byte) ([][]byte, error) {
	if len(events) == 0 {
		return nil, nil
	}
	hist, err := t.tx.CreateBucketIfNotExists(bucketEvents)
	if err != nil {
		return nil, err
	}
	base := hist.Sequence()
	if err := hist.SetSequence(base + uint64(len(events))); err != nil {
		return nil, err
	}
	hkeys := make([][]byte, len(events))
	for i := range events {
		hkeys[i] = historyKey(events[i].ObservedAt.UnixNano(), base+1+uint64(i))
	}
	encoded := make([][]byte, len(events))
	holders := make([]byte, len(events))
	if err := t.ledgerEvents(events, encoded, kept, hkeys, holders); err != nil {
		return nil, err
	}
	b := t.tx.Bucket(bucketOutbox)
	for i := range events {
		seq, err := b.NextSequence()
		if err != nil {
			return nil, err
		}
		if err := b.Put(u64(seq), outboxValue(hkeys[i], events[i].ID, events[i].Subject())); err != nil {
			return nil, err
		}
		holders[i] |= refOutbox | refHistory
	}
	return encoded, recordEvents(t.tx, events, encoded, hkeys, holders)
}

// outboxValue is an outbox entry: a reference to the event's bytes, then
// its id (length first) and subject, which the relay publishes it with.
func outboxValue(hkey []byte, id, subject string) []byte {
	v := refValue(hkey, binary.MaxVarintLen64+len(id)+len(subject))
	v = binary.AppendUvarint(v, uint64(len(id)))
	return append(append(v, id...), subject...)
}

// OutboxEntry is an event waiting to be published.
type OutboxEntry struct {
	Seq uint64
	// The event's id, subject and bytes, as they go on the wire.
	event.Encoded
	// Event is the event decoded (by Outbox, not by OutboxEncoded).
	Event event.Event
	// Err is set when the entry cannot be read (its bytes are missing or,
	// for Outbox, do not decode as an event); such an entry can never be
	// published.
	Err error
}

// Outbox returns up to limit events waiting to be published, oldest first,
// decoded. An entry that does not decode is returned with Err set, so the
// caller can set it aside rather than stall behind it.
func (s *Store) Outbox(limit int) ([]OutboxEntry, error) {
	out, err := s.OutboxEncoded(limit)
	for i := range out {
		e := &out[i]
		if e.Err != nil {
			continue
		}
		if err := json.Unmarshal(e.Data, &e.Event); err != nil {
			e.Err = fmt.Errorf("store: outbox entry %d: %w", e.Seq, err)
		}
	}
	return out, err
}

// OutboxEncoded returns up to limit events waiting to be published, oldest
// first, as stored: their bytes are not decoded. An entry written by an
// earlier version (the event's JSON itself) is decoded for its id and
// subject; one that does not decode, or whose bytes are missing, has Err set.
func (s *Store) OutboxEncoded(limit int) ([]OutboxEntry, error) {
	var out []OutboxEntry
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketOutbox).Cursor()
		for k, v := c.First(); k != nil && len(out) < limit; k, v = c.Next() {
			e := OutboxEntry{Seq: binary.BigEndian.Uint64(k)}
			if err := readOutbox(tx, v, &e); err != nil {
				e.Err = fmt.Errorf("store: outbox entry %d: %w", e.Seq, err)
			}
			out = append(out, e)
		}
		return nil
	})
	return out, err
}

// readOutbox reads an outbox entry's id, subject and bytes (copied out of
// the transaction).
func readOutbox(tx *bolt.Tx, v []byte, e *OutboxEntry) error {
	if hkey := refOf(v); hkey != nil {
		rest := v[1+hkeyLen:]
		n, w := binary.Uvarint(rest)
		if w <= 0 || n > uint64(len(rest)-w) {
			return errors.New("bad entry header")
		}
		e.ID, e.Subject = string(rest[w:w+int(n)]), string(rest[w+int(n):])
		data, err := eventData(tx, v)
		if err != nil {
			return err
		}
		e.Data = bytes.Clone(data)
		return nil
	}
	// Written by an earlier version: the event itself.
	e.Data = bytes.Clone(v)
	var ev event.Event
	if err := json.Unmarshal(v, &ev); err != nil {
		return err
	}
	e.ID, e.Subject = ev.ID, ev.Subject()
	return nil
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
		var e OutboxEntry
		rerr := readOutbox(tx, v, &e)
		raw := json.RawMessage(e.Data)
		if !json.Valid(e.Data) { // keep the bytes, as a JSON string
			raw, _ = json.Marshal(string(e.Data))
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
		id := e.ID
		if rerr != nil && refOf(v) == nil { // an old entry that is not an event: its id, if it has one
			var ev struct {
				ID string `json:"id"`
			}
			if json.Unmarshal(v, &ev) == nil {
				id = ev.ID
			}
		}
		if id != "" {
			if err := releaseUnpublished(tx, id); err != nil {
				return err
			}
		}
		return deleteOutbox(tx, b, seq)
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
			if err := deleteOutbox(tx, b, e.Seq); err != nil {
				return err
			}
			id := e.ID
			if id == "" {
				id = e.Event.ID
			}
			ids = append(ids, id)
		}
		return markPublished(tx, ids)
	})
}

// DeleteOutbox removes published events.
func (s *Store) DeleteOutbox(seqs ...uint64) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketOutbox)
		for _, seq := range seqs {
			if err := deleteOutbox(tx, b, seq); err != nil {
				return err
			}
		}
		return nil
	})
}

// deleteOutbox removes an outbox entry and releases the event's bytes it
// refers to.
func deleteOutbox(tx *bolt.Tx, b *bolt.Bucket, seq uint64) error {
	k := u64(seq)
	if err := releaseRef(tx, b.Get(k), refOutbox); err != nil {
		return err
	}
	return b.Delete(k)
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

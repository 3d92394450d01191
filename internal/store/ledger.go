package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/simwatch/simwatch/internal/event"
)

// The ledger is the delivery record that does not depend on the bus: every
// event is written to it, in the cycle's transaction, owed to each notifier
// it is routed to, and stays until each of them has delivered, muted or
// dead-lettered it. It gives the notifiers per-alert order (an event waits
// while an earlier one of its alert is owed), and lets a bus that lost its
// data be refilled.
var (
	bucketLedger       = []byte("ledger")        // lseq → ledgerEntry JSON
	bucketLedgerEvents = []byte("ledger_events") // lseq → event reference (or JSON, see eventdata.go)
	bucketLedgerIDs    = []byte("ledger_ids")    // event id → lseq
	bucketLedgerAlerts = []byte("ledger_alerts") // alert key \x00 lseq → nil
	bucketLedgerOwed   = []byte("ledger_owed")   // notifier / lseq → state
	bucketAlertSeq     = []byte("alert_seq")     // alert key → last seq
	bucketFiring       = []byte("firing")        // alert key → its firing event's reference (or JSON)
	bucketMutes        = []byte("event_mutes")   // event id → mute JSON
	bucketNotified     = []byte("notified")      // notifier / alert key → firing start, delivered
)

// States of an event owed to a notifier.
const (
	owedUnreceived byte = 0 // not yet taken from the bus
	owedReceived   byte = 1 // taken; waiting to be delivered
)

type ledgerEntry struct {
	ID        string `json:"id"`
	Alert     string `json:"alert"`
	Published bool   `json:"pub,omitempty"`
	// Adopted: added by Receive, not by the cycle (the bus had it before
	// the ledger did), so each notifier that receives it takes it on.
	Adopted bool `json:"adopted,omitempty"`
}

// SetNotifiers names the notifiers events are owed to from now on (each by
// event.For). Entries still owed to a notifier no longer configured are
// released, so that nothing waits for it; it returns how many.
func (s *Store) SetNotifiers(names []string) (released int, err error) {
	names = slices.Clone(names)
	s.notifiers.Store(&names)
	err = s.db.Update(func(tx *bolt.Tx) error {
		root := tx.Bucket(bucketLedgerOwed)
		if root == nil {
			return nil
		}
		var gone [][]byte
		_ = root.ForEachBucket(func(k []byte) error {
			if !slices.Contains(names, string(k)) {
				gone = append(gone, slices.Clone(k))
			}
			return nil
		})
		for _, name := range gone {
			var seqs []uint64
			_ = root.Bucket(name).ForEach(func(k, _ []byte) error {
				seqs = append(seqs, binary.BigEndian.Uint64(k))
				return nil
			})
			if err := root.DeleteBucket(name); err != nil {
				return err
			}
			for _, lseq := range seqs {
				if err := dropIfSettled(tx, lseq); err != nil {
					return err
				}
			}
			released += len(seqs)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: ledger: %w", err)
	}
	return released, nil
}

// ledgerEvents numbers events for their alerts, keeps each alert's firing
// event for inhibition, and writes each event to the ledger, owed to the
// notifiers it is routed to. Each event is encoded here, once (with its
// seq), into encoded; the ledger and the firing bucket refer to its bytes
// by its history key (hkeys), and holders gets who refers to them. Part of
// AppendOutbox. With kept (see appendOutbox), each event keeps its seq and
// its bytes, and its alert's seq only moves forward.
func (t *Tx) ledgerEvents(events []event.Event, encoded, kept, hkeys [][]byte, holders []byte) error {
	seqs, err := t.tx.CreateBucketIfNotExists(bucketAlertSeq)
	if err != nil {
		return err
	}
	var notifiers []string
	if t.s != nil {
		if p := t.s.notifiers.Load(); p != nil {
			notifiers = *p
		}
	}
	// The buckets keyed by alert key or event id are written in key order
	// at the end: bbolt inserts in random order slowly (a cold cycle has
	// tens of thousands of events).
	var sorted sortedWrites
	last := map[string]uint64{}
	firing := map[string]int{} // alert key → its last firing event, -1 resolved
	for i := range events {
		e := &events[i]
		key := e.AlertKey()
		n, ok := last[key]
		if !ok {
			if v := seqs.Get([]byte(key)); len(v) == 8 {
				n = binary.BigEndian.Uint64(v)
			}
		}
		if kept == nil {
			e.Seq = n + 1
		}
		last[key] = max(n, e.Seq)
		sorted.put(bucketAlertSeq, []byte(key), u64(last[key]))
		if kept != nil {
			encoded[i] = kept[i]
		} else {
			v, err := e.Encode(event.MaxSize)
			if err != nil {
				return fmt.Errorf("store: outbox: %w", err)
			}
			encoded[i] = v
		}
		switch e.Kind {
		case event.KindFiring:
			firing[key] = i
		case event.KindResolved:
			firing[key] = -1
		}
		var owed []string
		for _, name := range notifiers {
			if e.For(name) {
				owed = append(owed, name)
			}
		}
		if len(owed) > 0 {
			if _, err := putLedger(t.tx, e, refValue(hkeys[i], 0), false, owed, owedUnreceived, &sorted); err != nil {
				return err
			}
			holders[i] |= refLedger
		}
	}
	if err := t.keepFiring(firing, hkeys, holders, &sorted); err != nil {
		return err
	}
	return sorted.apply(t.tx)
}

// keepFiring points each alert's entry in the firing bucket at its last
// firing event of the cycle (or removes it when it resolved), releasing the
// event it pointed at before.
func (t *Tx) keepFiring(firing map[string]int, hkeys [][]byte, holders []byte, sorted *sortedWrites) error {
	fb := t.tx.Bucket(bucketFiring)
	for key, i := range firing {
		if fb != nil {
			if old := fb.Get([]byte(key)); old != nil {
				if err := releaseRef(t.tx, old, refFiring); err != nil {
					return err
				}
			}
		}
		if i < 0 {
			sorted.put(bucketFiring, []byte(key), nil)
			continue
		}
		sorted.put(bucketFiring, []byte(key), refValue(hkeys[i], 0))
		holders[i] |= refFiring
	}
	return nil
}

// sortedWrites collects puts (a nil value deletes) to apply in key order,
// bucket by bucket; of several writes to one key, the last wins.
type sortedWrites struct {
	writes []write
}

type write struct {
	bucket, k, v []byte
	seq          int
}

func (w *sortedWrites) put(bucket, k, v []byte) {
	w.writes = append(w.writes, write{bucket, k, v, len(w.writes)})
}

func (w *sortedWrites) apply(tx *bolt.Tx) error {
	slices.SortFunc(w.writes, func(a, b write) int {
		if c := bytes.Compare(a.bucket, b.bucket); c != 0 {
			return c
		}
		if c := bytes.Compare(a.k, b.k); c != 0 {
			return c
		}
		return a.seq - b.seq
	})
	var b *bolt.Bucket
	for i, wr := range w.writes {
		if i == 0 || !bytes.Equal(wr.bucket, w.writes[i-1].bucket) {
			var err error
			if b, err = tx.CreateBucketIfNotExists(wr.bucket); err != nil {
				return err
			}
		}
		var err error
		if wr.v == nil {
			err = b.Delete(wr.k)
		} else {
			err = b.Put(wr.k, wr.v)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// putLedger adds an event to the ledger, owed to notifiers in state, and
// returns its place. data is what ledger_events keeps of it: a reference to
// its bytes in the history, or the bytes themselves (an event adopted from
// the bus). The writes keyed by event id and alert go to sorted
// when it is given (the caller applies them), at once otherwise.
func putLedger(tx *bolt.Tx, e *event.Event, data []byte, published bool, notifiers []string, state byte, sorted *sortedWrites) (uint64, error) {
	lb, err := tx.CreateBucketIfNotExists(bucketLedger)
	if err != nil {
		return 0, err
	}
	lseq, err := lb.NextSequence()
	if err != nil {
		return 0, err
	}
	rec, err := json.Marshal(ledgerEntry{ID: e.ID, Alert: e.AlertKey(), Published: published})
	if err != nil {
		return 0, err
	}
	k := u64(lseq)
	if err := lb.Put(k, rec); err != nil {
		return 0, err
	}
	evs, err := tx.CreateBucketIfNotExists(bucketLedgerEvents)
	if err != nil {
		return 0, err
	}
	if err := evs.Put(k, data); err != nil {
		return 0, err
	}
	now := sortedWrites{}
	if sorted == nil {
		sorted = &now
	}
	sorted.put(bucketLedgerIDs, []byte(e.ID), k)
	sorted.put(bucketLedgerAlerts, alertIndex(e.AlertKey(), lseq), []byte{})
	if err := now.apply(tx); err != nil {
		return 0, err
	}
	root, err := tx.CreateBucketIfNotExists(bucketLedgerOwed)
	if err != nil {
		return 0, err
	}
	for _, name := range notifiers {
		b, err := root.CreateBucketIfNotExists([]byte(name))
		if err != nil {
			return 0, err
		}
		if err := b.Put(k, []byte{state}); err != nil {
			return 0, err
		}
	}
	return lseq, nil
}

func alertIndex(alert string, lseq uint64) []byte {
	k := append([]byte(alert), 0xff)
	return binary.BigEndian.AppendUint64(k, lseq)
}

// owedBucket is a notifier's owed set, nil when it has none.
func owedBucket(tx *bolt.Tx, notifier string) *bolt.Bucket {
	root := tx.Bucket(bucketLedgerOwed)
	if root == nil {
		return nil
	}
	return root.Bucket([]byte(notifier))
}

func getEntry(tx *bolt.Tx, lseq uint64) (ledgerEntry, bool, error) {
	var e ledgerEntry
	lb := tx.Bucket(bucketLedger)
	if lb == nil {
		return e, false, nil
	}
	v := lb.Get(u64(lseq))
	if v == nil {
		return e, false, nil
	}
	if err := json.Unmarshal(v, &e); err != nil {
		return e, false, fmt.Errorf("store: ledger entry %d: %w", lseq, err)
	}
	return e, true, nil
}

// dropIfSettled deletes a ledger entry no notifier is owed any more.
func dropIfSettled(tx *bolt.Tx, lseq uint64) error {
	k := u64(lseq)
	if root := tx.Bucket(bucketLedgerOwed); root != nil {
		owed := false
		_ = root.ForEachBucket(func(name []byte) error {
			if root.Bucket(name).Get(k) != nil {
				owed = true
			}
			return nil
		})
		if owed {
			return nil
		}
	}
	e, ok, err := getEntry(tx, lseq)
	if err != nil || !ok {
		return err
	}
	if evs := tx.Bucket(bucketLedgerEvents); evs != nil {
		if err := releaseRef(tx, evs.Get(k), refLedger); err != nil {
			return err
		}
	}
	for _, del := range []struct{ bucket, k []byte }{
		{bucketLedger, k},
		{bucketLedgerEvents, k},
		{bucketLedgerIDs, []byte(e.ID)},
		{bucketLedgerAlerts, alertIndex(e.Alert, lseq)},
	} {
		if b := tx.Bucket(del.bucket); b != nil {
			if err := b.Delete(del.k); err != nil {
				return err
			}
		}
	}
	return nil
}

// releaseUnpublished releases an event the bus will never carry from every
// notifier that has not taken it, so that no later event of its alert waits
// for it.
func releaseUnpublished(tx *bolt.Tx, id string) error {
	ids := tx.Bucket(bucketLedgerIDs)
	if ids == nil {
		return nil
	}
	k := ids.Get([]byte(id))
	if len(k) != 8 {
		return nil
	}
	k = bytes.Clone(k)
	if root := tx.Bucket(bucketLedgerOwed); root != nil {
		err := root.ForEachBucket(func(name []byte) error {
			b := root.Bucket(name)
			if v := b.Get(k); len(v) == 1 && v[0] == owedUnreceived {
				return b.Delete(k)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return dropIfSettled(tx, binary.BigEndian.Uint64(k))
}

// MarkPublished records that the bus has stored these events.
func markPublished(tx *bolt.Tx, ids []string) error {
	idb := tx.Bucket(bucketLedgerIDs)
	lb := tx.Bucket(bucketLedger)
	if idb == nil || lb == nil {
		return nil
	}
	for _, id := range ids {
		k := idb.Get([]byte(id))
		if k == nil {
			continue
		}
		e, ok, err := getEntry(tx, binary.BigEndian.Uint64(k))
		if err != nil || !ok || e.Published {
			if err != nil {
				return err
			}
			continue
		}
		e.Published = true
		v, err := json.Marshal(e)
		if err != nil {
			return err
		}
		if err := lb.Put(slices.Clone(k), v); err != nil {
			return err
		}
	}
	return nil
}

// Incoming is an event a notifier took from the bus.
type Incoming struct {
	Event event.Event
	Data  []byte
	// Replay is set for a dead letter replayed to this notifier: it is
	// delivered again even though the notifier settled it before.
	Replay bool
}

// Received says what a notifier should do with an incoming event.
type Received struct {
	// Take is true when the notifier should deliver it; false when it is a
	// repeat, already settled, or not routed to it.
	Take bool
	// LSeq is its place in the ledger: events of one alert are delivered
	// in LSeq order.
	LSeq uint64
}

// Receive records that notifier has taken these events from the bus, so
// that the bus may forget them: from now on the ledger holds them for it.
// An event the ledger does not know (written before the ledger existed, or
// replayed) is added, owed to this notifier only, unless its delivery log
// has it.
func (s *Store) Receive(notifier string, in []Incoming) ([]Received, error) {
	out := make([]Received, len(in))
	err := s.db.Update(func(tx *bolt.Tx) error {
		root, err := tx.CreateBucketIfNotExists(bucketLedgerOwed)
		if err != nil {
			return err
		}
		owed, err := root.CreateBucketIfNotExists([]byte(notifier))
		if err != nil {
			return err
		}
		idb, err := tx.CreateBucketIfNotExists(bucketLedgerIDs)
		if err != nil {
			return err
		}
		for i, inc := range in {
			id := []byte(inc.Event.ID)
			if k := idb.Get(id); k != nil {
				lseq := binary.BigEndian.Uint64(k)
				state := owed.Get(k)
				switch {
				case state != nil && state[0] == owedReceived:
					continue // a repeat: already in hand
				case state == nil && !inc.Replay:
					// Settled here, or never owed here. An adopted event
					// was owed only to the notifier that first received
					// it; every other one takes it on, once.
					e, _, err := getEntry(tx, lseq)
					if err != nil {
						return err
					}
					if !e.Adopted || settledHere(tx, notifier, id) {
						continue
					}
				}
				if err := owed.Put(slices.Clone(k), []byte{owedReceived}); err != nil {
					return err
				}
				out[i] = Received{Take: true, LSeq: lseq}
				continue
			}
			if !inc.Replay && settledHere(tx, notifier, id) {
				continue
			}
			lseq, err := putLedger(tx, &inc.Event, inc.Data, true, []string{notifier}, owedReceived, nil)
			if err != nil {
				return err
			}
			if err := adopt(tx, lseq); err != nil {
				return err
			}
			out[i] = Received{Take: true, LSeq: lseq}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: receive for %s: %w", notifier, err)
	}
	return out, nil
}

// settledHere reports whether notifier settled the event before: its
// delivery log, or its record of events muted, dead-lettered or released.
func settledHere(tx *bolt.Tx, notifier string, id []byte) bool {
	for _, root := range [][]byte{bucketDelivered, bucketSettled} {
		if r := tx.Bucket(root); r != nil {
			if b := r.Bucket([]byte(notifier)); b != nil && b.Get(id) != nil {
				return true
			}
		}
	}
	return false
}

// adopt marks a ledger entry as added by Receive.
func adopt(tx *bolt.Tx, lseq uint64) error {
	e, ok, err := getEntry(tx, lseq)
	if err != nil || !ok {
		return err
	}
	e.Adopted = true
	rec, err := json.Marshal(e)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketLedger).Put(u64(lseq), rec)
}

// LedgerEvent is an event the ledger holds for a notifier.
type LedgerEvent struct {
	LSeq  uint64
	Event event.Event
	Data  []byte
}

// InHand lists the events a notifier has received but not settled, in
// ledger order: after a restart it picks them up from here.
func (s *Store) InHand(notifier string) ([]LedgerEvent, error) {
	return s.owedEvents(notifier, func(state byte, _ ledgerEntry) bool { return state == owedReceived })
}

// Unreceived lists the published events owed to a notifier that it has not
// taken from the bus, in ledger order: if the bus says it has nothing more
// for the notifier, these were lost with the bus's data.
func (s *Store) Unreceived(notifier string) ([]LedgerEvent, error) {
	return s.owedEvents(notifier, func(state byte, e ledgerEntry) bool { return state == owedUnreceived && e.Published })
}

func (s *Store) owedEvents(notifier string, want func(byte, ledgerEntry) bool) ([]LedgerEvent, error) {
	var out []LedgerEvent
	err := s.db.View(func(tx *bolt.Tx) error {
		owed := owedBucket(tx, notifier)
		if owed == nil {
			return nil
		}
		evs := tx.Bucket(bucketLedgerEvents)
		return owed.ForEach(func(k, v []byte) error {
			lseq := binary.BigEndian.Uint64(k)
			e, ok, err := getEntry(tx, lseq)
			if err != nil || !ok || len(v) != 1 || !want(v[0], e) {
				return err
			}
			data, err := eventData(tx, evs.Get(k))
			if err != nil {
				return fmt.Errorf("store: ledger event %d: %w", lseq, err)
			}
			le := LedgerEvent{LSeq: lseq, Data: slices.Clone(data)}
			if err := json.Unmarshal(le.Data, &le.Event); err != nil {
				return fmt.Errorf("store: ledger event %d: %w", lseq, err)
			}
			out = append(out, le)
			return nil
		})
	})
	return out, err
}

// Owing counts, per notifier, the events it still owes: received or not.
func (s *Store) Owing() map[string]int {
	out := map[string]int{}
	_ = s.db.View(func(tx *bolt.Tx) error {
		root := tx.Bucket(bucketLedgerOwed)
		if root == nil {
			return nil
		}
		return root.ForEachBucket(func(name []byte) error {
			if n := root.Bucket(name).Stats().KeyN; n > 0 {
				out[string(name)] = n
			}
			return nil
		})
	})
	return out
}

// UnreceivedCount counts the events owed to a notifier that it has not yet
// taken from the bus.
func (s *Store) UnreceivedCount(notifier string) int {
	n := 0
	_ = s.db.View(func(tx *bolt.Tx) error {
		owed := owedBucket(tx, notifier)
		if owed == nil {
			return nil
		}
		return owed.ForEach(func(_, v []byte) error {
			if len(v) == 1 && v[0] == owedUnreceived {
				n++
			}
			return nil
		})
	})
	return n
}

// OwedBefore reports, for each alert, the ledger places of the events of
// that alert a notifier still owes (received or not), in order. An event is
// next in its alert's story when no smaller place is owed.
func (s *Store) OwedBefore(notifier string, alerts []string) (map[string][]uint64, error) {
	out := make(map[string][]uint64, len(alerts))
	err := s.db.View(func(tx *bolt.Tx) error {
		owed := owedBucket(tx, notifier)
		idx := tx.Bucket(bucketLedgerAlerts)
		if owed == nil || idx == nil {
			return nil
		}
		c := idx.Cursor()
		for _, alert := range alerts {
			prefix := append([]byte(alert), 0xff)
			for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix) && len(k) == len(prefix)+8; k, _ = c.Next() {
				lk := k[len(prefix):]
				if owed.Get(lk) != nil {
					out[alert] = append(out[alert], binary.BigEndian.Uint64(lk))
				}
			}
		}
		return nil
	})
	return out, err
}

// Outcomes of an event for a notifier.
const (
	Delivered    = "delivered"
	Muted        = "muted"
	DeadLettered = "dead-lettered"
	// Released: settled without a decision of the notifier's own (e.g. it
	// does not take this kind of event).
	Released = "released"
)

// Outcome settles one event for a notifier.
type Outcome struct {
	LSeq   uint64
	ID     string
	Result string // Delivered, Muted, DeadLettered or Released
	// The event's alert, kind and start, so that a resolution can tell
	// whether its alert's firing reached the notifier (see FiringOutcome).
	Alert    string
	Kind     string
	StartsAt time.Time
	// For muted events, what muted them: a silence's id, the alert that
	// inhibited it, or (neither) Reason.
	Silenced, Inhibited, Reason string
}

type muteRecord struct {
	At        time.Time         `json:"at"`
	Silenced  string            `json:"silenced,omitempty"`
	Inhibited string            `json:"inhibited,omitempty"`
	By        map[string]string `json:"by"` // notifier → what muted it there
}

// Settle records what became of events for a notifier: delivered events go
// to its delivery log, muted ones into the history with what muted them,
// and each leaves the ledger once no notifier owes it.
func (s *Store) Settle(notifier string, at time.Time, outcomes []Outcome) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		owed := owedBucket(tx, notifier)
		log, err := tx.Bucket(bucketDelivered).CreateBucketIfNotExists([]byte(notifier))
		if err != nil {
			return err
		}
		settledLog, err := tx.Bucket(bucketSettled).CreateBucketIfNotExists([]byte(notifier))
		if err != nil {
			return err
		}
		stamp := binary.BigEndian.AppendUint64(nil, uint64(at.UnixNano()))
		notified, err := tx.CreateBucketIfNotExists(bucketNotified)
		if err != nil {
			return err
		}
		if notified, err = notified.CreateBucketIfNotExists([]byte(notifier)); err != nil {
			return err
		}
		for _, o := range outcomes {
			if err := noteFiring(notified, o); err != nil {
				return err
			}
			switch o.Result {
			case Delivered:
				if err := log.Put([]byte(o.ID), stamp); err != nil {
					return err
				}
			case Muted:
				if err := recordMute(tx, notifier, at, o); err != nil {
					return err
				}
			}
			if o.Result != Delivered && o.ID != "" {
				// A repeat from the bus after the event left the ledger
				// must not be taken again.
				if err := settledLog.Put([]byte(o.ID), stamp); err != nil {
					return err
				}
			}
			if owed == nil || o.LSeq == 0 {
				continue
			}
			if err := owed.Delete(u64(o.LSeq)); err != nil {
				return err
			}
			if err := dropIfSettled(tx, o.LSeq); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: settle for %s: %w", notifier, err)
	}
	return nil
}

// noteFiring remembers, per alert, whether any firing event of its current
// episode (its start) reached the notifier; a resolution forgets it.
func noteFiring(b *bolt.Bucket, o Outcome) error {
	if o.Alert == "" {
		return nil
	}
	switch o.Kind {
	case event.KindResolved:
		return b.Delete([]byte(o.Alert))
	case event.KindFiring:
	default:
		return nil
	}
	start := uint64(o.StartsAt.UnixNano())
	delivered := o.Result == Delivered
	if v := b.Get([]byte(o.Alert)); len(v) == 9 && binary.BigEndian.Uint64(v) == start {
		delivered = delivered || v[8] == 1
	}
	v := binary.BigEndian.AppendUint64(nil, start)
	if delivered {
		v = append(v, 1)
	} else {
		v = append(v, 0)
	}
	return b.Put([]byte(o.Alert), v)
}

// FiringOutcome says whether the firing of an alert's episode (its start)
// reached a notifier: known is false when no firing of it was settled there.
func (s *Store) FiringOutcome(notifier, alert string, startsAt time.Time) (known, delivered bool, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		root := tx.Bucket(bucketNotified)
		if root == nil {
			return nil
		}
		b := root.Bucket([]byte(notifier))
		if b == nil {
			return nil
		}
		v := b.Get([]byte(alert))
		if len(v) == 9 && binary.BigEndian.Uint64(v) == uint64(startsAt.UnixNano()) {
			known, delivered = true, v[8] == 1
		}
		return nil
	})
	return known, delivered, err
}

func recordMute(tx *bolt.Tx, notifier string, at time.Time, o Outcome) error {
	b, err := tx.CreateBucketIfNotExists(bucketMutes)
	if err != nil {
		return err
	}
	var m muteRecord
	if v := b.Get([]byte(o.ID)); v != nil {
		_ = json.Unmarshal(v, &m)
	}
	if m.By == nil {
		m.By = map[string]string{}
	}
	m.At = at
	var by string
	switch {
	case o.Silenced != "":
		by = "silence " + o.Silenced
		if m.Silenced == "" {
			m.Silenced = o.Silenced
		}
	case o.Inhibited != "":
		by = "inhibited by " + o.Inhibited
		if m.Inhibited == "" {
			m.Inhibited = o.Inhibited
		}
	default:
		by = o.Reason
		if m.Inhibited == "" && m.Silenced == "" {
			m.Inhibited = o.Reason
		}
	}
	m.By[notifier] = by
	v, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return b.Put([]byte(o.ID), v)
}

// mutesOf adds to an event from the history what muted it, if anything.
func mutesOf(tx *bolt.Tx, e *event.Event) {
	b := tx.Bucket(bucketMutes)
	if b == nil {
		return
	}
	v := b.Get([]byte(e.ID))
	if v == nil {
		return
	}
	var m muteRecord
	if json.Unmarshal(v, &m) == nil {
		e.Silenced, e.Inhibited = m.Silenced, m.Inhibited
	}
}

// Firing lists the latest firing event of every alert that is firing (whose
// latest firing or resolved event was a firing): the sources inhibit rules
// look at.
func (s *Store) Firing() ([]event.Event, error) {
	var out []event.Event
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketFiring)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			data, err := eventData(tx, v)
			if err != nil {
				return fmt.Errorf("store: firing %q: %w", k, err)
			}
			var e event.Event
			if err := json.Unmarshal(data, &e); err != nil {
				return fmt.Errorf("store: firing %q: %w", k, err)
			}
			out = append(out, e)
			return nil
		})
	})
	return out, err
}

// PruneMutes drops the records of what muted events that were muted before
// `before`, as the history drops the events themselves (EventRetention).
// It returns how many it dropped.
func (s *Store) PruneMutes(before time.Time) (int, error) {
	n := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketMutes)
		if b == nil {
			return nil
		}
		var err error
		n, err = deleteWhere(b, func(_, v []byte) bool {
			var m muteRecord
			return json.Unmarshal(v, &m) != nil || m.At.Before(before)
		})
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store: prune mutes: %w", err)
	}
	return n, nil
}

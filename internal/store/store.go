// Package store keeps simwatch's state in bbolt: per provider the last
// successful snapshot (cards and pools), the active alerts and cycle metadata;
// the outbox of events not yet published; and each notifier's delivery log.
// A poll cycle writes all of it in one transaction.
package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/simwatch/simwatch/internal/fleet"
	"github.com/simwatch/simwatch/internal/rules"
)

var (
	bucketProviders = []byte("providers")
	bucketOutbox    = []byte("outbox")
	bucketDelivered = []byte("delivered")
	// notifier / event id → when it was settled otherwise (muted,
	// dead-lettered, released): with the delivery log, what a repeat from
	// the bus is checked against once the event has left the ledger.
	bucketSettled = []byte("settled")
	bucketCards   = []byte("cards")
	bucketPools   = []byte("pools")
	bucketAlerts  = []byte("alerts")
	// card id → the fingerprint of the card's record as the provider last
	// listed it (8 bytes): what a poller loads to tell changed cards from
	// the rest without reading the cards themselves.
	bucketCardFP = []byte("card_fp")
	keyMeta      = []byte("meta")
)

// Store is the bbolt database. It is safe for concurrent use.
type Store struct {
	db *db
	// notifiers are those the ledger keeps events for (see SetNotifiers).
	notifiers atomic.Pointer[[]string]
}

// CheckAtOpenMax is the largest store Open checks page by page. Checking
// reads the whole file, which at a million cards is gigabytes of page cache
// mapped into the watcher and seconds of every `run --once`; a larger store
// is checked by `watcher doctor`, and damage met while it runs is still a
// *DamagedError (see guard), never a crash.
const CheckAtOpenMax = 64 << 20

// Open opens or creates the database at path and, when it is not larger
// than CheckAtOpenMax, checks it (see Check): a corrupt file is a
// *DamagedError naming the fix, never a panic.
func Open(path string) (*Store, error) {
	s, err := openDB(path)
	if err != nil {
		return nil, err
	}
	if s.Size() <= CheckAtOpenMax {
		if err := s.Check(); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

// openDB opens the database without checking its pages.
func openDB(path string) (s *Store, err error) {
	if err := statStore(path); err != nil {
		return nil, err
	}
	// A large initial mapping (address space, not memory) spares the commit
	// of a big cycle the remaps of a growing file, each of which copies
	// every node the transaction holds, and lets readers not block them.
	// The timeout only matters when bbolt's own lock is held by a process
	// that skipped LockDir: the data_dir lock turns away a second watcher first.
	var bdb *bolt.DB
	func() {
		defer guard(path, &err)()
		bdb, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second, InitialMmapSize: 1 << 30})
	}()
	if err == nil {
		// The file may have been cut to nothing between the stat above
		// and the open: bbolt would have made a fresh store of it.
		if err = statStore(path); err != nil {
			bdb.Close()
			return nil, err
		}
	}
	if err != nil {
		var dmg *DamagedError
		if errors.As(err, &dmg) {
			return nil, err
		}
		return nil, openError(path, err)
	}
	s = &Store{db: &db{DB: bdb, path: path}}
	err = s.db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketProviders, bucketOutbox, bucketDelivered, bucketSettled} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		s.Close()
		var dmg *DamagedError
		if errors.As(err, &dmg) {
			return nil, err
		}
		return nil, fmt.Errorf("store: init %s: %w", path, err)
	}
	return s, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Size is the database file's size in bytes.
func (s *Store) Size() int64 {
	var n int64
	_ = s.db.View(func(tx *bolt.Tx) error { n = tx.Size(); return nil })
	return n
}

// Update runs fn in one read-write transaction: everything fn writes commits
// together or not at all.
func (s *Store) Update(fn func(*Tx) error) error {
	return s.db.Update(func(tx *bolt.Tx) error { return fn(&Tx{tx: tx, s: s}) })
}

// View runs fn in a read-only transaction.
func (s *Store) View(fn func(*Tx) error) error {
	return s.db.View(func(tx *bolt.Tx) error { return fn(&Tx{tx: tx, s: s}) })
}

// Tx is a transaction.
type Tx struct {
	tx *bolt.Tx
	s  *Store
	// rec, when set, records the replicated writes (see Store.Record).
	rec *recorder
}

// Provider returns the provider's part of the store. In a read-only
// transaction a provider never written is empty.
func (t *Tx) Provider(name string) (*ProviderTx, error) {
	root := t.tx.Bucket(bucketProviders)
	b := root.Bucket([]byte(name))
	if b == nil && t.tx.Writable() {
		var err error
		if b, err = root.CreateBucket([]byte(name)); err != nil {
			return nil, fmt.Errorf("store: provider %s: %w", name, err)
		}
		for _, sub := range [][]byte{bucketCards, bucketPools, bucketAlerts} {
			if _, err := b.CreateBucket(sub); err != nil {
				return nil, fmt.Errorf("store: provider %s: %w", name, err)
			}
		}
	}
	return &ProviderTx{name: name, b: b, tx: t.tx, rec: t.rec}, nil
}

// ProviderTx reads and writes one provider's snapshot, alerts and metadata.
type ProviderTx struct {
	name string
	b    *bolt.Bucket // nil: nothing stored yet
	tx   *bolt.Tx
	// rec, when set, records every write (see Store.Record); paths are
	// the sub-bucket paths recorded, shared by the ops.
	rec   *recorder
	paths [][][]byte
}

func (p *ProviderTx) sub(name []byte) *bolt.Bucket {
	if p.b == nil {
		return nil
	}
	return p.b.Bucket(name)
}

// Card returns the stored card with this id.
func (p *ProviderTx) Card(id string) (fleet.Card, bool, error) {
	b := p.sub(bucketCards)
	if b == nil {
		return fleet.Card{}, false, nil
	}
	v := b.Get([]byte(id))
	if v == nil {
		return fleet.Card{}, false, nil
	}
	c, err := DecodeCard(v)
	if err != nil {
		return c, false, fmt.Errorf("store: %s card %s: %w", p.name, id, err)
	}
	return c, true, nil
}

// PutCard writes a card given its fleet.EncodeCard encoding.
func (p *ProviderTx) PutCard(id string, encoded []byte) error {
	p.rec.put(p.path(bucketCards), []byte(id), encoded)
	return p.sub(bucketCards).Put([]byte(id), encoded)
}

// DeleteCard removes a card and its fingerprint.
func (p *ProviderTx) DeleteCard(id string) error {
	if b := p.sub(bucketCardFP); b != nil {
		p.rec.del(p.path(bucketCardFP), []byte(id))
		if err := b.Delete([]byte(id)); err != nil {
			return err
		}
	}
	p.rec.del(p.path(bucketCards), []byte(id))
	return p.sub(bucketCards).Delete([]byte(id))
}

// PutCardFP records the fingerprint of a card's record as listed.
func (p *ProviderTx) PutCardFP(id string, fp uint64) error {
	b, err := p.b.CreateBucketIfNotExists(bucketCardFP)
	if err != nil {
		return err
	}
	v := binary.BigEndian.AppendUint64(nil, fp)
	p.rec.put(p.path(bucketCardFP), []byte(id), v)
	return b.Put([]byte(id), v)
}

// HasCardFP reports whether a fingerprint is recorded for the card.
func (p *ProviderTx) HasCardFP(id string) bool {
	b := p.sub(bucketCardFP)
	return b != nil && b.Get([]byte(id)) != nil
}

// ForEachCardFP calls fn with each card's recorded fingerprint. It reports
// false when none was ever recorded (a store written before fingerprints
// were): the caller then knows the cards only by their ids.
func (p *ProviderTx) ForEachCardFP(fn func(id string, fp uint64)) (bool, error) {
	b := p.sub(bucketCardFP)
	if b == nil {
		return false, nil
	}
	return true, b.ForEach(func(k, v []byte) error {
		// A damaged fingerprint is no fingerprint: the card is decoded
		// again at the next listing.
		var fp uint64
		if len(v) == 8 {
			fp = binary.BigEndian.Uint64(v)
		}
		fn(string(k), fp)
		return nil
	})
}

// DropCardFPs forgets every card's fingerprint: the next cycle decodes
// every card again and compares it with its stored version.
func (p *ProviderTx) DropCardFPs() error {
	if p.sub(bucketCardFP) == nil {
		return nil
	}
	p.rec.drop(p.path(bucketCardFP))
	return p.b.DeleteBucket(bucketCardFP)
}

// ForEachCardID calls fn with each stored card's id, in id order.
func (p *ProviderTx) ForEachCardID(fn func(id string)) error {
	b := p.sub(bucketCards)
	if b == nil {
		return nil
	}
	c := b.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		fn(string(k))
	}
	return nil
}

// Dense makes this transaction fill the snapshot's pages before splitting
// them: a cycle writes its cards in id order, and bbolt's default (half
// full) would double the file and every page a later cycle reads.
func (p *ProviderTx) Dense() {
	for _, name := range [][]byte{bucketCards, bucketCardFP} {
		if b := p.sub(name); b != nil {
			b.FillPercent = 0.9
		}
	}
}

// ForEachCard calls fn with each stored card's id and encoding, in id order.
// The encoding is only valid during the call.
func (p *ProviderTx) ForEachCard(fn func(id string, encoded []byte) error) error {
	b := p.sub(bucketCards)
	if b == nil {
		return nil
	}
	return b.ForEach(func(k, v []byte) error { return fn(string(k), v) })
}

// Pool returns the stored pool with this id.
func (p *ProviderTx) Pool(id string) (fleet.Pool, bool, error) {
	var pool fleet.Pool
	b := p.sub(bucketPools)
	if b == nil {
		return pool, false, nil
	}
	v := b.Get([]byte(id))
	if v == nil {
		return pool, false, nil
	}
	if err := json.Unmarshal(v, &pool); err != nil {
		return pool, false, fmt.Errorf("store: %s pool %s: %w", p.name, id, err)
	}
	return pool, true, nil
}

// EncodePool encodes a pool for PutPool and Fingerprint.
func EncodePool(pool *fleet.Pool) []byte {
	b, _ := json.Marshal(pool)
	return b
}

// PutPool writes a pool given its EncodePool encoding.
func (p *ProviderTx) PutPool(id string, encoded []byte) error {
	p.rec.put(p.path(bucketPools), []byte(id), encoded)
	return p.sub(bucketPools).Put([]byte(id), encoded)
}

// DeletePool removes a pool.
func (p *ProviderTx) DeletePool(id string) error {
	p.rec.del(p.path(bucketPools), []byte(id))
	return p.sub(bucketPools).Delete([]byte(id))
}

// ForEachPool calls fn with each stored pool's id and encoding.
func (p *ProviderTx) ForEachPool(fn func(id string, encoded []byte) error) error {
	b := p.sub(bucketPools)
	if b == nil {
		return nil
	}
	return b.ForEach(func(k, v []byte) error { return fn(string(k), v) })
}

// Alerts returns the provider's active alerts by key.
func (p *ProviderTx) Alerts() (map[string]*rules.Alert, error) {
	out := map[string]*rules.Alert{}
	b := p.sub(bucketAlerts)
	if b == nil {
		return out, nil
	}
	err := b.ForEach(func(k, v []byte) error {
		var a rules.Alert
		if err := json.Unmarshal(v, &a); err != nil {
			return fmt.Errorf("store: %s alert %q: %w", p.name, k, err)
		}
		out[string(k)] = &a
		return nil
	})
	return out, err
}

// PutAlert writes an alert; a nil alert deletes the key.
func (p *ProviderTx) PutAlert(key string, a *rules.Alert) error {
	b := p.sub(bucketAlerts)
	if a == nil {
		p.rec.del(p.path(bucketAlerts), []byte(key))
		return b.Delete([]byte(key))
	}
	v, err := json.Marshal(a)
	if err != nil {
		return err
	}
	p.rec.put(p.path(bucketAlerts), []byte(key), v)
	return b.Put([]byte(key), v)
}

// Meta is what the store remembers about a provider's cycles.
type Meta struct {
	Cycles      uint64    `json:"cycles"`       // successful cycles committed
	LastSuccess time.Time `json:"last_success"` // time of the last committed cycle (when it began)
	// Committed is when that cycle committed: readiness counts from it, as
	// a slow listing would otherwise make a healthy watcher look stale.
	Committed   time.Time `json:"committed,omitzero"`
	LastFailure time.Time `json:"last_failure,omitzero"`
	LastError   string    `json:"last_error,omitempty"`
	Failures    int       `json:"failures"`  // failed cycles in a row
	Unhealthy   bool      `json:"unhealthy"` // a provider_unhealthy event fired
	// UnhealthySince is when the outage was declared: the identity of its
	// firing and resolved events.
	UnhealthySince time.Time `json:"unhealthy_since,omitzero"`
	RulesHash      string    `json:"rules_hash"` // the rule set the snapshot was evaluated with
	Cards          int       `json:"cards"`
	Pools          int       `json:"pools"`
	// HistoryThrough is the last day whose daily usage came from the
	// provider's daily API; 0 means the history was never backfilled.
	HistoryThrough int32 `json:"history_through,omitempty"`
	// HistoryAskedAt is when the daily API was last asked for days it did
	// not have yet, so that it is asked again only after a while.
	HistoryAskedAt time.Time `json:"history_asked_at,omitzero"`
	// LastClockEval is when clock and history rules last ran on unchanged entities.
	LastClockEval time.Time `json:"last_clock_eval,omitzero"`
	// FPKind names how the recorded card fingerprints were made: one of
	// another kind (a provider client that changed how it lists) never
	// matches, and the card is decoded again.
	FPKind string `json:"fp_kind,omitempty"`
	// StatusCounts are the snapshot's cards by status ("unknown" for a
	// status the provider did not give or simwatch does not know), kept
	// by each commit from what changed: the console's overview reads
	// them instead of every card. Nil in a store of an earlier version
	// until its next commit.
	StatusCounts map[string]int `json:"status_counts,omitempty"`
}

// Meta returns the provider's metadata.
func (p *ProviderTx) Meta() (Meta, error) {
	var m Meta
	if p.b == nil {
		return m, nil
	}
	v := p.b.Get(keyMeta)
	if v == nil {
		return m, nil
	}
	if err := json.Unmarshal(v, &m); err != nil {
		return m, fmt.Errorf("store: %s meta: %w", p.name, err)
	}
	return m, nil
}

// PutMeta writes the provider's metadata.
func (p *ProviderTx) PutMeta(m Meta) error {
	v, err := json.Marshal(m)
	if err != nil {
		return err
	}
	p.rec.put(p.path(nil), keyMeta, v)
	return p.b.Put(keyMeta, v)
}

// Providers lists the providers with stored state.
func (t *Tx) Providers() []string {
	var out []string
	_ = t.tx.Bucket(bucketProviders).ForEach(func(k, _ []byte) error {
		out = append(out, string(k))
		return nil
	})
	return out
}

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// deleteWhere deletes the keys of b (values, not nested buckets) for which
// drop is true, and returns how many. Keys are collected first and deleted
// after the walk: a bbolt cursor skips keys when the bucket changes under it.
func deleteWhere(b *bolt.Bucket, drop func(k, v []byte) bool) (int, error) {
	var keys [][]byte
	err := b.ForEach(func(k, v []byte) error {
		if v != nil && drop(k, v) {
			keys = append(keys, bytes.Clone(k))
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return 0, err
		}
	}
	return len(keys), nil
}

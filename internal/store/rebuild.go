package store

import (
	"bytes"
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/simwatch/simwatch/internal/fleet"
)

// A cycle that changes much of a fleet (a first listing, the daily usage
// update that moves every card) would write every card in its one
// transaction, and bbolt holds a transaction's every written node in memory
// until it commits: at a million cards, gigabytes. Such a cycle rebuilds
// the card snapshot beside the live one instead, in transactions of a
// bounded number of cards, and its own transaction swaps the rebuilt
// snapshot in (AdoptRebuilt). Until then nothing of it is visible; a
// rebuild that is never adopted (a crash, a failed cycle) is cleared by
// the next one.

// bucketRebuilt holds, per provider, a card snapshot being rebuilt: its
// cards and card_fp buckets.
var bucketRebuilt = []byte("rebuilt")

// rebuildChunk is how many cards one rebuild transaction writes.
var rebuildChunk = 20_000

// Rebuild writes the provider's next card snapshot beside the live one: the
// live cards and their fingerprints merged with changed (sorted by id, with
// their fingerprints in fps), leaving out the ids in drop. It releases each
// record's Data once written, so that the encodings of a million new cards
// are not all held until the cycle commits.
func (s *Store) Rebuild(provider string, changed []fleet.Record, fps []uint64, drop map[string]bool) error {
	if len(changed) != len(fps) {
		return fmt.Errorf("store: rebuild %s: %d records, %d fingerprints", provider, len(changed), len(fps))
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		root, err := tx.CreateBucketIfNotExists(bucketRebuilt)
		if err != nil {
			return err
		}
		if root.Bucket([]byte(provider)) != nil {
			if err := root.DeleteBucket([]byte(provider)); err != nil {
				return err
			}
		}
		b, err := root.CreateBucket([]byte(provider))
		if err != nil {
			return err
		}
		for _, name := range [][]byte{bucketCards, bucketCardFP} {
			if _, err := b.CreateBucket(name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: rebuild %s: %w", provider, err)
	}
	m := merge{changed: changed, fps: fps, drop: drop}
	for !m.done {
		if err := s.db.Update(func(tx *bolt.Tx) error { return m.chunk(tx, provider) }); err != nil {
			return fmt.Errorf("store: rebuild %s: %w", provider, err)
		}
	}
	return nil
}

// merge walks the live snapshot and the changed records together, in id
// order, across transactions.
type merge struct {
	changed []fleet.Record
	fps     []uint64
	drop    map[string]bool
	next    int    // the next changed record
	after   []byte // the last live id passed; nil before the first
	done    bool
}

// chunk writes up to rebuildChunk cards of the merge into tx.
func (m *merge) chunk(tx *bolt.Tx, provider string) error {
	staged := tx.Bucket(bucketRebuilt).Bucket([]byte(provider))
	cards, fpb := staged.Bucket(bucketCards), staged.Bucket(bucketCardFP)
	cards.FillPercent, fpb.FillPercent = 1, 1 // written in order: full pages
	var liveCards, liveFP *bolt.Bucket
	if pb := tx.Bucket(bucketProviders).Bucket([]byte(provider)); pb != nil {
		liveCards, liveFP = pb.Bucket(bucketCards), pb.Bucket(bucketCardFP)
	}
	var k, v []byte
	var cur *bolt.Cursor
	if liveCards != nil {
		cur = liveCards.Cursor()
		if m.after == nil {
			k, v = cur.First()
		} else if k, v = cur.Seek(m.after); k != nil && bytes.Equal(k, m.after) {
			k, v = cur.Next()
		}
	}
	put := func(id, enc []byte, fp uint64) error {
		if err := cards.Put(id, enc); err != nil {
			return err
		}
		return fpb.Put(id, binary.BigEndian.AppendUint64(nil, fp))
	}
	for n := 0; n < rebuildChunk; n++ {
		var c *fleet.Record
		if m.next < len(m.changed) {
			c = &m.changed[m.next]
		}
		switch {
		case c == nil && k == nil:
			m.done = true
			return nil
		case c != nil && (k == nil || c.ID <= string(k)):
			if err := put([]byte(c.ID), c.Data, m.fps[m.next]); err != nil {
				return err
			}
			c.Data = nil // written: released
			m.next++
			if k != nil && c.ID == string(k) { // the live version is replaced
				m.after = append(m.after[:0], k...)
				k, v = cur.Next()
			}
		default:
			if !m.drop[string(k)] {
				var fp uint64
				if liveFP != nil {
					if b := liveFP.Get(k); len(b) == 8 {
						fp = binary.BigEndian.Uint64(b)
					}
				}
				if err := put(bytes.Clone(k), bytes.Clone(v), fp); err != nil {
					return err
				}
			}
			m.after = append(m.after[:0], k...)
			k, v = cur.Next()
		}
	}
	return nil
}

// AdoptRebuilt swaps the rebuilt card snapshot in for the live one, in the
// cycle's transaction.
func (p *ProviderTx) AdoptRebuilt() error {
	if p.rec != nil {
		return fmt.Errorf("store: %s: adopt a rebuilt snapshot: %w", p.name, ErrRecording)
	}
	root := p.tx.Bucket(bucketRebuilt)
	var staged *bolt.Bucket
	if root != nil {
		staged = root.Bucket([]byte(p.name))
	}
	if staged == nil {
		return fmt.Errorf("store: %s: no rebuilt snapshot to adopt", p.name)
	}
	for _, name := range [][]byte{bucketCards, bucketCardFP} {
		if p.b.Bucket(name) != nil {
			if err := p.b.DeleteBucket(name); err != nil {
				return err
			}
		}
		if err := staged.MoveBucket(name, p.b); err != nil {
			return err
		}
	}
	return root.DeleteBucket([]byte(p.name))
}

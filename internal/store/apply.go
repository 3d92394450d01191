package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/simwatch/simwatch/internal/event"
)

// bucketReplica holds where this store is in the cluster's state stream:
// keyReplicaPos (the applier's resume point) and, in bucketApplied, per
// subject the stream sequence of the last delta applied. Local: each
// watcher's own progress.
var (
	bucketReplica = []byte("replica")
	bucketApplied = []byte("applied")
	keyReplicaPos = []byte("pos")
	keyReplicaID  = []byte("stream")
)

// replicatedRoots are the root buckets a delta may write: anything else
// (the outbox, the ledger, the delivery logs, this store's position) is
// each watcher's own, and a delta naming it is refused.
var replicatedRoots = [][]byte{bucketProviders, bucketAcks, bucketSilences}

// Apply writes a delta recorded by Record (here or on another watcher) in
// one transaction, as the delta's seq on subject: a seq not above the last
// one applied on subject is skipped (false, nil), so a delta seen twice is
// applied once. Its events are appended as AppendOutbox appends them (the
// history, its index, the firing bucket, the ledger owed to this store's
// notifiers, the outbox), each keeping its seq; an alert's seq becomes the
// largest it has seen. Nothing is written when it fails; a delta that
// cannot be applied whatever the store's state (a bucket not replicated, an
// event that does not decode, a key bbolt refuses) is an error wrapping
// ErrBadDelta, anything else (a failed commit) is not.
func (s *Store) Apply(subject string, seq uint64, d Delta) (applied bool, err error) {
	var bad error
	err = s.db.Update(func(tx *bolt.Tx) error {
		err := s.apply(tx, subject, seq, d, &applied)
		if err != nil {
			bad = err
		}
		return err
	})
	if bad != nil {
		return false, fmt.Errorf("store: apply %s seq %d: %w: %w", subject, seq, ErrBadDelta, bad)
	}
	if err != nil {
		return false, fmt.Errorf("store: apply %s seq %d: %w", subject, seq, err)
	}
	return applied, nil
}

func (s *Store) apply(tx *bolt.Tx, subject string, seq uint64, d Delta, applied *bool) error {
	rb, err := tx.CreateBucketIfNotExists(bucketReplica)
	if err != nil {
		return err
	}
	ab, err := rb.CreateBucketIfNotExists(bucketApplied)
	if err != nil {
		return err
	}
	if v := ab.Get([]byte(subject)); len(v) == 8 && binary.BigEndian.Uint64(v) >= seq {
		return nil
	}
	t := &Tx{tx: tx, s: s}
	if err := t.applyOps(d.Ops); err != nil {
		return err
	}
	if len(d.Events) > 0 {
		events := make([]event.Event, len(d.Events))
		for i, data := range d.Events {
			if err := json.Unmarshal(data, &events[i]); err != nil {
				return fmt.Errorf("event %d: %w", i, err)
			}
		}
		if _, err := t.appendOutbox(events, d.Events); err != nil {
			return err
		}
	}
	*applied = true
	return ab.Put([]byte(subject), u64(seq))
}

// applyOps replays a delta's ops. A put creates the buckets along its
// path, as the writer's transaction did; a delete or a drop creates none.
func (t *Tx) applyOps(ops []Op) error {
	var (
		path [][]byte
		b    *bolt.Bucket
	)
	for i, op := range ops {
		if i == 0 || !samePaths(path, op.Path) {
			path = op.Path
			var err error
			if b, err = t.bucketAt(path, op.Kind == OpPut); err != nil {
				return fmt.Errorf("op %d: %w", i, err)
			}
		}
		var err error
		switch op.Kind {
		case OpPut:
			err = b.Put(op.Key, op.Value)
		case OpDelete:
			if b != nil {
				err = b.Delete(op.Key)
			}
		case OpDropBucket:
			// A root bucket stays: the store expects them.
			if len(path) < 2 {
				err = errors.New("a root bucket cannot be dropped")
				break
			}
			if b != nil {
				parent, perr := t.bucketAt(path[:len(path)-1], false)
				if perr != nil || parent == nil {
					err = fmt.Errorf("no parent bucket: %v", perr)
					break
				}
				err = parent.DeleteBucket(path[len(path)-1])
				b = nil
			}
		default:
			err = fmt.Errorf("unknown kind %d", op.Kind)
		}
		if err != nil {
			return fmt.Errorf("op %d on %q: %w", i, bytes.Join(path, []byte("/")), err)
		}
	}
	return nil
}

// bucketAt returns the bucket at path, creating it (and a provider's
// standard buckets, as Tx.Provider does) when create is set; nil when it
// does not exist and create is not.
func (t *Tx) bucketAt(path [][]byte, create bool) (*bolt.Bucket, error) {
	if len(path) == 0 {
		return nil, errors.New("empty bucket path")
	}
	ok := false
	for _, r := range replicatedRoots {
		ok = ok || bytes.Equal(path[0], r)
	}
	if !ok {
		return nil, fmt.Errorf("bucket %q is not replicated", path[0])
	}
	if create && bytes.Equal(path[0], bucketProviders) && len(path) > 1 {
		if _, err := t.Provider(string(path[1])); err != nil {
			return nil, err
		}
	}
	var b *bolt.Bucket
	for i, name := range path {
		var next *bolt.Bucket
		if i == 0 {
			next = t.tx.Bucket(name)
		} else {
			next = b.Bucket(name)
		}
		if next == nil {
			if !create {
				return nil, nil
			}
			var err error
			if i == 0 {
				next, err = t.tx.CreateBucket(name)
			} else {
				next, err = b.CreateBucket(name)
			}
			if err != nil {
				return nil, fmt.Errorf("bucket %q: %w", name, err)
			}
		}
		b = next
	}
	// As the poller's cycle (ProviderTx.Dense): cards come in id order.
	if len(path) == 3 && (bytes.Equal(path[2], bucketCards) || bytes.Equal(path[2], bucketCardFP)) {
		b.FillPercent = 0.9
	}
	return b, nil
}

// ReplicaPosition returns the applier's resume point in the state stream
// (0: from the start) and, per subject, the seq of the last delta applied.
func (s *Store) ReplicaPosition() (pos uint64, applied map[string]uint64, err error) {
	applied = map[string]uint64{}
	err = s.db.View(func(tx *bolt.Tx) error {
		rb := tx.Bucket(bucketReplica)
		if rb == nil {
			return nil
		}
		if v := rb.Get(keyReplicaPos); len(v) == 8 {
			pos = binary.BigEndian.Uint64(v)
		}
		if ab := rb.Bucket(bucketApplied); ab != nil {
			return ab.ForEach(func(k, v []byte) error {
				if len(v) == 8 {
					applied[string(k)] = binary.BigEndian.Uint64(v)
				}
				return nil
			})
		}
		return nil
	})
	if err != nil {
		return 0, nil, fmt.Errorf("store: replica position: %w", err)
	}
	return pos, applied, nil
}

// ReplicaStream returns the identity of the state stream the position and
// the applied seqs refer to ("" when none was recorded).
func (s *Store) ReplicaStream() (string, error) {
	var id string
	err := s.db.View(func(tx *bolt.Tx) error {
		if rb := tx.Bucket(bucketReplica); rb != nil {
			id = string(rb.Get(keyReplicaID))
		}
		return nil
	})
	return id, err
}

// ResetReplica forgets the position and the applied seqs, which refer to
// another stream (one deleted and created again numbers its messages from
// 1), and records id as the stream's. The replicated state stays: the new
// stream's deltas are applied over it.
func (s *Store) ResetReplica(id string) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketReplica) != nil {
			if err := tx.DeleteBucket(bucketReplica); err != nil {
				return err
			}
		}
		rb, err := tx.CreateBucket(bucketReplica)
		if err != nil {
			return err
		}
		return rb.Put(keyReplicaID, []byte(id))
	})
	if err != nil {
		return fmt.Errorf("store: replica reset: %w", err)
	}
	return nil
}

// SetReplicaPosition records the applier's resume point.
func (s *Store) SetReplicaPosition(pos uint64) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		rb, err := tx.CreateBucketIfNotExists(bucketReplica)
		if err != nil {
			return err
		}
		return rb.Put(keyReplicaPos, u64(pos))
	})
	if err != nil {
		return fmt.Errorf("store: replica position: %w", err)
	}
	return nil
}

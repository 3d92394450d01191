package store

import (
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

var bucketProbe = []byte("probe")

// Probe checks that the store can still be written, with the smallest
// write transaction there is: one key, committed (and so synced). /readyz
// calls it, rate-limited, because a full disk or a file gone read-only
// shows only when a cycle tries to commit.
func (s *Store) Probe() error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketProbe)
		if err != nil {
			return err
		}
		return b.Put([]byte("at"), []byte(time.Now().UTC().Format(time.RFC3339Nano)))
	})
	if err != nil {
		return fmt.Errorf("store: write probe: %w", err)
	}
	return nil
}

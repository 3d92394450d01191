package store

import bolt "go.etcd.io/bbolt"

// AppendOutboxForTest writes one key outside the providers' buckets.
func (s *Store) AppendOutboxForTest() error {
	return s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketOutbox).Put([]byte("test"), []byte("x"))
	})
}

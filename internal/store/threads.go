package store

import (
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

var bucketThreads = []byte("threads")

// SaveThread remembers where a notifier posted a firing event (a Slack
// channel and message ts), so that its resolution can be posted as a reply.
func (s *Store) SaveThread(notifier string, at time.Time, firingID, channel, ts string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		root, err := tx.CreateBucketIfNotExists(bucketThreads)
		if err != nil {
			return err
		}
		b, err := root.CreateBucketIfNotExists([]byte(notifier))
		if err != nil {
			return err
		}
		v := binary.BigEndian.AppendUint64(nil, uint64(at.UnixNano()))
		v = append(v, channel+"\x00"+ts...)
		return b.Put([]byte(firingID), v)
	})
}

// Thread returns where a notifier posted a firing event.
func (s *Store) Thread(notifier, firingID string) (channel, ts string, ok bool, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		root := tx.Bucket(bucketThreads)
		if root == nil {
			return nil
		}
		b := root.Bucket([]byte(notifier))
		if b == nil {
			return nil
		}
		v := b.Get([]byte(firingID))
		if v == nil {
			return nil
		}
		if len(v) < 8 {
			return fmt.Errorf("store: thread %s: corrupt record", firingID)
		}
		channel, ts, ok = strings.Cut(string(v[8:]), "\x00")
		return nil
	})
	return channel, ts, ok, err
}

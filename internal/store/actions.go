package store

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/simwatch/simwatch/internal/event"
)

var bucketActions = []byte("actions")

// ActionRecord is what an action notifier did (or, in a dry run, would have
// done) about one event.
type ActionRecord struct {
	Notifier    string    `json:"notifier"`
	EventID     string    `json:"event_id"`
	Rule        string    `json:"rule"`
	Provider    string    `json:"provider"`
	CardID      string    `json:"card_id"`
	ICCID       string    `json:"iccid"`
	Operation   string    `json:"operation"` // stop | resume
	DryRun      bool      `json:"dry_run"`
	Started     bool      `json:"started"` // the request was about to be sent
	WorkOrderID int64     `json:"work_order_id,omitempty"`
	Error       string    `json:"error,omitempty"`
	At          time.Time `json:"at"`
}

// Action returns the record of notifier's action on an event.
func (s *Store) Action(notifier, eventID string) (ActionRecord, bool, error) {
	var r ActionRecord
	found := false
	err := s.db.View(func(tx *bolt.Tx) error {
		b := actionBucket(tx, notifier)
		if b == nil {
			return nil
		}
		v := b.Get([]byte(eventID))
		if v == nil {
			return nil
		}
		found = true
		return json.Unmarshal(v, &r)
	})
	return r, found, err
}

// RecordAction writes an action record and, in the same transaction, the
// announcement of it to the outbox when there is one.
func (s *Store) RecordAction(r ActionRecord, announce *event.Event) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		root, err := tx.CreateBucketIfNotExists(bucketActions)
		if err != nil {
			return err
		}
		b, err := root.CreateBucketIfNotExists([]byte(r.Notifier))
		if err != nil {
			return err
		}
		v, err := json.Marshal(r)
		if err != nil {
			return err
		}
		if err := b.Put([]byte(r.EventID), v); err != nil {
			return err
		}
		if announce != nil {
			return (&Tx{tx: tx, s: s}).AppendOutbox([]event.Event{*announce})
		}
		return nil
	})
}

// Actions lists a notifier's action records since a time, oldest first; an
// empty notifier lists every notifier's.
func (s *Store) Actions(notifier string, since time.Time) ([]ActionRecord, error) {
	var out []ActionRecord
	err := s.db.View(func(tx *bolt.Tx) error {
		root := tx.Bucket(bucketActions)
		if root == nil {
			return nil
		}
		return root.ForEachBucket(func(name []byte) error {
			if notifier != "" && string(name) != notifier {
				return nil
			}
			return root.Bucket(name).ForEach(func(k, v []byte) error {
				var r ActionRecord
				if err := json.Unmarshal(v, &r); err != nil {
					return fmt.Errorf("store: action %s: %w", k, err)
				}
				if !r.At.Before(since) {
					out = append(out, r)
				}
				return nil
			})
		})
	})
	sort.Slice(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	return out, err
}

func actionBucket(tx *bolt.Tx, notifier string) *bolt.Bucket {
	root := tx.Bucket(bucketActions)
	if root == nil {
		return nil
	}
	return root.Bucket([]byte(notifier))
}

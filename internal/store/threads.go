package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// A notifier that posts messages it may edit later (Slack) keeps three
// things here, each under the notifier's name:
//
//   - threads: event id → where the event was posted (at, channel, ts). It
//     makes retries idempotent: a part already posted is not posted again.
//   - thread_alerts: alert → the messages that announced it (its firing,
//     reminders), so that its resolution finds its thread whatever ids the
//     events have.
//   - thread_messages: channel, ts → the notifier's own record of what the
//     message showed (opaque bytes), so that it can be re-rendered and edited
//     in place when its alerts resolve.
//
// All of it is bounded by PruneThreads.
var (
	bucketThreads        = []byte("threads")
	bucketThreadAlerts   = []byte("thread_alerts")
	bucketThreadMessages = []byte("thread_messages")
)

// OpenThreadGrace is how much longer than finished ones PruneThreads keeps
// the record of a message that still has alerts firing, so that an alert
// firing for a long time still finds its thread when it resolves.
const OpenThreadGrace = 60 * 24 * time.Hour

// MessageRef is where a message was posted.
type MessageRef struct {
	Channel, TS string
}

func (r MessageRef) key() []byte { return []byte(r.Channel + "\x00" + r.TS) }

// SaveThread remembers where a notifier posted an event (a Slack channel and
// message ts).
func (s *Store) SaveThread(notifier string, at time.Time, eventID, channel, ts string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b, err := notifierBucket(tx, bucketThreads, notifier)
		if err != nil {
			return err
		}
		return putThread(b, at, eventID, channel, ts)
	})
}

func putThread(b *bolt.Bucket, at time.Time, eventID, channel, ts string) error {
	v := binary.BigEndian.AppendUint64(nil, uint64(at.UnixNano()))
	v = append(v, channel+"\x00"+ts...)
	return b.Put([]byte(eventID), v)
}

func notifierBucket(tx *bolt.Tx, root []byte, notifier string) (*bolt.Bucket, error) {
	r, err := tx.CreateBucketIfNotExists(root)
	if err != nil {
		return nil, err
	}
	return r.CreateBucketIfNotExists([]byte(notifier))
}

func readBucket(tx *bolt.Tx, root []byte, notifier string) *bolt.Bucket {
	r := tx.Bucket(root)
	if r == nil {
		return nil
	}
	return r.Bucket([]byte(notifier))
}

// Thread returns where a notifier posted an event.
func (s *Store) Thread(notifier, eventID string) (channel, ts string, ok bool, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		b := readBucket(tx, bucketThreads, notifier)
		if b == nil {
			return nil
		}
		v := b.Get([]byte(eventID))
		if v == nil {
			return nil
		}
		if len(v) < 8 {
			return fmt.Errorf("store: thread %s: corrupt record", eventID)
		}
		channel, ts, ok = strings.Cut(string(v[8:]), "\x00")
		return nil
	})
	return channel, ts, ok, err
}

// Posted is one message a notifier posted.
type Posted struct {
	MessageRef
	At       time.Time
	EventIDs []string // every event it carried (see Thread)
	Alerts   []string // the alerts it announced (see PostedFor)
	Data     []byte   // the notifier's record of what it showed
	Finished bool     // nothing about it will change any more
}

// SavePosted records a posted message in one transaction: where each of its
// events went, the alerts it announced, and its record.
func (s *Store) SavePosted(notifier string, p Posted) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		threads, err := notifierBucket(tx, bucketThreads, notifier)
		if err != nil {
			return err
		}
		for _, id := range p.EventIDs {
			if err := putThread(threads, p.At, id, p.Channel, p.TS); err != nil {
				return err
			}
		}
		if len(p.Alerts) > 0 || p.Data != nil {
			msgs, err := notifierBucket(tx, bucketThreadMessages, notifier)
			if err != nil {
				return err
			}
			if err := msgs.Put(p.key(), messageValue(p.At, p.Finished, p.Data)); err != nil {
				return err
			}
		}
		if len(p.Alerts) == 0 {
			return nil
		}
		alerts, err := notifierBucket(tx, bucketThreadAlerts, notifier)
		if err != nil {
			return err
		}
		ref := p.key()
		for _, a := range p.Alerts {
			refs := alerts.Get([]byte(a))
			if containsRef(refs, ref) {
				continue
			}
			v := make([]byte, 0, len(refs)+len(ref)+1)
			v = append(append(v, refs...), ref...)
			if err := alerts.Put([]byte(a), append(v, '\n')); err != nil {
				return err
			}
		}
		return nil
	})
}

// refs are "channel\x00ts\n" one after another.
func containsRef(refs, ref []byte) bool {
	for line := range bytes.SplitSeq(refs, []byte("\n")) {
		if bytes.Equal(line, ref) {
			return true
		}
	}
	return false
}

func messageValue(at time.Time, finished bool, data []byte) []byte {
	v := binary.BigEndian.AppendUint64(make([]byte, 0, 9+len(data)), uint64(at.UnixNano()))
	f := byte(0)
	if finished {
		f = 1
	}
	return append(append(v, f), data...)
}

// PostedFor returns the messages that announced an alert, oldest first.
func (s *Store) PostedFor(notifier, alert string) ([]MessageRef, error) {
	var out []MessageRef
	err := s.db.View(func(tx *bolt.Tx) error {
		b := readBucket(tx, bucketThreadAlerts, notifier)
		if b == nil {
			return nil
		}
		for line := range bytes.SplitSeq(b.Get([]byte(alert)), []byte("\n")) {
			if c, ts, ok := strings.Cut(string(line), "\x00"); ok {
				out = append(out, MessageRef{Channel: c, TS: ts})
			}
		}
		return nil
	})
	return out, err
}

// Message returns the record of a posted message.
func (s *Store) Message(notifier string, ref MessageRef) (data []byte, ok bool, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		b := readBucket(tx, bucketThreadMessages, notifier)
		if b == nil {
			return nil
		}
		v := b.Get(ref.key())
		if v == nil {
			return nil
		}
		if len(v) < 9 {
			return fmt.Errorf("store: message %s %s: corrupt record", ref.Channel, ref.TS)
		}
		data, ok = bytes.Clone(v[9:]), true
		return nil
	})
	return data, ok, err
}

// UpdateMessage changes the record of a posted message in one transaction:
// fn gets the record (ok false when there is none) and returns the new one
// and whether the message is finished. A nil data from fn leaves the record
// as it was. at is the time of the change, which PruneThreads ages it from.
func (s *Store) UpdateMessage(notifier string, ref MessageRef, at time.Time, fn func(data []byte, ok bool) (newData []byte, finished bool, err error)) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b, err := notifierBucket(tx, bucketThreadMessages, notifier)
		if err != nil {
			return err
		}
		var old []byte
		v := b.Get(ref.key())
		if v != nil {
			if len(v) < 9 {
				return fmt.Errorf("store: message %s %s: corrupt record", ref.Channel, ref.TS)
			}
			old = bytes.Clone(v[9:])
		}
		data, finished, err := fn(old, v != nil)
		if err != nil || data == nil {
			return err
		}
		return b.Put(ref.key(), messageValue(at, finished, data))
	})
}

// PruneThreads keeps the threads bounded, as PruneDelivered does the
// delivery log: it drops where events were posted before `before` (a retry
// that late no longer happens), the records of finished messages last
// changed before it, the records of messages that still have alerts firing
// last changed before before-OpenThreadGrace, and the alerts whose messages
// are all gone. It returns how many entries it dropped.
func (s *Store) PruneThreads(before time.Time) (int, error) {
	n := 0
	cutoff, openCutoff := before.UnixNano(), before.Add(-OpenThreadGrace).UnixNano()
	err := s.db.Update(func(tx *bolt.Tx) error {
		dropWhere := func(b *bolt.Bucket, drop func(k, v []byte) bool) error {
			d, err := deleteWhere(b, drop)
			n += d
			return err
		}
		if root := tx.Bucket(bucketThreads); root != nil {
			err := root.ForEachBucket(func(name []byte) error {
				return dropWhere(root.Bucket(name), func(_, v []byte) bool {
					return len(v) >= 8 && int64(binary.BigEndian.Uint64(v)) < cutoff
				})
			})
			if err != nil {
				return err
			}
		}
		msgs := tx.Bucket(bucketThreadMessages)
		if msgs != nil {
			err := msgs.ForEachBucket(func(name []byte) error {
				return dropWhere(msgs.Bucket(name), func(_, v []byte) bool {
					if len(v) < 9 {
						return true
					}
					at := int64(binary.BigEndian.Uint64(v))
					return at < openCutoff || (v[8] == 1 && at < cutoff)
				})
			})
			if err != nil {
				return err
			}
		}
		alerts := tx.Bucket(bucketThreadAlerts)
		if alerts == nil {
			return nil
		}
		return alerts.ForEachBucket(func(name []byte) error {
			var m *bolt.Bucket
			if msgs != nil {
				m = msgs.Bucket(name)
			}
			b := alerts.Bucket(name)
			kept := map[string][]byte{}
			err := dropWhere(b, func(k, v []byte) bool {
				var refs []byte
				for line := range bytes.SplitSeq(v, []byte("\n")) {
					if len(line) > 0 && m != nil && m.Get(line) != nil {
						refs = append(append(refs, line...), '\n')
					}
				}
				if len(refs) > 0 && len(refs) != len(v) {
					kept[string(k)] = refs
				}
				return len(refs) == 0
			})
			if err != nil {
				return err
			}
			for k, refs := range kept {
				if err := b.Put([]byte(k), refs); err != nil {
					return err
				}
			}
			return nil
		})
	})
	return n, err
}

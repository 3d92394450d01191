package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/simwatch/simwatch/internal/event"
)

// The history keeps events in time order; a card's page wants its few
// events among a fleet's thousands. bucketEventIndex indexes them: key
// provider, entity kind and entity id (each ended by 0), then the event's
// history key; no value. It is written with the event and deleted with its
// bytes (dropEvent). keyIndexFrom records the first history key indexed, so
// that events recorded before the index existed are still found, by a scan.
var (
	bucketEventIndex = []byte("event_index")
	keyIndexFrom     = []byte("event_index_from")
)

// entityPrefix is the index prefix of one entity's events.
func entityPrefix(provider, entity, id string) []byte {
	b := make([]byte, 0, len(provider)+len(entity)+len(id)+3)
	b = append(append(b, provider...), 0)
	b = append(append(b, entity...), 0)
	return append(append(b, id...), 0)
}

// indexEvents indexes events at their history keys.
func indexEvents(tx *bolt.Tx, events []event.Event, hkeys [][]byte) error {
	if len(events) == 0 {
		return nil
	}
	idx, err := tx.CreateBucketIfNotExists(bucketEventIndex)
	if err != nil {
		return err
	}
	if idx.Get(keyIndexFrom) == nil {
		if err := idx.Put(keyIndexFrom, bytes.Clone(hkeys[0])); err != nil {
			return err
		}
	}
	for i := range events {
		e := &events[i]
		if err := idx.Put(append(entityPrefix(e.Provider, e.Entity, e.EntityID), hkeys[i]...), nil); err != nil {
			return err
		}
	}
	return nil
}

// dropEvent deletes an event's bytes from the history, and its index entry.
func dropEvent(tx *bolt.Tx, hkey []byte) error {
	b := tx.Bucket(bucketEvents)
	if b == nil {
		return nil
	}
	if idx := tx.Bucket(bucketEventIndex); idx != nil {
		if v := b.Get(hkey); v != nil {
			var who struct {
				Provider string `json:"provider"`
				Entity   string `json:"entity"`
				EntityID string `json:"entity_id"`
			}
			if json.Unmarshal(v, &who) == nil {
				if err := idx.Delete(append(entityPrefix(who.Provider, who.Entity, who.EntityID), hkey...)); err != nil {
					return err
				}
			}
		}
	}
	return b.Delete(hkey)
}

// indexed walks one entity's index entries from the newest down, below
// bound (nil: from the newest) and not below the index's start, calling fn
// with each history key until it returns false. It reports the index's
// start, the first history key it covers (nil when there is no index).
func indexed(tx *bolt.Tx, provider, entity, id string, bound []byte, fn func(hkey []byte) bool) []byte {
	idx := tx.Bucket(bucketEventIndex)
	if idx == nil {
		return nil
	}
	from := idx.Get(keyIndexFrom)
	prefix := entityPrefix(provider, entity, id)
	c := idx.Cursor()
	var k []byte
	if bound == nil {
		// The first key past the prefix, then one back.
		end := append(bytes.Clone(prefix[:len(prefix)-1]), 1)
		if k, _ = c.Seek(end); k == nil {
			k, _ = c.Last()
		} else {
			k, _ = c.Prev()
		}
	} else if k, _ = c.Seek(append(bytes.Clone(prefix), bound...)); k == nil {
		k, _ = c.Last()
	} else {
		k, _ = c.Prev()
	}
	for ; k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Prev() {
		if len(k) != len(prefix)+hkeyLen {
			continue
		}
		// Below the index's start the history is scanned whole, events
		// indexed there included (one observed earlier than the first
		// indexed, committed later): the index gives only what is above,
		// so that both read in one order and nothing comes twice.
		if bytes.Compare(k[len(prefix):], from) < 0 {
			break
		}
		if !fn(k[len(prefix):]) {
			break
		}
	}
	return from
}

// entityKinds are the kinds of entity events are about.
var entityKinds = []string{"card", "pool", "rule", "provider"}

// entityKeys are the history keys of an entity's events below bound and
// not before since, newest first, from the index: of one provider and kind
// when given, else of every provider and kind with that id. from is the
// first key the index covers (nil: none): older events need a scan.
func entityKeys(tx *bolt.Tx, provider, entity, id string, bound []byte, since uint64) (keys [][]byte, from []byte) {
	providers := []string{provider}
	if provider == "" {
		providers = nil
		if root := tx.Bucket(bucketProviders); root != nil {
			_ = root.ForEachBucket(func(name []byte) error { providers = append(providers, string(name)); return nil })
		}
	}
	kinds := []string{entity}
	if entity == "" {
		kinds = entityKinds
	}
	for _, p := range providers {
		for _, kind := range kinds {
			from = indexed(tx, p, kind, id, bound, func(k []byte) bool {
				if binary.BigEndian.Uint64(k[:8]) < since {
					return false
				}
				keys = append(keys, bytes.Clone(k))
				return true
			})
		}
	}
	slices.SortFunc(keys, func(a, b []byte) int { return bytes.Compare(b, a) })
	return keys, from
}

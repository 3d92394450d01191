package store

import (
	"encoding/binary"
	"errors"

	bolt "go.etcd.io/bbolt"
)

// Each event a cycle writes is encoded once and its bytes are stored once,
// in the history (bucketEvents, key: observed time, history seq). The
// outbox, the ledger and the firing bucket hold references to that key, and
// bucketEventRefs records who holds it, so the bytes stay while anyone
// still needs them: past the history's retention while the outbox has not
// published the event, a notifier still owes it, or it is its alert's
// firing event; and they go with the last holder.
//
// A stored value is a reference when it starts with refMark; a value
// written by an earlier version (or an event adopted from the bus) is the
// event's JSON itself, which always starts with '{'. Readers take both.
var bucketEventRefs = []byte("event_refs") // history key → holders

// Holders of an event's bytes.
const (
	refHistory byte = 1 << iota
	refOutbox
	refLedger
	refFiring
)

// refMark starts a stored value that refers to an event in the history.
const refMark = 0x01

// hkeyLen is the length of a history key: observed time, then seq.
const hkeyLen = 16

// historyKey is the history key of an event observed at nanos with seq.
func historyKey(nanos int64, seq uint64) []byte {
	k := binary.BigEndian.AppendUint64(make([]byte, 0, hkeyLen), uint64(nanos))
	return binary.BigEndian.AppendUint64(k, seq)
}

// refValue is a reference to the event at hkey, with extra appended.
func refValue(hkey []byte, extra int) []byte {
	v := make([]byte, 0, 1+hkeyLen+extra)
	return append(append(v, refMark), hkey...)
}

// refOf returns the history key a stored value refers to, or nil when the
// value is an event's bytes itself (old format).
func refOf(v []byte) []byte {
	if len(v) >= 1+hkeyLen && v[0] == refMark {
		return v[1 : 1+hkeyLen]
	}
	return nil
}

// errMissingData says a reference points at bytes no longer stored (a
// damaged or salvaged store).
var errMissingData = errors.New("event bytes missing from the history")

// eventData returns an event's bytes from a stored value: those it refers
// to, or the value itself. The bytes are valid for the transaction only.
func eventData(tx *bolt.Tx, v []byte) ([]byte, error) {
	hkey := refOf(v)
	if hkey == nil {
		return v, nil
	}
	if b := tx.Bucket(bucketEvents); b != nil {
		if data := b.Get(hkey); data != nil {
			return data, nil
		}
	}
	return nil, errMissingData
}

// releaseRef says holder no longer needs the event a stored value refers
// to; the bytes go when no one holds them. An old-format value refers to
// nothing.
func releaseRef(tx *bolt.Tx, v []byte, holder byte) error {
	hkey := refOf(v)
	if hkey == nil {
		return nil
	}
	return release(tx, hkey, holder)
}

func release(tx *bolt.Tx, hkey []byte, holder byte) error {
	refs := tx.Bucket(bucketEventRefs)
	if refs == nil {
		return nil
	}
	hkey = append([]byte(nil), hkey...) // v may be a page of a bucket about to change
	cur := refs.Get(hkey)
	if len(cur) != 1 {
		return nil // not written by this version: the history alone holds it
	}
	left := cur[0] &^ holder
	if left == cur[0] {
		return nil
	}
	if left != 0 {
		return refs.Put(hkey, []byte{left})
	}
	if err := refs.Delete(hkey); err != nil {
		return err
	}
	return dropEvent(tx, hkey)
}

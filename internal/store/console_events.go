package store

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/simwatch/simwatch/internal/event"
)

// EventQuery pages the event history for the console: an EventFilter with
// an upper time bound and a cursor.
type EventQuery struct {
	EventFilter
	// Until keeps events observed at or before it; zero keeps all.
	Until time.Time
	// Before is EventPage.Next of the previous page: only older events.
	Before string
	// Entity keeps events about one kind of entity (card, pool): a card
	// and a pool may share an id.
	Entity string
}

// EventPage is one page of the history, newest first.
type EventPage struct {
	Events []event.Event
	// Next is the cursor of the next, older page ("" when the scan reached
	// the oldest event). A page that ends exactly at the last match still
	// has one; the page after it is then empty.
	Next string
	// Cursors are each event's own cursor: a caller that read more than a
	// page pages on from any of them.
	Cursors []string
	// Partial is set when the page stopped at maxScan events read, short
	// of a full page: Next then continues the search further back.
	Partial bool
	// Reached is the observation time of the oldest event read.
	Reached time.Time
}

// maxScan bounds how many stored events one page reads: a search that
// matches little must not hold a read transaction (and the poller's next
// growth of the file) for seconds; it answers with what it found and a
// cursor to search on from.
var maxScan = 200_000

// ErrBadCursor says a cursor is not one EventsPage gave.
var ErrBadCursor = fmt.Errorf("store: not an event cursor")

// EventsPage lists events like Events, from an upper bound down. The scan
// decodes only events that may match: a filter on a plain value (an id, a
// rule name) is first looked for in the stored bytes, so a card's few
// events among a fleet's thousands cost a byte search each, not a decode.
func (s *Store) EventsPage(q EventQuery) (EventPage, error) {
	var page EventPage
	if q.Limit <= 0 {
		q.Limit = 100
	}
	var bound []byte // exclusive upper bound of the history key
	if q.Before != "" {
		k, err := hex.DecodeString(q.Before)
		if err != nil || len(k) != hkeyLen {
			return page, ErrBadCursor
		}
		bound = k
	}
	if !q.Until.IsZero() {
		k := historyKey(q.Until.UnixNano()+1, 0)
		if bound == nil || bytes.Compare(k, bound) < 0 {
			bound = k
		}
	}
	since := uint64(0)
	if !q.Since.IsZero() {
		since = uint64(q.Since.UnixNano())
	}
	needles := q.needles()
	if q.Entity != "" && plainJSON(q.Entity) {
		needles = append(needles, []byte(`"entity":"`+q.Entity+`"`))
	}
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketEvents)
		if b == nil {
			return nil
		}
		refs := tx.Bucket(bucketEventRefs)
		// add takes one stored event if it matches; full says the page is.
		add := func(k, v []byte) (full bool, err error) {
			if refs != nil && pastRetention(refs.Get(k)) {
				return false, nil
			}
			if !mayMatch(v, needles) {
				return false, nil
			}
			var e event.Event
			if err := json.Unmarshal(v, &e); err != nil {
				return false, err
			}
			if !q.match(&e) || (q.Entity != "" && e.Entity != q.Entity) {
				return false, nil
			}
			mutesOf(tx, &e)
			page.Events = append(page.Events, e)
			page.Cursors = append(page.Cursors, hex.EncodeToString(k))
			if len(page.Events) == q.Limit {
				page.Next = page.Cursors[len(page.Cursors)-1]
				return true, nil
			}
			return false, nil
		}
		// One entity's events come from the index; those recorded before
		// it existed, from the scan below it.
		if q.EntityID != "" {
			keys, from := entityKeys(tx, q.Provider, q.Entity, q.EntityID, bound, since)
			for _, k := range keys {
				v := b.Get(k)
				if v == nil {
					continue
				}
				full, err := add(k, v)
				if err != nil || full {
					return err
				}
			}
			if from != nil && (bound == nil || bytes.Compare(from, bound) < 0) {
				bound = from
			}
		}
		c := b.Cursor()
		var k, v, prevKey []byte
		if bound == nil {
			k, v = c.Last()
		} else if k, v = c.Seek(bound); k == nil {
			k, v = c.Last()
		} else {
			k, v = c.Prev()
		}
		scanned := 0
		for ; k != nil; k, v = c.Prev() {
			if len(k) < 8 || binary.BigEndian.Uint64(k[:8]) < since {
				break
			}
			if scanned++; scanned > maxScan {
				page.Partial, page.Next = true, hex.EncodeToString(prevKey)
				return nil
			}
			prevKey = append(prevKey[:0], k...)
			page.Reached = time.Unix(0, int64(binary.BigEndian.Uint64(k[:8]))).UTC()
			full, err := add(k, v)
			if err != nil || full {
				return err
			}
		}
		return nil
	})
	return page, err
}

// needles are the bytes an event matching the filter must contain, as
// json.Marshal writes them. A value json.Marshal would escape is left to
// the decode (its bytes would not be its own).
func (f EventFilter) needles() [][]byte {
	var out [][]byte
	for _, kv := range [][2]string{{"entity_id", f.EntityID}, {"rule", f.Rule}, {"iccid", f.ICCID}, {"provider", f.Provider}, {"kind", f.Kind}} {
		if kv[1] == "" {
			continue
		}
		// As json.Marshal wrote it into the event, escapes included, so
		// that no value forces a decode of every event.
		v, _ := json.Marshal(kv[1])
		out = append(out, append([]byte(`"`+kv[0]+`":`), v...))
	}
	return out
}

func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// compactMark is in every event json.Marshal wrote; an event stored in
// another form (indented, by another writer) is always decoded.
var compactMark = []byte(`"kind":"`)

func mayMatch(v []byte, needles [][]byte) bool {
	if len(needles) == 0 || !bytes.Contains(v, compactMark) {
		return true
	}
	for _, n := range needles {
		if !bytes.Contains(v, n) {
			return false
		}
	}
	return true
}

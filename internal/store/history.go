package store

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/simwatch/simwatch/internal/fleet"
)

var bucketHistory = []byte("history")

// HistoryRetention is how many days of daily usage are kept.
const HistoryRetention = 62

// History keys: cards and pools share the bucket.
func CardHistoryKey(id string) string { return "c:" + id }

// PoolHistoryKey is the history key of a pool.
func PoolHistoryKey(id string) string { return "p:" + id }

// History returns an entity's daily usage; empty when none is stored.
func (p *ProviderTx) History(key string) (fleet.History, error) {
	var h fleet.History
	b := p.sub(bucketHistory)
	if b == nil {
		return h, nil
	}
	v := b.Get([]byte(key))
	if v == nil {
		return h, nil
	}
	if err := decodeHistory(v, &h); err != nil {
		return h, fmt.Errorf("store: %s history %s: %w", p.name, key, err)
	}
	return h, nil
}

// HistorySource is where an entity's stored history came from
// (fleet.HistoryDaily, fleet.HistorySnapshot), or "" when none is stored.
// It reads one byte, not the history: the poller asks it of every card.
func (p *ProviderTx) HistorySource(key string) string {
	b := p.sub(bucketHistory)
	if b == nil {
		return ""
	}
	v := b.Get([]byte(key))
	if len(v) < 2 || v[1] == 0 { // source byte, then the count of days
		return ""
	}
	switch v[0] {
	case 1:
		return fleet.HistoryDaily
	case 2:
		return fleet.HistorySnapshot
	}
	return ""
}

// PutHistory writes an entity's daily usage, keeping HistoryRetention days
// before today.
func (p *ProviderTx) PutHistory(key string, h fleet.History, today int32) error {
	b, err := p.b.CreateBucketIfNotExists(bucketHistory)
	if err != nil {
		return err
	}
	h.Trim(today - HistoryRetention)
	return b.Put([]byte(key), encodeHistory(h))
}

// encodeHistory writes source, count, then (day delta, MB as float32 bits):
// about 6 bytes a day.
func encodeHistory(h fleet.History) []byte {
	out := make([]byte, 0, 8+len(h.Days)*7)
	out = append(out, historySource(h.Source))
	out = binary.AppendUvarint(out, uint64(len(h.Days)))
	var prev int32
	for i, d := range h.Days {
		if i == 0 {
			out = binary.AppendVarint(out, int64(d.Day))
		} else {
			out = binary.AppendUvarint(out, uint64(d.Day-prev))
		}
		prev = d.Day
		out = binary.LittleEndian.AppendUint32(out, math.Float32bits(float32(d.MB)))
	}
	return out
}

func historySource(s string) byte {
	switch s {
	case fleet.HistoryDaily:
		return 1
	case fleet.HistorySnapshot:
		return 2
	}
	return 0
}

func decodeHistory(b []byte, h *fleet.History) error {
	if len(b) < 1 {
		return errCorrupt
	}
	switch b[0] {
	case 1:
		h.Source = fleet.HistoryDaily
	case 2:
		h.Source = fleet.HistorySnapshot
	}
	d := decoder{b: b[1:]}
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		return errCorrupt
	}
	h.Days = make([]fleet.DayUsage, 0, n)
	var day int32
	for i := uint64(0); i < n && !d.err; i++ {
		if i == 0 {
			day = int32(d.varint())
		} else {
			day += int32(d.uvarint())
		}
		if len(d.b) < 4 {
			return errCorrupt
		}
		mb := float64(math.Float32frombits(binary.LittleEndian.Uint32(d.b)))
		d.b = d.b[4:]
		h.Days = append(h.Days, fleet.DayUsage{Day: day, MB: math.Round(mb*1000) / 1000})
	}
	if d.err {
		return errCorrupt
	}
	return nil
}

var bucketFirstIMEI = []byte("first_imei")

// FirstIMEI returns the first IMEI ever seen for a card.
func (p *ProviderTx) FirstIMEI(cardID string) string {
	b := p.sub(bucketFirstIMEI)
	if b == nil {
		return ""
	}
	return string(b.Get([]byte(cardID)))
}

// NoteIMEI records imei as the card's first IMEI unless it has one already.
func (p *ProviderTx) NoteIMEI(cardID, imei string) error {
	if imei == "" || p.FirstIMEI(cardID) != "" {
		return nil
	}
	b, err := p.b.CreateBucketIfNotExists(bucketFirstIMEI)
	if err != nil {
		return err
	}
	return b.Put([]byte(cardID), []byte(imei))
}

var bucketMissing = []byte("missing")

// Missing returns the entities (rules.EntityKey) absent from the last
// complete listing and not yet removed.
func (p *ProviderTx) Missing() (map[string]bool, error) {
	out := map[string]bool{}
	b := p.sub(bucketMissing)
	if b == nil {
		return out, nil
	}
	err := b.ForEach(func(k, _ []byte) error { out[string(k)] = true; return nil })
	return out, err
}

// PutMissing marks an entity absent from a complete listing, or clears the mark.
func (p *ProviderTx) PutMissing(key string, missing bool) error {
	b, err := p.b.CreateBucketIfNotExists(bucketMissing)
	if err != nil {
		return err
	}
	if !missing {
		return b.Delete([]byte(key))
	}
	return b.Put([]byte(key), []byte{1})
}

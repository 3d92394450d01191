package store

import (
	"fmt"

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
	if err := fleet.DecodeHistory(v, &h); err != nil {
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
	v := fleet.EncodeHistory(h)
	p.rec.put(p.path(bucketHistory), []byte(key), v)
	return b.Put([]byte(key), v)
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
	p.rec.put(p.path(bucketFirstIMEI), []byte(cardID), []byte(imei))
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
		p.rec.del(p.path(bucketMissing), []byte(key))
		return b.Delete([]byte(key))
	}
	p.rec.put(p.path(bucketMissing), []byte(key), []byte{1})
	return b.Put([]byte(key), []byte{1})
}

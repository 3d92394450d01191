package store

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/simwatch/simwatch/internal/fleet"
)

// PoolMembers returns up to limit cards whose pool_id is poolID, in id
// order after the card id after, and the id to continue after ("" when the
// walk reached the last card).
//
// No index of members is kept: the walk reads every card's stored bytes
// after `after`, but decodes only those that contain the pool id as an
// encoded string (a length, then the bytes), so a page costs one byte
// search per card of the fleet, not a decode.
func (p *ProviderTx) PoolMembers(poolID, after string, limit int) (cards []fleet.Card, next string, err error) {
	b := p.sub(bucketCards)
	if b == nil || poolID == "" {
		return nil, "", nil
	}
	if limit <= 0 {
		limit = 50
	}
	needle := binary.AppendUvarint(nil, uint64(len(poolID)))
	needle = append(needle, poolID...)
	c := b.Cursor()
	k, v := c.First()
	if after != "" {
		k, v = c.Seek([]byte(after))
		if k != nil && string(k) == after {
			k, v = c.Next()
		}
	}
	for ; k != nil; k, v = c.Next() {
		if !bytes.Contains(v, needle) {
			continue
		}
		card, err := DecodeCard(v)
		if err != nil {
			return nil, "", fmt.Errorf("store: %s card %s: %w", p.name, k, err)
		}
		if card.PoolID != poolID {
			continue
		}
		cards = append(cards, card)
		if len(cards) == limit {
			return cards, string(k), nil
		}
	}
	return cards, "", nil
}

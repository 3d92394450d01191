package store

import (
	"encoding/binary"

	"github.com/simwatch/simwatch/internal/fleet"
)

// StatusUnknown is the status CardStatusCounts counts a card under when its
// status is not known (the provider left it out or sent a code simwatch does
// not know).
const StatusUnknown = "unknown"

// CardStatusCounts counts the provider's stored cards by normalised status
// (fleet.StatusActive … and StatusUnknown), for the console's overview.
//
// It walks the card snapshot but decodes only each card's status: the
// status is the eighth string of the compact encoding (fleet.EncodeCard),
// so the seven before it are skipped by their lengths, without allocating.
// A record that does not parse counts as unknown rather than failing the
// page: the poller, not the overview, is where a bad record is dealt with.
func (p *ProviderTx) CardStatusCounts() (map[string]int, error) {
	out := map[string]int{}
	b := p.sub(bucketCards)
	if b == nil {
		return out, nil
	}
	known := map[string]string{} // the status bytes seen → their name, so map keys are not allocated per card
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		st, ok := peekStatus(v)
		if !ok || len(st) == 0 {
			out[StatusUnknown]++
			continue
		}
		name, seen := known[string(st)] // no allocation: the compiler looks up []byte keys in place
		if !seen {
			name = normalStatus(string(st))
			known[string(st)] = name
		}
		out[name]++
	}
	return out, nil
}

// normalStatus maps a stored status to one the overview shows: a version 1
// record's "unknown", or anything else unexpected, is unknown.
func normalStatus(s string) string {
	switch s {
	case fleet.StatusActive, fleet.StatusSuspended, fleet.StatusInactive, fleet.StatusTest, fleet.StatusTerminated:
		return s
	}
	return StatusUnknown
}

// peekStatus returns the status bytes of a card encoded by fleet.EncodeCard
// (either codec version: both start with the same eight strings).
func peekStatus(v []byte) ([]byte, bool) {
	if len(v) == 0 || (v[0] != 1 && v[0] != 2) {
		return nil, false
	}
	v = v[1:]
	for i := 0; ; i++ {
		n, w := binary.Uvarint(v)
		if w <= 0 || n > uint64(len(v)-w) {
			return nil, false
		}
		if i == 7 {
			return v[w : w+int(n)], true
		}
		v = v[w+int(n):]
	}
}

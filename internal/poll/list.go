package poll

import (
	"context"
	"fmt"

	"github.com/simwatch/simwatch/internal/fleet"
)

// Lister is a provider account that lists its fleet with a fingerprint of
// each card's record, decoding only the cards whose fingerprint known does
// not recognise (see fleet.Listing). The listing is complete or an error,
// as Source's.
type Lister interface {
	List(ctx context.Context, known fleet.Known) (fleet.Listing, error)
	// FingerprintKind names how List makes fingerprints; it changes when
	// they would no longer compare with those recorded before.
	FingerprintKind() string
}

// kindNormalised is the fingerprint of a card's normalised encoding, what
// a Source that only offers Fetch is diffed by.
const kindNormalised = "normalised-v2"

// list fetches a listing from the Lister, or from Source.Fetch when there is
// none, with the fingerprint kind it is made of.
func (p *Poller) list(ctx context.Context) (fleet.Listing, string, error) {
	if p.o.Lister != nil {
		kind := p.o.Lister.FingerprintKind()
		l, err := p.o.Lister.List(ctx, p.known(kind))
		return l, kind, err
	}
	snap, err := p.o.Source.Fetch(ctx)
	if err != nil {
		return fleet.Listing{}, "", err
	}
	l, err := snapshotListing(snap, p.known(kindNormalised))
	return l, kindNormalised, err
}

// known recognises the cards of the committed snapshot, when their
// fingerprints were made the same way.
func (p *Poller) known(kind string) fleet.Known {
	fps := p.cardFP
	if kind != p.fpKind {
		return func(string, uint64) bool { return false }
	}
	return func(id string, fp uint64) bool {
		old, ok := fps[id]
		return ok && old == fp
	}
}

// snapshotListing turns a decoded snapshot into a listing, fingerprinting
// each card's normalised encoding. A card listed twice counts once: the
// provider clients refuse such listings, and a test source must not make
// the diff count one twice.
func snapshotListing(snap fleet.Snapshot, known fleet.Known) (fleet.Listing, error) {
	l := fleet.Listing{Seen: make([]fleet.Seen, 0, len(snap.Cards)), Pools: snap.Pools}
	seen := make(map[string]bool, len(snap.Cards))
	var buf []byte
	for i := range snap.Cards {
		c := &snap.Cards[i]
		if c.ID == "" {
			return fleet.Listing{}, fmt.Errorf("card %d of the listing has no id", i)
		}
		if seen[c.ID] {
			continue
		}
		seen[c.ID] = true
		buf = fleet.EncodeCard(buf[:0], c)
		fp := fleet.Fingerprint(buf)
		l.Seen = append(l.Seen, fleet.Seen{ID: c.ID, FP: fp})
		if !known(c.ID, fp) {
			l.Changed = append(l.Changed, fleet.Record{ID: c.ID, Data: append([]byte(nil), buf...)})
		}
	}
	return l, nil
}

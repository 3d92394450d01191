package gsl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/cespare/xxhash/v2"

	"github.com/simwatch/simwatch/internal/fleet"
	"github.com/simwatch/simwatch/internal/provider"
)

// fingerprintKind names how List fingerprints a card: xxhash64 of the
// record's bytes as the provider sent them. Bump the number whenever
// card() changes what it makes of a record: stored fingerprints then stop
// matching, and every card is decoded again once.
const fingerprintKind = "gsl-record-xxh64-1"

// maxPageSize is the largest limit GET /v1/sim-cards takes.
const maxPageSize = 500

// FingerprintKind names how List fingerprints cards (poll.Lister).
func (c *Client) FingerprintKind() string { return fingerprintKind }

// List lists every card and pool, complete and consistent or not at all, as
// Fetch does; but a card's record is only decoded when known does not
// recognise its fingerprint. A steady fleet's listing is scanned, not
// decoded, and never held whole: what is kept of an unchanged card is its id
// and fingerprint.
func (c *Client) List(ctx context.Context, known fleet.Known) (fleet.Listing, error) {
	decode := func(name string, body []byte) (provider.Page[fleet.Seen], error) {
		return streamCards(name, body, known)
	}
	seen, changed, err := listing(c, "/v1/sim-cards", "card", decode, func(s *fleet.Seen) string { return s.ID }).List(ctx)
	if err != nil {
		return fleet.Listing{}, err
	}
	pools, err := listing(c, "/v1/sim-pools", "pool", decodePools, poolID).All(ctx)
	if err != nil {
		return fleet.Listing{}, err
	}
	return fleet.Listing{Seen: seen, Changed: changed, Pools: pools}, nil
}

// streamCards scans one page of GET /v1/sim-cards (scanCardPage) and
// returns every card as seen, with the records known does not recognise
// decoded, validated and encoded.
func streamCards(name string, body []byte, known fleet.Known) (provider.Page[fleet.Seen], error) {
	sc, err := scanCardPage(body, nil)
	if err == nil && (!sc.counted || !sc.listed) {
		err = errSyntax
	}
	for _, r := range sc.records {
		if err == nil && (!r.hasID || r.id <= 0) {
			err = errSyntax
		}
	}
	if err != nil {
		return provider.Page[fleet.Seen]{}, pageFault(name, body, err)
	}
	// No page holds more than the API's largest limit: a page of a million
	// tiny records is refused before any is decoded.
	if len(sc.records) > maxPageSize {
		return provider.Page[fleet.Seen]{}, fmt.Errorf("sim_cards: %d records, more than any page holds (%d)", len(sc.records), maxPageSize)
	}
	// The page's ids share one string: a million cards are not a million
	// allocations.
	arena := make([]byte, 0, len(sc.records)*11)
	ends := make([]int, len(sc.records))
	for i, r := range sc.records {
		arena = strconv.AppendInt(arena, r.id, 10)
		ends[i] = len(arena)
	}
	ids := string(arena)
	page := provider.Page[fleet.Seen]{Count: sc.count, Items: make([]fleet.Seen, len(sc.records))}
	var enc []byte // the changed records' encodings, one after another
	var offs []int // where each ends in enc
	var dev simDevice
	start := 0
	for i, r := range sc.records {
		id := ids[start:ends[i]]
		start = ends[i]
		raw := body[r.start:r.end]
		fp := xxhash.Sum64(raw)
		page.Items[i] = fleet.Seen{ID: id, FP: fp}
		if known(id, fp) {
			continue
		}
		dev = simDevice{}
		var card fleet.Card
		if err := json.Unmarshal(raw, &dev); err != nil {
			return provider.Page[fleet.Seen]{}, pageFault(name, body, err)
		}
		if err := dev.card(name, &card); err != nil {
			return provider.Page[fleet.Seen]{}, pageFault(name, body, fmt.Errorf("%s: %w", describe(i, r), err))
		}
		if card.ID != id {
			return provider.Page[fleet.Seen]{}, fmt.Errorf("%s: sim_card_id reads as %s and as %s", describe(i, r), id, card.ID)
		}
		enc = fleet.EncodeCard(enc, &card)
		page.Records = append(page.Records, fleet.Record{ID: id})
		offs = append(offs, len(enc))
	}
	from := 0
	for i, end := range offs {
		page.Records[i].Data = enc[from:end:end]
		from = end
	}
	return page, nil
}

// pageFault names what is wrong with a page the scan refused: the full
// decoder says it as it always has (a missing count, a record without an
// id, the offending field), or, should it accept the page, the scan's error
// stands.
func pageFault(name string, body []byte, err error) error {
	if _, derr := decodeCards(name, body); derr != nil {
		return derr
	}
	if errors.Is(err, errCardsTwice) {
		return err
	}
	return fmt.Errorf("sim_cards: %w", err)
}

package gsl

import (
	"errors"
	"fmt"
)

// A page of GET /v1/sim-cards is scanned, not decoded: one pass checks that
// it is well-formed JSON, reads count, limit and offset as encoding/json
// would (keys matched without regard to case, the last of a key twice
// winning; a list given twice is refused), and finds each record of
// sim_cards with its sim_card_id. Only records the poller does not already
// know are decoded (streamCards). Whatever the scan refuses, the full
// decoder is asked to name (pageFault), so that errors read as they always
// did.

// errSyntax is JSON the scanner refuses; the full decoder names the fault.
var errSyntax = errors.New("malformed JSON")

// errCardsTwice is a page with two sim_cards lists.
var errCardsTwice = errors.New("sim_cards given twice")

// span is a record's bytes in the page, and its sim_card_id.
type span struct {
	start, end int
	id         int64
	hasID      bool
}

// cardScan is what a scan found on a page.
type cardScan struct {
	count   int64
	counted bool // count was given and not null
	listed  bool // sim_cards was given (null is an empty page)
	records []span
}

var (
	keyCount    = []byte("count")
	keyLimit    = []byte("limit")
	keyOffset   = []byte("offset")
	keySimCards = []byte("sim_cards")
	keyCardID   = []byte("sim_card_id")
)

// scanCardPage scans a whole page. records is reused between pages.
func scanCardPage(body []byte, records []span) (cardScan, error) {
	s := scanner{b: body}
	out := cardScan{records: records[:0]}
	s.ws()
	if !s.consume('{') {
		return out, errSyntax
	}
	err := s.members(func(key []byte) error {
		switch {
		case foldEq(key, keyCount):
			n, null, err := s.int()
			out.count, out.counted = n, !null
			return err
		case foldEq(key, keyLimit), foldEq(key, keyOffset):
			_, _, err := s.int()
			return err
		case foldEq(key, keySimCards):
			// encoding/json would decode a second list into the first's
			// records, mixing the two: a page that gives its cards twice
			// is refused, not guessed at.
			if out.listed {
				return errCardsTwice
			}
			out.listed = true
			return s.cards(&out.records)
		}
		return s.value()
	})
	if err != nil {
		return out, err
	}
	s.ws()
	if s.i != len(s.b) {
		return out, errSyntax
	}
	return out, nil
}

// cards scans sim_cards: null, or an array of objects, noting each
// record's span and id.
func (s *scanner) cards(out *[]span) error {
	s.ws()
	if s.literal("null") {
		return nil
	}
	if !s.consume('[') {
		return errSyntax
	}
	return s.elements(func() error {
		s.ws()
		rec := span{start: s.i}
		if !s.consume('{') {
			return errSyntax // null or not an object: a record without an id
		}
		err := s.members(func(key []byte) error {
			if foldEq(key, keyCardID) {
				n, null, err := s.int()
				rec.id, rec.hasID = n, !null
				return err
			}
			return s.value()
		})
		rec.end = s.i
		*out = append(*out, rec)
		return err
	})
}

// describe names a record for errors, as decodeCards does.
func describe(i int, r span) string {
	if r.hasID {
		return fmt.Sprintf("sim_cards[%d] (sim_card_id %d)", i, r.id)
	}
	return fmt.Sprintf("sim_cards[%d]", i)
}

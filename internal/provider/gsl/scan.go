package gsl

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// A page of GET /v1/sim-cards is scanned, not decoded: one pass checks that
// it is well-formed JSON, reads count, limit and offset as encoding/json
// would (keys matched without regard to case, the last of a key twice
// winning; a list given twice is refused), and finds each record of sim_cards with its sim_card_id. Only
// records the poller does not already know are decoded (decodeDevice).
// Whatever the scan refuses, the full decoder is asked to name (see
// scanCards), so that errors read as they always did.

// maxDepth bounds nesting as encoding/json does.
const maxDepth = 10000

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

// scanner reads JSON text without building values.
type scanner struct {
	b     []byte
	i     int
	depth int
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

// members scans an object's members after its '{', calling fn with each
// key (unescaped) positioned before the value, which fn must consume.
func (s *scanner) members(fn func(key []byte) error) error {
	if s.depth++; s.depth > maxDepth {
		return errSyntax
	}
	defer func() { s.depth-- }()
	s.ws()
	if s.consume('}') {
		return nil
	}
	for {
		s.ws()
		key, err := s.key()
		if err != nil {
			return err
		}
		s.ws()
		if !s.consume(':') {
			return errSyntax
		}
		if err := fn(key); err != nil {
			return err
		}
		s.ws()
		if s.consume('}') {
			return nil
		}
		if !s.consume(',') {
			return errSyntax
		}
	}
}

// elements scans an array's elements after its '[', calling fn for each.
func (s *scanner) elements(fn func() error) error {
	if s.depth++; s.depth > maxDepth {
		return errSyntax
	}
	defer func() { s.depth-- }()
	s.ws()
	if s.consume(']') {
		return nil
	}
	for {
		if err := fn(); err != nil {
			return err
		}
		s.ws()
		if s.consume(']') {
			return nil
		}
		if !s.consume(',') {
			return errSyntax
		}
	}
}

// value skips one value, checking its syntax.
func (s *scanner) value() error {
	s.ws()
	if s.i >= len(s.b) {
		return errSyntax
	}
	switch c := s.b[s.i]; {
	case c == '{':
		s.i++
		return s.members(func([]byte) error { return s.value() })
	case c == '[':
		s.i++
		return s.elements(s.value)
	case c == '"':
		_, _, err := s.str()
		return err
	case c == '-' || c >= '0' && c <= '9':
		_, err := s.number()
		return err
	case s.literal("true"), s.literal("false"), s.literal("null"):
		return nil
	}
	return errSyntax
}

// int reads a value that encoding/json would decode into an *int64: null,
// or an integer. A number that is not one (1.5, 1e3, out of range) or any
// other type is an error.
func (s *scanner) int() (n int64, null bool, err error) {
	s.ws()
	if s.literal("null") {
		return 0, true, nil
	}
	tok, err := s.number()
	if err != nil {
		return 0, false, err
	}
	n, err = strconv.ParseInt(string(tok), 10, 64)
	if err != nil {
		return 0, false, errSyntax
	}
	return n, false, nil
}

// number scans a JSON number and returns its text.
func (s *scanner) number() ([]byte, error) {
	start := s.i
	s.consume('-')
	switch {
	case s.consume('0'):
	case s.digits() == 0:
		return nil, errSyntax
	}
	if s.consume('.') && s.digits() == 0 {
		return nil, errSyntax
	}
	if s.consume('e') || s.consume('E') {
		if !s.consume('+') {
			s.consume('-')
		}
		if s.digits() == 0 {
			return nil, errSyntax
		}
	}
	return s.b[start:s.i], nil
}

func (s *scanner) digits() int {
	start := s.i
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	return s.i - start
}

// key reads an object key, unescaped when it has escapes.
func (s *scanner) key() ([]byte, error) {
	start, end, err := s.str()
	if err != nil {
		return nil, err
	}
	raw := s.b[start:end]
	if bytes.IndexByte(raw, '\\') < 0 {
		return raw, nil
	}
	return unquote(s.b[start-1 : end+1])
}

// str scans a string and returns the span of its contents (between the
// quotes, escapes as they are).
func (s *scanner) str() (start, end int, err error) {
	if !s.consume('"') {
		return 0, 0, errSyntax
	}
	start = s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			end = s.i
			s.i++
			return start, end, nil
		case c == '\\':
			if s.i+1 >= len(s.b) {
				return 0, 0, errSyntax
			}
			switch s.b[s.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i += 2
			case 'u':
				if s.i+6 > len(s.b) || !isHex4(s.b[s.i+2:s.i+6]) {
					return 0, 0, errSyntax
				}
				s.i += 6
			default:
				return 0, 0, errSyntax
			}
		case c < 0x20:
			return 0, 0, errSyntax
		default:
			s.i++
		}
	}
	return 0, 0, errSyntax
}

func isHex4(b []byte) bool {
	for _, c := range b {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) consume(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

func (s *scanner) literal(lit string) bool {
	if len(s.b)-s.i >= len(lit) && string(s.b[s.i:s.i+len(lit)]) == lit {
		s.i += len(lit)
		return true
	}
	return false
}

// foldEq matches a key to a field name as encoding/json does: exactly, or
// equal under simple Unicode case folding.
func foldEq(key, name []byte) bool {
	if len(key) == len(name) && string(key) == string(name) {
		return true
	}
	if len(key) < len(name) { // name is ASCII: a fold of it is no shorter
		return false
	}
	return bytes.EqualFold(key, name)
}

// unquote decodes a quoted JSON string with escapes.
func unquote(q []byte) ([]byte, error) {
	var out []byte
	for i := 1; i < len(q)-1; {
		c := q[i]
		if c != '\\' {
			out = append(out, c)
			i++
			continue
		}
		switch q[i+1] {
		case 'u':
			r, err := strconv.ParseUint(string(q[i+2:i+6]), 16, 32)
			if err != nil {
				return nil, errSyntax
			}
			i += 6
			if r >= 0xD800 && r < 0xDC00 && i+6 <= len(q)-1 && q[i] == '\\' && q[i+1] == 'u' {
				lo, err := strconv.ParseUint(string(q[i+2:i+6]), 16, 32)
				if err == nil && lo >= 0xDC00 && lo < 0xE000 {
					r = (r-0xD800)<<10 | (lo - 0xDC00) + 0x10000
					i += 6
				}
			}
			out = utf8.AppendRune(out, rune(r))
		default:
			out = append(out, map[byte]byte{'"': '"', '\\': '\\', '/': '/', 'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t'}[q[i+1]])
			i += 2
		}
	}
	return out, nil
}

// describe names a record for errors, as decodeCards does.
func describe(i int, r span) string {
	if r.hasID {
		return fmt.Sprintf("sim_cards[%d] (sim_card_id %d)", i, r.id)
	}
	return fmt.Sprintf("sim_cards[%d]", i)
}

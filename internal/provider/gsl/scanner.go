package gsl

import (
	"bytes"
	"strconv"
	"unicode/utf8"
)

// The scanner the card and daily answers are read with: it checks JSON
// syntax as encoding/json does (depth, strings, escapes, numbers,
// literals) and hands each object key to its caller, without building
// values.

// maxDepth bounds nesting as encoding/json does.
const maxDepth = 10000

// scanner reads JSON text without building values.
type scanner struct {
	b     []byte
	i     int
	depth int
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

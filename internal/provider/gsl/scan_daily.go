package gsl

import (
	"encoding/json"
	"strconv"
)

// A batch-daily-flow answer carries a card-day per row: backfilling two
// months of a million cards is 60 million rows, and encoding/json spent
// most of that backfill's time on them. parseDaily scans the answer into
// the same dailyAnswer encoding/json would make, and leaves to
// encoding/json anything it does not read the same way (a key given twice,
// which encoding/json merges into the earlier value; any fault, which it
// names).

var (
	keyDate    = []byte("date")
	keySimFlow = []byte("sim_flow")
	keyFlow    = []byte("flow")
)

// parseDaily decodes a batch-daily-flow answer.
func parseDaily(body []byte) (dailyAnswer, error) {
	if days, ok := scanDaily(body); ok {
		return days, nil
	}
	var days dailyAnswer
	err := json.Unmarshal(body, &days)
	return days, err
}

// scanDaily scans an answer; ok is false when encoding/json must decide.
func scanDaily(body []byte) (days dailyAnswer, ok bool) {
	s := scanner{b: body}
	s.ws()
	if s.literal("null") {
		s.ws()
		return nil, s.i == len(s.b)
	}
	if !s.consume('[') {
		return nil, false
	}
	days = dailyAnswer{}
	err := s.elements(func() error {
		days = append(days, dailyDay{})
		d := &days[len(days)-1]
		s.ws()
		if s.literal("null") {
			return nil
		}
		if !s.consume('{') {
			return errSyntax
		}
		var sawDate, sawFlow bool
		return s.members(func(key []byte) error {
			switch {
			case foldEq(key, keyDate):
				if sawDate {
					return errSyntax
				}
				sawDate = true
				v, err := s.optString()
				d.Date = v
				return err
			case foldEq(key, keySimFlow):
				if sawFlow {
					return errSyntax
				}
				sawFlow = true
				return s.simFlow(&d.SimFlow)
			}
			return s.value()
		})
	})
	if err != nil {
		return nil, false
	}
	s.ws()
	return days, s.i == len(s.b)
}

// simFlow scans a day's rows: null, or an array of rows (null rows are
// zero rows, as encoding/json makes them).
func (s *scanner) simFlow(out **[]dailyFlow) error {
	s.ws()
	if s.literal("null") {
		*out = nil
		return nil
	}
	if !s.consume('[') {
		return errSyntax
	}
	rows := []dailyFlow{}
	err := s.elements(func() error {
		rows = append(rows, dailyFlow{})
		r := &rows[len(rows)-1]
		s.ws()
		if s.literal("null") {
			return nil
		}
		if !s.consume('{') {
			return errSyntax
		}
		var sawFlow, sawID bool
		return s.members(func(key []byte) error {
			switch {
			case foldEq(key, keyFlow):
				if sawFlow {
					return errSyntax
				}
				sawFlow = true
				return s.optFloat(&r.Flow)
			case foldEq(key, keyCardID):
				if sawID {
					return errSyntax
				}
				sawID = true
				n, null, err := s.int()
				if err == nil && !null {
					r.SimCardID = &n
				}
				return err
			}
			return s.value()
		})
	})
	*out = &rows
	return err
}

// optString reads a string without escapes, or null; anything else is
// left to encoding/json.
func (s *scanner) optString() (*string, error) {
	s.ws()
	if s.literal("null") {
		return nil, nil
	}
	start, end, err := s.str()
	if err != nil {
		return nil, err
	}
	raw := s.b[start:end]
	for _, c := range raw {
		if c == '\\' || c >= 0x80 {
			return nil, errSyntax // escapes and non-ASCII: encoding/json's to read
		}
	}
	v := string(raw)
	return &v, nil
}

// optFloat reads a number as encoding/json reads it into a *float64, or null.
func (s *scanner) optFloat(out **float64) error {
	s.ws()
	if s.literal("null") {
		*out = nil
		return nil
	}
	tok, err := s.number()
	if err != nil {
		return err
	}
	f, err := strconv.ParseFloat(string(tok), 64)
	if err != nil {
		return errSyntax
	}
	*out = &f
	return nil
}

package fleet

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strings"
	"time"
)

// Unknown marks the fields of a Card or Pool whose value the provider did
// not give (left out, or null), or gave in a form simwatch cannot read (a
// status code it does not know). An unknown value is never 0: its field
// holds the zero value only as a placeholder, JSON carries it as null, and a
// rule that reads it does not fire.
//
// Bit i stands for the i-th field of the struct; CardField and PoolField
// give the bit of a field by the name rules use.
type Unknown uint64

// Has reports whether any of the fields in bits is unknown.
func (u Unknown) Has(bits Unknown) bool { return u&bits != 0 }

// fieldBits maps each expr name of a struct to its bit, and lists which
// fields may be unknown (tagged `unknown:""`).
type fieldBits struct {
	bit      map[string]Unknown
	json     map[Unknown]string // bit → json name
	nullable map[string]bool
	mask     Unknown  // the bits of the nullable fields
	names    []string // expr names in field order
}

func bitsOf(t reflect.Type) fieldBits {
	fb := fieldBits{bit: map[string]Unknown{}, json: map[Unknown]string{}, nullable: map[string]bool{}}
	for i := range t.NumField() {
		f := t.Field(i)
		name := f.Tag.Get("expr")
		if name == "" || name == "-" {
			continue
		}
		b := Unknown(1) << i
		fb.bit[name] = b
		fb.json[b], _, _ = strings.Cut(f.Tag.Get("json"), ",")
		fb.names = append(fb.names, name)
		if _, ok := f.Tag.Lookup("unknown"); ok {
			fb.nullable[name] = true
			fb.mask |= b
		}
	}
	return fb
}

var (
	cardBits = bitsOf(reflect.TypeFor[Card]())
	poolBits = bitsOf(reflect.TypeFor[Pool]())
)

// CardField is the Unknown bit of the card field rules call name (0 for
// a name that is not a field).
func CardField(name string) Unknown { return cardBits.bit[name] }

// PoolField is the Unknown bit of a pool field.
func PoolField(name string) Unknown { return poolBits.bit[name] }

// CardFields is the Unknown bits of several card fields.
func CardFields(names ...string) Unknown {
	var u Unknown
	for _, n := range names {
		u |= CardField(n)
	}
	return u
}

// PoolFields is the Unknown bits of several pool fields.
func PoolFields(names ...string) Unknown {
	var u Unknown
	for _, n := range names {
		u |= PoolField(n)
	}
	return u
}

// MayBeUnknown reports whether a field of an entity kind ("card", "pool")
// can be unknown: the providers may leave it out.
func MayBeUnknown(entity, name string) bool {
	if entity == EntityPool {
		return poolBits.nullable[name]
	}
	return cardBits.nullable[name]
}

// UnknownNames lists the names of the unknown fields of an entity kind.
func UnknownNames(entity string, u Unknown) []string {
	fb := cardBits
	if entity == EntityPool {
		fb = poolBits
	}
	var out []string
	for _, n := range fb.names {
		if u.Has(fb.bit[n]) {
			out = append(out, n)
		}
	}
	return out
}

// Physical bounds. A figure beyond them is not a reading but a fault: the
// page that carries it fails, naming the card and field. A card cannot move
// 10^10 MB (about 9.3 PB) in a billing month; a pool of a million such cards
// stays within 10^16 MB; no card uses 10^8 MB (95 TB) in a day.
const (
	MaxCardMB  = 1e10
	MaxPoolMB  = 1e16
	MaxDailyMB = 1e8
)

// Validate checks that every known figure of the card is a finite, possible
// value: flows within ±MaxCardMB, used and total not negative.
func (c *Card) Validate() error {
	if err := validateFlows(c.Unknown, CardField, MaxCardMB, c.FlowUsed, c.FlowLeft, c.FlowTotal); err != nil {
		return err
	}
	if err := CheckTime("expire_time", c.ExpireTime); err != nil {
		return err
	}
	return CheckTime("act_date", c.ActDate)
}

// Dates a SIM's plan or activation can have: anything else is a fault.
var (
	minDate = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)
	maxDate = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
)

// CheckTime checks a date: zero (not given) or between 1970 and 2200.
func CheckTime(field string, t time.Time) error {
	if t.IsZero() || (!t.Before(minDate) && t.Before(maxDate)) {
		return nil
	}
	return fmt.Errorf("%s: %s is not a real date (want 1970..2199)", field, t.UTC().Format(time.RFC3339))
}

// Validate checks a pool's figures as Card.Validate does, within MaxPoolMB,
// and that member counts are not negative.
func (p *Pool) Validate() error {
	if err := validateFlows(p.Unknown, PoolField, MaxPoolMB, p.FlowUsed, p.FlowLeft, p.FlowTotal); err != nil {
		return err
	}
	if err := CheckTime("expired_time", p.ExpiredTime); err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"quantity", p.Quantity}, {"activated", p.Activated}, {"inactive", p.Inactive}, {"disassembled", p.Disassembled}} {
		if !p.Unknown.Has(PoolField(f.name)) && f.v < 0 {
			return fmt.Errorf("%s: %d is negative", f.name, f.v)
		}
	}
	return nil
}

func validateFlows(u Unknown, bit func(string) Unknown, limit, used, left, total float64) error {
	for _, f := range []struct {
		name     string
		v        float64
		negative bool
	}{{"flow_used", used, false}, {"flow_left", left, true}, {"flow_total", total, false}} {
		if u.Has(bit(f.name)) {
			continue
		}
		if err := CheckMB(f.name, f.v, limit, f.negative); err != nil {
			return err
		}
	}
	return nil
}

// CheckMB checks one figure in MB: finite, within ±limit, and not negative
// unless negative is allowed.
func CheckMB(field string, v, limit float64, negative bool) error {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return fmt.Errorf("%s: %v is not a number of MB", field, v)
	case v > limit || v < -limit:
		return fmt.Errorf("%s: %g MB is beyond any real figure (limit %g MB)", field, v, limit)
	case v < 0 && !negative:
		return fmt.Errorf("%s: %g MB is negative", field, v)
	}
	return nil
}

// JSON: unknown fields are written as null, and a null reads as unknown.

type cardJSON Card
type poolJSON Pool

// UnmarshalJSON reads a card; a field given as null is unknown.
func (c *Card) UnmarshalJSON(b []byte) error {
	var v cardJSON
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*c = Card(v)
	c.Unknown = nulls(b, cardBits)
	return nil
}

// UnmarshalJSON reads a pool; a field given as null is unknown.
func (p *Pool) UnmarshalJSON(b []byte) error {
	var v poolJSON
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*p = Pool(v)
	p.Unknown = nulls(b, poolBits)
	return nil
}

// nulls finds the nullable fields b gives as null.
func nulls(b []byte, fb fieldBits) Unknown {
	if !bytes.Contains(b, []byte("null")) {
		return 0
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(b, &m) != nil {
		return 0
	}
	var u Unknown
	for bit, name := range fb.json {
		if v, ok := m[name]; ok && fb.mask.Has(bit) && string(bytes.TrimSpace(v)) == "null" {
			u |= bit
		}
	}
	return u
}

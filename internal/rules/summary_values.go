package rules

import (
	"encoding"
	"encoding/json"
	"github.com/simwatch/simwatch/internal/fleet"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// What a summary template sees of a Go value, made without encoding it to
// JSON and back (see renderValues).

// templateObject is v as the template sees an entity: templateValue of an
// object, with unknown (null) top-level values reading "unknown".
func templateObject(v any) (map[string]any, bool) {
	t, ok := templateValue(reflect.ValueOf(v), 0)
	m, isMap := t.(map[string]any)
	if !ok || !isMap || m == nil {
		return nil, false
	}
	sayUnknown(m)
	return m, true
}

// templateValue is what json.Unmarshal into an any gives for the JSON
// encoding of v: float64 for every number, string, bool, nil, []any and
// map[string]any; times as RFC 3339 strings; a Card's or Pool's unknown
// fields nil. ok is false where it cannot say so without encoding (a
// type with its own MarshalJSON, an embedded struct, NaN, a string that is
// not UTF-8 …): the caller takes the round trip then.
func templateValue(v reflect.Value, depth int) (any, bool) {
	if !v.IsValid() {
		return nil, true
	}
	if depth > 32 {
		return nil, false
	}
	if k := v.Kind(); k == reflect.Pointer || k == reflect.Interface {
		if v.IsNil() {
			return nil, true
		}
		return templateValue(v.Elem(), depth+1)
	}
	t := v.Type()
	switch t {
	case timeType:
		tm := v.Interface().(time.Time)
		if y := tm.Year(); y < 0 || y > 9999 {
			return nil, false
		}
		return tm.Format(time.RFC3339Nano), true
	case cardType, poolType:
		return entityValue(v, depth)
	case numberType:
		return nil, false // a number in JSON, whatever its digits: the round trip says it
	}
	if pt := reflect.PointerTo(t); pt.Implements(marshalerType) || pt.Implements(textMarshalerType) {
		return nil, false
	}
	switch v.Kind() {
	case reflect.Bool:
		return v.Bool(), true
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return float64(v.Int()), true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return float64(v.Uint()), true
	case reflect.Float32:
		f := v.Float()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, false
		}
		f, _ = strconv.ParseFloat(strconv.FormatFloat(f, 'g', -1, 32), 64) // as JSON writes a float32
		return f, true
	case reflect.Float64:
		f := v.Float()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, false
		}
		return f, true
	case reflect.String:
		s := v.String()
		return s, utf8.ValidString(s)
	case reflect.Slice:
		if v.IsNil() {
			return nil, true
		}
		if t.Elem().Kind() == reflect.Uint8 {
			return nil, false // base64, rare: the round trip says it
		}
		fallthrough
	case reflect.Array:
		out := make([]any, v.Len())
		for i := range out {
			e, ok := templateValue(v.Index(i), depth+1)
			if !ok {
				return nil, false
			}
			out[i] = e
		}
		return out, true
	case reflect.Map:
		if v.IsNil() {
			return nil, true
		}
		if t.Key().Kind() != reflect.String {
			return nil, false
		}
		out := make(map[string]any, v.Len())
		for it := v.MapRange(); it.Next(); {
			k := it.Key().String()
			if !utf8.ValidString(k) {
				return nil, false
			}
			e, ok := templateValue(it.Value(), depth+1)
			if !ok {
				return nil, false
			}
			out[k] = e
		}
		return out, true
	case reflect.Struct:
		return structValue(v, depth, 0)
	}
	return nil, false // chan, func, complex: not encodable
}

var (
	timeType          = reflect.TypeFor[time.Time]()
	cardType          = reflect.TypeFor[fleet.Card]()
	poolType          = reflect.TypeFor[fleet.Pool]()
	marshalerType     = reflect.TypeFor[json.Marshaler]()
	textMarshalerType = reflect.TypeFor[encoding.TextMarshaler]()
	unknownType       = reflect.TypeFor[fleet.Unknown]()
	numberType        = reflect.TypeFor[json.Number]()
)

// entityValue is a Card or Pool as its MarshalJSON writes it: its fields,
// with those its Unknown marks (bit i: field i) null.
func entityValue(v reflect.Value, depth int) (any, bool) {
	var unknown fleet.Unknown
	for i := range v.NumField() {
		if v.Type().Field(i).Type == unknownType {
			unknown = fleet.Unknown(v.Field(i).Uint())
		}
	}
	return structValue(v, depth, unknown)
}

// structValue is a struct's exported fields by their json names, as
// encoding/json writes them (omitempty, omitzero, "-"); the fields whose
// bits are in null (and that rules name) are nil.
func structValue(v reflect.Value, depth int, null fleet.Unknown) (any, bool) {
	t := v.Type()
	out := make(map[string]any, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Anonymous {
			return nil, false // promoted fields: the round trip says it
		}
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if name == "" {
			name = f.Name
		}
		if !validTagName(name) || strings.Contains(opts, "string") {
			return nil, false
		}
		fv := v.Field(i)
		if (hasOpt(opts, "omitempty") && isEmpty(fv)) || (hasOpt(opts, "omitzero") && isZero(fv)) {
			continue
		}
		if _, dup := out[name]; dup {
			return nil, false
		}
		if expr := f.Tag.Get("expr"); expr != "" && expr != "-" && i < 64 && null.Has(fleet.Unknown(1)<<i) {
			out[name] = nil
			continue
		}
		e, ok := templateValue(fv, depth+1)
		if !ok {
			return nil, false
		}
		out[name] = e
	}
	return out, true
}

func hasOpt(opts, opt string) bool {
	for o := range strings.SplitSeq(opts, ",") {
		if o == opt {
			return true
		}
	}
	return false
}

// validTagName is encoding/json's test of a json tag name, conservatively:
// a name it would ignore makes the caller take the round trip.
func validTagName(s string) bool {
	for _, c := range s {
		if !unicode.IsLetter(c) && !unicode.IsDigit(c) && !strings.ContainsRune("!#$%&()*+-./:;<=>?@[]^_{|}~ ", c) {
			return false
		}
	}
	return s != ""
}

// isEmpty is omitempty's test.
func isEmpty(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
		return v.Len() == 0
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Interface, reflect.Pointer:
		return v.IsZero()
	}
	return false
}

// isZero is omitzero's test: an IsZero method, or the zero value.
func isZero(v reflect.Value) bool {
	if z, ok := v.Interface().(interface{ IsZero() bool }); ok {
		if v.Kind() == reflect.Pointer && v.IsNil() {
			return true
		}
		return z.IsZero()
	}
	return v.IsZero()
}

// HasClockRules reports whether any condition rule on entity reads the clock,
// so that unchanged entities must still be evaluated every cycle.
func (s *Set) HasClockRules(entity string) bool {
	for _, r := range s.Rules {
		if r.On == entity && r.clock && !r.transition {
			return true
		}
	}
	return false
}

// sayUnknown makes a value the provider did not give read "unknown" in a
// summary, rather than "<no value>" or 0.
func sayUnknown(m map[string]any) {
	for k, v := range m {
		if v == nil {
			m[k] = "unknown"
		}
	}
}

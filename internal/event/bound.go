package event

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"unicode/utf8"
)

// Size bounds. An event travels through bbolt, NATS (whose max_payload is
// 1 MB by default and may be lower) and every receiver, so whatever a
// provider sends, an encoded event never exceeds MaxSize.
const (
	// MaxSize is the most bytes an event takes encoded as JSON: 64 KiB.
	MaxSize = 64 << 10
	// MinLimit is the smallest limit Bound honours; a smaller one is raised
	// to it. Any event, however cut, fits in it.
	MinLimit = 4 << 10
	// MaxString is how long, in encoded JSON bytes and marker included, a
	// string is kept once an event has to be cut: 1 KiB.
	MaxString = 1 << 10
	// MaxItems is how many elements an array keeps once an event has to be
	// cut; a marker string element follows them.
	MaxItems = 100
)

// Last-resort bounds, when cutting strings to MaxString was not enough.
const (
	tinyString = 64
	tinyNotify = 16
)

// identityFields are the entity fields kept when values must shrink to a stub.
var identityFields = []string{"id", "iccid", "provider", "status"}

// Bound makes e fit in limit bytes encoded as JSON, in place, and reports
// whether it cut anything. An event that already fits is left exactly as it
// is. Otherwise these steps run in order, each only while the event is still
// too large:
//
//  1. every string longer than MaxString (1 KiB, as encoded in JSON) is cut
//     on a UTF-8 boundary to MaxString, ending with a marker such as
//     "…[cut 1253821 bytes]": the summary, label keys and values, the other
//     top-level strings, and every string or key inside values and prev
//     (walked as generic JSON; object keys come out sorted); arrays longer
//     than MaxItems keep their first MaxItems elements plus a marker string
//     "…[cut N items]"; numbers longer than MaxString become a marker string;
//     an id longer than MaxString becomes "sha256:" and its hash;
//  2. prev is dropped;
//  3. values is replaced by {"id", "iccid", "provider", "status" (those it
//     had), "truncated": true};
//  4. labels are dropped;
//  5. every string is cut to 64 bytes and notify keeps its first 16 names.
//
// A cut event has Truncated set. Bounding is deterministic: the same event
// and limit always give the same bytes, and bounding a bounded event again
// changes nothing. A limit below MinLimit is raised to MinLimit. Values or
// prev that are not valid JSON are replaced by a marker string.
func (e *Event) Bound(limit int) (cut bool) {
	_, cut, _ = e.bound(limit)
	return cut
}

// Encode bounds e to limit (see Bound) and returns its JSON encoding, which
// is at most max(limit, MinLimit) bytes long. It fails only for an event that
// cannot be encoded at all (a time outside the years 0–9999).
func (e *Event) Encode(limit int) ([]byte, error) {
	data, _, err := e.bound(limit)
	if err != nil {
		return nil, fmt.Errorf("event %s: %w", shortID(e.ID, MaxString), err)
	}
	return data, nil
}

// steps are Bound's steps, mildest first.
var steps = []func(e *Event) bool{
	func(e *Event) bool { return e.capAll(MaxString, len(e.Notify)) },
	func(e *Event) bool { return e.dropPrev() },
	func(e *Event) bool { return e.stubValues() },
	func(e *Event) bool { return e.dropLabels() },
	func(e *Event) bool { return e.capAll(tinyString, tinyNotify) },
}

// bound runs the steps until e fits and returns its encoding.
func (e *Event) bound(limit int) (data []byte, cut bool, err error) {
	limit = max(limit, MinLimit)
	data, err = json.Marshal(e)
	if err != nil {
		if !e.repairRaw() {
			return nil, false, err
		}
		cut = true
		if data, err = json.Marshal(e); err != nil {
			return nil, false, err
		}
	}
	for _, step := range steps {
		if len(data) <= limit {
			break
		}
		if !step(e) {
			continue
		}
		cut, e.Truncated = true, true
		if data, err = json.Marshal(e); err != nil {
			return nil, cut, err
		}
	}
	return data, cut, nil
}

// repairRaw replaces values or prev that are not valid JSON by a marker
// string, and reports whether it replaced either.
func (e *Event) repairRaw() bool {
	fixed := false
	for _, raw := range []*json.RawMessage{&e.Values, &e.Prev} {
		if len(*raw) > 0 && !json.Valid(*raw) {
			*raw = mustJSON(fmt.Sprintf("…[invalid JSON, %d bytes]", len(*raw)))
			fixed = true
		}
	}
	if fixed {
		e.Truncated = true
	}
	return fixed
}

// capAll cuts every string of e to maxLen encoded bytes and notify to
// maxNotify names (step 1, and step 5 with tiny bounds).
func (e *Event) capAll(maxLen, maxNotify int) bool {
	cut := false
	for _, s := range []*string{&e.Kind, &e.Rule, &e.Severity, &e.Summary, &e.Provider,
		&e.Entity, &e.EntityID, &e.ICCID, &e.Silenced} {
		cut = capString(s, maxLen) || cut
	}
	if id := shortID(e.ID, maxLen); id != e.ID {
		e.ID, cut = id, true
	}
	cut = e.capLabels(maxLen) || cut
	if len(e.Notify) > maxNotify {
		e.Notify, cut = e.Notify[:maxNotify:maxNotify], true
	}
	cloned := false
	for i := range e.Notify {
		if s, c := cutString(e.Notify[i], maxLen); c {
			if !cloned { // never write to the caller's array
				e.Notify, cloned = slices.Clone(e.Notify), true
			}
			e.Notify[i], cut = s, true
		}
	}
	for _, raw := range []*json.RawMessage{&e.Values, &e.Prev} {
		if v, c := capRaw(*raw, maxLen); c {
			*raw, cut = v, true
		}
	}
	return cut
}

// capString cuts *s to maxLen encoded bytes and reports whether it did.
func capString(s *string, maxLen int) bool {
	v, cut := cutString(*s, maxLen)
	*s = v
	return cut
}

// capLabels cuts label keys and values to maxLen encoded bytes. Two keys that
// cut to the same string keep the value of the first in sorted order.
func (e *Event) capLabels(maxLen int) bool {
	keys := make([]string, 0, len(e.Labels))
	cut := false
	for k, v := range e.Labels {
		keys = append(keys, k)
		_, ck := cutString(k, maxLen)
		_, cv := cutString(v, maxLen)
		cut = cut || ck || cv
	}
	if !cut {
		return false
	}
	slices.Sort(keys)
	out := make(map[string]string, len(keys))
	for _, k := range keys {
		ck, _ := cutString(k, maxLen)
		if _, dup := out[ck]; !dup {
			out[ck], _ = cutString(e.Labels[k], maxLen)
		}
	}
	e.Labels = out
	return true
}

// dropPrev is step 2.
func (e *Event) dropPrev() bool {
	if e.Prev == nil {
		return false
	}
	e.Prev = nil
	return true
}

// dropLabels is step 4.
func (e *Event) dropLabels() bool {
	if e.Labels == nil {
		return false
	}
	e.Labels = nil
	return true
}

// stubValues is step 3: values keeps only the entity's identity fields,
// when they are strings or numbers, and "truncated": true.
func (e *Event) stubValues() bool {
	if e.Values == nil {
		return false
	}
	var all map[string]json.RawMessage
	_ = json.Unmarshal(e.Values, &all) // not an object: nothing to keep
	stub := map[string]any{"truncated": true}
	for _, k := range identityFields {
		var v any
		if raw, ok := all[k]; ok && decode(raw, &v) == nil {
			if _, isObj := v.(map[string]any); !isObj {
				if _, isArr := v.([]any); !isArr && v != nil {
					stub[k], _ = capValue(v, MaxString)
				}
			}
		}
	}
	next := mustJSON(stub)
	if bytes.Equal(next, e.Values) {
		return false
	}
	e.Values = next
	return true
}

// capRaw cuts the strings and arrays inside a JSON document (step 1). It
// returns the document unchanged, and false, when nothing needed cutting.
func capRaw(raw json.RawMessage, maxLen int) (json.RawMessage, bool) {
	if len(raw) == 0 {
		return raw, false
	}
	var v any
	if err := decode(raw, &v); err != nil {
		return mustJSON(fmt.Sprintf("…[invalid JSON, %d bytes]", len(raw))), true
	}
	v, cut := capValue(v, maxLen)
	if !cut {
		return raw, false
	}
	return mustJSON(v), true
}

// capValue cuts strings, keys, numbers and arrays of a decoded JSON value.
func capValue(v any, maxLen int) (any, bool) {
	switch t := v.(type) {
	case string:
		return cutString(t, maxLen)
	case json.Number:
		if encodedLen(string(t)) <= maxLen {
			return t, false
		}
		return fmt.Sprintf("…[cut number of %d digits]", len(t)), true
	case []any:
		return capArray(t, maxLen)
	case map[string]any:
		return capObject(t, maxLen)
	default:
		return v, false
	}
}

// capArray keeps MaxItems elements and a marker, each element cut.
func capArray(a []any, maxLen int) (any, bool) {
	cut := false
	if len(a) > MaxItems {
		dropped := len(a) - MaxItems
		a = append(a[:MaxItems:MaxItems], fmt.Sprintf("…[cut %d items]", dropped))
		cut = true
	}
	for i := range a {
		var c bool
		a[i], c = capValue(a[i], maxLen)
		cut = cut || c
	}
	return a, cut
}

// capObject cuts every key and value. Two keys that cut to the same string
// keep the value of the first in sorted order.
func capObject(m map[string]any, maxLen int) (any, bool) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make(map[string]any, len(m))
	cut := false
	for _, k := range keys {
		ck, c := cutString(k, maxLen)
		cut = cut || c
		if _, dup := out[ck]; dup {
			continue
		}
		var cv bool
		out[ck], cv = capValue(m[k], maxLen)
		cut = cut || cv
	}
	return out, cut
}

// cutString cuts s, on a UTF-8 boundary, so that it encodes in JSON to at
// most maxLen bytes (quotes aside) including the marker "…[cut N bytes]" that
// ends it, N being how many bytes of s were dropped.
func cutString(s string, maxLen int) (string, bool) {
	if encodedLen(s) <= maxLen {
		return s, false
	}
	budget := maxLen - len(marker(len(s))) // the marker can only be shorter
	keep, used := 0, 0
	for keep < len(s) {
		r, size := utf8.DecodeRuneInString(s[keep:])
		n := runeLen(r, size, s[keep])
		if used+n > budget {
			break
		}
		used += n
		keep += size
	}
	return s[:keep] + marker(len(s)-keep), true
}

// marker says how many bytes were cut.
func marker(n int) string { return fmt.Sprintf("…[cut %d bytes]", n) }

// shortID keeps an id that fits in maxLen encoded bytes and replaces a longer
// one by its hash, so it stays unique.
func shortID(id string, maxLen int) string {
	if encodedLen(id) <= maxLen {
		return id
	}
	sum := sha256.Sum256([]byte(id))
	return "sha256:" + hex.EncodeToString(sum[:16])
}

// encodedLen is an upper bound of how many bytes encoding/json writes for s,
// quotes aside.
func encodedLen(s string) int {
	n := 0
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		n += runeLen(r, size, s[i])
		i += size
	}
	return n
}

// runeLen is an upper bound of how many bytes encoding/json writes for one
// decoded rune (HTML escaping on, as json.Marshal does).
func runeLen(r rune, size int, first byte) int {
	switch {
	case size == 1 && first >= utf8.RuneSelf: // invalid byte: \ufffd
		return 6
	case size > 1 && (r == '\u2028' || r == '\u2029'):
		return 6
	case size > 1:
		return size
	case r == '"' || r == '\\' || r == '\n' || r == '\r' || r == '\t':
		return 2
	case r < 0x20 || r == '<' || r == '>' || r == '&' || r == 0x7f:
		return 6
	default:
		return 1
	}
}

// decode decodes JSON keeping numbers as written.
func decode(raw []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	return d.Decode(v)
}

// mustJSON encodes a value built from decoded JSON, which cannot fail.
func mustJSON(v any) json.RawMessage {
	data, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("event: encode bounded value: %v", err))
	}
	return data
}

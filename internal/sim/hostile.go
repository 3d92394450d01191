package sim

// A hostile but realistic provider: answers that are well-formed HTTP and
// often well-formed JSON, yet wrong in the ways real providers are wrong —
// login pages behind redirects, bodies missing their lists, offset paging
// that drifts while the fleet changes, short pages, repeated ids, counts that
// disagree with the listing, and field values no normal fleet has. They exist
// so that tests can show the watcher never turns such answers into alerts
// (DESIGN.md §6: a listing is complete, or the cycle fails).

import (
	"encoding/json"
	"math"
	"net/http"
	"slices"
)

// Hostile fault kinds. FaultBody and FaultRedirect answer for any path; the
// listing mutations (drift, drop, dup, count) apply to the listings only
// ("sim-cards", "sim-pools", "linkcard") and never match other paths.
const (
	// FaultBody answers Status (default 200) with Body as given, as JSON.
	FaultBody = "body"
	// FaultRedirect answers Status (default 302) with a Location header
	// (default: the same path and query under /_sim/elsewhere, which answers
	// 200 {} like a login page that looks fine).
	FaultRedirect = "redirect"
	// FaultDrift cuts the page from the listing as if the fleet had moved by
	// Shift cards between page fetches: -1 repeats the previous page's last
	// card, +1 skips a card. Count stays true.
	FaultDrift = "drift"
	// FaultDrop leaves the last Drop cards (default 1) off the page; count
	// stays true.
	FaultDrop = "drop"
	// FaultDup replaces the page's last card with a copy of its first, so one
	// id appears twice on a page. Pages of fewer than two are left as they are.
	FaultDup = "dup"
	// FaultCount reports Total as the listing's count (GSL count, LinkCard
	// Total, with PageCount = ceil(Total/PageSize) unless PageCount is set).
	FaultCount = "count"
)

// ElsewherePath is where a redirect fault sends clients by default.
const ElsewherePath = "/_sim/elsewhere"

// isListingMutation reports whether kind changes a listing's content rather
// than replacing the answer.
func isListingMutation(kind string) bool {
	switch kind {
	case FaultDrift, FaultDrop, FaultDup, FaultCount:
		return true
	}
	return false
}

// isListing reports whether path (a Fault.Path name) is a paged listing.
func isListing(path string) bool {
	return path == "sim-cards" || path == "sim-pools" || path == "linkcard"
}

// knownFaultKind reports whether POST /_sim/faults should accept kind; the
// empty kind is an error fault, as it always was.
func knownFaultKind(kind string) bool {
	switch kind {
	case "", FaultError, FaultThrottle, FaultSlow, FaultMalformed, FaultFail, FaultBody, FaultRedirect:
		return true
	}
	return isListingMutation(kind)
}

// applyHostile writes the answer of a body or redirect fault and reports
// whether f was one.
func (f *Fault) applyHostile(w http.ResponseWriter, r *http.Request) bool {
	switch f.Kind {
	case FaultBody:
		status := f.Status
		if status == 0 {
			status = http.StatusOK
		}
		w.Header().Set("Content-Type", "application/json;charset=UTF-8")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(f.Body))
		return true
	case FaultRedirect:
		status := f.Status
		if status == 0 {
			status = http.StatusFound
		}
		loc := f.Location
		if loc == "" {
			loc = ElsewherePath + r.URL.Path
			if r.URL.RawQuery != "" {
				loc += "?" + r.URL.RawQuery
			}
		}
		w.Header().Set("Location", loc)
		w.WriteHeader(status)
		return true
	}
	return false
}

// elsewhere serves /_sim/elsewhere/...: where redirect faults lead, a page
// that answers any method with 200 and an empty JSON object.
func (s *Server) elsewhere(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.stats.Requests++
	s.stats.ByPath["elsewhere"]++
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, struct{}{})
}

// pick returns the indexes, into a listing of n items, of the items page
// (from 1) of size limit shows, with f's listing mutation applied. f may be
// nil, or a fault of another kind: then the page is the plain window.
func (f *Fault) pick(n, page, limit int) []int {
	lo, hi := window(n, page, limit)
	if f != nil && f.Kind == FaultDrift {
		lo = min(max(lo+f.Shift, 0), n)
		hi = min(max(hi+f.Shift, 0), n)
	}
	idx := make([]int, 0, hi-lo)
	for i := lo; i < hi; i++ {
		idx = append(idx, i)
	}
	if f == nil {
		return idx
	}
	switch f.Kind {
	case FaultDrop:
		drop := max(f.Drop, 1)
		idx = idx[:max(len(idx)-drop, 0)]
	case FaultDup:
		if len(idx) >= 2 {
			idx[len(idx)-1] = idx[0]
		}
	}
	return idx
}

// count is the listing count to report for a listing of n items.
func (f *Fault) count(n int) int {
	if f != nil && f.Kind == FaultCount {
		return f.Total
	}
	return n
}

// pageCount is LinkCard's PageCount for a listing of n items.
func (f *Fault) pageCount(n, pageSize int) int {
	if f != nil && f.Kind == FaultCount {
		if f.PageCount != 0 {
			return f.PageCount
		}
		return int(math.Ceil(float64(f.Total) / float64(pageSize)))
	}
	return (n + pageSize - 1) / pageSize
}

// overrides are raw wire values for one card or pool, for values no normal
// fleet has (null, 1.7e308, unknown status codes, absurd strings, missing
// keys). They apply to every provider's rendering of the record: the record
// is marshalled, Raw is written over it by key (added if absent) and Unset
// keys are deleted. Keys are wire names, and every provider gets every key:
// a LinkCard "DataLevel" is added to the GSL rendering too, which is harmless
// because clients ignore fields they do not know.
type overrides struct {
	raw   map[string]json.RawMessage
	unset []string
}

// empty reports whether o changes nothing; a nil o is empty.
func (o *overrides) empty() bool { return o == nil || (len(o.raw) == 0 && len(o.unset) == 0) }

// patch applies a patch's Raw and Unset: an explicitly empty (non-nil) Raw
// or Unset clears that part; otherwise keys are merged in, the later patch
// winning for a key both set and unset.
func (o *overrides) patch(raw map[string]json.RawMessage, unset []string) {
	if raw != nil && len(raw) == 0 {
		o.raw = nil
	}
	if unset != nil && len(unset) == 0 {
		o.unset = nil
	}
	for k, v := range raw {
		if o.raw == nil {
			o.raw = map[string]json.RawMessage{}
		}
		o.raw[k] = slices.Clone(v)
		o.unset = slices.DeleteFunc(o.unset, func(u string) bool { return u == k })
	}
	for _, k := range unset {
		delete(o.raw, k)
		if !slices.Contains(o.unset, k) {
			o.unset = append(o.unset, k)
		}
	}
}

// render marshals v with the overrides applied.
func (o *overrides) render(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic("sim: marshal wire record: " + err.Error()) // our own structs always marshal
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		panic("sim: wire record is not an object: " + err.Error())
	}
	for k, raw := range o.raw {
		m[k] = raw
	}
	for _, k := range o.unset {
		delete(m, k)
	}
	out, err := json.Marshal(m)
	if err != nil {
		panic("sim: marshal overridden record: " + err.Error()) // raw values were valid JSON when patched
	}
	return out
}

// renderList renders items with vo. When none has overrides the result is a
// plain []T, so a normal page costs nothing extra; otherwise it is a []any in
// which the overridden items are their patched JSON.
func renderList[E any, T any](items []E, vo func(E) T, over func(E) *overrides) any {
	plain := true
	for _, it := range items {
		if !over(it).empty() {
			plain = false
			break
		}
	}
	if plain {
		out := make([]T, len(items))
		for i, it := range items {
			out[i] = vo(it)
		}
		return out
	}
	out := make([]any, len(items))
	for i, it := range items {
		if o := over(it); !o.empty() {
			out[i] = o.render(vo(it))
		} else {
			out[i] = vo(it)
		}
	}
	return out
}

package event

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

// card is a normal event on a card, with attrs as its attributes.
func card(attrs map[string]any) *Event {
	values := map[string]any{"id": "1001", "iccid": "8986001", "provider": "hw", "status": "active",
		"flow_left": 3.5, "attributes": attrs}
	v, _ := json.Marshal(values)
	at := time.Date(2024, 8, 21, 10, 0, 0, 0, time.UTC)
	return &Event{ID: "0123456789abcdef0123456789abcdef", Kind: KindFiring, Rule: "card_low_flow", Severity: "warning",
		Summary: "Card 8986001 has 3.5 MB left", Labels: map[string]string{"team": "fleet"}, Provider: "hw",
		Entity: "card", EntityID: "1001", ICCID: "8986001", Values: v, StartsAt: at, ObservedAt: at}
}

// decoded is an encoded event's values, generically.
func decoded(t *testing.T, data []byte) (Event, map[string]any) {
	t.Helper()
	var e Event
	require.NoError(t, json.Unmarshal(data, &e))
	var values map[string]any
	if e.Values != nil {
		require.NoError(t, decode(e.Values, &values))
	}
	return e, values
}

func TestBoundLeavesAnEventThatFits(t *testing.T) {
	e := card(map[string]any{"customer_attribute1": strings.Repeat("x", 5000)})
	before, err := json.Marshal(e)
	require.NoError(t, err)
	require.False(t, e.Bound(MaxSize))
	after, err := json.Marshal(e)
	require.NoError(t, err)
	require.Equal(t, before, after, "an event under the limit keeps every byte, long strings included")
	require.False(t, e.Truncated)
}

func TestBoundSteps(t *testing.T) {
	huge := strings.Repeat("日本", 200_000) // 1.2 MB of 3-byte runes
	tests := []struct {
		name  string
		event func() *Event
		check func(t *testing.T, e Event, values map[string]any)
	}{
		{
			name:  "a 1.2 MB attribute is cut with a marker",
			event: func() *Event { return card(map[string]any{"customer_attribute1": huge}) },
			check: func(t *testing.T, e Event, values map[string]any) {
				attr := values["attributes"].(map[string]any)["customer_attribute1"].(string)
				require.LessOrEqual(t, len(attr), MaxString)
				require.True(t, utf8.ValidString(attr), "cut on a rune boundary")
				require.Regexp(t, `^(日本)+日?…\[cut \d+ bytes\]$`, attr)
				require.Equal(t, "active", values["status"], "the other values stay")
				require.Equal(t, json.Number("3.5"), values["flow_left"])
				require.Equal(t, map[string]string{"team": "fleet"}, e.Labels)
			},
		},
		{
			name: "a long array keeps its first items and a marker",
			event: func() *Event {
				items := make([]any, 150)
				for i := range items {
					items[i] = strings.Repeat("y", 600) + fmt.Sprint(i)
				}
				return card(map[string]any{"list": items})
			},
			check: func(t *testing.T, _ Event, values map[string]any) {
				list := values["attributes"].(map[string]any)["list"].([]any)
				require.Len(t, list, MaxItems+1)
				require.Equal(t, strings.Repeat("y", 600)+"99", list[MaxItems-1])
				require.Equal(t, "…[cut 50 items]", list[MaxItems])
			},
		},
		{
			name: "prev goes before values",
			event: func() *Event {
				e := card(nil)
				many := map[string]any{}
				for i := range 4000 {
					many[fmt.Sprintf("k%05d", i)] = "0123456789"
				}
				e.Prev, _ = json.Marshal(many)
				return e
			},
			check: func(t *testing.T, e Event, values map[string]any) {
				require.Nil(t, e.Prev)
				require.Equal(t, json.Number("3.5"), values["flow_left"], "values stay when dropping prev is enough")
			},
		},
		{
			name: "values too large even cut become their identity",
			event: func() *Event {
				many := map[string]any{}
				for i := range 8000 {
					many[fmt.Sprintf("k%05d", i)] = "0123456789"
				}
				return card(many)
			},
			check: func(t *testing.T, _ Event, values map[string]any) {
				require.Equal(t, map[string]any{"id": "1001", "iccid": "8986001", "provider": "hw", "status": "active",
					"truncated": true}, values)
			},
		},
		{
			name: "a huge summary and labels are cut",
			event: func() *Event {
				e := card(nil)
				e.Summary = huge
				e.Labels = map[string]string{"note": huge, strings.Repeat("k", 2000): "v"}
				return e
			},
			check: func(t *testing.T, e Event, _ map[string]any) {
				require.LessOrEqual(t, len(e.Summary), MaxString)
				require.Contains(t, e.Summary, "…[cut ")
				require.Len(t, e.Labels, 2)
				require.Contains(t, e.Labels["note"], "…[cut ")
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := tt.event()
			require.True(t, e.Bound(MaxSize))
			require.True(t, e.Truncated)
			data, err := json.Marshal(e)
			require.NoError(t, err)
			require.LessOrEqual(t, len(data), MaxSize)
			got, values := decoded(t, data)
			require.True(t, got.Truncated, "consumers see the cut")
			tt.check(t, got, values)
		})
	}
}

func TestBoundRepairsInvalidRaw(t *testing.T) {
	e := card(nil)
	e.Values = json.RawMessage(`{"a":`)
	data, err := e.Encode(MaxSize)
	require.NoError(t, err)
	require.True(t, json.Valid(data))
	require.True(t, e.Truncated)
	require.JSONEq(t, `"…[invalid JSON, 5 bytes]"`, string(e.Values))
}

func TestBoundReplacesAHugeIDByItsHash(t *testing.T) {
	e := card(nil)
	e.ID = strings.Repeat("i", 100_000)
	require.True(t, e.Bound(MaxSize))
	require.Regexp(t, `^sha256:[0-9a-f]{32}$`, e.ID)
}

// gen makes random events that are hard to bound: huge strings of any runes,
// long arrays, deep nesting, many keys, and identity fields of normal size.
type gen struct{ r *rand.Rand }

// pieces are what strings are made of: ASCII, characters JSON escapes,
// multi-byte runes and invalid bytes.
var pieces = []string{"a", "Z", "0", " ", "é", "日", "😀", "<", "&", "\"", "\\", "\n", "\x01", "\u2028", "\xff", "\x80"}

func (g gen) str(maxLen int) string {
	n := g.r.IntN(maxLen + 1)
	var b strings.Builder
	for b.Len() < n {
		p := pieces[g.r.IntN(len(pieces))]
		b.WriteString(strings.Repeat(p, 1+g.r.IntN(64)))
	}
	return b.String()
}

func (g gen) size() int {
	switch g.r.IntN(4) {
	case 0:
		return 40
	case 1:
		return 2000
	case 2:
		return 100_000
	default:
		return 250_000
	}
}

func (g gen) value(depth int) any {
	switch k := g.r.IntN(8); {
	case depth > 0 && k == 0:
		return []any{g.value(depth - 1)} // deep nesting
	case depth > 0 && k == 1:
		return map[string]any{g.str(10): g.value(depth - 1)}
	case k == 2:
		items := make([]any, g.r.IntN(3000)) // long arrays
		for i := range items {
			items[i] = g.leaf(200)
		}
		return items
	case k == 3:
		m := map[string]any{} // many keys
		for range g.r.IntN(3000) {
			m[g.str(20)] = g.leaf(200)
		}
		return m
	default:
		return g.leaf(g.size())
	}
}

// leaf is a string, a number or a float, at most about maxLen long.
func (g gen) leaf(maxLen int) any {
	switch g.r.IntN(4) {
	case 0:
		return json.Number("1" + strings.Repeat("9", g.r.IntN(maxLen+1)))
	case 1:
		return g.r.Float64()
	default:
		return g.str(maxLen)
	}
}

func (g gen) ident() string {
	const alnum = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 1+g.r.IntN(32))
	for i := range b {
		b[i] = alnum[g.r.IntN(len(alnum))]
	}
	return string(b)
}

func (g gen) event() *Event {
	raw := func() json.RawMessage {
		m := map[string]any{"id": g.ident(), "iccid": g.ident(), "status": "active"}
		for range g.r.IntN(6) {
			m[g.str(30)] = g.value(g.r.IntN(300))
		}
		data, err := json.Marshal(m)
		if err != nil {
			panic(err)
		}
		return data
	}
	at := time.Unix(g.r.Int64N(1<<32), g.r.Int64N(1e9)).UTC()
	e := &Event{ID: g.ident(), Kind: KindTransition, Rule: g.ident(), Severity: "critical", Summary: g.str(g.size()),
		Provider: g.ident(), Entity: "card", EntityID: g.ident(), ICCID: g.ident(), Values: raw(),
		StartsAt: at, ObservedAt: at, Notify: []string{g.ident(), g.str(3000)}}
	if g.r.IntN(2) == 0 {
		e.Prev = raw()
	}
	if g.r.IntN(2) == 0 {
		e.Labels = map[string]string{g.str(3000): g.str(g.size()), "team": g.ident()}
	}
	return e
}

// Property: whatever an event holds, bounding it gives valid JSON within the
// limit that keeps its identity, the same bytes every time, and leaves the
// caller's data untouched.
func TestBoundProperty(t *testing.T) {
	limits := []int{MaxSize, 16 << 10, MinLimit, 100, 1 << 20}
	runs := 30
	if testing.Short() {
		runs = 10
	}
	for i := range runs {
		g := gen{rand.New(rand.NewPCG(uint64(i), 7))}
		orig := g.event()
		origJSON, err := json.Marshal(orig)
		require.NoError(t, err)
		for _, limit := range limits {
			e := *orig
			data, err := e.Encode(limit)
			require.NoError(t, err)
			require.LessOrEqual(t, len(data), max(limit, MinLimit), "run %d limit %d", i, limit)
			require.True(t, json.Valid(data), "run %d limit %d", i, limit)
			again, err := json.Marshal(&e)
			require.NoError(t, err)
			require.Equal(t, data, again, "Encode returns the bounded event's encoding")

			got, _ := decoded(t, data)
			for _, f := range [][2]string{{orig.ID, got.ID}, {orig.Kind, got.Kind}, {orig.Rule, got.Rule},
				{orig.EntityID, got.EntityID}, {orig.ICCID, got.ICCID}} {
				require.Equal(t, f[0], f[1], "run %d limit %d: identity kept", i, limit)
			}
			require.Equal(t, len(origJSON) > max(limit, MinLimit), got.Truncated, "run %d limit %d", i, limit)

			twice, err := e.Encode(limit)
			require.NoError(t, err)
			require.Equal(t, data, twice, "bounding twice changes nothing")
			fresh := *orig
			other, err := fresh.Encode(limit)
			require.NoError(t, err)
			require.Equal(t, data, other, "the same event bounds to the same bytes")
		}
		after, err := json.Marshal(orig)
		require.NoError(t, err)
		require.Equal(t, origJSON, after, "the caller's event is not written through")
	}
}

// The last resort fits in MinLimit even when every field is made of the
// characters JSON escapes most.
func TestBoundWorstCaseFitsMinLimit(t *testing.T) {
	worst := strings.Repeat("<\x01\xff", 10_000)
	labels := map[string]string{}
	for i := range 50 {
		labels[fmt.Sprint(i)+worst] = worst
	}
	values, err := json.Marshal(map[string]string{"id": worst, "iccid": worst, "provider": worst, "status": worst})
	require.NoError(t, err)
	notify := make([]string, 100)
	for i := range notify {
		notify[i] = worst
	}
	at := time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.FixedZone("x", -(23*3600+59*60)))
	e := Event{ID: worst, Kind: worst, Rule: worst, Severity: worst, Summary: worst, Labels: labels, Provider: worst,
		Entity: worst, EntityID: worst, ICCID: worst, Values: values, Prev: values, StartsAt: at, EndsAt: at,
		ObservedAt: at, Notify: notify, Silenced: worst}
	data, err := e.Encode(0)
	require.NoError(t, err)
	require.LessOrEqual(t, len(data), MinLimit)
	require.True(t, json.Valid(data))
	require.Len(t, e.Notify, tinyNotify)
}

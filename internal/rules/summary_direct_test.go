package rules

import (
	"encoding/json"
	"math"
	"testing"
	"text/template"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/fleet"
)

type embedded struct{ X int }

type withEmbedded struct {
	embedded
	Y int `json:"y"`
}

type tagged struct {
	Plain    int
	Named    string            `json:"named"`
	Empty    string            `json:"empty,omitempty"`
	Zero     time.Time         `json:"zero,omitzero"`
	NilPtr   *int              `json:"nil_ptr"`
	Ptr      *float64          `json:"ptr"`
	Skip     string            `json:"-"`
	Dash     string            `json:"-,"`
	F32      float32           `json:"f32"`
	Any      any               `json:"any"`
	Nested   map[string]any    `json:"nested"`
	Strs     []string          `json:"strs"`
	NilSlice []int             `json:"nil_slice"`
	NilMap   map[string]string `json:"nil_map"`
	Arr      [2]uint8          `json:"arr"`
	hidden   int
}

// renderTable is values of every shape an entity's fields may take.
func renderTable() map[string]any {
	half := 0.5
	zone := time.FixedZone("UTC+8", 8*3600)
	card := fleet.Card{Provider: "gsl", ID: "1", ICCID: `8986"q"<&>ü😀`, Status: "active", FlowUsed: 0.1 + 0.2,
		FlowLeft: -12.25, FlowTotal: 1e21, StatusCode: math.MaxInt64, ExpireTime: time.Date(2026, 1, 2, 3, 4, 5, 600, zone),
		Tags: []string{"a", "b"}, Attributes: map[string]string{"k": "v\n\t"}}
	unknown := card
	unknown.Unknown = fleet.CardFields("imei", "flow_left", "expire_time", "status")
	return map[string]any{
		"card":            card,
		"card pointer":    &card,
		"card, unknowns":  unknown,
		"zero card":       fleet.Card{},
		"pool":            fleet.Pool{ID: "p", Name: "ü", FlowLeft: -1, Quantity: 1 << 53, ExpiredTime: time.Unix(1e9, 1).UTC()},
		"zero pool":       fleet.Pool{},
		"rule_failed":     failedValues{Rule: "r", File: "f.yaml", Line: 3, Error: "boom \"x\"", Entity: "card 1"},
		"tagged":          tagged{Plain: 1, Named: "n", Ptr: &half, Skip: "s", Dash: "d", F32: 0.1, Any: uint64(math.MaxUint64), Nested: map[string]any{"n": nil, "l": []any{1, "x", nil, 2.5}}, Strs: []string{}, hidden: 1},
		"numbers":         map[string]any{"i": 1, "big": int64(1<<53 + 1), "max": uint64(math.MaxUint64), "min": int64(math.MinInt64), "f": 0.1 + 0.2, "e": 1e-7, "m": 1e6, "neg0": math.Copysign(0, -1), "f32": float32(16777217)},
		"strings":         map[string]any{"q": `"quoted" 'single' \back`, "u": "日本語 ü \u2028 \x7f", "html": "<b>&amp;</b>", "empty": ""},
		"nil values":      map[string]any{"a": nil, "b": (*int)(nil), "c": []int(nil), "d": map[string]int(nil)},
		"times":           map[string]any{"t": time.Date(2026, 11, 24, 12, 0, 0, 123456789, time.UTC), "z": time.Time{}, "loc": time.Date(1999, 12, 31, 23, 59, 59, 0, zone)},
		"nested":          map[string]any{"m": map[string]any{"x": []map[string]int{{"a": 1}}}, "arr": [3]bool{true}},
		"map of strings":  map[string]string{"iccid": "1", "id": "2"},
		"NaN: round trip": map[string]any{"f": math.NaN()},
		"Inf":             map[string]any{"f": math.Inf(-1)},
		"invalid UTF-8":   map[string]any{"s": "a\xffb\xfe\xfd"},
		"invalid key":     map[string]any{"\xff": 1},
		"bytes":           map[string]any{"b": []byte("hi")},
		"raw JSON":        map[string]any{"r": json.RawMessage(`{"a":[1,2]}`)},
		"json.Number":     map[string]any{"n": json.Number("12345678901234567890")},
		"embedded":        withEmbedded{embedded{1}, 2},
		"time far":        map[string]any{"t": time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
		"int keys":        map[int]string{1: "a"},
		"not an object":   []int{1},
		"func":            map[string]any{"f": func() {}},
	}
}

// summaryRule is a rule whose summary prints the whole data, with types.
func summaryRule(t *testing.T, text string) *Rule {
	t.Helper()
	tm, err := template.New("summary").Option("missingkey=error").Parse(text)
	require.NoError(t, err)
	return &Rule{Name: "r", Severity: "warning", Labels: map[string]string{"team": "x"}, summary: tm}
}

// Rendering from the Go values gives the text the JSON round trip gave,
// byte for byte, for every shape of value, prev or no prev; and the
// template sees the same data, types included.
func TestSummaryFromValuesSameAsJSONRoundTrip(t *testing.T) {
	templates := []string{
		`{{ printf "%#v" . }}`,
		`{{ . }}`,
		`{{ .iccid }} {{ .flow_left }} {{ .prev.status }}`,
		`{{ range $k, $v := . }}{{ $k }}={{ $v }};{{ end }}`,
	}
	table := renderTable()
	for name, v := range table {
		for _, prev := range []any{nil, v, table["card, unknowns"]} {
			for _, text := range templates {
				r := summaryRule(t, text)
				want, wantErr := r.render(mustJSON(v), prevJSON(prev))
				got, gotErr := r.renderValues(v, prev)
				require.Equal(t, want, got, "%s, template %s", name, text)
				require.Equal(t, errText(wantErr), errText(gotErr), "%s, template %s", name, text)
			}
		}
		if direct, ok := templateObject(v); ok {
			var viaJSON map[string]any
			require.NoError(t, json.Unmarshal(mustJSON(v), &viaJSON))
			sayUnknown(viaJSON)
			require.Equal(t, viaJSON, direct, name)
		}
	}
	// The shapes the cycle renders take the direct path.
	for _, name := range []string{"card", "card pointer", "card, unknowns", "zero card", "pool", "zero pool", "rule_failed", "tagged", "numbers", "strings", "nil values", "times", "nested"} {
		_, ok := templateObject(table[name])
		require.True(t, ok, name)
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// BenchmarkSummary renders a card's summary from the card's JSON (the
// previous way) and from the card itself.
func BenchmarkSummary(b *testing.B) {
	card := renderTable()["card"].(fleet.Card)
	tm := template.Must(template.New("summary").Option("missingkey=error").Parse(`Card {{ .iccid }} has {{ .flow_left }} MB left, was {{ .prev.flow_left }}`))
	r := &Rule{Name: "r", summary: tm}
	// The event carries the values' JSON anyway: only decoding it is the
	// round trip's own cost.
	values := mustJSON(card)
	b.Run("json round trip", func(b *testing.B) {
		for b.Loop() {
			if _, err := r.render(values, values); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("from values", func(b *testing.B) {
		for b.Loop() {
			if _, err := r.renderValues(card, card); err != nil {
				b.Fatal(err)
			}
		}
	})
}

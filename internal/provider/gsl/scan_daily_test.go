package gsl

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/provider/providertest"
)

// requireDailyAsJSON checks that whatever the scan reads, encoding/json
// reads the same and accepts.
func requireDailyAsJSON(t *testing.T, body []byte) {
	t.Helper()
	got, ok := scanDaily(body)
	if !ok {
		return // encoding/json decides
	}
	var want dailyAnswer
	require.NoError(t, json.Unmarshal(body, &want), "the scan took what encoding/json refuses")
	require.Equal(t, want, got)
}

func FuzzDailyScanMatchesJSON(f *testing.F) {
	providertest.AddSeeds(f, "testdata/daily/*.json")
	f.Fuzz(func(t *testing.T, body []byte) { requireDailyAsJSON(t, body) })
}

func TestDailyScanMatchesJSON(t *testing.T) {
	row := `{"flow":1.5,"iccid":"89","sim_card_id":7}`
	for name, body := range map[string]string{
		"plain":            `[{"date":"20261101","sim_flow":[` + row + `]}]`,
		"null":             `null`,
		"empty":            `[]`,
		"null day":         `[null]`,
		"null rows":        `[{"date":"20261101","sim_flow":null}]`,
		"null row":         `[{"date":"20261101","sim_flow":[null]}]`,
		"folded keys":      `[{"DATE":"20261101","Sim_Flow":[{"FLOW":2,"SIM_CARD_ID":7}]}]`,
		"null fields":      `[{"date":null,"sim_flow":[{"flow":null,"sim_card_id":null}]}]`,
		"date twice":       `[{"date":"20261101","date":"20261102","sim_flow":[]}]`,
		"rows twice":       `[{"date":"20261101","sim_flow":[{"flow":1,"sim_card_id":7}],"sim_flow":[{"sim_card_id":8}]}]`,
		"flow twice":       `[{"date":"20261101","sim_flow":[{"flow":1,"flow":2,"sim_card_id":7}]}]`,
		"escaped date":     `[{"date":"2026\u00311101","sim_flow":[]}]`,
		"flow as string":   `[{"date":"20261101","sim_flow":[{"flow":"1","sim_card_id":7}]}]`,
		"flow huge":        `[{"date":"20261101","sim_flow":[{"flow":1e400,"sim_card_id":7}]}]`,
		"flow exponent":    `[{"date":"20261101","sim_flow":[{"flow":-1.5E-3,"sim_card_id":7}]}]`,
		"id float":         `[{"date":"20261101","sim_flow":[{"flow":1,"sim_card_id":7.0}]}]`,
		"rows an object":   `[{"date":"20261101","sim_flow":{}}]`,
		"trailing garbage": `[] []`,
		"extra keys":       `[{"x":[1,{"y":null}],"date":"20261101","sim_flow":[{"a":true,"flow":0,"sim_card_id":1}]}]`,
		"many days":        "[" + strings.TrimSuffix(strings.Repeat(fmt.Sprintf(`{"date":"20261101","sim_flow":[%s,%s]},`, row, row), 30), ",") + "]",
	} {
		t.Run(name, func(t *testing.T) { requireDailyAsJSON(t, []byte(body)) })
	}
	// The common answers are scanned, not left to encoding/json.
	for _, body := range []string{`[{"date":"20261101","sim_flow":[` + row + `]}]`, `[]`, `null`} {
		_, ok := scanDaily([]byte(body))
		require.True(t, ok, body)
	}
}

// BenchmarkDailyAnswer decodes one batch's month: 100 cards × 30 days, as
// a backfill asks for it two months at a time.
func BenchmarkDailyAnswer(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("[")
	for d := 1; d <= 30; d++ {
		if d > 1 {
			sb.WriteString(",")
		}
		fmt.Fprintf(&sb, `{"date":"202611%02d","sim_flow":[`, d)
		for c := range 100 {
			if c > 0 {
				sb.WriteString(",")
			}
			fmt.Fprintf(&sb, `{"flow":%d.25,"iccid":"8986000000000000%04d","sim_card_id":%d}`, c, c, 4900000000001+c)
		}
		sb.WriteString("]}")
	}
	sb.WriteString("]")
	body := []byte(sb.String())
	b.Run("encoding/json", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			var days dailyAnswer
			if err := json.Unmarshal(body, &days); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("scan", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			if _, ok := scanDaily(body); !ok {
				b.Fatal("not scanned")
			}
		}
	})
}

package linkcard

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/fleet"
	"github.com/simwatch/simwatch/internal/provider/providertest"
)

// decodeBody decodes a whole ListCardInfo answer as the client does.
func decodeBody(body []byte) ([]fleet.Card, error) {
	var resp response
	if err := json.Unmarshal(body, &resp); err != nil {
		return nil, err
	}
	p, err := decodeData("ali", &resp, body)
	return p.Items, err
}

func FuzzCardPage(f *testing.F) {
	providertest.AddSeeds(f, "testdata/seed002_list_card_info.json", "testdata/cards/*.json")
	f.Fuzz(func(t *testing.T, body []byte) {
		cards, err := decodeBody(body)
		if err != nil {
			require.Empty(t, cards)
			return
		}
		for i := range cards {
			c := &cards[i]
			providertest.CheckCard(t, c)
			require.Equal(t, strings.ToUpper(strings.TrimSpace(c.ID)), c.ID, "one spelling per card")
		}
		for _, p := range derivePools("ali", cards, time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)) {
			providertest.CheckPool(t, &p)
			if p.Unknown.Has(poolFlowTotal | poolFlowUsed) {
				require.True(t, p.Unknown.Has(poolFlowLeft))
			}
		}
	})
}

func FuzzParseFlow(f *testing.F) {
	for _, s := range []string{"130.00MB", "0KB", "9.99KB", "1.5GB", "1,024.00MB", "", "x", "-42.59MB", "2TB",
		"1000000000000000000000TB", "9536743164TB", "9536743165TB", "NaNMB", "1e3MB"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseFlow(s)
		if err != nil {
			require.Zero(t, v)
			return
		}
		require.False(t, math.IsNaN(v) || math.IsInf(v, 0), "%q gave %v", s, v)
		require.LessOrEqual(t, math.Abs(v), fleet.MaxPoolMB, "%q gave %v", s, v)
	})
}

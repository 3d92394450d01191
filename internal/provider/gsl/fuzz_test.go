package gsl

import (
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/fleet"
	"github.com/simwatch/simwatch/internal/provider/providertest"
)

// checkCard is the property every decoded card has.
// GSL's flow_total is used + left: unknown when either is.
func checkCard(t *testing.T, c *fleet.Card) {
	providertest.CheckCard(t, c)
	if c.Unknown.Has(cardFlowUsed | cardFlowLeft) {
		require.True(t, c.Unknown.Has(cardFlowTotal), "flow_total known from an unknown part")
	}
}

func FuzzCardPage(f *testing.F) {
	providertest.AddSeeds(f, "testdata/seed000_sim_cards.json", "testdata/cards/*.json")
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := decodeCards("hw", body)
		if err != nil {
			require.Empty(t, p.Items)
			return
		}
		for i := range p.Items {
			checkCard(t, &p.Items[i])
		}
	})
}

func FuzzPoolPage(f *testing.F) {
	providertest.AddSeeds(f, "testdata/seed003_sim_pools.json", "testdata/pools/*.json")
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := decodePools("hw", body)
		if err != nil {
			require.Empty(t, p.Items)
			return
		}
		for i := range p.Items {
			providertest.CheckPool(t, &p.Items[i])
		}
	})
}

// The cards every fuzzed daily answer is asked about: the seed's and the
// simulator's.
var fuzzBatch = []int64{5702790861709056, 5702790861709057, 4900000000001, 4900000000002, 4900000000003}

func FuzzDailyFlow(f *testing.F) {
	providertest.AddSeeds(f, "testdata/daily/*.json")
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, q := range []DailyQuery{{Month: "202408"}, {Month: "202611"}, {Date: "20240801"}} {
			rows, had, err := decodeDaily(body, q, fuzzBatch)
			if err != nil {
				require.Empty(t, rows)
				continue
			}
			require.Len(t, slices.Compact(slices.Sorted(slices.Values(had))), len(had), "days distinct")
			type key struct {
				id  int64
				day int32
			}
			seen := map[key]bool{}
			for _, r := range rows {
				require.Contains(t, fuzzBatch, r.id)
				require.False(t, seen[key{r.id, r.usage.Day}], "card×day twice")
				seen[key{r.id, r.usage.Day}] = true
				require.NoError(t, fleet.CheckMB("flow", r.usage.MB, fleet.MaxDailyMB, false))
				date := fleet.DayDate(r.usage.Day).Format("20060102")
				if q.Month != "" {
					require.Equal(t, q.Month, date[:6])
				} else {
					require.Equal(t, q.Date, date)
				}
				_, err := time.Parse("20060102", date)
				require.NoError(t, err)
				require.Contains(t, had, r.usage.Day)
			}
		}
	})
}

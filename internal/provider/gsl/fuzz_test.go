package gsl

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/fleet"
)

// addSeeds adds every file matching the patterns to the corpus: pages shaped
// like the seeds' examples and the simulator's answers, and hostile ones.
func addSeeds(f *testing.F, patterns ...string) {
	n := 0
	for _, p := range patterns {
		files, err := filepath.Glob(p)
		require.NoError(f, err)
		for _, name := range files {
			b, err := os.ReadFile(name)
			require.NoError(f, err)
			f.Add(b)
			n++
		}
	}
	require.Positive(f, n, "no seeds in %v", patterns)
}

var statuses = map[string]bool{fleet.StatusTest: true, fleet.StatusInactive: true, fleet.StatusActive: true,
	fleet.StatusSuspended: true, fleet.StatusTerminated: true}

// checkUnknown checks that only fields that may be unknown are.
func checkUnknown(t *testing.T, entity string, u fleet.Unknown) {
	for _, name := range fleet.UnknownNames(entity, u) {
		require.True(t, fleet.MayBeUnknown(entity, name), "%s %s is unknown", entity, name)
	}
	var all fleet.Unknown
	for _, name := range fleet.UnknownNames(entity, ^fleet.Unknown(0)) {
		if entity == fleet.EntityPool {
			all |= fleet.PoolField(name)
		} else {
			all |= fleet.CardField(name)
		}
	}
	require.Zero(t, u&^all, "bits beyond the fields")
}

// checkCard is the property every decoded card has.
func checkCard(t *testing.T, c *fleet.Card) {
	require.NotEmpty(t, c.ID)
	require.NoError(t, c.Validate())
	checkUnknown(t, fleet.EntityCard, c.Unknown)
	if c.Status == "" {
		require.True(t, c.Unknown.Has(cardStatus), "empty status not marked unknown")
	} else {
		require.True(t, statuses[c.Status], "status %q", c.Status)
		require.False(t, c.Unknown.Has(cardStatus))
	}
	if c.Unknown.Has(cardFlowUsed | cardFlowLeft) {
		require.True(t, c.Unknown.Has(cardFlowTotal), "flow_total known from an unknown part")
	}
	for _, v := range []float64{c.FlowUsed, c.FlowLeft, c.FlowTotal} {
		require.False(t, math.IsNaN(v) || math.IsInf(v, 0))
	}
}

func FuzzCardPage(f *testing.F) {
	addSeeds(f, "testdata/seed000_sim_cards.json", "testdata/cards/*.json")
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
	addSeeds(f, "testdata/seed003_sim_pools.json", "testdata/pools/*.json")
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := decodePools("hw", body)
		if err != nil {
			require.Empty(t, p.Items)
			return
		}
		for i := range p.Items {
			pl := &p.Items[i]
			require.NotEmpty(t, pl.ID)
			require.NoError(t, pl.Validate())
			checkUnknown(t, fleet.EntityPool, pl.Unknown)
		}
	})
}

// The cards every fuzzed daily answer is asked about: the seed's and the
// simulator's.
var fuzzBatch = []int64{5702790861709056, 5702790861709057, 4900000000001, 4900000000002, 4900000000003}

func FuzzDailyFlow(f *testing.F) {
	addSeeds(f, "testdata/daily/*.json")
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

package linkcard

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/fleet"
)

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

func checkUnknown(t *testing.T, entity string, u fleet.Unknown) {
	for _, name := range fleet.UnknownNames(entity, u) {
		require.True(t, fleet.MayBeUnknown(entity, name), "%s %s is unknown", entity, name)
	}
}

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
	addSeeds(f, "testdata/seed002_list_card_info.json", "testdata/cards/*.json")
	f.Fuzz(func(t *testing.T, body []byte) {
		cards, err := decodeBody(body)
		if err != nil {
			require.Empty(t, cards)
			return
		}
		for i := range cards {
			c := &cards[i]
			require.NotEmpty(t, c.ID)
			require.Equal(t, strings.ToUpper(strings.TrimSpace(c.ID)), c.ID, "one spelling per card")
			require.NoError(t, c.Validate())
			checkUnknown(t, fleet.EntityCard, c.Unknown)
			if c.Status == "" {
				require.True(t, c.Unknown.Has(cardStatus))
			} else {
				require.True(t, statuses[c.Status], "status %q", c.Status)
				require.False(t, c.Unknown.Has(cardStatus))
			}
		}
		for _, p := range derivePools("ali", cards, time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)) {
			require.NotEmpty(t, p.ID)
			require.NoError(t, p.Validate())
			checkUnknown(t, fleet.EntityPool, p.Unknown)
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

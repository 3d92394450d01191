package console

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/fleet"
	"github.com/simwatch/simwatch/internal/sim"
)

// A provider's figures at the edge of float64 (flow_used and flow_left
// each just under the client's 1e10 MB limit) still give a card page
// whose chart data block is JSON charts.js can read.
func TestHostile14ChartWithHugeFigures(t *testing.T) {
	var iccid string
	r := h14NewRig(t, "rules: []\n", 10, func(s *sim.Server) {
		iccid = s.Fleet().CardICCIDs()[0]
		huge := json.RawMessage(`4.99e9`) // the client refuses more than 1e10 MB, the sum included
		require.NoError(t, s.Fleet().PatchCard(iccid, sim.CardPatch{Raw: map[string]json.RawMessage{"flow_used": huge, "flow_left": huge}}))
	})
	cards := r.stored(func(c *fleet.Card) bool { return c.ICCID == iccid })
	if len(cards) == 0 {
		t.Logf("the card was refused by the client or the store: nothing to chart")
		return
	}
	t.Logf("stored: used %g total %g unknown %v", cards[0].FlowUsed, cards[0].FlowTotal, cards[0].Unknown)
	code, body := r.get("/cards/hw/"+cards[0].ID, "")
	require.Equal(t, 200, code)
	m := usageDataRE.FindStringSubmatch(body)
	require.NotNil(t, m)
	require.True(t, json.Valid([]byte(m[1])), "the chart's data block is not JSON: %s", m[1])
	h14Safe(t, "card", body)
}

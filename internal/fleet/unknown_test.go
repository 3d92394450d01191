package fleet

import (
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestUnknownIsNullInJSONAndBack(t *testing.T) {
	c := Card{ID: "1", FlowUsed: 3, Unknown: CardField("flow_left") | CardField("flow_total") | CardField("status")}
	b, err := json.Marshal(c)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	require.Nil(t, m["flow_left"])
	require.Contains(t, m, "flow_left")
	require.Nil(t, m["status"])
	require.Equal(t, 3.0, m["flow_used"])
	require.Nil(t, m["tags"], "a card without tags")

	var back Card
	require.NoError(t, json.Unmarshal(b, &back))
	require.Equal(t, c.Unknown, back.Unknown, "null reads as unknown; tags: null does not")
	require.Equal(t, []string{"status", "flow_left", "flow_total"}, UnknownNames(EntityCard, back.Unknown))

	p := Pool{ID: "p", Unknown: PoolField("quantity")}
	b, err = json.Marshal(p)
	require.NoError(t, err)
	var bp Pool
	require.NoError(t, json.Unmarshal(b, &bp))
	require.Equal(t, p.Unknown, bp.Unknown)
}

func TestValidateRejectsAbsurdFigures(t *testing.T) {
	for _, tc := range []struct {
		name string
		card Card
		err  string
	}{
		{"fine", Card{FlowUsed: 10, FlowLeft: -5, FlowTotal: 5}, ""},
		{"inf total", Card{FlowTotal: math.Inf(1)}, "flow_total: +Inf is not a number of MB"},
		{"nan left", Card{FlowLeft: math.NaN()}, "flow_left: NaN"},
		{"huge used", Card{FlowUsed: 1.7e308}, "flow_used: 1.7e+308 MB is beyond any real figure"},
		{"negative used", Card{FlowUsed: -1}, "flow_used: -1 MB is negative"},
		{"unknown is not checked", Card{FlowLeft: math.NaN(), Unknown: CardField("flow_left")}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.card.Validate()
			if tc.err == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.err)
		})
	}
	require.ErrorContains(t, (&Pool{Quantity: -2}).Validate(), "quantity: -2 is negative")
	require.NoError(t, (&Pool{FlowLeft: -9e12, FlowTotal: 1e13}).Validate(), "a deep overdraft of a huge pool is possible")
}

func TestValidateRejectsImpossibleDates(t *testing.T) {
	year0 := time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC)
	require.ErrorContains(t, (&Card{ExpireTime: year0}).Validate(), "expire_time: 0000-01-01T00:00:00Z is not a real date")
	require.ErrorContains(t, (&Card{ActDate: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}).Validate(), "act_date")
	require.ErrorContains(t, (&Pool{ExpiredTime: year0}).Validate(), "expired_time")
	require.NoError(t, (&Card{ExpireTime: time.Date(2099, 12, 31, 0, 0, 0, 0, time.UTC)}).Validate())
}

package store

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/event"
)

// firingBrief reads rule and severity as json.Unmarshal would, whatever a
// provider or rule put in the strings before and after them.
func TestFiringBriefReadsTheKeysNotLookalikes(t *testing.T) {
	for _, e := range []event.Event{
		{ID: `"rule":"fake`, Kind: "firing", Rule: "card_low_flow", Severity: "warning", Summary: `"severity":"critical"`},
		{ID: "x", Rule: `we"ird\rule`, Severity: "info"},
		{ID: "y", Rule: "r", Severity: ""},
		{ID: "z", Rule: "r", Severity: "critical", Labels: map[string]string{"severity": "info"}, Values: json.RawMessage(`{"rule":"other","severity":"info"}`)},
	} {
		data, err := json.Marshal(&e)
		require.NoError(t, err)
		f, ok := firingBrief(data)
		require.True(t, ok)
		require.Equal(t, FiringBrief{Rule: e.Rule, Severity: e.Severity}, f, string(data))
	}
	// Keys in another order (an encoding this store did not write) still read right.
	f, ok := firingBrief([]byte(`{"severity":"critical","summary":"\"rule\":\"no\"","rule":"yes"}`))
	require.True(t, ok)
	require.Equal(t, FiringBrief{Rule: "yes", Severity: "critical"}, f)
	_, ok = firingBrief([]byte(`not json`))
	require.False(t, ok)
}

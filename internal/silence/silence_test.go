package silence

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/event"
	"github.com/simwatch/simwatch/internal/store"
)

func TestMarkMatchesActiveSilencesOnly(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	fleetA, err := New(`rule == "card_low_flow" && "fleet-a" in tags`, "maintenance", 2*time.Hour, now)
	require.NoError(t, err)
	pools, err := New(`entity == "pool" && flow_left < 0`, "known overdraft", time.Hour, now)
	require.NoError(t, err)
	events := []event.Event{
		{ID: "1", Rule: "card_low_flow", Entity: "card", Values: json.RawMessage(`{"tags":["fleet-a"],"flow_left":3}`)},
		{ID: "2", Rule: "card_low_flow", Entity: "card", Values: json.RawMessage(`{"tags":["fleet-b"],"flow_left":3}`)},
		{ID: "3", Rule: "pool_overdraft", Entity: "pool", Values: json.RawMessage(`{"flow_left":-5}`)},
	}
	Mark(events, []store.Silence{fleetA, pools}, now.Add(30*time.Minute))
	require.Equal(t, fleetA.ID, events[0].Silenced)
	require.Empty(t, events[1].Silenced)
	require.Equal(t, pools.ID, events[2].Silenced)
	require.False(t, events[0].For("ops"), "a silenced event goes to no notifier")

	// Silences end on time.
	later := []event.Event{{ID: "4", Rule: "pool_overdraft", Entity: "pool", Values: json.RawMessage(`{"flow_left":-5}`)}}
	Mark(later, []store.Silence{fleetA, pools}, now.Add(61*time.Minute))
	require.Empty(t, later[0].Silenced)
}

func TestCompileErrors(t *testing.T) {
	_, err := New(`flow_lef < 1`, "", time.Hour, time.Now())
	require.ErrorContains(t, err, "unknown name flow_lef")
	_, err = New(`true`, "", 0, time.Now())
	require.ErrorContains(t, err, "duration must be positive")
}

package slack

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/event"
)

// A value the provider left out reads "unknown" in Slack, never 0, and an
// event about no entity at all does not crash the notifier.
func TestFieldsSayUnknownAndNeverPanic(t *testing.T) {
	e := event.Event{Entity: "card", ICCID: "8986", Provider: "hw",
		Values: json.RawMessage(`{"status":null,"flow_left":null,"flow_total":100}`)}
	var text []string
	for _, f := range fields(&e) {
		text = append(text, f.Text)
	}
	require.Equal(t, []string{"*ICCID*\n8986", "*Status*\nunknown", "*Left*\nunknown of 100 MB", "*Provider*\nhw"}, text)

	require.NotPanics(t, func() { fields(&event.Event{EntityID: "x"}) })

	known := event.Event{ID: "a", Severity: "warning", Values: json.RawMessage(`{"flow_left":5}`)}
	unknown := event.Event{ID: "b", Severity: "warning", Values: json.RawMessage(`{"flow_left":null}`)}
	events := []event.Event{unknown, known}
	worstFirst(events)
	require.Equal(t, "a", events[0].ID, "an unknown figure is not the least left")
}

package app_test

import (
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"
)

// Ask the fleet, read the history, silence an alert: all in the rule language.
func TestQueryEventsAndSilences(t *testing.T) {
	e := newEnv(t, "")
	code, out := e.once()
	require.Zero(t, code, out)
	e.patchCard(1, `{"flow_used": 99995, "flow_total": 100000}`)
	code, out = e.once()
	require.Zero(t, code, out)
	require.Len(t, e.recv.take(), 1)

	code, out = e.cli("query", `status == "active" && flow_left < 10`)
	require.Zero(t, code, out)
	require.Contains(t, out, e.iccids[1])
	require.Contains(t, out, "1 cards match")
	code, out = e.cli("query", "--pools", `quantity > 0`)
	require.Zero(t, code, out)
	require.Contains(t, out, "2 pools match")
	code, out = e.cli("query", `flow_lef < 10`)
	require.Equal(t, 1, code)
	require.Contains(t, out, "query:1:1: unknown name flow_lef (did you mean flow_left?)")

	code, out = e.cli("events", "--iccid", e.iccids[1])
	require.Zero(t, code, out)
	require.Regexp(t, `firing\s+card_low_flow\s+hw\s+card `+e.iccids[1], out)

	code, out = e.cli("silence", "add", "--match", `rule == "card_suspended" && flow_left > 0`, "--for", "2h", "--comment", "maintenance")
	require.Zero(t, code, out)
	id := regexp.MustCompile(`silence (\w+) until`).FindStringSubmatch(out)
	require.NotNil(t, id, out)
	code, out = e.cli("silence", "add", "--match", `rule == `, "--for", "2h")
	require.Equal(t, 1, code)
	require.Contains(t, out, "silence match:")

	e.patchCard(2, `{"sim_status": 14}`)
	code, out = e.once()
	require.Zero(t, code, out)
	require.Empty(t, e.recv.take(), "silenced: not notified")
	code, out = e.cli("events", "--rule", "card_suspended")
	require.Zero(t, code, out)
	require.Contains(t, out, "transition (silenced)", "but recorded")

	code, out = e.cli("silence", "list")
	require.Zero(t, code, out)
	require.Regexp(t, id[1]+`\s+true`, out)
	code, out = e.cli("silence", "expire", id[1])
	require.Zero(t, code, out)
	e.patchCard(4, `{"sim_status": 14}`)
	code, out = e.once()
	require.Zero(t, code, out)
	require.Equal(t, []string{"transition card_suspended " + e.iccids[4]}, e.recv.take())
}

package app_test

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// A rule may stop a swapped SIM: the action happens once, and the other
// notifiers hear about it with the work order.
func TestActionStopsSwappedCard(t *testing.T) {
	e := newEnv(t, "")
	raw, err := os.ReadFile(e.config)
	require.NoError(t, err)
	cfg := strings.Replace(string(raw), "notifiers:", "notifiers:\n  - {name: stopper, type: action, provider: hw, operation: stop, rules: [sim_swap], dry_run: false, max_per_hour: 5}", 1)
	require.NoError(t, os.WriteFile(e.config, []byte(cfg), 0o644))
	code, out := e.once()
	require.Zero(t, code, out)

	e.patchCard(3, `{"imei": "869999999999999"}`)
	code, out = e.once()
	require.Zero(t, code, out)
	got := e.recv.takeEvents()
	require.Len(t, got, 2, "%v\n%s", got, out)
	require.Equal(t, "sim_swap", got[0].Rule)
	require.Equal(t, "transition", got[0].Kind)
	require.Equal(t, "action", got[1].Kind)
	require.Regexp(t, `^card `+e.iccids[3]+` stopped by rule sim_swap, work order \d+$`, got[1].Summary)
	require.Equal(t, 1, e.sim.Stats().Actions)

	// Running again acts on nothing new.
	code, out = e.once()
	require.Zero(t, code, out)
	require.Equal(t, 1, e.sim.Stats().Actions)
}

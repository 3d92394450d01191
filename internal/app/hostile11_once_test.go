package app_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Hostile (issue 11, receivers): the receiver answers 503 to everything and
// max_deliver is far from reached when --timeout runs out. `run --once`
// must stop at --timeout and its error must name the notifier and the
// cause (what the receiver answered), not only a count of pending events.
func TestHostile11OnceTimeoutNamesNotifierAndCause(t *testing.T) {
	e := newEnv(t, "")
	code, out := e.once()
	require.Zero(t, code, out)
	e.tune("max_deliver: 4", "max_deliver: 100000")
	e.patchCard(5, `{"sim_status": 14}`)
	e.recv.setDown(true)
	start := time.Now()
	code, out = e.onceWithin(2 * time.Second)
	require.NotZero(t, code, out)
	require.Less(t, time.Since(start), 8*time.Second)
	var final string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "watcher: ") {
			final = l
		}
	}
	require.NotEmpty(t, final, out)
	require.Contains(t, final, "--timeout 2s reached")
	require.Contains(t, final, "crm")
	require.Contains(t, final, "503", "the error names the cause of the pending events: %s", final)
}

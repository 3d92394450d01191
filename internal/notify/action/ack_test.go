package action

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/event"
)

// Someone acknowledging an alert is no reason to stop its card: only
// firings and transitions act.
func TestAcknowledgementDoesNotAct(t *testing.T) {
	r := newRig(t)
	n := r.notifier(t, nil)
	e := swap(2, r.iccids[2])
	e.Kind = event.KindAcknowledged
	e.Summary = "acknowledged by ops: on it"
	_, err := n.Notify(context.Background(), e)
	require.NoError(t, err)
	require.Zero(t, r.sim.Stats().Actions)
	require.Empty(t, r.announcements(t))
	require.Equal(t, "active", r.cardStatus(t, 2))
}

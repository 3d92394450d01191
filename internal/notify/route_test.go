package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestRoute(t *testing.T) {
	tests := []struct {
		name                  string
		notify                []string
		replayFor, recoverFor string
		wantOK, wantReplay    bool
	}{
		{name: "no notify list: every notifier", wantOK: true},
		{name: "named", notify: []string{"ops", "crm"}, wantOK: true},
		{name: "not named", notify: []string{"ops"}},
		{name: "replayed to it, whatever notify says", notify: []string{"ops"}, replayFor: "crm", wantOK: true, wantReplay: true},
		{name: "replayed to another", replayFor: "ops"},
		{name: "recovered for it", notify: []string{"ops"}, recoverFor: "crm", wantOK: true},
		{name: "recovered for another", recoverFor: "ops"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := firing("e", "x", 1, tt.notify...)
			replay, ok := route("crm", &e, tt.replayFor, tt.recoverFor)
			require.Equal(t, tt.wantOK, ok)
			if ok {
				require.Equal(t, tt.wantReplay, replay)
			}
		})
	}
}

// Two notifiers on a real bus, events written by the outbox as a poll
// cycle does: each notifier receives the events that name it (or name
// none); a recovered event goes only to the notifier its header names, and
// a replayed dead letter only to its notifier, which delivers it again.
func TestRoutingOnTheBus(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	crm, ops := &recorder{}, &recorder{}
	start(t, NewDispatcher(f.options(t, "crm", crm)))
	start(t, NewDispatcher(f.options(t, "ops", ops)))
	both := []string{"crm", "ops"}

	evs := appendOutbox(t, f.store, both, firing("a", "a", 0, "crm"), firing("b", "b", 0, "ops"),
		firing("c", "c", 0), firing("d", "d", 0, "ops", "crm"))
	f.publish(t, evs...)
	eventually(t, func() bool { return len(crm.ids()) == 3 && len(ops.ids()) == 3 }, func() string {
		return fmt.Sprintf("first events delivered; crm %v ops %v", crm.ids(), ops.ids())
	})
	require.ElementsMatch(t, []string{"a", "c", "d"}, crm.ids())
	require.ElementsMatch(t, []string{"b", "c", "d"}, ops.ids())

	// r is owed to both, but the bus lost it for ops only.
	r := appendOutbox(t, f.store, both, firing("r", "r", 0))[0]
	data, err := json.Marshal(r)
	require.NoError(t, err)
	require.NoError(t, f.bus.Republish(ctx, "ops", &r, data))
	// c was dead-lettered at crm and is replayed there.
	data, err = json.Marshal(evs[2])
	require.NoError(t, err)
	require.NoError(t, f.bus.DeadLetter(ctx, "crm", data, "c", "test"))
	n, err := f.bus.ReplayDeadLetters(ctx, "crm", nil, true)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	f.publish(t, appendOutbox(t, f.store, both, firing("z", "z", 0))...) // the end, for both
	eventually(t, func() bool { return slices.Contains(crm.ids(), "z") && slices.Contains(ops.ids(), "z") }, func() string {
		return fmt.Sprintf("z delivered; crm %v ops %v", crm.ids(), ops.ids())
	})

	require.ElementsMatch(t, []string{"a", "c", "d", "c", "z"}, crm.ids())
	require.ElementsMatch(t, []string{"b", "c", "d", "r", "z"}, ops.ids())
}

// An event the ledger has never seen (published before the ledger existed,
// e.g. still on the bus across an upgrade) is for every notifier it names:
// each of them must deliver it, not only the first to take it from the bus.
func TestEventUnknownToLedgerReachesEveryNotifier(t *testing.T) {
	f := newFixture(t)
	crm, ops := &recorder{}, &recorder{}
	start(t, NewDispatcher(f.options(t, "crm", crm)))
	start(t, NewDispatcher(f.options(t, "ops", ops)))
	f.publish(t, firing("a", "a", 1), firing("b", "b", 1))
	ok := func() bool { return len(crm.ids()) == 2 && len(ops.ids()) == 2 }
	for deadline := time.Now().Add(3 * time.Second); !ok() && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if !ok() {
		t.Fatalf("both notifiers should deliver both events; crm %v ops %v", crm.ids(), ops.ids())
	}
}

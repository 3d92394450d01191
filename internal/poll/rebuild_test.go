package poll

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/rules"
)

// A cycle that rebuilds the snapshot (many cards changed) commits exactly
// what a cycle writing the cards in its own transaction does: the same
// events, the same snapshot, across new, changed, missing and removed cards.
func TestRebuiltCyclesMatchDirectOnes(t *testing.T) {
	run := func(rebuildMin int) (events [][]string, cards map[string]string) {
		r := newRig(t, lowRule)
		p := New(Options{Provider: "hw", Source: r.client, Store: r.store, Rules: func() *rules.Set { return r.set },
			Now: func() time.Time { return r.now }, RebuildMin: rebuildMin})
		ctx := context.Background()
		steps := []func(){
			func() {},
			func() { r.low(3, 95); r.low(4, 99) },
			func() { require.NoError(t, r.sim.Fleet().RemoveCard(r.iccids[9])) },
			func() { r.low(3, 10) },
			func() {},
		}
		for _, step := range steps {
			step()
			_, err := p.Cycle(ctx)
			require.NoError(t, err)
			events = append(events, r.outbox())
		}
		cards = map[string]string{}
		for _, id := range r.cardIDs() {
			cards[id] = r.cardJSON(id)
		}
		return events, cards
	}
	directEvents, directCards := run(1 << 30)
	rebuiltEvents, rebuiltCards := run(1)
	require.Equal(t, directEvents, rebuiltEvents)
	require.Equal(t, directCards, rebuiltCards)
	require.Len(t, rebuiltCards, 29, "the removed card is gone")
}

// A rebuild whose cycle then fails to commit changes nothing: the next
// cycle sees every change, and the snapshot is as if the failed cycle had
// never run.
func TestRebuildWithoutCommitChangesNothing(t *testing.T) {
	r := newRig(t, lowRule)
	p := New(Options{Provider: "hw", Source: r.client, Store: r.store, Rules: func() *rules.Set { return r.set },
		Now: func() time.Time { return r.now }, RebuildMin: 1})
	ctx := context.Background()
	_, err := p.Cycle(ctx)
	require.NoError(t, err)
	r.outbox()
	before := map[string]string{}
	for _, id := range r.cardIDs() {
		before[id] = r.cardJSON(id)
	}

	// Enough changes for a rebuild: a quarter of the fleet.
	r.low(3, 95)
	for i := 10; i < 20; i++ {
		r.low(i, 20)
	}
	var writes atomic.Int64
	full := errors.New("disk full")
	// The rebuild's transactions go through; the cycle's own does not.
	r.store.InjectCommitFault(func() error {
		if writes.Add(1) > 2 {
			return full
		}
		return nil
	})
	_, err = p.Cycle(ctx)
	require.ErrorIs(t, err, full)
	require.Greater(t, writes.Load(), int64(2), "the rebuild ran")
	r.store.InjectCommitFault(nil)
	after := map[string]string{}
	for _, id := range r.cardIDs() {
		after[id] = r.cardJSON(id)
	}
	require.Equal(t, before, after, "an unadopted rebuild is invisible")

	_, err = p.Cycle(ctx)
	require.NoError(t, err)
	require.Contains(t, r.outbox(), "firing card_low_flow "+r.cardID(3), "the change the failed cycle saw is seen again")
}

package poll

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/fleet"
	"github.com/simwatch/simwatch/internal/rules"
	"github.com/simwatch/simwatch/internal/sim"
	"github.com/simwatch/simwatch/internal/store"
)

// hostile15Hiding lists the fleet without the cards in hide, as a listing
// that lost them would.
type hostile15Hiding struct {
	Lister
	hide map[string]bool
}

func (l *hostile15Hiding) List(ctx context.Context, known fleet.Known) (fleet.Listing, error) {
	got, err := l.Lister.List(ctx, known)
	seen, changed := got.Seen[:0], got.Changed[:0]
	for _, s := range got.Seen {
		if !l.hide[s.ID] {
			seen = append(seen, s)
		}
	}
	for _, c := range got.Changed {
		if !l.hide[c.ID] {
			changed = append(changed, c)
		}
	}
	got.Seen, got.Changed = seen, changed
	return got, err
}

// The counts kept at commit equal a count of the stored cards after every
// committed cycle, and do not move with a cycle that fails: a failing
// commit, a rebuild whose commit fails, an evaluation stopped by its
// context, a new rule set, rules that never walk cards, a fingerprint kind
// change, a card absent and back with another status, removals while
// others change, restarts.
func TestHostile15StatusCountsThroughFailuresAndRestarts(t *testing.T) {
	r := newRig(t, lowRule)
	walk := func() map[string]int {
		counts := map[string]int{}
		for _, id := range r.cardIDs() {
			var c fleet.Card
			require.NoError(t, json.Unmarshal([]byte(r.cardJSON(id)), &c))
			counts[statusOf(&c)]++
		}
		return counts
	}
	stored := func() map[string]int {
		var m store.Meta
		require.NoError(t, r.store.View(func(tx *store.Tx) error {
			pt, err := tx.Provider("hw")
			if err != nil {
				return err
			}
			m, err = pt.Meta()
			return err
		}))
		return m.StatusCounts
	}
	status := func(i, code int) {
		require.NoError(t, r.sim.Fleet().PatchCard(r.iccids[i], sim.CardPatch{SimStatus: &code}))
	}
	hiding := &hostile15Hiding{Lister: r.client, hide: map[string]bool{}}
	var p *Poller
	restart := func(o Options) { o.Lister = hiding; p = r.hostile13Poller(o) }
	restart(Options{})
	cycle := func(name string, ctx context.Context, wantErr bool) {
		t.Helper()
		before := stored()
		_, err := p.Cycle(ctx)
		if wantErr {
			require.Error(t, err, name)
			require.Equal(t, before, stored(), "%s: a failed cycle moved the counts", name)
		} else {
			require.NoError(t, err, name)
		}
		require.Equal(t, walk(), stored(), name)
	}
	bg := context.Background()
	cycle("first", bg, false)

	// A commit that fails after evaluation, then succeeds.
	status(1, 14)
	status(2, 10)
	full := errors.New("disk full")
	r.store.InjectCommitFault(func() error { return full })
	_, err := p.Cycle(bg)
	require.Error(t, err)
	r.store.InjectCommitFault(nil)
	require.Equal(t, walk(), stored(), "after the failed commit")
	cycle("after the failed commit", bg, false)

	// The same on the rebuild path.
	restart(Options{RebuildMin: 1})
	status(3, 14)
	status(1, 10)
	r.store.InjectCommitFault(func() error { return full })
	_, err = p.Cycle(bg)
	require.Error(t, err)
	r.store.InjectCommitFault(nil)
	cycle("rebuild after the failed commit", bg, false)
	restart(Options{})

	// An evaluation stopped by its context fails and moves nothing.
	status(4, 14)
	ctx, cancel := context.WithCancel(bg)
	p.o.Rules = func() *rules.Set { cancel(); return r.set }
	before := stored()
	_, err = p.Cycle(ctx)
	require.ErrorContains(t, err, "evaluate", "stopped in evaluation")
	require.Equal(t, before, stored(), "a stopped cycle moved the counts")
	p.o.Rules = func() *rules.Set { return r.set }
	cycle("after the stopped one", bg, false)

	// A new rule set (every card evaluated), then rules that never walk cards.
	set, err := rules.Parse("r2.yaml", []byte("rules:\n  - {name: card_low_flow, on: card, when: 'flow_left < 20'}\n"), rules.LoadOptions{})
	require.NoError(t, err)
	r.set = set
	status(5, 99)
	cycle("new rule set", bg, false)
	pools, err := rules.Parse("r3.yaml", []byte("rules:\n  - {name: pool_low, on: pool, when: 'flow_left < 1'}\n"), rules.LoadOptions{})
	require.NoError(t, err)
	r.set = pools
	status(5, 14)
	status(6, 14)
	cycle("pool rules only", bg, false)

	// A card changes status, is absent (held or missing), and is back with
	// another status; across a restart.
	status(7, 14)
	cycle("changed", bg, false)
	hiding.hide[r.cardID(7)] = true
	cycle("absent", bg, false)
	cycle("absent twice: held, the provider still has it", bg, false)
	require.Contains(t, r.cardIDs(), r.cardID(7))
	restart(Options{})
	status(7, 10)
	delete(hiding.hide, r.cardID(7))
	cycle("back, changed", bg, false)

	// Removed after two absences while others change, on the rebuild path.
	gone := r.cardID(8)
	require.NoError(t, r.sim.Fleet().RemoveCard(r.iccids[8]))
	cycle("absent once", bg, false)
	restart(Options{RebuildMin: 1})
	status(9, 14)
	status(10, 99)
	cycle("removed while others change", bg, false)
	require.NotContains(t, r.cardIDs(), gone)

	// Another fingerprint kind: every card decoded again.
	r.spoilMeta(func(_ *store.ProviderTx, m *store.Meta) error { m.FPKind = "older-kind"; return nil })
	restart(Options{})
	status(11, 14)
	cycle("another kind", bg, false)
	cycle("steady", bg, false)
}

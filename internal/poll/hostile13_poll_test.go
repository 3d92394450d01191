package poll

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/rules"
	"github.com/simwatch/simwatch/internal/store"
)

// hostile13Poller is a fresh poller (a restarted watcher) over the rig.
func (r *rig) hostile13Poller(o Options) *Poller {
	o.Provider, o.Source, o.Store = "hw", r.client, r.store
	o.Rules = func() *rules.Set { return r.set }
	o.Now = func() time.Time { return r.now }
	return New(o)
}

func (r *rig) hostile13Spoil(spoil func(pt *store.ProviderTx, meta *store.Meta) error) {
	require.NoError(r.t, r.store.Update(func(tx *store.Tx) error {
		pt, err := tx.Provider("hw")
		if err != nil {
			return err
		}
		meta, err := pt.Meta()
		if err != nil {
			return err
		}
		if err := spoil(pt, &meta); err != nil {
			return err
		}
		return pt.PutMeta(meta)
	}))
}

func (r *rig) hostile13Has(id string) bool {
	var ok bool
	require.NoError(r.t, r.store.View(func(tx *store.Tx) error {
		pt, err := tx.Provider("hw")
		if err != nil {
			return err
		}
		_, ok, err = pt.Card(id)
		return err
	}))
	return ok
}

// Upgrade from a store written before fingerprints were recorded: the first
// cycle (small fleet, no rebuild) records fingerprints for the cards it
// listed only. A card absent from that listing keeps its place in the
// snapshot but has no fingerprint. If the watcher restarts before the
// second listing, load() reads card_fp (which now exists) and no longer
// knows the absent card at all: it is never absent again, never removed,
// and reads as "back" although the provider still lacks it.
func TestHostile13UpgradeRestartLosesAbsentCard(t *testing.T) {
	r := newRig(t, lowRule)
	ctx := context.Background()
	_, err := r.hostile13Poller(Options{}).Cycle(ctx)
	require.NoError(t, err)
	r.outbox()
	r.hostile13Spoil(func(pt *store.ProviderTx, _ *store.Meta) error { return pt.DropCardFPs() })

	gone := r.cardID(9)
	require.NoError(t, r.sim.Fleet().RemoveCard(r.iccids[9]))
	res, err := r.hostile13Poller(Options{}).Cycle(ctx) // the upgraded watcher's first cycle
	require.NoError(t, err)
	require.Equal(t, 1, res.Missing, "the removed card is missed once")

	// kill -9 / restart between the two listings.
	res, err = r.hostile13Poller(Options{}).Cycle(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, res.Removed, "a card absent from two complete listings in a row is removed (DESIGN §6)")
	require.False(t, r.hostile13Has(gone), "the removed card stays in the snapshot forever")
}

package poll

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"github.com/simwatch/simwatch/internal/fleet"
	"github.com/simwatch/simwatch/internal/rules"
	"github.com/simwatch/simwatch/internal/sim"
	"github.com/simwatch/simwatch/internal/store"
)

// countingLister counts the cards a listing decoded.
type countingLister struct {
	Lister
	decoded int
}

func (l *countingLister) List(ctx context.Context, known fleet.Known) (fleet.Listing, error) {
	got, err := l.Lister.List(ctx, known)
	l.decoded = len(got.Changed)
	return got, err
}

// A steady cycle decodes only the cards that changed, also after a restart:
// the fingerprints come back from the store, not from decoding the fleet.
func TestSteadyCycleDecodesOnlyChangedCards(t *testing.T) {
	r := newRig(t, lowRule)
	ctx := context.Background()
	cl := &countingLister{Lister: r.client}
	p := New(Options{Provider: "hw", Source: r.client, Lister: cl, Store: r.store, Rules: func() *rules.Set { return r.set }, Now: func() time.Time { return r.now }})
	res, err := p.Cycle(ctx)
	require.NoError(t, err)
	require.Equal(t, 30, cl.decoded, "a first listing decodes every card")
	require.Equal(t, 30, res.Cards)
	r.outbox()

	r.low(3, 95)
	r.low(7, 50)
	res, err = p.Cycle(ctx)
	require.NoError(t, err)
	require.Equal(t, 2, cl.decoded)
	require.Equal(t, []string{"firing card_low_flow " + r.cardID(3)}, r.outbox())

	// A new process: fingerprints are loaded, nothing is decoded.
	p2 := New(Options{Provider: "hw", Source: r.client, Lister: cl, Store: r.store, Rules: func() *rules.Set { return r.set }, Now: func() time.Time { return r.now }})
	res, err = p2.Cycle(ctx)
	require.NoError(t, err)
	require.Equal(t, 0, cl.decoded)
	require.Equal(t, 30, res.Cards)
	require.Empty(t, r.outbox())
	r.low(3, 10)
	_, err = p2.Cycle(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, cl.decoded)
	require.Equal(t, []string{"resolved card_low_flow " + r.cardID(3)}, r.outbox())
}

// cardID is the GSL id of the rig's i-th card.
func (r *rig) cardID(i int) string {
	var id string
	require.NoError(r.t, r.store.View(func(tx *store.Tx) error {
		pt, err := tx.Provider("hw")
		if err != nil {
			return err
		}
		return pt.ForEachCard(func(k string, enc []byte) error {
			c, err := store.DecodeCard(enc)
			if err == nil && c.ICCID == r.iccids[i] {
				id = k
			}
			return err
		})
	}))
	require.NotEmpty(r.t, id)
	return id
}

// A store written before fingerprints were recorded, or with fingerprints
// of another kind, is read as knowing its cards by id only: the first cycle
// decodes every card, compares each with its stored version, and raises
// nothing that was not already raised; cards it lacks still go missing.
func TestUnknownFingerprintsDecodeAllWithoutFalseAlerts(t *testing.T) {
	for name, spoil := range map[string]func(pt *store.ProviderTx, meta *store.Meta) error{
		"no fingerprints recorded": func(pt *store.ProviderTx, _ *store.Meta) error { return pt.DropCardFPs() },
		"another kind":             func(_ *store.ProviderTx, meta *store.Meta) error { meta.FPKind = "older-kind"; return nil },
	} {
		t.Run(name, func(t *testing.T) {
			r := newRig(t, lowRule)
			ctx := context.Background()
			r.low(3, 95)
			_, err := r.poller().Cycle(ctx)
			require.NoError(t, err)
			require.Len(t, r.outbox(), 1)
			r.spoilMeta(spoil)
			gone := r.cardID(9)
			require.NoError(t, r.sim.Fleet().RemoveCard(r.iccids[9]))
			cl := &countingLister{Lister: r.client}
			p := New(Options{Provider: "hw", Source: r.client, Lister: cl, Store: r.store, Rules: func() *rules.Set { return r.set }, Now: func() time.Time { return r.now }})
			res, err := p.Cycle(ctx)
			require.NoError(t, err)
			require.Equal(t, 29, cl.decoded)
			require.Equal(t, 1, res.Missing, "the removed card is missed once")
			require.Empty(t, r.outbox(), "a card already firing fires again")
			_, err = p.Cycle(ctx)
			require.NoError(t, err)
			require.Equal(t, 0, cl.decoded, "the fingerprints were recorded")
			require.NoError(t, r.store.View(func(tx *store.Tx) error {
				pt, err := tx.Provider("hw")
				require.NoError(t, err)
				_, ok, err := pt.Card(gone)
				require.False(t, ok, "a card absent twice is removed")
				return err
			}))
		})
	}
}

// Rules that read the clock see unchanged cards, read from the snapshot,
// when they are due; and a card that went missing and comes back unchanged
// is no longer missing.
func TestUnchangedCardsReadFromSnapshot(t *testing.T) {
	r := newRig(t, `rules:
  - {name: expiring, on: card, when: 'days_until(expire_time) < 30'}
`)
	ctx := context.Background()
	p := New(Options{Provider: "hw", Source: r.client, Store: r.store, Rules: func() *rules.Set { return r.set }, Now: func() time.Time { return r.now }, ClockEvery: time.Hour})
	_, err := p.Cycle(ctx)
	require.NoError(t, err)
	first := len(r.outbox())
	// Two years on, every card's plan is about to end; nothing changed in
	// the listing, so only the clock evaluation over the snapshot can tell.
	r.now = r.now.Add(2 * 365 * 24 * time.Hour)
	res, err := p.Cycle(ctx)
	require.NoError(t, err)
	require.Zero(t, res.Changed)
	require.True(t, res.ClockRules)
	require.Greater(t, len(r.outbox()), first, "clock rules did not see the unchanged cards")
}

// cardIDs lists the stored cards' ids.
func (r *rig) cardIDs() []string {
	var ids []string
	require.NoError(r.t, r.store.View(func(tx *store.Tx) error {
		pt, err := tx.Provider("hw")
		if err != nil {
			return err
		}
		return pt.ForEachCardID(func(id string) { ids = append(ids, id) })
	}))
	return ids
}

// cardJSON is a stored card as JSON.
func (r *rig) cardJSON(id string) string {
	var out string
	require.NoError(r.t, r.store.View(func(tx *store.Tx) error {
		pt, err := tx.Provider("hw")
		if err != nil {
			return err
		}
		c, _, err := pt.Card(id)
		b, _ := json.Marshal(c)
		out = string(b)
		return err
	}))
	return out
}

// A snapshot that cannot be loaded (a damaged alert record) fails every
// cycle, and is counted like a failing provider: provider_unhealthy says so.
func TestUnloadableSnapshotIsSignalled(t *testing.T) {
	r, path := hostile13RigAt(t, lowRule)
	ctx := context.Background()
	_, err := r.hostile13Poller(Options{}).Cycle(ctx)
	require.NoError(t, err)
	r.outbox()
	r.hostile13Reopen(path, func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("providers")).Bucket([]byte("hw")).Bucket([]byte("alerts")).Put([]byte("x"), []byte("{not json"))
	})
	p := r.hostile13Poller(Options{UnhealthyAfter: 2})
	for range 2 {
		r.now = r.now.Add(10 * time.Minute)
		_, err = p.Cycle(ctx)
		require.ErrorContains(t, err, "load snapshot")
	}
	require.EqualValues(t, 2, p.Failures())
	require.Contains(t, r.outbox(), "firing provider_unhealthy hw")
}

// The snapshot's cards by status, kept by each commit from what changed,
// always equal a count of the stored cards: through status changes, an
// unknown status, a removal, a rebuild, and an upgrade from a store that
// kept no counts.
func TestStatusCountsFollowTheSnapshot(t *testing.T) {
	r := newRig(t, lowRule)
	ctx := context.Background()
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
	steps := []struct {
		name string
		do   func()
		o    Options
	}{
		{"first cycle", func() {}, Options{}},
		{"suspended and test", func() { status(1, 14); status(2, 10) }, Options{}},
		{"a code simwatch does not know", func() { status(3, 99) }, Options{}},
		{"absent once", func() { require.NoError(t, r.sim.Fleet().RemoveCard(r.iccids[5])) }, Options{}},
		{"removed", func() {}, Options{}},
		{"rebuilt", func() { status(1, 20); status(6, 14) }, Options{RebuildMin: 1}},
		{"upgraded", func() {
			r.spoilMeta(func(_ *store.ProviderTx, m *store.Meta) error { m.StatusCounts = nil; return nil })
			status(7, 30)
		}, Options{}},
	}
	for _, st := range steps {
		st.do()
		_, err := r.hostile13Poller(st.o).Cycle(ctx)
		require.NoError(t, err, st.name)
		require.Equal(t, walk(), stored(), st.name)
	}
	require.Equal(t, 1, stored()["unknown"])
	require.Equal(t, 29, len(r.cardIDs()))
}

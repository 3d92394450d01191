package poll

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"github.com/simwatch/simwatch/internal/fleet"
	"github.com/simwatch/simwatch/internal/rules"
	"github.com/simwatch/simwatch/internal/sim"
	"github.com/simwatch/simwatch/internal/store"
)

// hostile13Poller is a fresh poller (a restarted watcher) over the rig.
func (r *rig) hostile13Poller(o Options) *Poller {
	o.Provider, o.Source, o.Store = "hw", r.client, r.store
	o.Rules = func() *rules.Set { return r.set }
	o.Now = func() time.Time { return r.now }
	return New(o)
}

func (r *rig) spoilMeta(spoil func(pt *store.ProviderTx, meta *store.Meta) error) {
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
	r.spoilMeta(func(pt *store.ProviderTx, _ *store.Meta) error { return pt.DropCardFPs() })

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

// hostile13Reopen closes the rig's store, lets edit change the bbolt file
// directly (a damaged or foreign store), and opens it again.
func (r *rig) hostile13Reopen(path string, edit func(tx *bolt.Tx) error) {
	require.NoError(r.t, r.store.Close())
	db, err := bolt.Open(path, 0o600, nil)
	require.NoError(r.t, err)
	require.NoError(r.t, db.Update(edit))
	require.NoError(r.t, db.Close())
	st, err := store.Open(path)
	require.NoError(r.t, err)
	r.t.Cleanup(func() { st.Close() })
	r.store = st
}

// hostile13RigAt is newRig with its store at a known path.
func hostile13RigAt(t *testing.T, rulesSrc string) (*rig, string) {
	r := newRig(t, rulesSrc)
	path := filepath.Join(t.TempDir(), "h13.db")
	st, err := store.Open(path)
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	r.store = st
	return r, path
}

// A fingerprint value that is not 8 bytes (a damaged or foreign store) is
// no fingerprint: the card is decoded again, compared with its stored
// version, raises nothing, and is known again afterwards.
func TestHostile13CorruptFingerprintValue(t *testing.T) {
	r, path := hostile13RigAt(t, lowRule)
	ctx := context.Background()
	_, err := r.hostile13Poller(Options{}).Cycle(ctx)
	require.NoError(t, err)
	r.outbox()
	id := r.cardID(4)
	r.hostile13Reopen(path, func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("providers")).Bucket([]byte("hw")).Bucket([]byte("card_fp")).Put([]byte(id), []byte{1, 2, 3})
	})
	cl := &countingLister{Lister: r.client}
	p := r.hostile13Poller(Options{Lister: cl})
	_, err = p.Cycle(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, cl.decoded, "the card with the damaged fingerprint is decoded again")
	require.Empty(t, r.outbox(), "no card event from a damaged fingerprint")
	_, err = r.hostile13Poller(Options{Lister: cl}).Cycle(ctx)
	require.NoError(t, err)
	require.Zero(t, cl.decoded, "its fingerprint was recorded again")
}

// A rebuild whose second transaction never commits (the process killed in
// the middle of it) leaves a half-written staging bucket. A later cycle with
// few changes writes directly and must not adopt it; the snapshot and the
// fingerprints stay those of the listings, across a restart.
func TestHostile13HalfRebuildNeverAdopted(t *testing.T) {
	r := newRig(t, lowRule)
	ctx := context.Background()
	o := Options{RebuildMin: 5}
	_, err := r.hostile13Poller(o).Cycle(ctx)
	require.NoError(t, err)
	r.outbox()

	orig := map[int]fleet.Card{}
	for i := 10; i < 17; i++ {
		var c fleet.Card
		require.NoError(t, json.Unmarshal([]byte(r.cardJSON(r.cardID(i))), &c))
		orig[i] = c
		r.low(i, 95)
	}
	var writes atomic.Int64
	kill := errors.New("killed")
	r.store.InjectCommitFault(func() error {
		if writes.Add(1) == 2 { // the staging bucket is made; its first chunk never lands
			return kill
		}
		return nil
	})
	_, err = r.hostile13Poller(o).Cycle(ctx)
	require.ErrorIs(t, err, kill)
	r.store.InjectCommitFault(nil)

	// Six of the seven changes are undone at the provider: one change now,
	// written directly.
	for i := 11; i < 17; i++ {
		used, total := orig[i].FlowUsed, orig[i].FlowTotal
		require.NoError(t, r.sim.Fleet().PatchCard(r.iccids[i], sim.CardPatch{FlowUsed: &used, FlowTotal: &total}))
	}
	before := map[string]string{}
	for _, id := range r.cardIDs() {
		before[id] = r.cardJSON(id)
	}
	changed := r.cardID(10)
	p := r.hostile13Poller(o)
	res, err := p.Cycle(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"firing card_low_flow " + changed}, r.outbox())
	require.ElementsMatch(t, []string{changed}, hostile13Diff(before, r), "only the changed card moved")
	require.Equal(t, 1, res.Changed, "the undone changes are no changes")

	// A new process knows every card: nothing decoded, nothing raised.
	cl := &countingLister{Lister: r.client}
	_, err = r.hostile13Poller(Options{Lister: cl, RebuildMin: 5}).Cycle(ctx)
	require.NoError(t, err)
	require.Zero(t, cl.decoded)
	require.Empty(t, r.outbox())

	// And a rebuild after that works from the live snapshot.
	for i := 20; i < 26; i++ {
		r.low(i, 97)
	}
	_, err = r.hostile13Poller(Options{Lister: cl, RebuildMin: 5}).Cycle(ctx)
	require.NoError(t, err)
	require.Equal(t, 6, cl.decoded)
	require.Len(t, r.outbox(), 6)
	require.Len(t, r.cardIDs(), 30)
}

func hostile13Diff(before map[string]string, r *rig) []string {
	var out []string
	for _, id := range r.cardIDs() {
		if before[id] != r.cardJSON(id) {
			out = append(out, id)
		}
	}
	return out
}

// Upgrade from a store without fingerprints, on the rebuild path: the
// absent card's fingerprint is carried (as 0) and it is removed after the
// second absence, across a restart.
func TestHostile13UpgradeRebuildRestartRemovesAbsentCard(t *testing.T) {
	r := newRig(t, lowRule)
	ctx := context.Background()
	_, err := r.hostile13Poller(Options{}).Cycle(ctx)
	require.NoError(t, err)
	r.outbox()
	r.spoilMeta(func(pt *store.ProviderTx, _ *store.Meta) error { return pt.DropCardFPs() })
	gone := r.cardID(9)
	require.NoError(t, r.sim.Fleet().RemoveCard(r.iccids[9]))
	res, err := r.hostile13Poller(Options{RebuildMin: 1}).Cycle(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, res.Missing)
	res, err = r.hostile13Poller(Options{RebuildMin: 1}).Cycle(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, res.Removed)
	require.False(t, r.hostile13Has(gone))
}

const hostile13IMEIRules = `rules:
  - name: card_not_in_original_device
    on: card
    when: imei != "" && first_imei() != "" && imei != first_imei()
`

// first_imei() through a sequence A, unknown, B, A, C, with restarts
// between cycles: the alert fires when the card is in a device other than
// its first and resolves when it is back, and an IMEI gone unknown raises
// nothing.
func TestHostile13FirstIMEISequence(t *testing.T) {
	r := newRig(t, hostile13IMEIRules)
	ctx := context.Background()
	setIMEI := func(imei string) {
		p := sim.CardPatch{Unset: []string{}}
		if imei == "?" {
			p.Unset = []string{"imei"}
		} else {
			p.IMEI = &imei
		}
		require.NoError(t, r.sim.Fleet().PatchCard(r.iccids[5], p))
	}
	setIMEI("350000000000001")
	_, err := r.hostile13Poller(Options{}).Cycle(ctx)
	require.NoError(t, err)
	require.Empty(t, r.outbox(), "a first listing raises nothing")
	id := r.cardID(5)
	for _, step := range []struct {
		imei string
		want []string
	}{
		{"350000000000001", nil},
		{"?", nil},
		{"350000000000002", []string{"firing card_not_in_original_device " + id}},
		{"?", nil},
		{"350000000000001", []string{"resolved card_not_in_original_device " + id}},
		{"350000000000003", []string{"firing card_not_in_original_device " + id}},
		{"350000000000001", []string{"resolved card_not_in_original_device " + id}},
	} {
		setIMEI(step.imei)
		r.now = r.now.Add(time.Hour)
		_, err := r.hostile13Poller(Options{}).Cycle(ctx) // a restart before every cycle
		require.NoError(t, err)
		require.Equal(t, step.want, r.outbox(), "imei %s", step.imei)
	}
}

// A record that changes only in bytes (a key the watcher does not read, a
// number written another way) is decoded again and raises nothing; the
// next cycle knows it.
func TestHostile13BytesOnlyChangeRaisesNothing(t *testing.T) {
	r := newRig(t, lowRule+`  - {name: any_change, on: card, when: 'changed("status") || changed("imei") || changed("flow_used")'}
`)
	ctx := context.Background()
	cl := &countingLister{Lister: r.client}
	p := r.hostile13Poller(Options{Lister: cl})
	_, err := p.Cycle(ctx)
	require.NoError(t, err)
	r.outbox()
	for _, note := range []string{`{"a":[1,2]}`, `{"a":[1.0,2]}`, `{"a":[1.0,2e0],"\u0061":null}`} {
		require.NoError(t, r.sim.Fleet().PatchCard(r.iccids[6], sim.CardPatch{Raw: sim.Raw("x_vendor_note", note)}))
		res, err := p.Cycle(ctx)
		require.NoError(t, err)
		require.Equal(t, 1, cl.decoded, note)
		require.Equal(t, 1, res.Changed)
		require.Empty(t, r.outbox(), note)
	}
	_, err = r.hostile13Poller(Options{Lister: cl}).Cycle(ctx)
	require.NoError(t, err)
	require.Zero(t, cl.decoded)
	require.Empty(t, r.outbox())
}

// A steady fleet (every record known) while the provider lists a card
// twice, or drifts once: the streamed listing is still checked whole. A
// duplicate fails the cycle with no card event and no state moved; a drift
// that clears on the next attempt lists every card once, nothing missing.
func TestHostile13StreamedListingChecksHold(t *testing.T) {
	r := newRig(t, lowRule)
	ctx := context.Background()
	cl := &countingLister{Lister: r.client}
	p := r.hostile13Poller(Options{Lister: cl})
	_, err := p.Cycle(ctx)
	require.NoError(t, err)
	r.outbox()

	r.low(15, 95) // page 2's sixth card changes
	r.sim.AddFault(sim.Fault{Kind: sim.FaultDup, Path: "sim-cards", Page: 2})
	_, err = p.Cycle(ctx)
	require.ErrorContains(t, err, "listed twice")
	require.Empty(t, r.outbox(), "no card event from a listing with an id twice")
	r.sim.ClearFaults()

	r.sim.AddFault(sim.Fault{Kind: sim.FaultDrift, Path: "sim-cards", Page: 2, Shift: 1, Count: 1})
	res, err := p.Cycle(ctx)
	require.NoError(t, err)
	require.Zero(t, res.Missing, "a drift fetched again loses no card")
	require.Equal(t, 30, res.Cards)
	require.Equal(t, 1, cl.decoded, "only the changed card is decoded")
	require.Equal(t, []string{"firing card_low_flow " + r.cardID(15)}, r.outbox())
}

// A damaged fingerprint value fails every cycle at load, for good: nothing
// recovers it (the card could simply be decoded again), and the failures
// are never counted, so failed_cycles stays 0 and provider_unhealthy never
// fires, unlike a commit that fails on a damaged file (health.go). The
// watcher stalls silently.
func TestHostile13DamagedFingerprintStallsSilently(t *testing.T) {
	r, path := hostile13RigAt(t, lowRule)
	ctx := context.Background()
	_, err := r.hostile13Poller(Options{}).Cycle(ctx)
	require.NoError(t, err)
	r.outbox()
	id := r.cardID(4)
	r.hostile13Reopen(path, func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("providers")).Bucket([]byte("hw")).Bucket([]byte("card_fp")).Put([]byte(id), []byte{1, 2, 3})
	})
	p := r.hostile13Poller(Options{UnhealthyAfter: 2})
	var errs []error
	for range 3 {
		r.now = r.now.Add(10 * time.Minute)
		_, err := p.Cycle(ctx)
		errs = append(errs, err)
	}
	recovered := errs[len(errs)-1] == nil
	signalled := p.Failures() > 0 && slices.Contains(r.outbox(), "firing provider_unhealthy hw")
	require.True(t, recovered || signalled,
		"a damaged fingerprint neither recovers nor is signalled: failures=%d, last error: %v", p.Failures(), errs[len(errs)-1])
}

package poll

// Second hostile round: feature interactions, restarts between any two
// cycles, and old store records.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/fleet"
	"github.com/simwatch/simwatch/internal/provider/linkcard"
	"github.com/simwatch/simwatch/internal/rules"
	"github.com/simwatch/simwatch/internal/sim"
	"github.com/simwatch/simwatch/internal/store"
)

// errSource lists scripted snapshots; a nil one is a failed fetch.
type errSource struct {
	snaps []*fleet.Snapshot
	i     int
}

func (s *errSource) Fetch(context.Context) (fleet.Snapshot, error) {
	snap := s.snaps[s.i]
	s.i++
	if snap == nil {
		return fleet.Snapshot{}, errors.New("provider down")
	}
	return *snap, nil
}

const restartRulesA = `rules:
  - {name: low, on: card, when: 'status == "active" && flow_left < 10', for: 20m, repeat: 1h, resolve_when: 'flow_left > 20'}
  - {name: pct90, on: card, when: 'flow_total > 0 && pct(flow_used, flow_total) >= 90', rearm: cycle, keep_firing_for: 30m}
  - {name: kff, on: card, when: 'flow_left < 30', keep_firing_for: 45m}
  - {name: suspended, on: card, when: 'prev.status == "active" && status == "suspended"'}
  - {name: left_changed, on: card, when: 'changed("flow_left")'}
  - {name: gone, on: card, when: removed}
  - {name: expiring, on: card, when: 'days_until(expire_time) < 7', repeat: 2h}
  - {name: stale, on: card, when: 'hours_since(act_date) > 24', rearm: cycle}
  - {name: unknown_left, on: card, when: '!known("flow_left")'}
  - {name: pool_over, on: pool, when: 'flow_left < 0', repeat: 2h, keep_firing_for: 20m}
  - {name: pool_gone, on: pool, when: removed}
`

// the reloaded set: low edited, kff gone, a new clock rule.
const restartRulesB = `rules:
  - {name: low, on: card, when: 'status == "active" && flow_left < 15', for: 20m, repeat: 1h, resolve_when: 'flow_left > 20'}
  - {name: pct90, on: card, when: 'flow_total > 0 && pct(flow_used, flow_total) >= 90', rearm: cycle, keep_firing_for: 30m}
  - {name: suspended, on: card, when: 'prev.status == "active" && status == "suspended"'}
  - {name: left_changed, on: card, when: 'changed("flow_left")'}
  - {name: gone, on: card, when: removed}
  - {name: expiring, on: card, when: 'days_until(expire_time) < 8', repeat: 2h}
  - {name: stale, on: card, when: 'hours_since(act_date) > 24', rearm: cycle}
  - {name: unknown_left, on: card, when: '!known("flow_left")'}
  - {name: pool_over, on: pool, when: 'flow_left < 0', repeat: 2h, keep_firing_for: 20m}
  - {name: pool_gone, on: pool, when: removed}
`

// randomScript builds a sequence of listings over a billing-month boundary
// (China time) with unknown values, absences, removals, returns, failures.
func randomScript(seed uint64, n int, start time.Time) ([]*fleet.Snapshot, []time.Time) {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e37))
	left := map[string]float64{}
	var snaps []*fleet.Snapshot
	var times []time.Time
	now := start
	for i := 0; i < n; i++ {
		now = now.Add(time.Duration(5+rng.IntN(40)) * time.Minute)
		times = append(times, now)
		if rng.IntN(12) == 0 {
			snaps = append(snaps, nil)
			continue
		}
		snap := &fleet.Snapshot{}
		for c := 0; c < 8; c++ {
			id := fmt.Sprint(c + 1)
			if rng.IntN(6) == 0 {
				continue // absent from this listing
			}
			l, ok := left[id]
			if !ok || rng.IntN(3) == 0 {
				l = []float64{5, 12, 25, 50, 95, 8}[rng.IntN(6)]
				left[id] = l
			}
			st := "active"
			code := 3
			if rng.IntN(5) == 0 {
				st, code = "suspended", 4
			}
			card := fleet.Card{Provider: "hw", ID: id, ICCID: "8986" + id, Status: st, StatusCode: code, FlowLeft: l, FlowUsed: 100 - l, FlowTotal: 100,
				IMEI: "imei" + id, ExpireTime: start.AddDate(0, 0, 5+c), ActDate: start.Add(-time.Duration(c) * 6 * time.Hour)}
			switch rng.IntN(5) {
			case 0:
				card.FlowLeft, card.FlowUsed, card.FlowTotal = 0, 0, 0
				card.Unknown |= fleet.CardField("flow_left") | fleet.CardField("flow_used") | fleet.CardField("flow_total")
			case 1:
				card.Status, card.StatusCode = "", 99
				card.Unknown |= fleet.CardField("status")
			case 2:
				card.ExpireTime, card.ActDate = time.Time{}, time.Time{}
				card.Unknown |= fleet.CardField("expire_time") | fleet.CardField("act_date")
			}
			snap.Cards = append(snap.Cards, card)
		}
		for p := 0; p < 3; p++ {
			if rng.IntN(5) == 0 {
				continue
			}
			id := fmt.Sprint("p", p)
			l := []float64{-5, 10, 40}[rng.IntN(3)]
			pool := fleet.Pool{Provider: "hw", ID: id, Name: id, FlowTotal: 100, FlowUsed: 100 - l, FlowLeft: l}
			if rng.IntN(4) == 0 {
				pool.FlowLeft, pool.FlowUsed = 0, 0
				pool.Unknown |= fleet.PoolField("flow_left") | fleet.PoolField("flow_used")
			}
			snap.Pools = append(snap.Pools, pool)
		}
		snaps = append(snaps, snap)
	}
	return snaps, times
}

// runScript polls the script, restarting the poller before every cycle
// when restart is set, and swapping the rule set at step swapAt.
func runScript(t *testing.T, snaps []*fleet.Snapshot, times []time.Time, restart bool, swapAt int, clockEvery time.Duration) []string {
	setA, err := rules.Parse("a.yaml", []byte(restartRulesA), rules.LoadOptions{})
	require.NoError(t, err)
	setB, err := rules.Parse("b.yaml", []byte(restartRulesB), rules.LoadOptions{})
	require.NoError(t, err)
	st, err := store.Open(filepath.Join(t.TempDir(), "s.db"))
	require.NoError(t, err)
	defer st.Close()
	src := &errSource{snaps: snaps}
	var now time.Time
	cur := setA
	mk := func() *Poller {
		return New(Options{Provider: "hw", Source: src, Store: st, Rules: func() *rules.Set { return cur }, Now: func() time.Time { return now },
			ClockEvery: clockEvery, UnhealthyAfter: 2})
	}
	p := mk()
	var got []string
	for i := range snaps {
		now = times[i]
		if i == swapAt {
			cur = setB
		}
		if restart {
			p = mk()
		}
		_, _ = p.Cycle(context.Background())
		for _, e := range clearOutbox(t, st) {
			if e.Event.Rule == RuleUnhealthy {
				continue // the failure count is per process (not promised across restarts)
			}
			got = append(got, fmt.Sprintf("%02d %s %s %s %s", i, e.Event.Kind, e.Event.Rule, e.Event.EntityID, e.Event.ID[:8]))
		}
	}
	return got
}

// Restart between any two cycles: the state loaded from bbolt must equal
// the in-memory state, so a run with a restart before every cycle produces
// exactly the events of a run without restarts — across unknown values,
// absences, removals, failed cycles, a rule set reload and the end of a
// billing month (2026-11-30 16:00 UTC is December in China time).
func TestAttack2RestartBetweenAnyTwoCyclesChangesNothing(t *testing.T) {
	start := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	for seed := uint64(1); seed <= 12; seed++ {
		for _, clockEvery := range []time.Duration{0, time.Hour} {
			snaps, times := randomScript(seed, 40, start)
			a := runScript(t, snaps, times, false, 20, clockEvery)
			b := runScript(t, snaps, times, true, 20, clockEvery)
			slices.Sort(a) // order within a cycle is not promised
			slices.Sort(b)
			if !slices.Equal(a, b) {
				t.Fatalf("seed %d clock_every %v: events differ with restarts\nwithout:\n%s\nwith:\n%s", seed, clockEvery, strings.Join(a, "\n"), strings.Join(b, "\n"))
			}
		}
	}
}

// Promise 2 over the whole script: no condition rule reading flow_left
// fires or resolves on a listing where the card's flow_left is unknown, and
// no left_changed transition fires next to an unknown flow_left.
func TestAttack2NoEventOnUnknownAcrossFeatures(t *testing.T) {
	start := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	for seed := uint64(1); seed <= 12; seed++ {
		snaps, times := randomScript(seed, 40, start)
		setA, err := rules.Parse("a.yaml", []byte(restartRulesA), rules.LoadOptions{})
		require.NoError(t, err)
		st, err := store.Open(filepath.Join(t.TempDir(), "s.db"))
		require.NoError(t, err)
		src := &errSource{snaps: snaps}
		var now time.Time
		p := New(Options{Provider: "hw", Source: src, Store: st, Rules: func() *rules.Set { return setA }, Now: func() time.Time { return now }})
		for i := range snaps {
			now = times[i]
			_, _ = p.Cycle(context.Background())
			if snaps[i] == nil {
				continue
			}
			unknown := map[string]bool{}
			for _, c := range snaps[i].Cards {
				if c.Unknown.Has(fleet.CardField("flow_left")) {
					unknown[c.ID] = true
				}
			}
			for _, e := range clearOutbox(t, st) {
				if !unknown[e.Event.EntityID] || e.Event.Entity != fleet.EntityCard {
					continue
				}
				switch e.Event.Rule {
				case "low", "kff", "left_changed":
					t.Errorf("seed %d step %d: %s %s on card %s whose flow_left is unknown", seed, i, e.Event.Kind, e.Event.Rule, e.Event.EntityID)
				case "pct90":
					if e.Event.Kind != "resolved" {
						t.Errorf("seed %d step %d: %s %s on card %s whose flow_used is unknown", seed, i, e.Event.Kind, e.Event.Rule, e.Event.EntityID)
					}
				}
			}
		}
		st.Close()
	}
}

// v1 records are the snapshot as an older watcher wrote it: the same
// fields without the Unknown mask. A card whose flow_left was unknown then
// was stored as 0 (the mask was dropped on encoding). After the upgrade,
// the new code decodes that record as a known 0 and compares the first v2
// listing against it.
func TestAttack2CodecV1UnknownBecomesKnownZero(t *testing.T) {
	// Regression: a hostile tester found this.
	set, err := rules.Parse("r.yaml", []byte(`rules:
  - {name: recovered, on: card, when: 'prev.flow_left < 10 && flow_left >= 10'}
  - {name: left_changed, on: card, when: 'changed("flow_left")'}
`), rules.LoadOptions{})
	require.NoError(t, err)
	st, err := store.Open(filepath.Join(t.TempDir(), "s.db"))
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	old := fleet.Card{Provider: "hw", ID: "1", ICCID: "89861", Status: "active", StatusCode: 3, FlowLeft: 0, FlowUsed: 0, FlowTotal: 0,
		Unknown: fleet.CardField("flow_left") | fleet.CardField("flow_used") | fleet.CardField("flow_total")}
	noMask := old
	noMask.Unknown = 0
	v2 := fleet.EncodeCard(nil, &noMask) // ends with the mask 0: one byte
	// v1: version byte 1, no trailing Unknown mask (what the old encoder wrote).
	v1 := append([]byte{1}, v2[1:len(v2)-1]...)
	dec, err := store.DecodeCard(v1)
	require.NoError(t, err)
	require.Equal(t, "1", dec.ID)
	require.NoError(t, st.Update(func(tx *store.Tx) error {
		pt, err := tx.Provider("hw")
		if err != nil {
			return err
		}
		return pt.PutCard("1", v1)
	}))
	cur := old
	cur.FlowLeft, cur.FlowUsed, cur.FlowTotal, cur.Unknown = 50, 50, 100, 0
	src := &seqSource{snaps: []fleet.Snapshot{{Cards: []fleet.Card{cur}}}}
	now := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	p := New(Options{Provider: "hw", Source: src, Store: st, Rules: func() *rules.Set { return set }, Now: func() time.Time { return now }})
	_, err = p.Cycle(context.Background())
	require.NoError(t, err)
	var got []string
	for _, e := range clearOutbox(t, st) {
		got = append(got, e.Event.Kind+" "+e.Event.Rule)
	}
	require.Empty(t, got, "the v1 record's flow_left (written as 0 while unknown) was read as a known 0")
}

// A fleet that churns while it is listed (one card dismantled, one added:
// the count stays the same) shifts offset paging under the client: the
// card at the page boundary is skipped, and the listing passes every check
// (counts agree, no short page, no id twice, distinct == count). Twice in a
// row for the same card — it takes churn in two consecutive cycles — and a
// card that never left the provider is removed.
func TestAttack2ChurnBetweenPagesRemovesAPresentCard(t *testing.T) {
	// Regression: a hostile tester found this.
	r := newRig(t, hostileRules)
	ctx := context.Background()
	p := r.poller()
	_, err := p.Cycle(ctx)
	require.NoError(t, err)
	r.outbox()
	fl := r.sim.Fleet()
	x := r.iccids[20] // on page 3's first row
	straddle := func(page int, mutate func()) (Result, error) {
		for pg := page; pg <= 4; pg++ { // every page from `page` on, probe included, answers after the change
			r.sim.AddFault(sim.Fault{Kind: sim.FaultSlow, Path: "sim-cards", Page: pg, DelayMS: 400, Count: 1})
		}
		type res struct {
			res Result
			err error
		}
		done := make(chan res, 1)
		go func() { rs, err := p.Cycle(ctx); done <- res{rs, err} }()
		time.Sleep(150 * time.Millisecond) // the pages before `page` are in
		mutate()
		out := <-done
		return out.res, out.err
	}
	// Cycle 2: page 3 is slow; meanwhile card 0 is dismantled and one added.
	r.now = r.now.Add(10 * time.Minute)
	res, err := straddle(3, func() {
		require.NoError(t, fl.RemoveCard(r.iccids[0]))
		fl.AddCard(30)
	})
	require.NoError(t, err)
	t.Logf("cycle 2: missing %d x=%s", res.Missing, x)
	dumpMissing(t, r)
	// Between cycles, nine more dismantled: x is now the first row of page 2.
	for i := 2; i <= 10; i++ {
		require.NoError(t, fl.RemoveCard(r.iccids[i]))
	}
	// Cycle 3: page 2 is slow; meanwhile one more dismantled, one added.
	r.now = r.now.Add(10 * time.Minute)
	res, err = straddle(2, func() {
		require.NoError(t, fl.RemoveCard(r.iccids[11]))
		fl.AddCard(30)
	})
	if err != nil {
		t.Logf("cycle 3 failed (fine): %v", err)
		return
	}
	t.Logf("cycle 3: missing %d removed %d", res.Missing, res.Removed)
	dumpMissing(t, r)
	var removedX bool
	var xID string
	for _, e := range r.outbox() {
		if strings.HasPrefix(e, "transition card_removed ") {
			xID = strings.TrimPrefix(e, "transition card_removed ")
		}
	}
	// x never left the provider: it must not be removed.
	snap := map[string]bool{}
	require.NoError(t, r.store.View(func(tx *store.Tx) error {
		pt, err := tx.Provider("hw")
		if err != nil {
			return err
		}
		return pt.ForEachCard(func(id string, enc []byte) error {
			c, err := store.DecodeCard(enc)
			if err != nil {
				return err
			}
			snap[c.ICCID] = true
			return nil
		})
	}))
	removedX = !snap[x]
	require.False(t, removedX, "card %s (iccid %s) was listed by the provider throughout, yet removed (card_removed for %q)", x, x, xID)
}

func dumpMissing(t *testing.T, r *rig) {
	require.NoError(t, r.store.View(func(tx *store.Tx) error {
		pt, err := tx.Provider("hw")
		if err != nil {
			return err
		}
		m, err := pt.Missing()
		for k := range m {
			id := strings.SplitN(k, "\x00", 2)[1]
			c, _, _ := pt.Card(id)
			t.Logf("missing %q iccid %s", k, c.ICCID)
		}
		return err
	}))
}

// LinkCard derives pools from the members' PoolId / DataType /
// CredentialNo. A member whose CredentialNo (or DataType) the provider
// leaves out or sends as null is read as "a card with its own allowance":
// a missing value decides pool membership, the pool loses that member's
// allowance and usage, and pool rules fire on figures nobody reported.
func TestAttack2LinkCardNullCredentialNoLeavesThePool(t *testing.T) {
	// Regression: a hostile tester found this.
	for _, tc := range []struct {
		name  string
		patch sim.CardPatch
	}{
		{"CredentialNo null", sim.CardPatch{Raw: sim.Raw("CredentialNo", `null`)}},
		{"DataType and CredentialType left out", sim.CardPatch{Unset: []string{"DataType", "CredentialType"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := sim.NewServer(sim.Options{Fleet: sim.NewFleet(sim.FleetOptions{Cards: 30, Pools: 2, Seed: 9, Calm: true})})
			ts := httptest.NewServer(s.Handler())
			t.Cleanup(ts.Close)
			c, err := linkcard.New(linkcard.Options{Name: "ali", Endpoint: ts.URL, AccessKeyID: "k", AccessKeySecret: "s",
				PageSize: 10, Rate: 1000, Retries: -1, Backoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond})
			require.NoError(t, err)
			snap, err := c.Fetch(context.Background())
			require.NoError(t, err)
			// a pool member
			var member fleet.Card
			for _, cd := range snap.Cards {
				if cd.PoolID != "" {
					member = cd
					break
				}
			}
			require.NotEmpty(t, member.ID, "the fleet has pooled cards")
			poolOf := func(snap fleet.Snapshot, id string) fleet.Pool {
				for _, p := range snap.Pools {
					if p.ID == id {
						return p
					}
				}
				return fleet.Pool{}
			}
			before := poolOf(snap, member.PoolID)
			require.NoError(t, s.Fleet().PatchCard(member.ICCID, tc.patch))
			snap2, err := c.Fetch(context.Background())
			if err != nil {
				t.Logf("fetch fails (acceptable): %v", err)
				return
			}
			after := poolOf(snap2, member.PoolID)
			t.Logf("pool %s before: quantity %d total %g left %g unknown %b; after: quantity %d total %g left %g unknown %b",
				member.PoolID, before.Quantity, before.FlowTotal, before.FlowLeft, before.Unknown, after.Quantity, after.FlowTotal, after.FlowLeft, after.Unknown)
			known := func(p fleet.Pool, f string) bool { return !p.Unknown.Has(fleet.PoolField(f)) }
			if known(after, "quantity") {
				require.Equal(t, before.Quantity, after.Quantity, "quantity: the member's pool is unknown, not 'none'")
			}
			if known(after, "flow_total") {
				require.Equal(t, before.FlowTotal, after.FlowTotal, "flow_total changed by a value the provider left out")
			}
		})
	}
}

// A provider date just outside what JSON can carry: GSL sends
// "0000-01-01T00:00:00+08:00" (year -1 in UTC) or
// "9999-12-31T23:59:59-08:00" (year 10000 in UTC) as a card's
// expire_time. The listing is accepted; the first rule that fires on the
// card (or any alert it creates) marshals the card and panics: the poller
// crashes, and a restarted watcher crashes again on the same listing.
func TestAttack2OutOfRangeDateCrashesThePoller(t *testing.T) {
	// Regression: a hostile tester found this.
	for _, date := range []string{`"0000-01-01T00:00:00+08:00"`, `"9999-12-31T23:59:59-08:00"`} {
		t.Run(date, func(t *testing.T) {
			r := newRig(t, lowRule+"  - {name: expiring, on: card, when: 'days_until(expire_time) < 7'}\n")
			require.NoError(t, r.sim.Fleet().PatchCard(r.iccids[3], sim.CardPatch{Raw: sim.Raw("expire_time", date)}))
			p := r.poller()
			var err error
			func() {
				defer func() {
					if v := recover(); v != nil {
						t.Errorf("poller panicked: %v", v)
					}
				}()
				_, err = p.Cycle(context.Background())
			}()
			if err != nil {
				t.Logf("cycle failed (acceptable if it names card and field): %v", err)
				require.Contains(t, err.Error(), "expire_time")
			}
			// the cards API / events would need it as JSON too
			snap, ferr := r.client.Fetch(context.Background())
			if ferr == nil {
				for _, c := range snap.Cards {
					_, jerr := json.Marshal(c)
					require.NoError(t, jerr, "a listed card cannot be encoded as JSON (events, /api/v1/cards)")
				}
			}
		})
	}
}

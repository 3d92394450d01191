package store_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"github.com/simwatch/simwatch/internal/event"
	"github.com/simwatch/simwatch/internal/poll"
	"github.com/simwatch/simwatch/internal/provider/gsl"
	"github.com/simwatch/simwatch/internal/rules"
	"github.com/simwatch/simwatch/internal/sim"
	"github.com/simwatch/simwatch/internal/store"
)

// localOnly are the root buckets each watcher keeps for itself, left out
// of the comparison of replicated stores:
//   - outbox: the relay removes entries once published, each watcher on
//     its own schedule (the entries written by Apply are equal);
//   - ledger*, delivered, settled, notified, event_mutes, actions,
//     threads*: the local delivery record (cluster mode owes events to no
//     notifier and uses the shared delivery log instead);
//   - replica: this store's position in the state stream;
//   - probe, rebuilt: health probes and snapshots rebuilt beside the live
//     one (never in cluster mode).
//
// Everything else — providers, acks, silences, alert_seq, firing, events,
// event_refs, the event index — must be equal byte for byte, history keys
// included (they are numbered by the events bucket's sequence, which only
// Apply moves on a replicated store).
func localOnly(name string) bool {
	switch name {
	case "outbox", "delivered", "settled", "notified", "event_mutes", "actions", "replica", "probe", "rebuilt":
		return true
	}
	return strings.HasPrefix(name, "ledger") || strings.HasPrefix(name, "thread")
}

// dump lists every key/value (and bucket sequence) of the replicated
// buckets, by path.
func dump(t *testing.T, path string) []string {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	require.NoError(t, err)
	defer db.Close()
	var out []string
	var walk func(prefix string, b *bolt.Bucket)
	walk = func(prefix string, b *bolt.Bucket) {
		out = append(out, fmt.Sprintf("%s seq=%d", prefix, b.Sequence()))
		_ = b.ForEach(func(k, v []byte) error {
			if v == nil {
				walk(prefix+"/"+string(k), b.Bucket(k))
				return nil
			}
			out = append(out, fmt.Sprintf("%s/%q=%q", prefix, k, v))
			return nil
		})
	}
	require.NoError(t, db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			if !localOnly(string(name)) {
				walk(string(name), b)
			}
			return nil
		})
	}))
	return out
}

const pendingRules = `rules:
  - {name: card_low_flow, on: card, when: 'flow_left < 10'}
  - {name: card_low_for, on: card, when: 'flow_left < 20', for: 2h}
`

// replicated is a writer store A and a standby B, both fed every delta A
// records, through Apply, as the state stream would; and a reference store
// C where each transaction runs as it does outside a cluster (Update): a
// write that escapes recording leaves C different from A and B.
type replicated struct {
	t                   *testing.T
	a, b, c             *store.Store
	pathA, pathB, pathC string
	seq                 uint64
	deltas              int
	withEvents          int
}

func newReplicated(t *testing.T) *replicated {
	dir := t.TempDir()
	r := &replicated{t: t, pathA: filepath.Join(dir, "a.db"), pathB: filepath.Join(dir, "b.db"), pathC: filepath.Join(dir, "c.db")}
	var err error
	r.c, err = store.Open(r.pathC)
	require.NoError(t, err)
	r.a, err = store.Open(r.pathA)
	require.NoError(t, err)
	r.b, err = store.Open(r.pathB)
	require.NoError(t, err)
	return r
}

func (r *replicated) commit(subject string, fn func(*store.Tx) error) error {
	d, err := r.a.Record(fn)
	if err != nil {
		return err
	}
	require.NoError(r.t, r.c.Update(fn))
	if d.Empty() {
		return nil
	}
	data, err := d.MarshalBinary()
	require.NoError(r.t, err)
	var got store.Delta
	require.NoError(r.t, got.UnmarshalBinary(data)) // as it travels
	r.seq++
	r.deltas++
	if len(got.Events) > 0 {
		r.withEvents++
	}
	for _, s := range []*store.Store{r.a, r.b} {
		applied, err := s.Apply(subject, r.seq, got)
		require.NoError(r.t, err)
		require.True(r.t, applied)
	}
	return nil
}

func TestRecordApplyReplicatesPollAckAndSilences(t *testing.T) {
	r := newReplicated(t)
	s := sim.NewServer(sim.Options{Fleet: sim.NewFleet(sim.FleetOptions{Cards: 40, Pools: 3, Seed: 5, Calm: true})})
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	client, err := gsl.New(gsl.Options{Name: "hw", Endpoint: ts.URL, Token: "t", PageSize: 10, Rate: 1000, Retries: -1,
		Backoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond})
	require.NoError(t, err)
	set, err := rules.Parse("r.yaml", []byte(pendingRules), rules.LoadOptions{})
	require.NoError(t, err)
	now := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	subject := "p.hw"
	p := poll.New(poll.Options{Provider: "hw", Source: client, Store: r.a, Rules: func() *rules.Set { return set },
		UnhealthyAfter: 1, Now: func() time.Time { return now },
		Commit: func(_ context.Context, fn func(*store.Tx) error) error { return r.commit(subject, fn) }})
	ctx := context.Background()
	iccids := s.Fleet().CardICCIDs()
	low := func(i int, used float64) {
		total := 100.0
		require.NoError(t, s.Fleet().PatchCard(iccids[i], sim.CardPatch{FlowUsed: &used, FlowTotal: &total}))
	}
	cycle := func() {
		t.Helper()
		_, err := p.Cycle(ctx)
		require.NoError(t, err)
		now = now.Add(time.Hour)
	}
	cycle() // cold: every card, pool, first IMEI, history
	low(0, 95)
	low(1, 85) // pending under card_low_for
	cycle()
	s.Fleet().AddCard(100)
	require.NoError(t, s.Fleet().RemoveCard(iccids[5]))
	cycle() // card 5 absent once: missing mark
	low(1, 99)
	cycle() // card 5 removed; card 1 fires both rules
	s.AddFault(sim.Fault{Kind: sim.FaultError, Path: "sim-cards", Count: 100})
	_, err = p.Cycle(ctx) // outage: health write and provider_unhealthy
	require.Error(t, err)
	s.ClearFaults()
	now = now.Add(time.Hour)
	cycle() // answering again: resolved
	low(0, 1)
	cycle() // card 0 resolves

	var alert string
	require.NoError(t, r.a.View(func(tx *store.Tx) error {
		pt, err := tx.Provider("hw")
		if err != nil {
			return err
		}
		alerts, err := pt.Alerts()
		for k, a := range alerts {
			if a.State == rules.StateFiring {
				alert = k
			}
		}
		return err
	}))
	require.NotEmpty(t, alert, "a firing alert to acknowledge")
	announce := func(a *rules.Alert, ack store.Ack) *event.Event {
		return &event.Event{ID: "ack-" + ack.By, Kind: "acknowledged", Provider: "hw", Rule: a.Rule, Entity: a.Entity,
			EntityID: a.EntityID, ObservedAt: now}
	}
	require.NoError(t, r.commit(subject, func(tx *store.Tx) error {
		_, created, err := tx.Ack(store.Ack{Provider: "hw", Alert: alert, By: "ops", Comment: "on it", At: now}, announce)
		require.True(t, created)
		return err
	}))
	require.NoError(t, r.commit("g.silences", func(tx *store.Tx) error {
		return tx.PutSilence(store.Silence{ID: "s1", Match: `rule == "card_low_flow"`, CreatedAt: now, EndsAt: now.Add(time.Hour)})
	}))
	require.NoError(t, r.commit("g.silences", func(tx *store.Tx) error { return tx.ExpireSilence("s1", now.Add(time.Minute)) }))
	low(1, 0)
	cycle() // the acked alert resolves
	require.NoError(t, r.commit(subject, func(tx *store.Tx) error {
		// A new ack drops the stale one.
		_, _, err := tx.Ack(store.Ack{Provider: "hw", Alert: alert, By: "x"}, nil)
		require.ErrorIs(t, err, store.ErrNoAlert)
		return nil
	}))

	require.Greater(t, r.withEvents, 3)
	acks, err := r.b.Acks()
	require.NoError(t, err)
	require.Empty(t, acks, "the ack's episode is over on the standby too")
	sl, err := r.b.Silences()
	require.NoError(t, err)
	require.Len(t, sl, 1)
	require.Equal(t, now.Add(-time.Hour+time.Minute).Unix(), sl[0].EndsAt.Unix())
	evA, err := r.a.Events(store.EventFilter{Limit: 1000})
	require.NoError(t, err)
	evB, err := r.b.Events(store.EventFilter{Limit: 1000})
	require.NoError(t, err)
	require.Equal(t, evA, evB)
	require.Greater(t, len(evB), 5)
	outB, err := r.b.OutboxEncoded(1000)
	require.NoError(t, err)
	require.Len(t, outB, len(evB), "every event waits in the standby's outbox too")

	require.NoError(t, r.a.Close())
	require.NoError(t, r.b.Close())
	require.NoError(t, r.c.Close())
	da, db, dc := dump(t, r.pathA), dump(t, r.pathB), dump(t, r.pathC)
	require.Equal(t, da, db)
	require.Equal(t, dc, da, "a write escaped recording")
	require.Greater(t, len(da), 100)
}

func TestRecordRollsBackAndReturnsFnError(t *testing.T) {
	r := newReplicated(t)
	boom := fmt.Errorf("boom")
	_, err := r.a.Record(func(tx *store.Tx) error {
		pt, err := tx.Provider("hw")
		require.NoError(t, err)
		require.NoError(t, pt.PutCard("c1", []byte("x")))
		return boom
	})
	require.Same(t, boom, err)
	d, err := r.a.Record(func(tx *store.Tx) error {
		pt, err := tx.Provider("hw")
		require.NoError(t, err)
		require.NoError(t, pt.PutCard("c1", []byte("x")))
		require.NoError(t, pt.DropCardFPs())
		require.ErrorIs(t, pt.AdoptRebuilt(), store.ErrRecording)
		return tx.AppendOutbox([]event.Event{{ID: "e1", Kind: event.KindFiring, Provider: "hw", Rule: "r", ObservedAt: time.Now()}})
	})
	require.NoError(t, err)
	require.Len(t, d.Ops, 1)
	require.Len(t, d.Events, 1)
	require.Contains(t, string(d.Events[0]), `"seq":1`)
	require.NoError(t, r.a.View(func(tx *store.Tx) error {
		pt, _ := tx.Provider("hw")
		_, found, err := pt.Card("c1")
		require.False(t, found, "nothing recorded stays written")
		return err
	}))
	out, err := r.a.OutboxEncoded(10)
	require.NoError(t, err)
	require.Empty(t, out)
}

func TestApplySkipsOldSeqsAndKeepsEventSeqs(t *testing.T) {
	r := newReplicated(t)
	ev := func(id string) event.Event {
		return event.Event{ID: id, Kind: event.KindFiring, Provider: "hw", Rule: "r", Entity: "card", EntityID: "c", ObservedAt: time.Now()}
	}
	// The writer's alert is at seq 7; the standby has never seen it.
	e := ev("e7")
	e.Seq = 7
	data, err := e.Encode(event.MaxSize)
	require.NoError(t, err)
	applied, err := r.b.Apply("p.hw", 3, store.Delta{Events: [][]byte{data}})
	require.NoError(t, err)
	require.True(t, applied)
	applied, err = r.b.Apply("p.hw", 3, store.Delta{Events: [][]byte{data}})
	require.NoError(t, err)
	require.False(t, applied, "seen twice, applied once")
	out, err := r.b.Outbox(10)
	require.NoError(t, err)
	require.Len(t, out, 1)
	require.Equal(t, uint64(7), out[0].Event.Seq)
	// The standby taking over continues the alert at 8.
	require.NoError(t, r.b.Update(func(tx *store.Tx) error { return tx.AppendOutbox([]event.Event{ev("e8")}) }))
	out, err = r.b.Outbox(10)
	require.NoError(t, err)
	require.Equal(t, uint64(8), out[1].Event.Seq)
	pos, appliedSeqs, err := r.b.ReplicaPosition()
	require.NoError(t, err)
	require.Zero(t, pos)
	require.Equal(t, map[string]uint64{"p.hw": 3}, appliedSeqs)
	require.NoError(t, r.b.SetReplicaPosition(42))
	pos, _, err = r.b.ReplicaPosition()
	require.NoError(t, err)
	require.Equal(t, uint64(42), pos)
}

func TestApplyRefusesLocalBucketsAndBadInput(t *testing.T) {
	r := newReplicated(t)
	for name, d := range map[string]store.Delta{
		"outbox":      {Ops: []store.Op{{Kind: store.OpPut, Path: [][]byte{[]byte("outbox")}, Key: []byte("k"), Value: []byte("v")}}},
		"replica":     {Ops: []store.Op{{Kind: store.OpPut, Path: [][]byte{[]byte("replica")}, Key: []byte("pos"), Value: []byte("v")}}},
		"empty path":  {Ops: []store.Op{{Kind: store.OpPut, Key: []byte("k"), Value: []byte("v")}}},
		"empty name":  {Ops: []store.Op{{Kind: store.OpPut, Path: [][]byte{[]byte("providers"), {}}, Key: []byte("k")}}},
		"empty key":   {Ops: []store.Op{{Kind: store.OpPut, Path: [][]byte{[]byte("acks")}, Value: []byte("v")}}},
		"bad event":   {Events: [][]byte{[]byte("{not json")}},
		"into a meta": {Ops: []store.Op{{Kind: store.OpPut, Path: [][]byte{[]byte("providers"), []byte("hw"), []byte("meta")}, Key: []byte("k")}}},
		"bad kind":    {Ops: []store.Op{{Kind: 9, Path: [][]byte{[]byte("acks")}, Key: []byte("k")}}},
		"drop a root": {Ops: []store.Op{{Kind: store.OpDropBucket, Path: [][]byte{[]byte("providers")}}}},
		"drop a root after a put": {Ops: []store.Op{
			{Kind: store.OpPut, Path: [][]byte{[]byte("silences")}, Key: []byte("k"), Value: []byte("v")},
			{Kind: store.OpDropBucket, Path: [][]byte{[]byte("silences")}},
		}},
	} {
		if name == "into a meta" {
			require.NoError(t, r.b.Update(func(tx *store.Tx) error {
				pt, err := tx.Provider("hw")
				require.NoError(t, err)
				return pt.PutMeta(store.Meta{Cycles: 1})
			}))
		}
		applied, err := r.b.Apply("p.hw", 1, d)
		require.ErrorIs(t, err, store.ErrBadDelta, name)
		require.False(t, applied, name)
	}
	_, appliedSeqs, err := r.b.ReplicaPosition()
	require.NoError(t, err)
	require.Empty(t, appliedSeqs, "a refused delta is not applied")
}

func TestApplyDeleteCreatesNoBucket(t *testing.T) {
	r := newReplicated(t)
	require.NoError(t, r.commit("p.hw", func(tx *store.Tx) error {
		pt, err := tx.Provider("hw")
		require.NoError(t, err)
		require.NoError(t, pt.PutCard("c1", []byte("x")))
		return pt.DeleteCard("c0") // no fingerprints recorded yet
	}))
	require.NoError(t, r.b.View(func(tx *store.Tx) error {
		pt, _ := tx.Provider("hw")
		known, err := pt.ForEachCardFP(func(string, uint64) {})
		require.False(t, known, "a standby still knows its cards by id only")
		return err
	}))
}

package notify

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/event"
	"github.com/simwatch/simwatch/internal/store"
)

func itemIDs(its []*item) []string {
	var ids []string
	for _, it := range its {
		ids = append(ids, it.ev.ID)
	}
	return ids
}

// With the real ledger: an alert's seq 2 waits while its seq 1 is owed and
// not in hand; other alerts go; once seq 1 is in hand both go, in order; once
// seq 1 is settled, seq 2 goes alone.
func TestOrderSplitHoldsOnlyTheLateAlert(t *testing.T) {
	st := openStore(t)
	evs := appendOutbox(t, st, []string{"crm"},
		firing("a1", "a", 0), resolved("a2", "a", 0), firing("b1", "b", 0))
	require.Equal(t, []uint64{1, 2, 1}, []uint64{evs[0].Seq, evs[1].Seq, evs[2].Seq})

	receive := func(es ...event.Event) []*item {
		var in []store.Incoming
		for _, e := range es {
			in = append(in, store.Incoming{Event: e})
		}
		recs, err := st.Receive("crm", in)
		require.NoError(t, err)
		var its []*item
		for i, r := range recs {
			require.True(t, r.Take)
			its = append(its, &item{lseq: r.LSeq, ev: es[i]})
		}
		return its
	}
	o := Order{Notifier: "crm", Ledger: st}

	// a2 and b1 reach the notifier before a1.
	late := receive(evs[1], evs[2])
	ready, held, err := o.Split(late)
	require.NoError(t, err)
	require.Equal(t, []string{"b1"}, itemIDs(ready), "another alert goes")
	require.Equal(t, []string{"a2"}, itemIDs(held), "seq 2 waits for seq 1")

	// a1 arrives: a1 and a2 go together, a1 first.
	a1 := receive(evs[0])
	ready, held, err = o.Split(append(slices.Clone(late), a1...))
	require.NoError(t, err)
	require.Equal(t, []string{"a1", "a2", "b1"}, itemIDs(ready))
	require.Empty(t, held)

	// a1 alone in a group of its own is settled: a2 goes alone.
	require.NoError(t, st.Settle("crm", t0, []store.Outcome{{LSeq: a1[0].lseq, ID: "a1", Result: store.Delivered}}))
	ready, held, err = o.Split(late[:1])
	require.NoError(t, err)
	require.Equal(t, []string{"a2"}, itemIDs(ready))
	require.Empty(t, held)
}

// Through a Dispatcher: seq 1 of alert a is refused a few times; meanwhile a
// resolution (seq 2), a new firing (seq 3) whose group is still in its
// group_interval, a resolution (seq 4) whose group is due first, and another
// alert arrive. The receiver sees the other alert without waiting for
// alert a's window, and alert a's events strictly in seq order.
func TestDispatcherDeliversEachAlertInSeqOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := openStore(t)
		refused := 0
		rec := &recorder{fail: func(_ int, events []event.Event) (bool, error) {
			if slices.ContainsFunc(events, func(e event.Event) bool { return e.ID == "a1" }) && refused < 3 {
				refused++
				return true, errors.New("HTTP 503")
			}
			return false, nil
		}}
		cons := &fakeConsumer{}
		d := NewDispatcher(Options{Name: "crm", Notifier: rec, Consumer: cons.fn(), Ledger: st,
			DeadLetters: noDeadLetters{t}, GroupBy: []string{"entity_id", "kind"}, GroupInterval: time.Minute,
			MaxDeliver: 10, Backoff: Backoff{Base: time.Second, Max: time.Second}})
		begin := time.Now()
		cons.add(firing("a1", "a", 1))
		start(t, d)

		time.Sleep(10 * time.Second)
		synctest.Wait()
		require.Equal(t, []string{"a1"}, rec.ids(), "a1 delivered after its retries")
		require.Equal(t, 3, refused)

		a3 := firing("a3", "a", 3)
		a3.StartsAt = t0.Add(time.Hour) // the alert fires again
		a4 := resolved("a4", "a", 4)
		a4.StartsAt = a3.StartsAt
		cons.add(resolved("a2", "a", 2), a3, a4, firing("b1", "b", 1))
		time.Sleep(5 * time.Second)
		synctest.Wait()
		require.ElementsMatch(t, []string{"a1", "a2", "b1"}, rec.ids(),
			"b1 and a2 go at once (their groups concurrently); a4 waits for a3, whose group waits out its interval")

		time.Sleep(time.Minute)
		synctest.Wait()
		require.ElementsMatch(t, []string{"a1", "a2", "b1", "a3", "a4"}, rec.ids())
		var ofA []string
		for _, id := range rec.ids() {
			if strings.HasPrefix(id, "a") {
				ofA = append(ofA, id)
			}
		}
		require.Equal(t, []string{"a1", "a2", "a3", "a4"}, ofA, "alert a's events in seq order")
		for _, dl := range rec.deliveries() {
			if dl.ID == "a3" {
				require.GreaterOrEqual(t, dl.At.Sub(begin), time.Minute, "a3 waited for group_interval")
			}
		}
		require.EqualValues(t, 5, d.Stats.Delivered.Load())
		require.EqualValues(t, 3, d.Stats.Retried.Load())
		require.Empty(t, inHand(t, st, "crm"))
		require.True(t, cons.allAcked())
	})
}

// README, Delivery guarantees: "A late event (its receiver down, its retries
// running) holds back only its own alert; other alerts flow." An event of
// another alert, in another group, that arrives while seq 1 of alert a is
// between retries must not wait for those retries to end.
func TestRetriesOfOneAlertDoNotHoldBackOthers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := openStore(t)
		refused := 0
		rec := &recorder{fail: func(_ int, events []event.Event) (bool, error) {
			if slices.ContainsFunc(events, func(e event.Event) bool { return e.ID == "a1" }) && refused < 5 {
				refused++
				return true, errors.New("HTTP 503")
			}
			return false, nil
		}}
		cons := &fakeConsumer{}
		d := NewDispatcher(Options{Name: "crm", Notifier: rec, Consumer: cons.fn(), Ledger: st,
			DeadLetters: noDeadLetters{t}, GroupBy: []string{"entity_id"},
			MaxDeliver: 10, Backoff: Backoff{Base: 30 * time.Second, Max: 30 * time.Second}})
		begin := time.Now()
		cons.add(firing("a1", "a", 1))
		start(t, d)
		time.Sleep(2 * time.Second)
		synctest.Wait()
		require.Equal(t, 1, refused, "a1 refused once, now waiting to retry")
		cons.add(firing("b1", "b", 1))

		time.Sleep(5 * time.Minute)
		synctest.Wait()
		got := rec.deliveries()
		require.Len(t, got, 2)
		var b1At time.Duration
		for _, dl := range got {
			if dl.ID == "b1" {
				b1At = dl.At.Sub(begin)
			}
		}
		require.Less(t, b1At, 10*time.Second,
			"b1 (another alert) waited %v, behind alert a's retries; receiver order %v", b1At, rec.ids())
	})
}

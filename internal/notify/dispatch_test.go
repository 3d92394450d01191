package notify

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/event"
)

// A dispatcher stopped while its receiver is down leaves the event in the
// ledger (the bus already forgot it); the next dispatcher on the same store
// delivers it at once, not after the bus's ack_wait, and only once.
func TestEventInHandDeliveredAfterRestart(t *testing.T) {
	f := newFixture(t)
	down := &recorder{fail: func(int, []event.Event) (bool, error) { return true, errors.New("HTTP 503") }}
	o := f.options(t, "crm", down)
	o.MaxDeliver, o.Backoff = 1000, Backoff{Base: 10 * time.Millisecond, Max: 10 * time.Millisecond}
	stop := start(t, NewDispatcher(o))
	f.publish(t, appendOutbox(t, f.store, []string{"crm"}, firing("e1", "a", 0))...)
	eventually(t, func() bool { return down.callCount() >= 2 }, func() string { return "receiver never tried" })
	n, err := f.bus.Pending(context.Background(), "crm")
	require.NoError(t, err)
	require.Zero(t, n, "the bus forgot it: only the ledger holds it")
	stop()
	require.Equal(t, []string{"e1"}, inHand(t, f.store, "crm"))

	up := &recorder{}
	o = f.options(t, "crm", up)
	began := time.Now()
	d := NewDispatcher(o)
	start(t, d)
	eventually(t, func() bool { return len(up.ids()) == 1 }, func() string { return "e1 not delivered after restart" })
	require.Less(t, time.Since(began), 5*time.Second, "from the ledger, not after ack_wait (30s)")
	// Something published later is a barrier: by the time it arrives, a
	// repeat of e1 would have too.
	f.publish(t, appendOutbox(t, f.store, []string{"crm"}, firing("e2", "b", 0))...)
	eventually(t, func() bool { return slices.Contains(up.ids(), "e2") }, func() string { return fmt.Sprint(up.ids()) })
	require.Equal(t, []string{"e1", "e2"}, up.ids(), "e1 exactly once")
	// The receiver has e2 a moment before the ledger settles it.
	eventually(t, func() bool { return len(inHand(t, f.store, "crm")) == 0 }, func() string { return fmt.Sprint(inHand(t, f.store, "crm")) })
	delivered, err := f.store.Delivered("crm", "e1")
	require.NoError(t, err)
	require.True(t, delivered)
}

// A permanent failure is dead-lettered at once; a retryable one after
// max_deliver attempts; either way with the reason, on the bus's dead-letter
// stream, and the event leaves the ledger undelivered.
func TestFailureDeadLetters(t *testing.T) {
	tests := []struct {
		name         string
		retry        bool
		wantAttempts int
		wantReason   string
	}{
		{name: "permanent", retry: false, wantAttempts: 1, wantReason: "permanent error: HTTP 400 bad payload"},
		{name: "retryable", retry: true, wantAttempts: 3, wantReason: "after 3 attempts: HTTP 400 bad payload"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			ctx := context.Background()
			rec := &recorder{fail: func(int, []event.Event) (bool, error) { return tt.retry, errors.New("HTTP 400 bad payload") }}
			d := NewDispatcher(f.options(t, "crm", rec)) // max_deliver 3
			start(t, d)
			f.publish(t, appendOutbox(t, f.store, []string{"crm"}, firing("e1", "a", 0))...)
			eventually(t, func() bool { return d.Stats.DeadLettered.Load() == 1 }, func() string { return "not dead-lettered" })

			dls, err := f.bus.ListDeadLetters(ctx, "crm")
			require.NoError(t, err)
			require.Len(t, dls, 1)
			require.Equal(t, "e1", dls[0].Event.ID)
			require.Equal(t, tt.wantReason, dls[0].Error)
			require.Equal(t, tt.wantReason, d.LastDeadLetter())
			require.Equal(t, tt.wantAttempts, rec.callCount())
			require.EqualValues(t, tt.wantAttempts-1, d.Stats.Retried.Load())
			require.Zero(t, d.Stats.Delivered.Load())
			delivered, err := f.store.Delivered("crm", "e1")
			require.NoError(t, err)
			require.False(t, delivered)
			// Settled: a dead letter no longer holds back its alert.
			eventually(t, func() bool { return len(inHand(t, f.store, "crm")) == 0 }, func() string { return "still in hand" })
		})
	}
}

// A call partly refused for good dead-letters only the refused events; the
// others count as delivered and are in the delivery log.
func TestPartlyRefusedDeadLettersOnlyRefused(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	rec := &recorder{fail: func(_ int, events []event.Event) (bool, error) {
		if slices.ContainsFunc(events, func(e event.Event) bool { return e.ID == "e2" }) {
			return false, &PartlyRefusedError{IDs: []string{"e2"}, Err: errors.New("HTTP 413: e2 too large alone")}
		}
		return false, nil
	}}
	o := f.options(t, "crm", rec)
	o.GroupWait = 200 * time.Millisecond // one call for the three
	d := NewDispatcher(o)
	start(t, d)
	f.publish(t, appendOutbox(t, f.store, []string{"crm"}, firing("e1", "a", 0), firing("e2", "b", 0), firing("e3", "c", 0))...)
	eventually(t, func() bool {
		return len(inHand(t, f.store, "crm")) == 0 && d.Stats.DeadLettered.Load()+d.Stats.Delivered.Load() == 3
	},
		func() string { return "not settled" })

	dls, err := f.bus.ListDeadLetters(ctx, "crm")
	require.NoError(t, err)
	require.Len(t, dls, 1)
	require.Equal(t, "e2", dls[0].Event.ID)
	require.Contains(t, dls[0].Error, "e2 too large alone")
	require.EqualValues(t, 2, d.Stats.Delivered.Load())
	require.EqualValues(t, 1, d.Stats.DeadLettered.Load())
	for id, want := range map[string]bool{"e1": true, "e2": false, "e3": true} {
		delivered, err := f.store.Delivered("crm", id)
		require.NoError(t, err)
		require.Equal(t, want, delivered, id)
	}
	eventually(t, func() bool { return len(inHand(t, f.store, "crm")) == 0 }, func() string { return "still in hand" })
}

// run --once: with group_wait 1h, groups are sent as soon as every event
// owed to the notifier is in hand, and not before.
func TestOnceFlushesWhenAllOwedAreInHand(t *testing.T) {
	for _, once := range []bool{true, false} {
		t.Run(fmt.Sprintf("once=%v", once), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				st := openStore(t)
				evs := appendOutbox(t, st, []string{"crm"}, firing("e1", "a", 0), firing("e2", "b", 0))
				rec := &recorder{}
				cons := &fakeConsumer{}
				d := NewDispatcher(Options{Name: "crm", Notifier: rec, Consumer: cons.fn(), Ledger: st,
					DeadLetters: noDeadLetters{t}, GroupWait: time.Hour, GroupInterval: time.Hour})
				d.SetOnce(once)
				begin := time.Now()
				start(t, d)
				cons.add(evs[0])
				time.Sleep(time.Minute)
				synctest.Wait()
				require.Empty(t, rec.ids(), "e2 is owed and not yet in hand")
				cons.add(evs[1])
				time.Sleep(5 * time.Second)
				synctest.Wait()
				if !once {
					require.Empty(t, rec.ids(), "without once, group_wait holds them")
					time.Sleep(time.Hour)
					synctest.Wait()
				}
				require.Equal(t, []string{"e1", "e2"}, rec.ids())
				require.Equal(t, 1, rec.callCount(), "one post for the group")
				took := rec.deliveries()[0].At.Sub(begin)
				if once {
					require.Less(t, took, 2*time.Minute)
				} else {
					require.GreaterOrEqual(t, took, time.Hour)
				}
			})
		})
	}
}

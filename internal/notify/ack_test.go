package notify

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/event"
	"github.com/simwatch/simwatch/internal/store"
)

func acked(id, entityID string, seq uint64, notifyTo ...string) event.Event {
	return ev(id, entityID, seq, event.KindAcknowledged, notifyTo...)
}

// An acknowledgement is muted where its alert's firing was (the receiver
// never heard of the alert), and passes where the firing was delivered or
// never settled (a pending alert's ack).
func TestDedupMutesAckOfMutedFiring(t *testing.T) {
	st := openStore(t)
	fa, fb := firing("fa", "a", 1), firing("fb", "b", 1)
	require.NoError(t, st.Settle("crm", t0, []store.Outcome{
		{ID: fa.ID, Result: store.Delivered, Alert: fa.AlertKey(), Kind: fa.Kind, StartsAt: fa.StartsAt},
		{ID: fb.ID, Result: store.Muted, Silenced: "s1", Alert: fb.AlertKey(), Kind: fb.Kind, StartsAt: fb.StartsAt},
	}))
	events := []event.Event{acked("ka", "a", 2), acked("kb", "b", 2), acked("kc", "c", 1)}
	pass, muted, err := Dedup{Notifier: "crm", Log: st}.Split(events, nil)
	require.NoError(t, err)
	var ids []string
	for _, e := range pass {
		ids = append(ids, e.ID)
	}
	require.Equal(t, []string{"ka", "kc"}, ids)
	require.Len(t, muted, 1)
	require.Equal(t, "kb", muted[0].ID)
	require.Equal(t, "its firing was muted", muted[0].Reason)

	// The ack does not count as a firing: the resolution after it still
	// follows the firing's outcome, and the firing record stands.
	require.NoError(t, st.Settle("crm", t0, []store.Outcome{{ID: "ka", Result: store.Delivered, Alert: fa.AlertKey(), Kind: event.KindAcknowledged, StartsAt: fa.StartsAt}}))
	known, delivered, err := st.FiringOutcome("crm", fa.AlertKey(), fa.StartsAt)
	require.NoError(t, err)
	require.True(t, known && delivered)
}

// Through the dispatcher: a firing and its ack in one flush go out in the
// alert's order; with a silence over firings, the receiver gets neither.
func TestAckFollowsItsFiringThroughDispatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := openStore(t)
		rec := &recorder{}
		cons := &fakeConsumer{}
		d := NewDispatcher(Options{Name: "crm", Notifier: rec, Consumer: cons.fn(), Ledger: st,
			DeadLetters: noDeadLetters{t}, GroupWait: 10 * time.Second, GroupInterval: time.Minute})
		start(t, d)
		cons.add(appendOutbox(t, st, []string{"crm"}, firing("f1", "a", 0), acked("k1", "a", 0))...)
		time.Sleep(30 * time.Second)
		synctest.Wait()
		require.Equal(t, []string{"f1", "k1"}, rec.ids())
		require.Empty(t, inHand(t, st, "crm"))
	})
	synctest.Test(t, func(t *testing.T) {
		st := openStore(t)
		source := func(time.Time) (Mutes, error) { return muteFirings("s-firing"), nil }
		rec := &recorder{}
		cons := &fakeConsumer{}
		d := NewDispatcher(Options{Name: "crm", Notifier: rec, Consumer: cons.fn(), Ledger: st, Mute: source,
			DeadLetters: noDeadLetters{t}, GroupWait: 10 * time.Second, GroupInterval: time.Minute})
		start(t, d)
		cons.add(appendOutbox(t, st, []string{"crm"}, firing("f1", "a", 0), acked("k1", "a", 0))...)
		time.Sleep(30 * time.Second)
		synctest.Wait()
		require.Empty(t, inHand(t, st, "crm"), "both settled")
		require.Empty(t, rec.ids(), "the firing was muted, so its ack is too")
	})
}

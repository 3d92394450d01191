package notify

import (
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/event"
	"github.com/simwatch/simwatch/internal/store"
)

// silenceAll mutes every event with one silence.
type silenceAll string

func (s silenceAll) Muted(*event.Event) (string, string) { return string(s), "" }

type muteNothing struct{}

func (muteNothing) Muted(*event.Event) (string, string) { return "", "" }

// A silence added while the receiver is down mutes the queued event at its
// next attempt: the receiver never gets it, the history shows the silence,
// and its resolution, later, is muted too (its firing was), though the
// silence has ended by then.
func TestSilenceAddedDuringOutageMutesQueuedEvent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := openStore(t)
		var silenced atomic.Bool
		source := func(time.Time) (Mutes, error) {
			if silenced.Load() {
				return silenceAll("s-42"), nil
			}
			return muteNothing{}, nil
		}
		var up atomic.Bool
		rec := &recorder{fail: func(int, []event.Event) (bool, error) {
			if !up.Load() {
				return true, errors.New("HTTP 503")
			}
			return false, nil
		}}
		cons := &fakeConsumer{}
		d := NewDispatcher(Options{Name: "crm", Notifier: rec, Consumer: cons.fn(), Ledger: st, Mute: source,
			DeadLetters: noDeadLetters{t}, MaxDeliver: 100, Backoff: Backoff{Base: time.Second, Max: 10 * time.Second}})
		start(t, d)
		fire := appendOutbox(t, st, []string{"crm"}, firing("f1", "a", 0))
		cons.add(fire...)
		time.Sleep(30 * time.Second)
		synctest.Wait()
		require.GreaterOrEqual(t, rec.callCount(), 2, "the receiver is down and retried")
		require.Zero(t, d.Stats.Muted.Load())

		silenced.Store(true)
		time.Sleep(30 * time.Second)
		synctest.Wait()
		require.EqualValues(t, 1, d.Stats.Muted.Load())
		calls := rec.callCount()
		require.Empty(t, inHand(t, st, "crm"), "settled as muted")
		hist, err := st.Events(store.EventFilter{EntityID: "a"})
		require.NoError(t, err)
		require.Len(t, hist, 1)
		require.Equal(t, "s-42", hist[0].Silenced)

		// The silence ends and the receiver is back; the resolution comes.
		silenced.Store(false)
		up.Store(true)
		res := resolved("r1", "a", 0)
		cons.add(appendOutbox(t, st, []string{"crm"}, res)...)
		other := appendOutbox(t, st, []string{"crm"}, firing("g1", "b", 0)) // a barrier
		cons.add(other...)
		time.Sleep(30 * time.Second)
		synctest.Wait()
		require.Equal(t, []string{"g1"}, rec.ids(), "neither the firing nor its resolution reached the receiver")
		require.Equal(t, calls+1, rec.callCount())
		require.EqualValues(t, 2, d.Stats.Muted.Load())
		require.EqualValues(t, 1, d.Stats.Delivered.Load())
		require.Empty(t, inHand(t, st, "crm"))
		hist, err = st.Events(store.EventFilter{EntityID: "a", Kind: event.KindResolved})
		require.NoError(t, err)
		require.Len(t, hist, 1)
		require.NotEmpty(t, hist[0].Silenced+hist[0].Inhibited, "the history says why the resolution was muted")
	})
}

// Dedup with the real delivery record: a resolution passes when its firing
// was delivered or never settled here, and is muted when its firing was
// muted; a new episode (another start) starts afresh.
func TestDedupSplit(t *testing.T) {
	st := openStore(t)
	alert := func(e event.Event) string { return e.AlertKey() }
	fa, fb := firing("fa", "a", 1), firing("fb", "b", 1)
	require.NoError(t, st.Settle("crm", t0, []store.Outcome{
		{ID: fa.ID, Result: store.Delivered, Alert: alert(fa), Kind: fa.Kind, StartsAt: fa.StartsAt},
		{ID: fb.ID, Result: store.Muted, Silenced: "s1", Alert: alert(fb), Kind: fb.Kind, StartsAt: fb.StartsAt},
	}))
	later := resolved("rb2", "b", 3)
	later.StartsAt = t0.Add(time.Hour)
	events := []event.Event{resolved("ra", "a", 2), resolved("rb", "b", 2), resolved("rc", "c", 2), later, firing("fd", "d", 1)}
	pass, muted, err := Dedup{Notifier: "crm", Log: st}.Split(events, nil)
	require.NoError(t, err)
	var ids []string
	for _, e := range pass {
		ids = append(ids, e.ID)
	}
	require.Equal(t, []string{"ra", "rc", "rb2", "fd"}, ids)
	require.Len(t, muted, 1)
	require.Equal(t, "rb", muted[0].ID)
	require.Equal(t, store.Muted, muted[0].Result)

	// At another notifier, which settled no firing of b, nothing is muted.
	pass, muted, err = Dedup{Notifier: "ops", Log: st}.Split(events, nil)
	require.NoError(t, err)
	require.Len(t, pass, len(events))
	require.Empty(t, muted)
}

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

// muteFirings is a silence over kind: it mutes firing events only (as a
// silence `kind == "firing"` would), never resolutions.
type muteFirings string

func (s muteFirings) Muted(e *event.Event) (string, string) {
	if e.Kind == event.KindFiring {
		return string(s), ""
	}
	return "", ""
}

// Hostile (issue 11, mute at delivery + dedup): a firing and its resolution
// wait in the same group and go in the same flush. A silence that matches
// the firing (but not the resolution) mutes the firing at delivery. The
// README promises, as Alertmanager's dedup stage does, that "a resolution
// whose firing never reached the receiver (it was muted there) is muted
// too". The receiver must get neither.
func TestHostile11ResolutionOfFiringMutedInSameFlushIsMuted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := openStore(t)
		source := func(time.Time) (Mutes, error) { return muteFirings("s-firing"), nil }
		rec := &recorder{}
		cons := &fakeConsumer{}
		d := NewDispatcher(Options{Name: "crm", Notifier: rec, Consumer: cons.fn(), Ledger: st, Mute: source,
			DeadLetters: noDeadLetters{t}, GroupWait: 10 * time.Second, GroupInterval: time.Minute})
		start(t, d)
		cons.add(appendOutbox(t, st, []string{"crm"}, firing("f1", "a", 0), resolved("r1", "a", 0))...)
		time.Sleep(30 * time.Second)
		synctest.Wait()
		require.Empty(t, inHand(t, st, "crm"), "both settled")
		require.Empty(t, rec.ids(), "the firing was muted, so its resolution must be muted too; the receiver got a resolution of an alert it never saw firing")
	})
}

// Hostile: the same through the retry stage. The receiver is down while a
// firing and its resolution wait together; a silence over firings is added
// during the outage. At the next attempt the firing is muted; the
// resolution must be muted with it, not sent alone when the receiver comes
// back.
func TestHostile11SilenceDuringOutageMutesFiringAndItsResolution(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := openStore(t)
		var silenced, up atomic.Bool
		source := func(time.Time) (Mutes, error) {
			if silenced.Load() {
				return muteFirings("s-42"), nil
			}
			return muteNothing{}, nil
		}
		rec := &recorder{fail: func(int, []event.Event) (bool, error) {
			if !up.Load() {
				return true, errors.New("HTTP 503")
			}
			return false, nil
		}}
		cons := &fakeConsumer{}
		d := NewDispatcher(Options{Name: "crm", Notifier: rec, Consumer: cons.fn(), Ledger: st, Mute: source,
			DeadLetters: noDeadLetters{t}, MaxDeliver: 100, GroupWait: time.Second, GroupInterval: time.Second,
			Backoff: Backoff{Base: time.Second, Max: 5 * time.Second}})
		start(t, d)
		cons.add(appendOutbox(t, st, []string{"crm"}, firing("f1", "a", 0), resolved("r1", "a", 0))...)
		time.Sleep(20 * time.Second)
		synctest.Wait()
		require.GreaterOrEqual(t, rec.callCount(), 2, "down and retried")

		silenced.Store(true)
		up.Store(true)
		time.Sleep(20 * time.Second)
		synctest.Wait()
		require.Empty(t, inHand(t, st, "crm"))
		hist, err := st.Events(store.EventFilter{EntityID: "a", Kind: event.KindResolved})
		require.NoError(t, err)
		require.Len(t, hist, 1)
		require.Empty(t, rec.ids(), "the receiver got the resolution %v of a firing that was muted", rec.ids())
	})
}

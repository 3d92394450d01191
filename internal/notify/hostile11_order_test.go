package notify

import (
	"errors"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/event"
)

// Hostile (issue 11, "a late event holds back only its own alert"): alert
// a's firing keeps failing at the receiver (its retries run: the receiver
// answers 503 to any post that carries it). Alert b, of the same rule (so
// the same group under the default group_by [rule]), fires later. b is not
// late and nothing of b's alert is owed before it: it must flow while a's
// retries run, not wait for a's retries to run out.
func TestHostile11LateEventHoldsBackOnlyItsOwnAlertInSameGroup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := openStore(t)
		rec := &recorder{fail: func(_ int, evs []event.Event) (bool, error) {
			if slices.ContainsFunc(evs, func(e event.Event) bool { return e.ID == "fa" }) {
				return true, errors.New("HTTP 503")
			}
			return false, nil
		}}
		cons := &fakeConsumer{}
		d := NewDispatcher(Options{Name: "crm", Notifier: rec, Consumer: cons.fn(), Ledger: st,
			DeadLetters: &recordingDeadLetters{}, MaxDeliver: 100, GroupWait: time.Second, GroupInterval: time.Second,
			Backoff: Backoff{Base: 10 * time.Second, Max: 10 * time.Second}})
		start(t, d)
		cons.add(appendOutbox(t, st, []string{"crm"}, firing("fa", "a", 0))...)
		time.Sleep(5 * time.Second)
		synctest.Wait()
		require.GreaterOrEqual(t, rec.callCount(), 1)

		cons.add(appendOutbox(t, st, []string{"crm"}, firing("fb", "b", 0))...)
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		require.Contains(t, rec.ids(), "fb", "b's firing waited %d attempts (and counting) behind a's retries; only a's alert may be held back", rec.callCount())
	})
}

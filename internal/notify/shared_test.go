package notify_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/bus"
	"github.com/simwatch/simwatch/internal/event"
	"github.com/simwatch/simwatch/internal/notify"
)

// Two watchers share a notifier: between them the receiver gets every
// event of many alerts once, each alert's seqs in order, with no gap.
func TestSharedTwoWorkersDeliverEveryEventOnceInOrder(t *testing.T) {
	c := newCluster(t, "crm")
	rcv := newReceiver(t)
	a := c.startWorker(t, "a", "crm", rcv, nil)
	b := c.startWorker(t, "b", "crm", rcv, nil)
	var stories [][]event.Event
	for i := range 20 {
		stories = append(stories, story(fmt.Sprintf("card%02d", i), 8))
	}
	all := interleave(stories...)
	c.publish(t, all...)
	waitFor(t, 20*time.Second, func() bool { return len(rcv.ids()) == len(all) }, func() string {
		return fmt.Sprintf("%d of %d events delivered", len(rcv.ids()), len(all))
	})
	checkStories(t, rcv, all, nil)
	for id, n := range rcv.ids() {
		require.Equal(t, 1, n, "%s delivered %d times", id, n)
	}
	require.Equal(t, int64(len(all)), a.d.Stats.Delivered.Load()+b.d.Stats.Delivered.Load())
	waitFor(t, 5*time.Second, func() bool { return c.pending(t, "crm") == 0 }, func() string { return "events left unacknowledged" })
}

// A watcher killed while it holds events loses none of them: the bus
// hands them to the other after ack_wait. The only repeats allowed are
// events the receiver had accepted from the killed watcher that it had not
// recorded yet (the kill fell between the two; a whole call's events at
// most per alert): same id, same seq, before anything newer of their
// alert, so that what the receiver sees for the first time stays in order.
func TestSharedKilledWorkersEventsReachTheOther(t *testing.T) {
	c := newCluster(t, "crm")
	rcv := newReceiver(t)
	rcv.hold.Store(int64(30 * time.Millisecond)) // slow: the kill finds sends in flight
	a := c.startWorker(t, "a", "crm", rcv, func(o *notify.Options) { o.MaxEvents = 2 })
	b := c.startWorker(t, "b", "crm", rcv, func(o *notify.Options) { o.MaxEvents = 2 })
	var stories [][]event.Event
	for i := range 10 {
		stories = append(stories, story(fmt.Sprintf("card%02d", i), 6))
	}
	all := interleave(stories...)
	c.publish(t, all[:30]...)
	waitFor(t, 10*time.Second, func() bool { return a.d.Stats.Delivered.Load() >= 2 }, func() string { return "a delivered nothing" })
	a.kill()
	killedAt := time.Now()
	c.publish(t, all[30:]...)
	waitFor(t, 20*time.Second, func() bool { return len(rcv.ids()) == len(all) }, func() string {
		return fmt.Sprintf("%d of %d events delivered after the kill", len(rcv.ids()), len(all))
	})
	require.Less(t, time.Since(killedAt), 10*clusterAckWait, "within a few ack waits")
	checkStories(t, rcv, all, func(first got) bool { return first.Via == "a" })
	dups := 0
	for _, n := range rcv.ids() {
		dups += n - 1
	}
	t.Logf("a delivered %d before the kill; b %d; %d sent twice", a.d.Stats.Delivered.Load(), b.d.Stats.Delivered.Load(), dups)
	waitFor(t, 5*time.Second, func() bool { return c.pending(t, "crm") == 0 }, func() string { return "events left unacknowledged" })
	require.Positive(t, b.d.Stats.Delivered.Load())
}

// An event that comes back after it was settled (on this or another
// watcher: an acknowledgement lost, a republish) is acknowledged and
// skipped, never sent again; the next event of its alert goes.
func TestSharedRepeatOfSettledEventNotSent(t *testing.T) {
	c := newCluster(t, "crm")
	rcv := newReceiver(t)
	log, err := notify.OpenSharedLog(context.Background(), c.pub.JetStream(), "test", 1)
	require.NoError(t, err)
	s := story("card1", 4)
	// Another watcher settled seqs 1..3 and died before acknowledging
	// them: the log says so, the bus still has them.
	require.NoError(t, log.Settle(context.Background(), "crm", s[0].AlertKey(), func(st *notify.SharedState) bool {
		st.Seq = 3
		return true
	}))
	w := c.startWorker(t, "a", "crm", rcv, nil)
	c.publish(t, s...)
	waitFor(t, 10*time.Second, func() bool { return len(rcv.ids()) == 1 }, func() string { return fmt.Sprint(rcv.all()) })
	require.Equal(t, "card1-4", rcv.all()[0].ID)
	// A republish of a delivered event (another message, same event).
	require.NoError(t, c.pub.Republish(context.Background(), "crm", &s[3], mustJSON(t, s[3])))
	waitFor(t, 10*time.Second, func() bool { return w.d.Stats.Skipped.Load() == 4 }, func() string {
		return fmt.Sprintf("skipped %d", w.d.Stats.Skipped.Load())
	})
	waitFor(t, 5*time.Second, func() bool { return c.pending(t, "crm") == 0 }, func() string { return "repeats left unacknowledged" })
	require.Len(t, rcv.all(), 1, "nothing sent again")
	st, err := log.Load(context.Background(), "crm", []string{s[0].AlertKey()})
	require.NoError(t, err)
	require.Equal(t, uint64(4), st[s[0].AlertKey()].Seq)
}

// While watcher a retries seq 1 (its receiver fails it for longer than
// ack_wait), seq 2, taken by watcher b, waits and goes after it; the bus
// does not hand seq 1 to b meanwhile (a keeps it in progress).
func TestSharedNextWaitsForPredecessorRetriedElsewhere(t *testing.T) {
	c := newCluster(t, "crm")
	rcv := newReceiver(t)
	var aFails atomic.Bool
	aFails.Store(true)
	rcv.setFail(func(via string, _ []event.Event) int {
		if via == "a" && aFails.Load() {
			return http.StatusServiceUnavailable
		}
		return 0
	})
	aGate := &gate{}
	aGate.open.Store(true)
	a := c.startWorker(t, "a", "crm", rcv, gated(aGate))
	s := story("card1", 2)
	c.publish(t, s[0])
	waitFor(t, 10*time.Second, func() bool { return a.d.Stats.Retried.Load() >= 2 }, func() string { return "a never retried seq 1" })
	aGate.close(t) // a takes nothing more: seq 2 goes to b
	b := c.startWorker(t, "b", "crm", rcv, nil)
	c.publish(t, s[1])
	// a retries for over three ack waits (60 attempts, each at least
	// 50ms apart) while b holds seq 2.
	r0 := a.d.Stats.Retried.Load()
	waitFor(t, 20*time.Second, func() bool { return a.d.Stats.Retried.Load() >= r0+60 }, func() string {
		return fmt.Sprint("a stopped retrying: ", r0, a.d.Stats.Retried.Load(), a.d.Stats.DeadLettered.Load(), a.d.LastFailure(), rcv.all())
	})
	require.Empty(t, rcv.all(), "seq 2 waits for seq 1")
	aFails.Store(false)
	waitFor(t, 10*time.Second, func() bool { return len(rcv.all()) == 2 }, func() string { return fmt.Sprint(rcv.all()) })
	gs := rcv.all()
	require.Equal(t, []string{"card1-1", "card1-2"}, []string{gs[0].ID, gs[1].ID})
	require.Equal(t, "a", gs[0].Via, "seq 1 stayed with a")
	require.Equal(t, "b", gs[1].Via)
	require.Zero(t, b.d.Stats.Skipped.Load(), "b was never handed seq 1")
}

// Events not for a notifier do not hold back the next event of the same
// alert that is: the consumer's ack floor shows them settled.
func TestSharedUnroutedEventsDoNotBlock(t *testing.T) {
	c := newCluster(t, "crm")
	rcv := newReceiver(t)
	c.startWorker(t, "a", "crm", rcv, nil)
	c.startWorker(t, "b", "crm", rcv, nil)
	s := story("card1", 4)
	s[1].Notify = []string{"pager"} // seq 2 is not for crm
	s[2].Notify = []string{"pager"} // nor is seq 3
	c.publish(t, s...)
	waitFor(t, 10*time.Second, func() bool { return len(rcv.all()) == 2 }, func() string { return fmt.Sprint(rcv.all()) })
	gs := rcv.all()
	require.Equal(t, []string{"card1-1", "card1-4"}, []string{gs[0].ID, gs[1].ID})
}

// A muted event settles like a delivered one and unblocks the next: a
// silenced firing, its resolution muted with it (its firing never reached
// the receiver: the shared log says so, whichever watcher muted it), then
// the next episode's firing is delivered.
func TestSharedMutedEventSettlesAndUnblocks(t *testing.T) {
	c := newCluster(t, "crm")
	rcv := newReceiver(t)
	silence := func(time.Time) (notify.Mutes, error) { return mutesFunc(silenceID("card1-1")), nil }
	a := c.startWorker(t, "a", "crm", rcv, func(o *notify.Options) { o.Mute = silence })
	b := c.startWorker(t, "b", "crm", rcv, func(o *notify.Options) { o.Mute = silence })
	s := story("card1", 3)
	c.publish(t, s...)
	waitFor(t, 10*time.Second, func() bool { return len(rcv.all()) == 1 }, func() string { return fmt.Sprint(rcv.all()) })
	require.Equal(t, "card1-3", rcv.all()[0].ID)
	require.Equal(t, int64(2), a.d.Stats.Muted.Load()+b.d.Stats.Muted.Load())
	waitFor(t, 5*time.Second, func() bool { return c.pending(t, "crm") == 0 }, func() string { return "muted events left unacknowledged" })
}

// A replayed dead letter goes although its alert's log is past it: it
// bypasses order and the repeat check.
func TestSharedReplayBypassesOrder(t *testing.T) {
	c := newCluster(t, "crm")
	rcv := newReceiver(t)
	log, err := notify.OpenSharedLog(context.Background(), c.pub.JetStream(), "test", 1)
	require.NoError(t, err)
	s := story("card1", 2)
	require.NoError(t, log.Settle(context.Background(), "crm", s[0].AlertKey(), func(st *notify.SharedState) bool {
		st.Seq = 5
		return true
	}))
	w := c.startWorker(t, "a", "crm", rcv, nil)
	msg := nats.NewMsg(s[0].Subject())
	msg.Data = mustJSON(t, s[0])
	msg.Header.Set(bus.HeaderReplayFor, "crm")
	_, err = c.pub.JetStream().PublishMsg(context.Background(), msg, jetstream.WithMsgID("replay:1:"+s[0].ID))
	require.NoError(t, err)
	c.publish(t, s[1]) // not a replay: a repeat
	waitFor(t, 10*time.Second, func() bool { return len(rcv.all()) == 1 && w.d.Stats.Skipped.Load() == 1 }, func() string {
		return fmt.Sprint(rcv.all(), w.d.Stats.Skipped.Load())
	})
	require.Equal(t, "card1-1", rcv.all()[0].ID)
	st, err := log.Load(context.Background(), "crm", []string{s[0].AlertKey()})
	require.NoError(t, err)
	require.Equal(t, uint64(5), st[s[0].AlertKey()].Seq, "a replay never moves the log back")
}

// An orderly stop leaves what is in hand unacknowledged on the bus (no
// negative acknowledgements): the next worker delivers it.
func TestSharedStopLeavesEventsOnTheBus(t *testing.T) {
	c := newCluster(t, "crm")
	rcv := newReceiver(t)
	rcv.setFail(func(via string, _ []event.Event) int {
		if via == "a" {
			return http.StatusServiceUnavailable
		}
		return 0
	})
	a := c.startWorker(t, "a", "crm", rcv, nil)
	s := story("card1", 3)
	c.publish(t, s...)
	waitFor(t, 10*time.Second, func() bool { return a.d.Stats.Retried.Load() >= 1 }, func() string { return "a never tried" })
	a.stop()
	require.Equal(t, uint64(3), c.pending(t, "crm"), "in hand, so still on the bus")
	c.startWorker(t, "b", "crm", rcv, nil)
	waitFor(t, 10*time.Second, func() bool { return len(rcv.all()) == 3 }, func() string { return fmt.Sprint(rcv.all()) })
	checkStories(t, rcv, s, nil)
}

// Two handles of the log settling the same alert at once: compare-and-set
// keeps the highest seq, whatever the order the writes land in.
func TestSharedLogSettleNeverGoesBack(t *testing.T) {
	c := newCluster(t)
	var logs []*notify.SharedLog
	for range 4 {
		b, err := bus.Open(context.Background(), bus.Options{URL: c.srv.ClientURL()})
		require.NoError(t, err)
		t.Cleanup(b.Close)
		l, err := notify.OpenSharedLog(context.Background(), b.JetStream(), "test", 1)
		require.NoError(t, err)
		logs = append(logs, l)
	}
	var wg sync.WaitGroup
	for i, l := range logs {
		for seq := uint64(i + 1); seq <= 40; seq += uint64(len(logs)) {
			wg.Go(func() {
				require.NoError(t, l.Settle(context.Background(), "crm", "alert", func(st *notify.SharedState) bool {
					if seq <= st.Seq {
						return false
					}
					st.Seq = seq
					return true
				}))
			})
		}
	}
	wg.Wait()
	st, err := logs[0].Load(context.Background(), "crm", []string{"alert"})
	require.NoError(t, err)
	require.Equal(t, uint64(40), st["alert"].Seq)

	_, err = notify.OpenSharedLog(context.Background(), c.pub.JetStream(), "bad.name", 1)
	require.ErrorContains(t, err, "cluster name")
}

type mutesFunc func(e *event.Event) (silenced, inhibited string)

func (f mutesFunc) Muted(e *event.Event) (string, string) { return f(e) }

// silenceID mutes the events with these ids, as silence "s1".
func silenceID(ids ...string) mutesFunc {
	return func(e *event.Event) (string, string) {
		for _, id := range ids {
			if e.ID == id {
				return "s1", ""
			}
		}
		return "", ""
	}
}

func mustJSON(t testing.TB, e event.Event) []byte {
	t.Helper()
	data, err := e.Encode(event.MaxSize)
	require.NoError(t, err)
	return data
}

// An event the receiver refuses for good is dead-lettered, which settles
// it: the next event of its alert goes, and nothing stays on the bus.
func TestSharedDeadLetterSettlesAndUnblocks(t *testing.T) {
	c := newCluster(t, "crm")
	rcv := newReceiver(t)
	rcv.setFail(func(_ string, events []event.Event) int {
		for _, e := range events {
			if e.ID == "card1-1" {
				return http.StatusBadRequest
			}
		}
		return 0
	})
	w := c.startWorker(t, "a", "crm", rcv, func(o *notify.Options) { o.MaxEvents = 1 })
	s := story("card1", 2)
	c.publish(t, s...)
	waitFor(t, 10*time.Second, func() bool { return len(rcv.all()) == 1 }, func() string { return fmt.Sprint(rcv.all()) })
	require.Equal(t, "card1-2", rcv.all()[0].ID)
	require.Equal(t, int64(1), w.d.Stats.DeadLettered.Load())
	n, err := c.pub.DeadLetters(context.Background(), "crm")
	require.NoError(t, err)
	require.Equal(t, uint64(1), n)
	waitFor(t, 5*time.Second, func() bool { return c.pending(t, "crm") == 0 }, func() string { return "left unacknowledged" })
}

// The same event published again while it is in hand joins it: sent once,
// and both messages are acknowledged when it settles.
func TestSharedRepeatOfEventInHandJoinsIt(t *testing.T) {
	c := newCluster(t, "crm")
	rcv := newReceiver(t)
	var down atomic.Bool
	down.Store(true)
	rcv.setFail(func(string, []event.Event) int {
		if down.Load() {
			return http.StatusServiceUnavailable
		}
		return 0
	})
	w := c.startWorker(t, "a", "crm", rcv, nil)
	s := story("card1", 1)
	c.publish(t, s...)
	waitFor(t, 10*time.Second, func() bool { return w.d.Stats.Retried.Load() >= 1 }, func() string { return "never tried" })
	require.NoError(t, c.pub.Republish(context.Background(), "crm", &s[0], mustJSON(t, s[0])))
	waitFor(t, 10*time.Second, func() bool { return w.d.Stats.Skipped.Load() == 1 }, func() string { return "the repeat was not taken" })
	require.Equal(t, uint64(2), c.pending(t, "crm"), "both in hand, unacknowledged")
	down.Store(false)
	waitFor(t, 10*time.Second, func() bool { return c.pending(t, "crm") == 0 }, func() string { return "left unacknowledged" })
	require.Equal(t, map[string]int{"card1-1": 1}, rcv.ids())
}

// A log entry that cannot be read (garbage in the bucket) is as good as
// none: the alert's events go (the ack floor vouches for their order) and
// the entry is written anew.
func TestSharedUnreadableLogEntry(t *testing.T) {
	c := newCluster(t, "crm")
	rcv := newReceiver(t)
	s := story("card1", 3)
	kv, err := c.pub.JetStream().CreateKeyValue(context.Background(), jetstream.KeyValueConfig{Bucket: notify.SharedBucket("test"), History: 1})
	require.NoError(t, err)
	h := sha256.Sum256([]byte("crm\x00" + s[0].AlertKey()))
	_, err = kv.Put(context.Background(), hex.EncodeToString(h[:16]), []byte("\x00not json{"))
	require.NoError(t, err)
	c.startWorker(t, "a", "crm", rcv, nil)
	c.publish(t, s[1:]...) // seq 1 is long gone: the log knows nothing readable
	waitFor(t, 10*time.Second, func() bool { return len(rcv.all()) == 2 }, func() string { return fmt.Sprint(rcv.all()) })
	require.Equal(t, []string{"card1-2", "card1-3"}, []string{rcv.all()[0].ID, rcv.all()[1].ID})
	log, err := notify.OpenSharedLog(context.Background(), c.pub.JetStream(), "test", 1)
	require.NoError(t, err)
	st, err := log.Load(context.Background(), "crm", []string{s[0].AlertKey()})
	require.NoError(t, err)
	require.Equal(t, uint64(3), st[s[0].AlertKey()].Seq)
}

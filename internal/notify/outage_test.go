package notify

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/event"
)

// The fakes below stand in for JetStream only where virtual time needs them:
// a bubble cannot hold a real network connection. The real consumer is
// exercised in dispatch_test.go.

type fakeMsg struct {
	data  []byte
	acked *bool
}

func (m *fakeMsg) Metadata() (*jetstream.MsgMetadata, error) { return &jetstream.MsgMetadata{}, nil }
func (m *fakeMsg) Data() []byte                              { return m.data }
func (m *fakeMsg) Headers() nats.Header                      { return nats.Header{} }
func (m *fakeMsg) Subject() string                           { return "simwatch.events.hw.card.r" }
func (m *fakeMsg) Reply() string                             { return "" }
func (m *fakeMsg) Ack() error                                { *m.acked = true; return nil }
func (m *fakeMsg) DoubleAck(context.Context) error           { *m.acked = true; return nil }
func (m *fakeMsg) Nak() error                                { return nil }
func (m *fakeMsg) NakWithDelay(time.Duration) error          { return nil }
func (m *fakeMsg) InProgress() error                         { return nil }
func (m *fakeMsg) Term() error                               { return nil }
func (m *fakeMsg) TermWithReason(string) error               { return nil }

type fakeBatch struct{ ch chan jetstream.Msg }

func (b fakeBatch) Messages() <-chan jetstream.Msg { return b.ch }
func (b fakeBatch) Error() error                   { return nil }

// fakeConsumer hands out its queue in order, a batch at a time, and waits a
// (virtual) second when it has nothing, as a pull with a wait does.
type fakeConsumer struct {
	mu    sync.Mutex
	queue []*fakeMsg
	acked []bool
}

func (c *fakeConsumer) add(e event.Event) {
	data, _ := json.Marshal(e)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.acked = append(c.acked, false)
	c.queue = append(c.queue, &fakeMsg{data: data, acked: &c.acked[len(c.acked)-1]})
}

func (c *fakeConsumer) Fetch(n int, _ ...jetstream.FetchOpt) (jetstream.MessageBatch, error) {
	c.mu.Lock()
	take := c.queue[:min(n, len(c.queue))]
	c.queue = c.queue[len(take):]
	c.mu.Unlock()
	if len(take) == 0 {
		time.Sleep(time.Second)
	}
	ch := make(chan jetstream.Msg, len(take))
	for _, m := range take {
		ch <- m
	}
	close(ch)
	return fakeBatch{ch}, nil
}

func (c *fakeConsumer) FetchNoWait(n int) (jetstream.MessageBatch, error) {
	c.mu.Lock()
	take := c.queue[:min(n, len(c.queue))]
	c.queue = c.queue[len(take):]
	c.mu.Unlock()
	ch := make(chan jetstream.Msg, len(take))
	for _, m := range take {
		ch <- m
	}
	close(ch)
	return fakeBatch{ch}, nil
}

type memLog struct {
	mu  sync.Mutex
	ids map[string]bool
}

func (l *memLog) Delivered(_, id string) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ids[id], nil
}

func (l *memLog) MarkDelivered(_ string, _ time.Time, ids ...string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, id := range ids {
		l.ids[id] = true
	}
	return nil
}

type noDeadLetters struct{ t *testing.T }

func (d noDeadLetters) DeadLetter(context.Context, string, []byte, string, string) error {
	d.t.Error("nothing should be dead-lettered")
	return nil
}

// A receiver down for an hour, then back: everything is delivered, each
// alert's events in order, in virtual time.
func TestLongOutageThenBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		var mu sync.Mutex
		var got []string
		receiver := NotifierFunc(func(ctx context.Context, events ...event.Event) (bool, error) {
			if time.Since(start) < time.Hour {
				return true, errors.New("HTTP 503")
			}
			mu.Lock()
			defer mu.Unlock()
			for _, e := range events {
				got = append(got, e.Kind+" "+e.EntityID)
			}
			return false, nil
		})
		cons := &fakeConsumer{}
		d := NewDispatcher(Options{Name: "crm", Notifier: receiver, Consumer: cons, Log: &memLog{ids: map[string]bool{}},
			DeadLetters: noDeadLetters{t}, MaxDeliver: 30, Backoff: Backoff{Base: time.Second, Max: 5 * time.Minute}})
		// Two alerts fire, then resolve while the receiver is still down.
		for i, k := range []string{event.KindFiring, event.KindFiring, event.KindResolved, event.KindResolved} {
			id := []string{"a", "b"}[i%2]
			cons.add(event.Event{ID: k + id, Kind: k, Rule: "r", EntityID: id})
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { _ = d.Run(ctx); close(done) }()
		for {
			time.Sleep(time.Minute)
			mu.Lock()
			n := len(got)
			mu.Unlock()
			if n == 4 || time.Since(start) > 3*time.Hour {
				break
			}
		}
		cancel()
		<-done
		require.Equal(t, []string{"firing a", "firing b", "resolved a", "resolved b"}, got)
		require.GreaterOrEqual(t, time.Since(start), time.Hour)
		require.Less(t, time.Since(start), time.Hour+10*time.Minute, "delivered soon after the receiver came back")
		require.EqualValues(t, 4, d.Stats.Delivered.Load())
		require.Positive(t, d.Stats.Retried.Load())
		for i, a := range cons.acked {
			require.True(t, a, "event %d acknowledged", i)
		}
	})
}

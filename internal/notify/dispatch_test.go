package notify_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/bus"
	"github.com/simwatch/simwatch/internal/event"
	"github.com/simwatch/simwatch/internal/notify"
	"github.com/simwatch/simwatch/internal/store"
)

// natsServer runs a real nats-server with JetStream on a random port.
func natsServer(t *testing.T) *server.Server {
	t.Helper()
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	require.NoError(t, err)
	s.Start()
	require.True(t, s.ReadyForConnections(10*time.Second))
	t.Cleanup(s.Shutdown)
	return s
}

type fixture struct {
	bus   *bus.Bus
	store *store.Store
	nc    *nats.Conn
}

func newFixture(t *testing.T, ackWait time.Duration) *fixture {
	t.Helper()
	srv := natsServer(t)
	b, err := bus.Open(context.Background(), bus.Options{URL: srv.ClientURL(), AckWait: ackWait})
	require.NoError(t, err)
	t.Cleanup(b.Close)
	st, err := store.Open(filepath.Join(t.TempDir(), "s.db"))
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	nc, err := nats.Connect(srv.ClientURL())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	return &fixture{bus: b, store: st, nc: nc}
}

// recorder is a Notifier that records accepted event ids.
type recorder struct {
	mu   sync.Mutex
	ids  []string
	gate chan struct{} // when set, Notify blocks until closed or ctx ends
	got  chan string
}

func (r *recorder) Notify(ctx context.Context, events ...event.Event) (bool, error) {
	if r.gate != nil {
		select {
		case <-r.gate:
		case <-ctx.Done():
			return true, ctx.Err()
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range events {
		r.ids = append(r.ids, e.ID)
		if r.got != nil {
			r.got <- e.ID
		}
	}
	return false, nil
}

func (r *recorder) seen() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.ids...)
}

func (f *fixture) run(t *testing.T, name string, n notify.Notifier) (stop func()) {
	t.Helper()
	cons, err := f.bus.Consumer(context.Background(), name)
	require.NoError(t, err)
	d := notify.NewDispatcher(notify.Options{Name: name, Notifier: n, Consumer: cons, Log: f.store, DeadLetters: f.bus,
		Backoff: notify.Backoff{Base: time.Millisecond, Max: 10 * time.Millisecond}, MaxDeliver: 3})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = d.Run(ctx); close(done) }()
	return func() { cancel(); <-done }
}

func ev(id, rule string, notifyTo ...string) *event.Event {
	return &event.Event{ID: id, Kind: event.KindFiring, Rule: rule, Provider: "hw", Entity: "card", EntityID: id, Notify: notifyTo,
		ObservedAt: time.Now()}
}

func pendingZero(t *testing.T, b *bus.Bus, name string) {
	t.Helper()
	require.Eventually(t, func() bool {
		n, err := b.Pending(context.Background(), name)
		return err == nil && n == 0
	}, 10*time.Second, 10*time.Millisecond)
}

func TestDeliveryLogStopsRepeatsPastDuplicateWindow(t *testing.T) {
	f := newFixture(t, 0)
	ctx := context.Background()
	rec := &recorder{}
	stop := f.run(t, "crm", rec)
	defer stop()
	require.NoError(t, f.bus.Publish(ctx, ev("e1", "r")))
	require.NoError(t, f.bus.Publish(ctx, ev("e1", "r"))) // within the window: dropped by JetStream
	pendingZero(t, f.bus, "crm")
	// Past the window, JetStream would take it again: publish under another msg id.
	data, _ := json.Marshal(ev("e1", "r"))
	msg := nats.NewMsg("simwatch.events.hw.card.r")
	msg.Data = data
	msg.Header.Set("Nats-Msg-Id", "replayed-later")
	require.NoError(t, f.nc.PublishMsg(msg))
	require.NoError(t, f.nc.Flush())
	require.NoError(t, f.bus.Publish(ctx, ev("e2", "r")))
	pendingZero(t, f.bus, "crm")
	require.Equal(t, []string{"e1", "e2"}, rec.seen())
}

func TestRoutingByNotify(t *testing.T) {
	f := newFixture(t, 0)
	ctx := context.Background()
	crm, ops := &recorder{}, &recorder{}
	defer f.run(t, "crm", crm)()
	defer f.run(t, "ops", ops)()
	require.NoError(t, f.bus.Publish(ctx, ev("a", "r", "crm")))
	require.NoError(t, f.bus.Publish(ctx, ev("b", "r", "ops")))
	require.NoError(t, f.bus.Publish(ctx, ev("c", "r")))
	pendingZero(t, f.bus, "crm")
	pendingZero(t, f.bus, "ops")
	require.Equal(t, []string{"a", "c"}, crm.seen())
	require.Equal(t, []string{"b", "c"}, ops.seen())
}

// A watcher that stops while the receiver holds the request leaves the event
// unacknowledged; the next one delivers it, with the same id.
func TestUnackedEventRedeliveredAfterStop(t *testing.T) {
	f := newFixture(t, 300*time.Millisecond)
	ctx := context.Background()
	held := &recorder{gate: make(chan struct{})}
	stop := f.run(t, "crm", held)
	require.NoError(t, f.bus.Publish(ctx, ev("e1", "r")))
	require.Eventually(t, func() bool {
		n, _ := f.bus.Pending(ctx, "crm")
		return n == 1
	}, 5*time.Second, 10*time.Millisecond)
	stop() // the receiver never answered
	require.Empty(t, held.seen())

	next := &recorder{got: make(chan string, 10)}
	defer f.run(t, "crm", next)()
	select {
	case id := <-next.got:
		require.Equal(t, "e1", id)
	case <-time.After(10 * time.Second):
		t.Fatal("event not redelivered")
	}
	pendingZero(t, f.bus, "crm")
	require.Equal(t, []string{"e1"}, next.seen(), "delivered once")
}

func TestPermanentFailureDeadLetters(t *testing.T) {
	f := newFixture(t, 0)
	ctx := context.Background()
	n := notify.NotifierFunc(func(ctx context.Context, events ...event.Event) (bool, error) {
		return false, errPermanent
	})
	defer f.run(t, "crm", n)()
	require.NoError(t, f.bus.Publish(ctx, ev("e1", "r")))
	pendingZero(t, f.bus, "crm")
	require.Eventually(t, func() bool {
		c, err := f.bus.DeadLetters(ctx, "crm")
		return err == nil && c == 1
	}, 5*time.Second, 10*time.Millisecond)
	delivered, err := f.store.Delivered("crm", "e1")
	require.NoError(t, err)
	require.False(t, delivered)
}

type permanent struct{}

func (permanent) Error() string { return "HTTP 400" }

var errPermanent = permanent{}

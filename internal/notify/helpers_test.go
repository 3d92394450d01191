package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/bus"
	"github.com/simwatch/simwatch/internal/event"
	"github.com/simwatch/simwatch/internal/store"
)

// t0 is the start of every alert's episode in these tests.
var t0 = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

// ev builds an event of alert entityID under rule, with its seq in that alert.
func ev(id, entityID string, seq uint64, kind string, notifyTo ...string) event.Event {
	return event.Event{ID: id, Seq: seq, Kind: kind, Rule: "card_low_flow", Provider: "hw", Entity: "card",
		EntityID: entityID, StartsAt: t0, ObservedAt: t0, Notify: notifyTo}
}

func firing(id, entityID string, seq uint64, notifyTo ...string) event.Event {
	return ev(id, entityID, seq, event.KindFiring, notifyTo...)
}

func resolved(id, entityID string, seq uint64, notifyTo ...string) event.Event {
	return ev(id, entityID, seq, event.KindResolved, notifyTo...)
}

func openStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "s.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// appendOutbox writes events as a poll cycle does: into the history and the
// ledger, owed to the notifiers named. It returns them with their seq.
func appendOutbox(t *testing.T, st *store.Store, notifiers []string, events ...event.Event) []event.Event {
	t.Helper()
	_, err := st.SetNotifiers(notifiers)
	require.NoError(t, err)
	require.NoError(t, st.Update(func(tx *store.Tx) error { return tx.AppendOutbox(events) }))
	return events
}

// syncBuf is a log sink safe for concurrent writes.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func textLogger(w *syncBuf) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// The fakes below stand in for JetStream only where virtual time needs them:
// a synctest bubble cannot hold a real network connection.

type fakeMsg struct {
	data   []byte
	header nats.Header
	mu     *sync.Mutex
	acked  *bool
}

func (m *fakeMsg) Metadata() (*jetstream.MsgMetadata, error) { return &jetstream.MsgMetadata{}, nil }
func (m *fakeMsg) Data() []byte                              { return m.data }
func (m *fakeMsg) Headers() nats.Header                      { return m.header }
func (m *fakeMsg) Subject() string                           { return "simwatch.events.hw.card.card_low_flow" }
func (m *fakeMsg) Reply() string                             { return "" }
func (m *fakeMsg) Ack() error                                { return m.DoubleAck(context.Background()) }
func (m *fakeMsg) DoubleAck(context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	*m.acked = true
	return nil
}
func (m *fakeMsg) Nak() error                       { return nil }
func (m *fakeMsg) NakWithDelay(time.Duration) error { return nil }
func (m *fakeMsg) InProgress() error                { return nil }
func (m *fakeMsg) Term() error                      { return nil }
func (m *fakeMsg) TermWithReason(string) error      { return nil }

type fakeBatch struct{ ch chan jetstream.Msg }

func (b fakeBatch) Messages() <-chan jetstream.Msg { return b.ch }
func (b fakeBatch) Error() error                   { return nil }

// fakeConsumer hands out its queue in order, all it has in one batch, and
// waits a (virtual) second when it has nothing, as a pull with a wait does.
type fakeConsumer struct {
	mu    sync.Mutex
	queue []*fakeMsg
	acked []*bool
}

func (c *fakeConsumer) add(events ...event.Event) {
	for _, e := range events {
		c.addMsg(e, nil)
	}
}

func (c *fakeConsumer) addMsg(e event.Event, h nats.Header) {
	data, err := json.Marshal(e)
	if err != nil {
		panic(err)
	}
	if h == nil {
		h = nats.Header{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	acked := new(bool)
	c.acked = append(c.acked, acked)
	c.queue = append(c.queue, &fakeMsg{data: data, header: h, mu: &c.mu, acked: acked})
}

func (c *fakeConsumer) allAcked() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, a := range c.acked {
		if !*a {
			return false
		}
	}
	return true
}

func (c *fakeConsumer) take(n int) fakeBatch {
	c.mu.Lock()
	take := c.queue[:min(n, len(c.queue))]
	c.queue = c.queue[len(take):]
	c.mu.Unlock()
	ch := make(chan jetstream.Msg, len(take))
	for _, m := range take {
		ch <- m
	}
	close(ch)
	return fakeBatch{ch}
}

func (c *fakeConsumer) Fetch(n int, _ ...jetstream.FetchOpt) (jetstream.MessageBatch, error) {
	c.mu.Lock()
	empty := len(c.queue) == 0
	c.mu.Unlock()
	if empty {
		time.Sleep(time.Second)
	}
	return c.take(n), nil
}

func (c *fakeConsumer) FetchNoWait(n int) (jetstream.MessageBatch, error) { return c.take(n), nil }

func (c *fakeConsumer) fn() func(context.Context) (Consumer, error) {
	return func(context.Context) (Consumer, error) { return c, nil }
}

// deadLetter is one event a recordingDeadLetters got.
type deadLetter struct {
	Notifier, ID, Reason string
}

// recordingDeadLetters keeps what was dead-lettered.
type recordingDeadLetters struct {
	mu  sync.Mutex
	got []deadLetter
}

func (d *recordingDeadLetters) DeadLetter(_ context.Context, notifier string, _ []byte, id, reason string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.got = append(d.got, deadLetter{notifier, id, reason})
	return nil
}

func (d *recordingDeadLetters) all() []deadLetter {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]deadLetter(nil), d.got...)
}

// noDeadLetters fails the test on any dead letter.
type noDeadLetters struct{ t *testing.T }

func (d noDeadLetters) DeadLetter(_ context.Context, _ string, _ []byte, id, reason string) error {
	d.t.Errorf("nothing should be dead-lettered; got %s: %s", id, reason)
	return nil
}

// delivery is one event a recorder accepted, and when.
type delivery struct {
	ID   string
	Call int
	At   time.Time
}

// recorder is a receiver that records what it accepts; fail, when set,
// decides per call whether it fails (and whether that is worth a retry).
type recorder struct {
	mu    sync.Mutex
	calls int
	got   []delivery
	fail  func(call int, events []event.Event) (retry bool, err error)
}

func (r *recorder) Notify(_ context.Context, events ...event.Event) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if r.fail != nil {
		if retry, err := r.fail(r.calls, events); err != nil {
			return retry, err
		}
	}
	for _, e := range events {
		r.got = append(r.got, delivery{ID: e.ID, Call: r.calls, At: time.Now()})
	}
	return false, nil
}

func (r *recorder) ids() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, len(r.got))
	for i, d := range r.got {
		out[i] = d.ID
	}
	return out
}

func (r *recorder) deliveries() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]delivery(nil), r.got...)
}

func (r *recorder) callCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls
}

// start runs d until the test ends (or stop is called); stop waits for Run
// to return.
func start(t *testing.T, d *Dispatcher) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := d.Run(ctx); err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

// eventually polls cond until it holds, or fails with what msg says then.
func eventually(t *testing.T, cond func() bool, msg func() string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal(msg())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

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

// fixture is a real bus and a real store.
type fixture struct {
	srv   *server.Server
	bus   *bus.Bus
	store *store.Store
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	srv := natsServer(t)
	b, err := bus.Open(context.Background(), bus.Options{URL: srv.ClientURL()})
	require.NoError(t, err)
	t.Cleanup(b.Close)
	return &fixture{srv: srv, bus: b, store: openStore(t)}
}

// consumer creates the notifier's consumer now (it delivers only what is
// published from then on) and returns Options.Consumer for it.
func (f *fixture) consumer(t *testing.T, name string) func(context.Context) (Consumer, error) {
	t.Helper()
	_, _, err := f.bus.Consumer(context.Background(), name)
	require.NoError(t, err)
	return func(ctx context.Context) (Consumer, error) {
		c, _, err := f.bus.Consumer(ctx, name)
		if err != nil {
			return nil, err
		}
		return c, nil
	}
}

// options are a notifier's options on the fixture: fast retries, no windows.
func (f *fixture) options(t *testing.T, name string, n Notifier) Options {
	return Options{Name: name, Notifier: n, Consumer: f.consumer(t, name), Ledger: f.store, DeadLetters: f.bus,
		MaxDeliver: 3, Backoff: Backoff{Base: time.Millisecond, Max: 5 * time.Millisecond}}
}

func (f *fixture) publish(t *testing.T, events ...event.Event) {
	t.Helper()
	for i := range events {
		require.NoError(t, f.bus.Publish(context.Background(), &events[i]))
	}
}

// inHand lists the ids the ledger holds in hand for notifier.
func inHand(t *testing.T, st *store.Store, notifier string) []string {
	t.Helper()
	les, err := st.InHand(notifier)
	require.NoError(t, err)
	var ids []string
	for _, le := range les {
		ids = append(ids, le.Event.ID)
	}
	return ids
}

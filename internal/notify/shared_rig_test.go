package notify_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/bus"
	"github.com/simwatch/simwatch/internal/event"
	"github.com/simwatch/simwatch/internal/notify"
	"github.com/simwatch/simwatch/internal/notify/webhook"
)

// The cluster rig: one real NATS server with JetStream, watchers that each
// have their own connection to it (as separate processes would), a shared
// delivery log, and a real webhook receiver.

// clusterAckWait is the consumers' ack wait in these tests: short, so that
// a dead worker's events come back quickly.
const clusterAckWait = time.Second

var clusterT0 = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

type cluster struct {
	srv *server.Server
	pub *bus.Bus
}

func newCluster(t testing.TB, notifiers ...string) *cluster {
	t.Helper()
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	require.NoError(t, err)
	s.Start()
	require.True(t, s.ReadyForConnections(10*time.Second))
	t.Cleanup(s.Shutdown)
	pub, err := bus.Open(context.Background(), bus.Options{URL: s.ClientURL(), AckWait: clusterAckWait})
	require.NoError(t, err)
	t.Cleanup(pub.Close)
	for _, n := range notifiers {
		_, _, err := pub.Consumer(context.Background(), n) // delivers what is published from now on
		require.NoError(t, err)
	}
	return &cluster{srv: s, pub: pub}
}

func (c *cluster) publish(t testing.TB, events ...event.Event) {
	t.Helper()
	for i := range events {
		require.NoError(t, c.pub.Publish(context.Background(), &events[i]))
	}
}

// pending is what the notifier's consumer has not had acknowledged.
func (c *cluster) pending(t testing.TB, notifier string) uint64 {
	t.Helper()
	n, err := c.pub.Pending(context.Background(), notifier)
	require.NoError(t, err)
	return n
}

// worker is one watcher's dispatcher of a notifier in cluster mode.
type worker struct {
	name   string
	bus    *bus.Bus
	d      *notify.Dispatcher
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// startWorker runs a dispatcher named via (the receiver's path tells it
// apart) for notifier on its own connection.
func (c *cluster) startWorker(t testing.TB, via, notifier string, rcv *receiver, mod func(*notify.Options)) *worker {
	t.Helper()
	b, err := bus.Open(context.Background(), bus.Options{URL: c.srv.ClientURL(), AckWait: clusterAckWait})
	require.NoError(t, err)
	log, err := notify.OpenSharedLog(context.Background(), b.JetStream(), "test", 1)
	require.NoError(t, err)
	o := notify.Options{
		Name:     notifier,
		Notifier: webhook.New(webhook.Options{Name: notifier, URL: rcv.srv.URL + "/" + via}),
		Consumer: func(ctx context.Context) (notify.Consumer, error) {
			cons, _, err := b.Consumer(ctx, notifier)
			if err != nil {
				return nil, err
			}
			return cons, nil
		},
		DeadLetters: b,
		Shared:      log,
		MaxDeliver:  1000,
		Backoff:     notify.Backoff{Base: 20 * time.Millisecond, Max: 100 * time.Millisecond},
	}
	if mod != nil {
		mod(&o)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &worker{name: via, bus: b, d: notify.NewDispatcher(o), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		_ = w.d.Run(ctx)
	}()
	t.Cleanup(w.kill)
	return w
}

// kill is a SIGKILL as far as the bus can tell: the connection goes
// first, so nothing in hand is acknowledged; then the dispatcher stops.
func (w *worker) kill() {
	w.once.Do(func() {
		w.bus.Close()
		w.cancel()
		<-w.done
	})
}

// stop is an orderly shutdown: the dispatcher stops, then the connection.
func (w *worker) stop() {
	w.once.Do(func() {
		w.cancel()
		<-w.done
		w.bus.Close()
	})
}

// got is one event a receiver accepted, and through which worker.
type got struct {
	ID    string
	Seq   uint64
	Alert string
	Via   string
	Call  int
}

// receiver is a webhook receiver: it records every event it accepts, in
// the order it accepted them; fail, when set, answers a call with a status
// instead (0 accepts).
type receiver struct {
	srv   *httptest.Server
	mu    sync.Mutex
	calls int
	got   []got
	fail  func(via string, events []event.Event) int
	hold  atomic.Int64 // nanoseconds each accepted call takes
}

func newReceiver(t testing.TB) *receiver {
	r := &receiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var p webhook.Payload
		if err := json.NewDecoder(req.Body).Decode(&p); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		via := strings.TrimPrefix(req.URL.Path, "/")
		r.mu.Lock()
		fail := r.fail
		r.mu.Unlock()
		if fail != nil {
			if code := fail(via, p.Events); code != 0 {
				w.WriteHeader(code)
				return
			}
		}
		if d := time.Duration(r.hold.Load()); d > 0 {
			time.Sleep(d) // a slow receiver, so that a kill finds events in flight
		}
		r.mu.Lock()
		r.calls++
		for _, e := range p.Events {
			r.got = append(r.got, got{ID: e.ID, Seq: e.Seq, Alert: e.EntityID, Via: via, Call: r.calls})
		}
		r.mu.Unlock()
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) setFail(f func(via string, events []event.Event) int) {
	r.mu.Lock()
	r.fail = f
	r.mu.Unlock()
}

func (r *receiver) all() []got {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]got(nil), r.got...)
}

func (r *receiver) ids() map[string]int {
	n := map[string]int{}
	for _, g := range r.all() {
		n[g.ID]++
	}
	return n
}

// story builds n events of alert entity, seq 1..n, alternating firing and
// resolved episodes.
func story(entity string, n int, notifyTo ...string) []event.Event {
	out := make([]event.Event, n)
	for i := range n {
		kind, start := event.KindFiring, clusterT0.Add(time.Duration(i/2)*time.Hour)
		if i%2 == 1 {
			kind = event.KindResolved
		}
		out[i] = event.Event{ID: fmt.Sprintf("%s-%d", entity, i+1), Seq: uint64(i + 1), Kind: kind, Rule: "card_low_flow",
			Provider: "hw", Entity: "card", EntityID: entity, StartsAt: start, ObservedAt: clusterT0, Notify: notifyTo}
	}
	return out
}

// interleave takes the events of several stories in turns: every alert's
// first event, then every second, …, as a fleet's cycles publish them.
func interleave(stories ...[]event.Event) []event.Event {
	var out []event.Event
	for i := 0; ; i++ {
		more := false
		for _, s := range stories {
			if i < len(s) {
				out = append(out, s[i])
				more = true
			}
		}
		if !more {
			return out
		}
	}
}

// waitFor polls cond until it holds, or fails with what msg says then.
func waitFor(t testing.TB, within time.Duration, cond func() bool, msg func() string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal(msg())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// checkStories asserts what a receiver of alerts' stories must see: every
// event of want, each alert's seqs in order with no gap. A repeat is
// allowed only where dupOK says (given the first copy): the same id with
// the same seq, arriving before any newer event of its alert from another
// worker than the first copy's (the whole call the killed worker's
// receiver accepted comes again, then the story goes on), so that the
// events seen for the first time are always in order.
func checkStories(t testing.TB, rcv *receiver, want []event.Event, dupOK func(first got) bool) {
	t.Helper()
	byAlert := map[string][]got{}
	for _, g := range rcv.all() {
		byAlert[g.Alert] = append(byAlert[g.Alert], g)
	}
	wantN := map[string]uint64{}
	for _, e := range want {
		wantN[e.EntityID] = max(wantN[e.EntityID], e.Seq)
	}
	for alert, n := range wantN {
		gs := byAlert[alert]
		first := map[string]got{}
		var last got // the last event seen for the first time
		for _, g := range gs {
			if f, ok := first[g.ID]; ok {
				require.Equal(t, f.Seq, g.Seq, "alert %s: %s came with another seq", alert, g.ID)
				require.True(t, dupOK != nil && dupOK(f), "alert %s: seq %d delivered twice (first via %s): %v", alert, g.Seq, f.Via, gs)
				require.Equal(t, f.Via, last.Via, "alert %s: repeat of seq %d after newer events: %v", alert, g.Seq, gs)
				continue
			}
			first[g.ID] = g
			require.Equal(t, last.Seq+1, g.Seq, "alert %s: out of order or a gap: %v", alert, gs)
			last = g
		}
		require.Equal(t, n, last.Seq, "alert %s: not every event arrived: %v", alert, gs)
	}
}

// gate lets a worker fetch from the bus only while open: a worker that
// takes nothing more (its other messages go to the others).
type gate struct {
	open    atomic.Bool
	fetches atomic.Int32 // fetches under way
}

// close shuts the gate and waits for the fetch under way to end.
func (g *gate) close(t testing.TB) {
	g.open.Store(false)
	waitFor(t, 5*time.Second, func() bool { return g.fetches.Load() == 0 }, func() string { return "a fetch never ended" })
}

type gatedConsumer struct {
	jetstream.Consumer
	g *gate
}

func (c gatedConsumer) Fetch(n int, opts ...jetstream.FetchOpt) (jetstream.MessageBatch, error) {
	c.g.fetches.Add(1)
	defer c.g.fetches.Add(-1)
	if !c.g.open.Load() {
		time.Sleep(50 * time.Millisecond)
		return nil, errGateClosed
	}
	batch, err := c.Consumer.Fetch(n, opts...)
	if err != nil {
		return nil, err
	}
	// The batch is drained here, so that the fetch has ended when
	// Fetch returns.
	ch := make(chan jetstream.Msg, n)
	for m := range batch.Messages() {
		ch <- m
	}
	close(ch)
	return drained{ch: ch, err: batch.Error()}, nil
}

func (c gatedConsumer) FetchNoWait(n int) (jetstream.MessageBatch, error) {
	if !c.g.open.Load() {
		return nil, errGateClosed
	}
	return c.Consumer.FetchNoWait(n)
}

type drained struct {
	ch  chan jetstream.Msg
	err error
}

func (d drained) Messages() <-chan jetstream.Msg { return d.ch }
func (d drained) Error() error                   { return d.err }

var errGateClosed = fmt.Errorf("gate closed")

// gated makes a worker's consumer fetch only while g is open.
func gated(g *gate) func(*notify.Options) {
	return func(o *notify.Options) {
		inner := o.Consumer
		o.Consumer = func(ctx context.Context) (notify.Consumer, error) {
			cons, err := inner(ctx)
			if err != nil {
				return nil, err
			}
			return gatedConsumer{Consumer: cons.(jetstream.Consumer), g: g}, nil
		}
	}
}

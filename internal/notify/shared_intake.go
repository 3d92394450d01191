package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/simwatch/simwatch/internal/bus"
	"github.com/simwatch/simwatch/internal/event"
)

// Cluster mode (Options.Shared): every watcher's dispatcher of a notifier
// pulls from the same durable consumer. Nothing goes to the local ledger: a
// message stays unacknowledged on the bus while it is in hand, kept alive
// with InProgress, and is acknowledged only once it is settled and the
// shared log says so. A watcher that dies with events in hand loses none of
// them: the bus hands them to another after AckWait.

// sharedRun is a dispatcher's messages in hand in cluster mode. An item's
// lseq is the stream sequence of its event's message: unique, and in the
// order events were published.
type sharedRun struct {
	mu   sync.Mutex
	held map[uint64]*heldMsg // by stream sequence, a repeat's included
	byID map[string]*heldMsg
	cons Consumer       // the latest: its ack floor and AckWait
	keys map[string]int // shared log keys of the alerts in hand: events per key
	// woken says another worker settled an alert with events held here.
	woken atomic.Bool
}

// holdsKey reports whether events of the alert under this shared log key
// are in hand.
func (s *sharedRun) holdsKey(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.keys[key] > 0
}

// heldMsg is one event in hand and its messages: the one it came in, and
// any repeat of it (another stream sequence) that came while it was here,
// all acknowledged when it is settled.
type heldMsg struct {
	lseq   uint64
	id     string
	key    string // the shared log's key of its alert
	replay bool   // a dead letter replayed: no order, no repeat check
	msgs   map[uint64]jetstream.Msg
}

func newSharedRun() *sharedRun {
	return &sharedRun{held: map[uint64]*heldMsg{}, byID: map[string]*heldMsg{}, keys: map[string]int{}}
}

func (s *sharedRun) setConsumer(c Consumer) {
	s.mu.Lock()
	s.cons = c
	s.mu.Unlock()
}

func (s *sharedRun) consumer() Consumer {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cons
}

// isReplay reports whether the event in hand under lseq is a replayed dead
// letter.
func (s *sharedRun) isReplay(lseq uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.held[lseq]
	return h != nil && h.replay
}

func (s *sharedRun) isReplayID(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.byID[id]
	return h != nil && h.replay
}

// forget takes the event in hand under lseq out of hand and returns its
// messages, for the caller to acknowledge or leave to the bus.
func (s *sharedRun) forget(lseq uint64) []jetstream.Msg {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.held[lseq]
	if h == nil {
		return nil
	}
	msgs := make([]jetstream.Msg, 0, len(h.msgs))
	for sseq, m := range h.msgs {
		delete(s.held, sseq)
		msgs = append(msgs, m)
	}
	delete(s.byID, h.id)
	if s.keys[h.key]--; s.keys[h.key] <= 0 {
		delete(s.keys, h.key)
	}
	return msgs
}

// inHand lists every message in hand (for InProgress).
func (s *sharedRun) inHand() []jetstream.Msg {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]jetstream.Msg, 0, len(s.held))
	for sseq, h := range s.held {
		out = append(out, h.msgs[sseq])
	}
	return out
}

// fetched is a message routed to the notifier, decoded.
type fetched struct {
	m      jetstream.Msg
	ev     event.Event
	sseq   uint64
	replay bool
}

// takeShared is the route and intake stages in cluster mode: messages not
// for this notifier are acknowledged at once; repeats of events settled
// anywhere are acknowledged and skipped; a repeat of an event in hand joins
// it; the rest come into hand, unacknowledged.
func (d *Dispatcher) takeShared(ctx context.Context, msgs []jetstream.Msg) {
	var in []fetched
	var alerts []string
	seen := map[string]bool{}
	for _, m := range msgs {
		var ev event.Event
		if err := json.Unmarshal(m.Data(), &ev); err != nil || ev.ID == "" {
			if err == nil {
				err = errors.New("no id")
			}
			id := m.Headers().Get("Nats-Msg-Id")
			if d.deadLetterData(ctx, m.Data(), id, fmt.Sprintf("undecodable event: %v", err)) {
				ackMsgs(d, m)
			}
			continue
		}
		replay, ok := route(d.o.Name, &ev, m.Headers().Get(bus.HeaderReplayFor), m.Headers().Get(bus.HeaderRecoverFor))
		if !ok {
			ackMsgs(d, m)
			continue
		}
		md, err := m.Metadata()
		if err != nil {
			d.log.Warn("bus message without metadata; left to the bus", "event_id", ev.ID, "err", err)
			continue
		}
		in = append(in, fetched{m: m, ev: ev, sseq: md.Sequence.Stream, replay: replay})
		if k := ev.AlertKey(); !replay && ev.Seq > 0 && !seen[k] {
			seen[k] = true
			alerts = append(alerts, k)
		}
	}
	// What the others settled: repeats are dropped here, and the order
	// stage knows where each alert stands.
	if len(alerts) > 0 {
		if _, err := d.o.Shared.Load(ctx, d.o.Name, alerts); err != nil && ctx.Err() == nil {
			d.log.Warn("shared delivery log unreadable; repeats are checked again before each attempt", "err", err)
		}
	}
	var its []*item
	for _, f := range in {
		if it := d.hold(f); it != nil {
			its = append(its, it)
		}
	}
	if len(its) > 0 {
		d.push(its...)
	}
}

// hold brings a fetched event into hand and returns its item; nil when it
// is a repeat.
func (d *Dispatcher) hold(f fetched) *item {
	s := d.sh
	s.mu.Lock()
	if h := s.held[f.sseq]; h != nil {
		// The bus handed the same message out again (its AckWait ran
		// out): keep the newest delivery, it is the one the bus tracks.
		h.msgs[f.sseq] = f.m
		s.mu.Unlock()
		return nil
	}
	if h := s.byID[f.ev.ID]; h != nil {
		// The same event in another message (published again): it is
		// acknowledged with the one in hand.
		h.msgs[f.sseq] = f.m
		s.held[f.sseq] = h
		s.mu.Unlock()
		d.Stats.Skipped.Add(1)
		return nil
	}
	if !f.replay && f.ev.Seq > 0 {
		if st, ok := d.o.Shared.cached(d.o.Name, f.ev.AlertKey()); ok && f.ev.Seq <= st.Seq {
			s.mu.Unlock()
			d.Stats.Skipped.Add(1)
			d.log.Debug("repeat of a settled event skipped", "event_id", f.ev.ID, "seq", f.ev.Seq, "settled", st.Seq)
			ackMsgs(d, f.m)
			return nil
		}
	}
	h := &heldMsg{lseq: f.sseq, id: f.ev.ID, key: sharedKey(d.o.Name, f.ev.AlertKey()), replay: f.replay,
		msgs: map[uint64]jetstream.Msg{f.sseq: f.m}}
	s.held[f.sseq] = h
	s.byID[f.ev.ID] = h
	s.keys[h.key]++
	s.mu.Unlock()
	return &item{lseq: f.sseq, ev: f.ev}
}

// ackMsgs acknowledges messages. It does not wait for the server: a lost
// acknowledgement only brings the event back, and the shared log drops it.
func ackMsgs(d *Dispatcher, msgs ...jetstream.Msg) {
	for _, m := range msgs {
		if err := m.Ack(); err != nil {
			d.log.Warn("ack failed; the bus will hand the event out again, and the shared log drops the repeat", "err", err)
		}
	}
}

// heartbeat tells the bus every AckWait/3 that the messages in hand are
// being worked on, so that it hands them to no other worker while they
// wait here (for their group, their turn or a retry).
func (d *Dispatcher) heartbeat(ctx context.Context) {
	for {
		wait := d.ackWait() / 3
		if d.o.AckWait <= 0 && d.sh.consumer() == nil {
			// The consumer's ack wait is not known before the first
			// fetch: look again soon, not after the default's third.
			wait = min(wait, 100*time.Millisecond)
		}
		if sleep(ctx, wait) != nil {
			return
		}
		for _, m := range d.sh.inHand() {
			if err := m.InProgress(); err != nil && ctx.Err() == nil {
				d.log.Warn("in-progress signal failed; the bus may hand the event to another worker", "err", err)
			}
		}
	}
}

// ackWait is how long the bus waits for an acknowledgement before handing
// a message out again: Options.AckWait, else the consumer's.
func (d *Dispatcher) ackWait() time.Duration {
	if d.o.AckWait > 0 {
		return d.o.AckWait
	}
	if c, ok := d.sh.consumer().(interface {
		CachedInfo() *jetstream.ConsumerInfo
	}); ok {
		if info := c.CachedInfo(); info != nil && info.Config.AckWait > 0 {
			return info.Config.AckWait
		}
	}
	return bus.DefaultAckWait
}

// ackFloor is the consumer's ack floor: the stream sequence up to which
// every message is acknowledged.
func (d *Dispatcher) ackFloor(ctx context.Context) (uint64, bool) {
	c, ok := d.sh.consumer().(interface {
		Info(context.Context) (*jetstream.ConsumerInfo, error)
	})
	if !ok {
		return 0, false
	}
	ictx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	info, err := c.Info(ictx)
	if err != nil {
		if ctx.Err() == nil {
			d.log.Warn("consumer info unreadable; held events wait for their predecessors", "err", err)
		}
		return 0, false
	}
	return info.AckFloor.Stream, true
}

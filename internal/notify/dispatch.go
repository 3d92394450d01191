package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/simwatch/simwatch/internal/bus"
	"github.com/simwatch/simwatch/internal/event"
)

// DeliveryLog remembers which events a notifier's receiver accepted, so that
// a redelivery long after the bus's duplicate window is not sent twice.
type DeliveryLog interface {
	Delivered(notifier, eventID string) (bool, error)
	MarkDelivered(notifier string, at time.Time, eventIDs ...string) error
}

// DeadLetters keeps events a notifier could not deliver, with the reason.
type DeadLetters interface {
	DeadLetter(ctx context.Context, notifier string, data []byte, eventID, reason string) error
}

// Consumer is the notifier's durable consumer on the bus.
type Consumer interface {
	Fetch(batch int, opts ...jetstream.FetchOpt) (jetstream.MessageBatch, error)
	FetchNoWait(batch int) (jetstream.MessageBatch, error)
}

// Options configures a Dispatcher. Zero values are defaults.
type Options struct {
	Name        string
	Notifier    Notifier
	Consumer    Consumer
	Log         DeliveryLog
	DeadLetters DeadLetters
	MaxDeliver  int           // attempts per group before dead-lettering; default 10
	MaxEvents   int           // events per Notify call; default 100
	Backoff     Backoff       // default 1s..5m
	AckWait     time.Duration // the consumer's ack wait, to keep long retries alive; default 30s
	Now         func() time.Time
	Logger      *slog.Logger
	// Observe, when set, is told each delivered event's latency: from the
	// cycle that observed it to the receiver accepting it.
	Observe func(time.Duration)
}

// Stats counts a notifier's deliveries.
type Stats struct {
	Delivered    atomic.Int64 // events the receiver accepted
	Retried      atomic.Int64 // failed attempts that were retried
	DeadLettered atomic.Int64
	Skipped      atomic.Int64 // already in the delivery log
}

// Dispatcher runs one notifier.
type Dispatcher struct {
	o     Options
	log   *slog.Logger
	Stats Stats

	mu             sync.Mutex
	lastDeadLetter string
}

// LastDeadLetter is the reason of the latest event dead-lettered, if any.
func (d *Dispatcher) LastDeadLetter() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.lastDeadLetter
}

// NewDispatcher returns a dispatcher for o.
func NewDispatcher(o Options) *Dispatcher {
	if o.MaxDeliver <= 0 {
		o.MaxDeliver = 10
	}
	if o.MaxEvents <= 0 {
		o.MaxEvents = 100
	}
	if o.Backoff.Base <= 0 {
		o.Backoff.Base = time.Second
	}
	if o.Backoff.Max <= 0 {
		o.Backoff.Max = 5 * time.Minute
	}
	if o.AckWait <= 0 {
		o.AckWait = 30 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Dispatcher{o: o, log: o.Logger.With("notifier", o.Name)}
}

// Run fetches and delivers until ctx ends. Events being delivered when ctx
// ends are left unacknowledged, so the bus delivers them again later.
func (d *Dispatcher) Run(ctx context.Context) error {
	for ctx.Err() == nil {
		// Collect a batch for less than the ack wait, so that nothing in it is
		// redelivered before it is even processed.
		// Wait for the first event, then take what else is already there:
		// delivery starts at once, and a burst still arrives as one batch.
		fctx, cancel := context.WithTimeout(ctx, min(time.Second, d.o.AckWait/2))
		batch, err := d.o.Consumer.Fetch(1, jetstream.FetchContext(fctx))
		if err != nil {
			cancel()
			if ctx.Err() != nil {
				break
			}
			d.log.Warn("fetch failed", "err", err)
			if err := sleep(ctx, time.Second, nil, 0); err != nil {
				break
			}
			continue
		}
		var msgs []jetstream.Msg
		for m := range batch.Messages() {
			msgs = append(msgs, m)
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			d.log.Debug("fetch ended early", "err", err)
		}
		if len(msgs) > 0 && d.o.MaxEvents > 1 {
			if more, err := d.o.Consumer.FetchNoWait(d.o.MaxEvents - 1); err == nil {
				for m := range more.Messages() {
					msgs = append(msgs, m)
				}
			}
		}
		cancel()
		if len(msgs) > 0 {
			d.process(ctx, msgs)
		}
	}
	return nil
}

type item struct {
	msg  jetstream.Msg
	ev   event.Event
	dups []jetstream.Msg // redeliveries of the same event in the same batch
}

// process runs the stages over one fetched batch.
func (d *Dispatcher) process(ctx context.Context, msgs []jetstream.Msg) {
	var groups [][]item
	index := map[string]int{}
	seen := map[string][2]int{} // event id → group, position
	for _, m := range msgs {
		var ev event.Event
		if err := json.Unmarshal(m.Data(), &ev); err != nil || ev.ID == "" {
			d.deadLetter(ctx, []item{{msg: m, ev: event.Event{ID: m.Headers().Get("Nats-Msg-Id")}}}, fmt.Sprintf("undecodable event: %v", err))
			continue
		}
		// Route: not addressed to this notifier, or a dead letter replayed
		// for another one.
		if !ev.For(d.o.Name) || (m.Headers().Get(bus.HeaderReplayFor) != "" && m.Headers().Get(bus.HeaderReplayFor) != d.o.Name) {
			d.ack(ctx, m)
			continue
		}
		// Dedup: the receiver already accepted it.
		done, err := d.o.Log.Delivered(d.o.Name, ev.ID)
		if err != nil {
			d.log.Error("delivery log unreadable; will retry", "event_id", ev.ID, "err", err)
			return
		}
		if done {
			d.Stats.Skipped.Add(1)
			d.ack(ctx, m)
			continue
		}
		if at, dup := seen[ev.ID]; dup {
			it := &groups[at[0]][at[1]]
			it.dups = append(it.dups, m)
			continue
		}
		// Group per rule, keeping order within each group.
		i, ok := index[ev.Rule]
		if !ok {
			i = len(groups)
			index[ev.Rule] = i
			groups = append(groups, nil)
		}
		seen[ev.ID] = [2]int{i, len(groups[i])}
		groups[i] = append(groups[i], item{msg: m, ev: ev})
	}
	for _, g := range groups {
		if ctx.Err() != nil {
			return
		}
		d.deliver(ctx, g)
	}
}

// deliver is the retry and record stages for one group.
func (d *Dispatcher) deliver(ctx context.Context, g []item) {
	events := make([]event.Event, len(g))
	for i, it := range g {
		events[i] = it.ev
	}
	keepAlive := func() {
		for _, it := range g {
			_ = it.msg.InProgress()
		}
	}
	onRetry := func(r RetryInfo) {
		// Counted and logged as it happens, so a long outage shows at once.
		d.Stats.Retried.Add(1)
		if r.Asked > 0 {
			d.log.Warn("Retry-After capped at max_backoff", "event_id", events[0].ID,
				"retry_after", r.Asked, "max_backoff", d.o.Backoff.Max)
		}
		d.log.Warn("delivery failed; will retry", "event_id", events[0].ID, "events", len(events),
			"attempt", r.Attempt, "wait", r.Wait, "err", r.Err)
	}
	attempts, permanent, err := RetryNotify(ctx, d.o.Notifier, events, d.o.MaxDeliver, d.o.Backoff, keepAlive, d.o.AckWait/3, onRetry)
	if err == nil {
		now := d.o.Now()
		ids := make([]string, len(events))
		for i, e := range events {
			ids[i] = e.ID
		}
		if lerr := d.o.Log.MarkDelivered(d.o.Name, now, ids...); lerr != nil {
			// The receiver has them; without the log a redelivery may repeat
			// them, which the receiver dedupes by Idempotency-Key.
			d.log.Error("delivery log write failed", "err", lerr)
		}
		for _, it := range g {
			d.ack(ctx, it.msg)
			for _, m := range it.dups {
				d.ack(ctx, m)
			}
			d.log.Debug("delivered", "event_id", it.ev.ID, "rule", it.ev.Rule, "attempts", attempts)
		}
		d.Stats.Delivered.Add(int64(len(g)))
		if d.o.Observe != nil {
			for _, e := range events {
				d.o.Observe(now.Sub(e.ObservedAt))
			}
		}
		return
	}
	if ctx.Err() != nil {
		return // shutting down: the bus redelivers
	}
	reason := fmt.Sprintf("after %d attempts: %v", attempts, err)
	if permanent {
		reason = fmt.Sprintf("permanent error: %v", err)
	}
	d.deadLetter(ctx, g, reason)
}

func (d *Dispatcher) deadLetter(ctx context.Context, g []item, reason string) {
	for _, it := range g {
		if err := d.o.DeadLetters.DeadLetter(ctx, d.o.Name, it.msg.Data(), it.ev.ID, reason); err != nil {
			d.log.Error("dead letter failed; event stays on the bus", "event_id", it.ev.ID, "err", err)
			continue
		}
		d.log.Warn("event dead-lettered", "event_id", it.ev.ID, "rule", it.ev.Rule, "reason", reason)
		d.mu.Lock()
		d.lastDeadLetter = reason
		d.mu.Unlock()
		d.Stats.DeadLettered.Add(1)
		d.ack(ctx, it.msg)
		for _, m := range it.dups {
			d.ack(ctx, m)
		}
	}
}

func (d *Dispatcher) ack(ctx context.Context, m jetstream.Msg) {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := m.DoubleAck(actx); err != nil {
		d.log.Warn("ack failed; the event will be redelivered and deduplicated", "err", err)
	}
}

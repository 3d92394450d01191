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
	"github.com/simwatch/simwatch/internal/store"
)

// Ledger is the store's record of what each notifier owes: it takes events
// from the bus, keeps them across restarts until they are settled, and
// orders each alert's events.
type Ledger interface {
	Receive(notifier string, in []store.Incoming) ([]store.Received, error)
	InHand(notifier string) ([]store.LedgerEvent, error)
	UnreceivedCount(notifier string) int
	Settle(notifier string, at time.Time, outcomes []store.Outcome) error
	OwedLedger
	FiringLog
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
	Name     string
	Notifier Notifier
	// Consumer returns the notifier's consumer; it is called again after
	// the bus fails, so that a consumer lost with the bus's data is made
	// anew.
	Consumer    func(ctx context.Context) (Consumer, error)
	Ledger      Ledger
	DeadLetters DeadLetters
	Mute        MuteSource // nil mutes nothing
	// Grouping (see Grouper): GroupBy defaults to [rule].
	GroupBy       []string
	GroupWait     time.Duration
	GroupInterval time.Duration
	// Once sends every group as soon as all the events owed to the
	// notifier are in hand, without waiting out the windows (run --once).
	Once       bool
	MaxDeliver int // attempts per send before dead-lettering; default 10
	MaxEvents  int // most events per Notify call; 0 means a group is one call
	// Parallel is how many sends may be under way at once; default 8. A
	// group's events that join it while a send of it retries go in a send
	// of their own after the interval.
	Parallel int
	Backoff  Backoff
	Now      func() time.Time
	Logger   *slog.Logger
	// Observe, when set, is told each delivered event's latency: from the
	// cycle that observed it to the receiver accepting it.
	Observe func(time.Duration)
	// Shared, when set, is cluster mode: the dispatchers of every watcher
	// share the notifier's consumer, and the shared delivery log, not the
	// ledger, orders events and drops repeats; messages stay on the bus,
	// unacknowledged, until settled (see shared_intake.go). Ledger may
	// then be nil; when set, it only keeps this watcher's record of
	// outcomes (muted events in the history). Once does not apply.
	Shared *SharedLog
	// AckWait is the consumer's ack wait, in cluster mode: messages in
	// hand are kept alive every AckWait/3. Zero asks the consumer.
	AckWait time.Duration
}

// Stats counts a notifier's deliveries.
type Stats struct {
	Delivered    atomic.Int64 // events the receiver accepted
	Retried      atomic.Int64 // failed attempts that were retried
	DeadLettered atomic.Int64
	Muted        atomic.Int64 // silenced or inhibited at delivery
	Skipped      atomic.Int64 // repeats from the bus, already taken
}

// holdRecheck is how soon events held back for order are looked at again.
const holdRecheck = time.Second

// Dispatcher runs one notifier: an intake that moves events from the bus
// into the ledger, and the stages that deliver them from there.
type Dispatcher struct {
	o     Options
	log   *slog.Logger
	Stats Stats

	order  Order
	dedup  Dedup
	mute   Mute
	groups Grouper

	mu             sync.Mutex
	receiving      sync.Mutex // held from ledger intake to inbox, so Once sees all or none
	inbox          []*item
	wake           chan struct{}
	lastDeadLetter string
	lastFailure    string

	sh *sharedRun // cluster mode; nil otherwise
}

// NewDispatcher returns a dispatcher for o.
func NewDispatcher(o Options) *Dispatcher {
	if o.MaxDeliver <= 0 {
		o.MaxDeliver = 10
	}
	if o.Parallel <= 0 {
		o.Parallel = 8
	}
	if o.Backoff.Base <= 0 {
		o.Backoff.Base = time.Second
	}
	if o.Backoff.Max <= 0 {
		o.Backoff.Max = 5 * time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	d := &Dispatcher{
		o:      o,
		log:    o.Logger.With("notifier", o.Name),
		order:  Order{Notifier: o.Name, Ledger: o.Ledger},
		dedup:  Dedup{Notifier: o.Name, Log: o.Ledger},
		mute:   Mute{Source: o.Mute},
		groups: Grouper{By: o.GroupBy, Wait: o.GroupWait, Interval: o.GroupInterval},
		wake:   make(chan struct{}, 1),
	}
	if o.Shared != nil {
		d.sh = newSharedRun()
		d.dedup.Log = o.Shared
	}
	return d
}

// SetOnce makes Run send every group as soon as all the events owed to the
// notifier are in hand (see Options.Once). Call it before Run.
func (d *Dispatcher) SetOnce(once bool) { d.o.Once = once }

// LastFailure is the error of the latest failed attempt, if any; cleared
// by a delivery.
func (d *Dispatcher) LastFailure() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.lastFailure
}

func (d *Dispatcher) noteFailure(err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.lastFailure = ""
	if err != nil {
		d.lastFailure = err.Error()
	}
}

// LastDeadLetter is the reason of the latest event dead-lettered, if any.
func (d *Dispatcher) LastDeadLetter() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.lastDeadLetter
}

// Run delivers until ctx ends. What is in hand when it ends stays in the
// ledger and is picked up by the next Run; in cluster mode it stays on the
// bus, unacknowledged, and the bus hands it out again after AckWait.
func (d *Dispatcher) Run(ctx context.Context) error {
	if d.sh != nil {
		// Nothing is in hand: what a previous Run held is on the bus.
		d.sh = newSharedRun()
		d.groups = Grouper{By: d.o.GroupBy, Wait: d.o.GroupWait, Interval: d.o.GroupInterval}
		_ = d.takeInbox()
	} else {
		inHand, err := d.o.Ledger.InHand(d.o.Name)
		if err != nil {
			return fmt.Errorf("notifier %s: %w", d.o.Name, err)
		}
		for _, le := range inHand {
			d.push(&item{lseq: le.LSeq, ev: le.Event})
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	wg.Go(func() { d.intake(ctx) })
	if d.sh != nil {
		wg.Go(func() { d.heartbeat(ctx) })
		wg.Go(func() { d.watchSettles(ctx) })
	}
	d.deliver(ctx)
	return nil
}

func (d *Dispatcher) push(its ...*item) {
	d.mu.Lock()
	d.inbox = append(d.inbox, its...)
	d.mu.Unlock()
	d.poke()
}

// poke wakes the deliver loop.
func (d *Dispatcher) poke() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

func (d *Dispatcher) takeInbox() []*item {
	d.mu.Lock()
	defer d.mu.Unlock()
	its := d.inbox
	d.inbox = nil
	return its
}

// intake moves events from the bus into the ledger, then acknowledges them:
// from then on the ledger, not the bus, holds them for this notifier, so an
// unacknowledged message never comes back late behind newer ones.
func (d *Dispatcher) intake(ctx context.Context) {
	var cons Consumer
	for ctx.Err() == nil {
		if cons == nil {
			c, err := d.o.Consumer(ctx)
			if err != nil {
				if ctx.Err() == nil {
					d.log.Warn("bus consumer unavailable; will retry", "err", err)
					_ = sleep(ctx, time.Second)
				}
				continue
			}
			cons = c
		}
		msgs, err := fetch(ctx, cons, 256)
		if err != nil {
			if ctx.Err() == nil {
				d.log.Warn("fetch failed; will reconnect", "err", err)
				cons = nil
				_ = sleep(ctx, time.Second)
			}
			continue
		}
		switch {
		case len(msgs) == 0:
		case d.sh != nil:
			d.sh.setConsumer(cons)
			d.takeShared(ctx, msgs)
		default:
			d.take(ctx, msgs)
		}
	}
}

// fetch waits up to a second for a first message, then takes what else is
// there, up to max: delivery starts at once, and a burst arrives together.
func fetch(ctx context.Context, cons Consumer, max int) ([]jetstream.Msg, error) {
	fctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	batch, err := cons.Fetch(1, jetstream.FetchContext(fctx))
	if err != nil {
		return nil, err
	}
	var msgs []jetstream.Msg
	for m := range batch.Messages() {
		msgs = append(msgs, m)
	}
	if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		return msgs, err
	}
	if len(msgs) > 0 && max > 1 {
		if more, err := cons.FetchNoWait(max - 1); err == nil {
			for m := range more.Messages() {
				msgs = append(msgs, m)
			}
		}
	}
	return msgs, nil
}

// take is the route and intake stages for fetched messages.
func (d *Dispatcher) take(ctx context.Context, msgs []jetstream.Msg) {
	var in []store.Incoming
	ack := make([]jetstream.Msg, 0, len(msgs))
	for _, m := range msgs {
		var ev event.Event
		if err := json.Unmarshal(m.Data(), &ev); err != nil || ev.ID == "" {
			if err == nil {
				err = errors.New("no id")
			}
			id := m.Headers().Get("Nats-Msg-Id")
			if d.deadLetterData(ctx, m.Data(), id, fmt.Sprintf("undecodable event: %v", err)) {
				ack = append(ack, m)
			}
			continue
		}
		ack = append(ack, m)
		replay, ok := route(d.o.Name, &ev, m.Headers().Get(bus.HeaderReplayFor), m.Headers().Get(bus.HeaderRecoverFor))
		if !ok {
			continue
		}
		in = append(in, store.Incoming{Event: ev, Data: m.Data(), Replay: replay})
	}
	if len(in) > 0 {
		d.receiving.Lock()
		recs, err := d.o.Ledger.Receive(d.o.Name, in)
		if err != nil {
			// Not acknowledged: the bus hands them out again.
			d.receiving.Unlock()
			d.log.Error("ledger write failed; events stay on the bus", "events", len(in), "err", err)
			_ = sleep(ctx, time.Second)
			return
		}
		var its []*item
		for i, r := range recs {
			if !r.Take {
				d.Stats.Skipped.Add(1)
				continue
			}
			its = append(its, &item{lseq: r.LSeq, ev: in[i].Event})
		}
		if len(its) > 0 {
			d.push(its...)
		}
		d.receiving.Unlock()
	}
	for _, m := range ack {
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		if err := m.DoubleAck(actx); err != nil {
			d.log.Warn("ack failed; the bus will hand the event out again, and the ledger drops the repeat", "err", err)
		}
		cancel()
	}
}

// flushed is the end of a group's send, reported to the deliver loop.
type flushed struct {
	pg      *pendingGroup
	sent    []*item
	settled map[uint64]bool
}

// deliver is the loop of the stages after intake: events join their groups,
// and each group is sent when due. Sends run concurrently (at most Parallel
// at a time), so that one send's retries hold back nothing else; the loop
// alone touches the groups.
func (d *Dispatcher) deliver(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	done := make(chan flushed)
	inFlight := 0
	var sends sync.WaitGroup
	defer func() {
		// Sends end with ctx; what they did not settle stays in the ledger.
		go func() {
			for range done {
			}
		}()
		sends.Wait()
		close(done)
	}()
	for ctx.Err() == nil {
		now := d.o.Now()
		d.receiving.Lock()
		for _, it := range d.takeInbox() {
			d.groups.Add(it, now)
		}
		all := d.o.Once && d.sh == nil && d.groups.Len() > 0 && d.o.Ledger.UnreceivedCount(d.o.Name) == 0
		d.receiving.Unlock()
		for _, pg := range d.groups.Due(now, all) {
			if inFlight >= d.o.Parallel {
				break
			}
			sent := d.groups.Start(pg, now)
			inFlight++
			sends.Go(func() {
				done <- flushed{pg: pg, sent: sent, settled: d.flush(ctx, pg.Group, sent)}
			})
		}
		wait := time.Hour
		if next := d.groups.Next(); !next.IsZero() && inFlight < d.o.Parallel {
			wait = max(next.Sub(now), 0)
		}
		if d.o.Once && d.groups.Len() > 0 {
			wait = min(wait, 20*time.Millisecond) // until all are in hand
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case f := <-done:
			inFlight--
			now := d.o.Now()
			d.groups.Done(f.pg, f.sent, f.settled, now, holdRecheck)
			if len(f.settled) > 0 {
				d.groups.Wake(now) // an alert held in another group may go now
			}
		case <-d.wake:
			if d.sh != nil && d.sh.woken.Swap(false) {
				d.groups.Wake(d.o.Now()) // another worker settled what they wait for
			}
		case <-timer.C:
		}
	}
}

// flush sends a group's events: the order, dedup, mute, retry and record
// stages. It returns the ledger places it settled.
func (d *Dispatcher) flush(ctx context.Context, g Group, items []*item) map[uint64]bool {
	var ready []*item
	if d.sh != nil {
		ready = d.sharedSplit(ctx, items)
	} else {
		var err error
		if ready, _, err = d.order.Split(items); err != nil {
			d.log.Error("ledger unreadable; will retry", "err", err)
			return nil
		}
	}
	if len(ready) == 0 {
		return nil
	}
	byID := make(map[string]*item, len(ready))
	events := make([]event.Event, len(ready))
	for i, it := range ready {
		byID[it.ev.ID] = it
		events[i] = it.ev
	}
	var outcomes []store.Outcome
	size := d.o.MaxEvents
	if size <= 0 {
		size = len(events)
	}
	for start := 0; start < len(events) && ctx.Err() == nil; start += size {
		chunk := events[start:min(start+size, len(events))]
		got := d.send(ctx, g, chunk)
		outcomes = append(outcomes, got...)
		if len(got) < len(chunk) {
			// Some stayed in hand (a dead letter could not be written):
			// later chunks may hold the next events of their alerts.
			break
		}
	}
	if d.sh != nil {
		return d.recordShared(ctx, outcomes, byID)
	}
	return d.record(outcomes, byID)
}

// send is the mute and retry stages for one Notify call's events. It
// returns what became of each event it settled; events it did not settle
// (shutting down, or a dead letter that could not be written) stay.
func (d *Dispatcher) send(ctx context.Context, g Group, events []event.Event) []store.Outcome {
	var outcomes []store.Outcome
	r := Retrier{
		Max:     d.o.MaxDeliver,
		Backoff: d.o.Backoff,
		Before: func(evs []event.Event) []event.Event {
			if d.sh != nil {
				// Settled by another worker meanwhile: not sent again.
				var repeats []store.Outcome
				evs, repeats = d.dropRepeats(ctx, evs)
				outcomes = append(outcomes, repeats...)
			}
			// The mute and dedup stages, before every attempt.
			pass, muted, err := d.mute.Split(d.o.Now(), evs)
			if err != nil {
				d.log.Warn("silences unreadable; sending unmuted", "err", err)
			}
			outcomes = append(outcomes, muted...)
			pass, muted, err = d.dedup.Split(pass, mutedFirings(evs, muted))
			if err != nil {
				d.log.Warn("delivery record unreadable; sending resolutions unmuted", "err", err)
			}
			outcomes = append(outcomes, muted...)
			return pass
		},
		OnRetry: func(r RetryInfo) {
			// Counted and logged as it happens, so a long outage shows at once.
			d.Stats.Retried.Add(1)
			d.noteFailure(r.Err)
			if r.Asked > 0 {
				d.log.Warn("Retry-After capped at max_backoff", "retry_after", r.Asked, "max_backoff", d.o.Backoff.Max)
			}
			args := []any{"group", g.Key, "events", len(events), "attempt", r.Attempt, "wait", r.Wait, "err", r.Err}
			if len(events) == 1 {
				args = append(args, "event_id", events[0].ID)
			}
			d.log.Warn("delivery failed; will retry", args...)
		},
	}
	g.Receiver = d.o.Name
	sent, attempts, permanent, err := r.Run(WithGroup(ctx, g), d.o.Notifier, events)
	var partly *PartlyRefusedError
	if permanent && errors.As(err, &partly) {
		// Only the events named were refused; the others were accepted.
		refused := make(map[string]bool, len(partly.IDs))
		for _, id := range partly.IDs {
			refused[id] = true
		}
		var accepted, rest []event.Event
		for _, e := range sent {
			if refused[e.ID] {
				rest = append(rest, e)
			} else {
				accepted = append(accepted, e)
			}
		}
		outcomes = append(outcomes, d.delivered(accepted, attempts)...)
		sent = rest
	}
	if ctx.Err() == nil {
		d.noteFailure(err)
	}
	switch {
	case err == nil:
		outcomes = append(outcomes, d.delivered(sent, attempts)...)
	case ctx.Err() != nil:
		// Shutting down: what was not sent stays in the ledger.
	default:
		reason := fmt.Sprintf("after %d attempts: %v", attempts, err)
		if permanent {
			reason = fmt.Sprintf("permanent error: %v", err)
		}
		for _, e := range sent {
			data, _ := json.Marshal(e)
			if d.deadLetterData(ctx, data, e.ID, reason) {
				outcomes = append(outcomes, store.Outcome{ID: e.ID, Result: store.DeadLettered})
			}
		}
	}
	return outcomes
}

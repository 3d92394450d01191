package notify

import (
	"context"
	"slices"
	"time"

	"github.com/simwatch/simwatch/internal/event"
	"github.com/simwatch/simwatch/internal/store"
)

// resultRepeat is the outcome of an event that another worker settled
// while it was in hand here: it is acknowledged, not sent.
const resultRepeat = "repeat"

// sharedSplit is the order stage in cluster mode. Of an alert's events in
// hand, by seq, the first may go when it is next after the alert's settled
// seq, or when the consumer's ack floor shows every message published
// before it settled (its predecessor was not for this notifier, the log
// forgot the alert, or the bus refused the predecessor); those after it go
// with it while their seqs follow on. Replayed dead letters and events
// without a seq go at once.
func (d *Dispatcher) sharedSplit(ctx context.Context, items []*item) []*item {
	byAlert := map[string][]*item{}
	var alerts []string
	var ready []*item
	for _, it := range items {
		if it.ev.Seq == 0 || d.sh.isReplay(it.lseq) {
			ready = append(ready, it)
			continue
		}
		k := it.ev.AlertKey()
		if _, ok := byAlert[k]; !ok {
			alerts = append(alerts, k)
		}
		byAlert[k] = append(byAlert[k], it)
	}
	// Alerts that do not look next here are read again: another worker
	// may have settled their predecessors.
	var stale []string
	for _, a := range alerts {
		its := byAlert[a]
		slices.SortFunc(its, func(x, y *item) int {
			if c := cmpU64(x.ev.Seq, y.ev.Seq); c != 0 {
				return c
			}
			return cmpU64(x.lseq, y.lseq)
		})
		if st, ok := d.o.Shared.cached(d.o.Name, a); !ok || its[0].ev.Seq > st.Seq+1 {
			stale = append(stale, a)
		}
	}
	if len(stale) > 0 {
		if _, err := d.o.Shared.Load(ctx, d.o.Name, stale); err != nil && ctx.Err() == nil {
			d.log.Warn("shared delivery log unreadable; events wait", "err", err)
		}
	}
	var floor uint64
	floorRead := false
	for _, a := range alerts {
		st, _ := d.o.Shared.cached(d.o.Name, a)
		next, chained := st.Seq+1, false
		for _, it := range byAlert[a] {
			seq := it.ev.Seq
			if seq <= st.Seq {
				ready = append(ready, it) // a repeat: the retry stage drops it
				continue
			}
			if seq != next && !chained {
				if !floorRead {
					floor, _ = d.ackFloor(ctx)
					floorRead = true
				}
				if floor+1 >= it.lseq {
					next = seq
				}
			}
			if seq != next {
				break // held: an earlier event of the alert is not settled
			}
			ready = append(ready, it)
			next, chained = seq+1, true
		}
	}
	return inAlertOrder(ready)
}

// inAlertOrder sorts items in the order they were published, except that
// each alert's events take their places in seq order (a receiver checks
// seq order within one call too).
func inAlertOrder(items []*item) []*item {
	slices.SortFunc(items, func(a, b *item) int { return cmpU64(a.lseq, b.lseq) })
	places := map[string][]int{}
	for i, it := range items {
		if it.ev.Seq > 0 {
			k := it.ev.AlertKey()
			places[k] = append(places[k], i)
		}
	}
	for _, idx := range places {
		if len(idx) < 2 {
			continue
		}
		its := make([]*item, len(idx))
		for j, i := range idx {
			its[j] = items[i]
		}
		slices.SortStableFunc(its, func(a, b *item) int { return cmpU64(a.ev.Seq, b.ev.Seq) })
		for j, i := range idx {
			items[i] = its[j]
		}
	}
	return items
}

// dropRepeats is the check before every attempt in cluster mode: events
// another worker settled meanwhile (their seq is now settled) are not sent.
func (d *Dispatcher) dropRepeats(ctx context.Context, events []event.Event) (pass []event.Event, repeats []store.Outcome) {
	var alerts []string
	seen := map[string]bool{}
	for i := range events {
		if k := events[i].AlertKey(); events[i].Seq > 0 && !seen[k] {
			seen[k] = true
			alerts = append(alerts, k)
		}
	}
	if len(alerts) == 0 {
		return events, nil
	}
	states, err := d.o.Shared.Load(ctx, d.o.Name, alerts)
	if err != nil {
		if ctx.Err() == nil {
			d.log.Warn("shared delivery log unreadable; sending without the repeat check", "err", err)
		}
		return events, nil
	}
	pass = events[:0:0]
	for _, e := range events {
		if e.Seq > 0 && e.Seq <= states[e.AlertKey()].Seq && !d.sh.isReplayID(e.ID) {
			repeats = append(repeats, store.Outcome{ID: e.ID, Result: resultRepeat})
			continue
		}
		pass = append(pass, e)
	}
	return pass, repeats
}

// settling is one outcome of an event in hand, in cluster mode.
type settling struct {
	o      store.Outcome
	it     *item
	replay bool
}

// recordShared is the record stage in cluster mode: the shared log takes
// each alert's outcomes (compare-and-set), then the events' messages are
// acknowledged. An alert whose log entry cannot be written is not
// acknowledged: its events leave this worker's hand and the bus hands them
// out again after AckWait (sent twice beats lost). It returns the places
// that left hand.
func (d *Dispatcher) recordShared(ctx context.Context, outcomes []store.Outcome, byID map[string]*item) map[uint64]bool {
	settled := make(map[uint64]bool, len(outcomes))
	byAlert := map[string][]settling{}
	var alerts []string
	var done []store.Outcome
	for _, o := range outcomes {
		it := byID[o.ID]
		if it == nil {
			continue
		}
		o.LSeq, o.Alert, o.Kind, o.StartsAt = 0, it.ev.AlertKey(), it.ev.Kind, it.ev.StartsAt
		switch o.Result {
		case resultRepeat:
			d.Stats.Skipped.Add(1)
			d.log.Debug("settled by another worker meanwhile; not sent", "event_id", o.ID, "seq", it.ev.Seq)
			ackMsgs(d, d.sh.forget(it.lseq)...)
			settled[it.lseq] = true
			continue
		case store.Muted:
			d.Stats.Muted.Add(1)
			d.log.Info("event muted", "event_id", o.ID, "silence", o.Silenced, "inhibited_by", o.Inhibited, "reason", o.Reason)
		}
		if _, ok := byAlert[o.Alert]; !ok {
			alerts = append(alerts, o.Alert)
		}
		byAlert[o.Alert] = append(byAlert[o.Alert], settling{o: o, it: it, replay: d.sh.isReplay(it.lseq)})
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	now := d.o.Now()
	failed := make([]error, len(alerts))
	_ = parallel(len(alerts), func(i int) error {
		ss := byAlert[alerts[i]]
		slices.SortFunc(ss, func(a, b settling) int { return cmpU64(a.it.ev.Seq, b.it.ev.Seq) })
		failed[i] = d.o.Shared.Settle(wctx, d.o.Name, alerts[i], func(st *SharedState) bool { return applySettled(st, ss, now) })
		return nil
	})
	for i, a := range alerts {
		for _, s := range byAlert[a] {
			msgs := d.sh.forget(s.it.lseq)
			settled[s.it.lseq] = true
			if failed[i] != nil {
				continue // left to the bus: it hands them out again after AckWait
			}
			ackMsgs(d, msgs...)
			done = append(done, s.o)
		}
		if failed[i] != nil {
			d.log.Error("shared delivery log write failed; the events stay on the bus and will be sent again",
				"events", len(byAlert[a]), "err", failed[i])
		}
	}
	if d.o.Ledger != nil && len(done) > 0 {
		// This watcher's history keeps what muted an event, as in a
		// single watcher; the shared log is what decides.
		if err := d.o.Ledger.Settle(d.o.Name, now, done); err != nil {
			d.log.Warn("local delivery record not written", "err", err)
		}
	}
	return settled
}

// applySettled moves an alert's shared state past the outcomes ss (in seq
// order) and says whether it changed. Outcomes another worker already
// moved past leave it as it is: the seq never goes back. A replayed dead
// letter moves nothing, except that a replayed firing of the current
// episode that was delivered now counts as delivered.
func applySettled(st *SharedState, ss []settling, now time.Time) bool {
	changed := false
	for _, s := range ss {
		o, seq := s.o, s.it.ev.Seq
		if s.replay {
			if o.Kind == event.KindFiring && o.Result == store.Delivered && !st.FiringDelivered &&
				!st.FiringStart.IsZero() && st.FiringStart.Equal(o.StartsAt) {
				st.FiringDelivered, changed = true, true
			}
			continue
		}
		if seq > 0 && seq <= st.Seq {
			continue
		}
		if seq > st.Seq {
			st.Seq, changed = seq, true
		}
		switch o.Kind {
		case event.KindResolved:
			if !st.FiringStart.IsZero() {
				st.FiringStart, st.FiringDelivered, changed = time.Time{}, false, true
			}
		case event.KindFiring:
			delivered := o.Result == store.Delivered
			if st.FiringStart.Equal(o.StartsAt) {
				delivered = delivered || st.FiringDelivered
			}
			st.FiringStart, st.FiringDelivered, changed = o.StartsAt, delivered, true
		}
	}
	if changed {
		st.SettledAt = now
	}
	return changed
}

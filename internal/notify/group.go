package notify

import (
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/simwatch/simwatch/internal/event"
)

// Grouper is the group stage: it collects events whose GroupBy fields
// agree into groups, and says when each group is due, with Alertmanager's
// meanings. A new group waits Wait for more events to join; a group that
// was sent waits Interval after that before its next send; a group quiet
// for Interval starts over. It is a plain data structure: the caller
// passes the time, so it tests without a clock.
type Grouper struct {
	By       []string // event fields: rule, provider, severity, kind, entity, entity_id, iccid, labels.NAME
	Wait     time.Duration
	Interval time.Duration
	groups   map[string]*pendingGroup
}

// pendingGroup is one group's events not yet settled.
type pendingGroup struct {
	Group
	items     []*item // in ledger order
	due       time.Time
	lastFlush time.Time
	held      bool // some events wait for an earlier event of their alert
	sends     int  // sends in flight
	sending   map[uint64]bool
}

// idle reports whether the group has events not being sent.
func (pg *pendingGroup) idle() bool { return len(pg.items) > len(pg.sending) }

// item is an event in hand, waiting in its group.
type item struct {
	lseq uint64
	ev   event.Event
}

// GroupOf returns the group an event belongs to.
func (g *Grouper) GroupOf(e *event.Event) Group {
	by := g.By
	if len(by) == 0 {
		by = []string{"rule"}
	}
	labels := make(map[string]string, len(by))
	var b strings.Builder
	for i, f := range by {
		v := e.Field(f)
		labels[f] = v
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(f)
		b.WriteByte('=')
		b.WriteString(keyValue(v))
	}
	return Group{Key: b.String(), Labels: labels}
}

// keyValue writes a value into a group key as it is when that cannot be
// ambiguous (rule names, ids, ICCIDs: "rule=card_low_flow"), quoted
// otherwise.
func keyValue(v string) string {
	plain := v != ""
	for _, r := range v {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_-.:/", r)) {
			plain = false
			break
		}
	}
	if plain {
		return v
	}
	return strconv.Quote(v)
}

// Add puts an event in its group and, if the group had nothing due, sets
// when it is.
func (g *Grouper) Add(it *item, now time.Time) {
	if g.groups == nil {
		g.groups = map[string]*pendingGroup{}
	}
	grp := g.GroupOf(&it.ev)
	pg := g.groups[grp.Key]
	if pg == nil {
		pg = &pendingGroup{Group: grp}
		g.groups[grp.Key] = pg
	}
	// Ledger order within the group; arrivals are nearly always in order.
	i := len(pg.items)
	for i > 0 && pg.items[i-1].lseq > it.lseq {
		i--
	}
	pg.items = slices.Insert(pg.items, i, it)
	if pg.due.IsZero() {
		if pg.lastFlush.IsZero() || now.Sub(pg.lastFlush) >= g.Interval {
			pg.due = now.Add(g.Wait)
		} else {
			pg.due = pg.lastFlush.Add(g.Interval)
		}
	}
}

// Due returns the groups due at now, oldest deadline first; all of them
// with events when all is set (a one-shot run has the whole burst at hand).
// A group being sent is not due.
func (g *Grouper) Due(now time.Time, all bool) []*pendingGroup {
	var out []*pendingGroup
	for _, pg := range g.groups {
		if pg.idle() && !pg.due.IsZero() && (all || !pg.due.After(now)) {
			out = append(out, pg)
		}
	}
	slices.SortFunc(out, func(a, b *pendingGroup) int {
		if c := a.due.Compare(b.due); c != 0 {
			return c
		}
		return strings.Compare(a.Key, b.Key)
	})
	return out
}

// Next is the earliest time a group falls due; zero when none will.
func (g *Grouper) Next() time.Time {
	var next time.Time
	for _, pg := range g.groups {
		if pg.idle() && !pg.due.IsZero() && (next.IsZero() || pg.due.Before(next)) {
			next = pg.due
		}
	}
	return next
}

// Start begins a send of a due group at now and returns its events not
// already being sent. Events that join the group meanwhile go in a later
// send, after the interval: a send that is retrying does not hold back the
// others of its group (the order stage still keeps each alert's events in
// order).
func (g *Grouper) Start(pg *pendingGroup, now time.Time) []*item {
	if pg.sending == nil {
		pg.sending = map[uint64]bool{}
	}
	var out []*item
	for _, it := range pg.items {
		if !pg.sending[it.lseq] {
			pg.sending[it.lseq] = true
			out = append(out, it)
		}
	}
	pg.sends++
	pg.lastFlush = now
	pg.due = time.Time{}
	pg.held = false
	return out
}

// Done records the end of a send that Start began: settled are the
// events it settled (delivered, muted or dead-lettered); the others of sent
// were held back for order (or the send was cut short). What remains is
// due at the end of the interval, and events held back are looked at again
// after recheck when that is sooner (they may be unblocked only by time).
func (g *Grouper) Done(pg *pendingGroup, sent []*item, settled map[uint64]bool, now time.Time, recheck time.Duration) {
	pg.sends--
	for _, it := range sent {
		delete(pg.sending, it.lseq)
		if !settled[it.lseq] {
			pg.held = true
		}
	}
	keep := pg.items[:0]
	for _, it := range pg.items {
		if !settled[it.lseq] {
			keep = append(keep, it)
		}
	}
	clear(pg.items[len(keep):])
	pg.items = keep
	pg.due = time.Time{}
	if pg.idle() {
		due := later(now, pg.lastFlush.Add(g.Interval))
		if pg.held && recheck > 0 && now.Add(recheck).Before(due) {
			due = now.Add(recheck)
		}
		if pg.held && !due.After(now) {
			due = now.Add(recheck) // never at once: nothing has changed for them yet
		}
		pg.due = due
	}
	// Forget groups quiet for an interval, so state stays bounded.
	for key, other := range g.groups {
		if other.sends == 0 && len(other.items) == 0 && now.Sub(other.lastFlush) >= g.Interval {
			delete(g.groups, key)
		}
	}
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// Wake makes every group with events held back for order due at now:
// called when events settled elsewhere may have unblocked them.
func (g *Grouper) Wake(now time.Time) {
	for _, pg := range g.groups {
		if pg.held && pg.idle() && (pg.due.IsZero() || pg.due.After(now)) {
			pg.due = now
		}
	}
}

// Len counts the events waiting in groups.
func (g *Grouper) Len() int {
	n := 0
	for _, pg := range g.groups {
		n += len(pg.items)
	}
	return n
}

// Keys lists the groups' keys, sorted (tests, status).
func (g *Grouper) Keys() []string { return slices.Sorted(maps.Keys(g.groups)) }

package poll

import (
	"errors"
	"iter"

	"github.com/simwatch/simwatch/internal/fleet"
	"github.com/simwatch/simwatch/internal/rules"
	"github.com/simwatch/simwatch/internal/store"
)

// cardChanges is what rules.Evaluate reads of a card diff, read lazily
// inside the evaluation's read transaction: each changed card is decoded
// (and its previous version read) as evaluation walks it, and unchanged
// cards are read from the snapshot only if rules must see them. The first
// read error stops the walks and is kept in *err. Absent cards in hold are
// left out: they wait as they are.
func cardChanges(pt *store.ProviderTx, d *cardDiff, hold map[string]bool, err *error) (rules.Changes[fleet.Card], error) {
	ch := rules.Changes[fleet.Card]{Back: d.back}
	d.statusDelta, d.walked, d.absentStatus = map[string]int{}, 0, map[string]string{}
	ch.Changed = func(yield func(rules.Change[fleet.Card]) bool) {
		for _, r := range d.changed {
			if *err != nil {
				return
			}
			cur, e := store.DecodeCard(r.Data)
			if e != nil {
				*err = e
				return
			}
			prev, ok, e := pt.Card(r.ID)
			if e != nil {
				*err = e
				return
			}
			c := rules.Change[fleet.Card]{Cur: &cur}
			d.statusDelta[statusOf(&cur)]++
			if ok {
				c.Prev = &prev
				d.statusDelta[statusOf(&prev)]--
			}
			d.walked++
			if !yield(c) {
				return
			}
		}
	}
	ch.Same = sameCards(pt, d, err)
	for _, id := range d.absent {
		if hold[id] {
			continue
		}
		prev, ok, err := pt.Card(id)
		if err != nil {
			return ch, err
		}
		if ok {
			ch.Absent = append(ch.Absent, &prev)
			d.absentStatus[id] = statusOf(&prev)
		}
	}
	return ch, nil
}

// statusOf is a card's status as the overview counts it: one of the
// normalised statuses, or unknown.
func statusOf(c *fleet.Card) string {
	switch {
	case c.Unknown.Has(statusBit):
	case c.Status == fleet.StatusTest, c.Status == fleet.StatusInactive, c.Status == fleet.StatusActive,
		c.Status == fleet.StatusSuspended, c.Status == fleet.StatusTerminated:
		return c.Status
	}
	return store.StatusUnknown
}

var statusBit = fleet.CardField("status")

// statusCounts is the snapshot's cards by status once this cycle commits:
// the stored counts moved by what changed and what was removed. It runs in
// the commit's transaction before any card is written, so that a count
// missing from the store (written by an earlier version) or a walk that
// evaluation cut short is made from the snapshot as it stands.
func statusCounts(pt *store.ProviderTx, meta store.Meta, snapshot int, d *cardDiff, removed []string) (map[string]int, error) {
	counts := map[string]int{}
	for k, n := range meta.StatusCounts {
		counts[k] = n
	}
	if meta.StatusCounts == nil && snapshot > 0 {
		err := pt.ForEachCard(func(_ string, enc []byte) error {
			c, err := store.DecodeCard(enc)
			counts[statusOf(&c)]++
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	delta := d.statusDelta
	if d.walked != len(d.changed) {
		delta = map[string]int{}
		for _, r := range d.changed {
			cur, err := store.DecodeCard(r.Data)
			if err != nil {
				return nil, err
			}
			delta[statusOf(&cur)]++
			if prev, ok, err := pt.Card(r.ID); err != nil {
				return nil, err
			} else if ok {
				delta[statusOf(&prev)]--
			}
		}
	}
	for k, n := range delta {
		counts[k] += n
	}
	for _, id := range removed {
		if st, ok := d.absentStatus[id]; ok {
			counts[st]--
		}
	}
	for k, n := range counts {
		if n <= 0 {
			delete(counts, k)
		}
	}
	return counts, nil
}

// sameCards yields the snapshot's cards that this listing has unchanged:
// all but the changed and the absent ones.
func sameCards(pt *store.ProviderTx, d *cardDiff, err *error) iter.Seq[*fleet.Card] {
	return func(yield func(*fleet.Card) bool) {
		skip := make(map[string]bool, len(d.changed)+len(d.absent))
		for _, r := range d.changed {
			skip[r.ID] = true
		}
		for _, id := range d.absent {
			skip[id] = true
		}
		e := pt.ForEachCard(func(id string, enc []byte) error {
			if skip[id] {
				return nil
			}
			c, err := store.DecodeCard(enc)
			if err != nil {
				return err
			}
			if !yield(&c) {
				return errStopWalk
			}
			return nil
		})
		if e != nil && !errors.Is(e, errStopWalk) && *err == nil {
			*err = e
		}
	}
}

// errStopWalk ends a store walk early.
var errStopWalk = errors.New("walk stopped")

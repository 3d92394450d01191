package poll

import (
	"fmt"
	"slices"
	"strings"

	"github.com/simwatch/simwatch/internal/fleet"
	"github.com/simwatch/simwatch/internal/rules"
	"github.com/simwatch/simwatch/internal/store"
)

// cardDiff is a card listing against the snapshot, by fingerprint. It holds
// no decoded card: changed ones stay encoded until evaluation walks them,
// and unchanged ones are only ids in the listing.
type cardDiff struct {
	changed []fleet.Record // new or changed, in id order
	fps     []uint64       // the listing's fingerprint of each of changed
	absent  []string       // ids in the snapshot that the listing lacks, in order
	back    []string       // unchanged ids that were missing from the last listing
	listed  int
	// What evaluation saw as it walked the changed and absent cards: the
	// change in cards by status, how many it walked, and each absent
	// card's status (see statusCounts).
	statusDelta  map[string]int
	walked       int
	absentStatus map[string]string
}

// diffCards compares a listing with the snapshot's fingerprints, which are
// comparable with the listing's when sameKind. It checks that the lister
// decoded exactly the cards whose fingerprint was not known.
func diffCards(l *fleet.Listing, snap map[string]uint64, sameKind bool, missing map[string]bool) (cardDiff, error) {
	d := cardDiff{listed: len(l.Seen), changed: l.Changed} // sorted in place: the listing is the diff's now
	slices.SortFunc(d.changed, func(a, b fleet.Record) int { return strings.Compare(a.ID, b.ID) })
	type listing struct {
		fp     uint64
		listed bool
	}
	changed := make(map[string]listing, len(d.changed))
	for _, c := range d.changed {
		if _, dup := changed[c.ID]; dup {
			return d, fmt.Errorf("card %s decoded twice", c.ID)
		}
		changed[c.ID] = listing{}
	}
	inSnap := 0
	for _, s := range l.Seen {
		old, ok := snap[s.ID]
		if ok {
			inSnap++
		}
		if _, ch := changed[s.ID]; ch {
			changed[s.ID] = listing{s.FP, true}
		} else if !sameKind || !ok || old != s.FP {
			return d, fmt.Errorf("card %s changed but was not decoded", s.ID)
		}
	}
	d.fps = make([]uint64, len(d.changed))
	for i, c := range d.changed {
		if !changed[c.ID].listed {
			return d, fmt.Errorf("card %s decoded but not listed", c.ID)
		}
		d.fps[i] = changed[c.ID].fp
	}
	// Every snapshot card was listed unless fewer were found in it: only
	// then is the listing's set of ids needed.
	if inSnap < len(snap) {
		listed := make(map[string]struct{}, len(l.Seen))
		for _, s := range l.Seen {
			listed[s.ID] = struct{}{}
		}
		for id := range snap {
			if _, ok := listed[id]; !ok {
				d.absent = append(d.absent, id)
			}
		}
		slices.Sort(d.absent)
	}
	for key := range missing {
		id, ok := strings.CutPrefix(key, rules.EntityKey(fleet.EntityCard, ""))
		if !ok {
			continue
		}
		if _, ch := changed[id]; !ch && !slices.Contains(d.absent, id) {
			d.back = append(d.back, id)
		}
	}
	slices.Sort(d.back)
	return d, nil
}

// apply moves the snapshot's fingerprints on once the cycle committed: the
// changed cards' new ones in, removed cards out. Absent cards not removed
// keep theirs: they stay in the snapshot until a second absence.
func (d *cardDiff) apply(snap map[string]uint64, removed []string) {
	for i, c := range d.changed {
		snap[c.ID] = d.fps[i]
	}
	for _, id := range removed {
		delete(snap, id)
	}
}

// change is one entity of the new listing that differs from the snapshot,
// with the encoding the snapshot will store.
type change[T any] struct {
	id  string
	cur *T
	enc []byte
	fp  uint64
}

// diffed is one kind of entity of a listing against the snapshot (pools,
// which are few and listed decoded).
type diffed[T any] struct {
	changed []change[T] // new or changed
	same    []*T        // unchanged
	absent  []string    // ids in the snapshot that the listing lacks
	fps     map[string]uint64
}

// diff splits a listing into changed (or new) entities, unchanged ones, and
// the ids of stored entities the listing no longer has, by fingerprint.
func diff[T any](items []T, id func(*T) string, encode func([]byte, *T) []byte, fps map[string]uint64) diffed[T] {
	d := diffed[T]{fps: make(map[string]uint64, len(items)), same: make([]*T, 0, len(items))}
	var buf []byte // reused: only a changed entity's encoding is kept
	for i := range items {
		it := &items[i]
		key := id(it)
		if _, dup := d.fps[key]; dup {
			continue // the provider client refuses listings with an id twice; never count one twice
		}
		buf = encode(buf[:0], it)
		fp := fleet.Fingerprint(buf)
		d.fps[key] = fp
		if old, ok := fps[key]; ok && old == fp {
			d.same = append(d.same, it)
			continue
		}
		d.changed = append(d.changed, change[T]{id: key, cur: it, enc: append([]byte(nil), buf...), fp: fp})
	}
	for key := range fps {
		if _, ok := d.fps[key]; !ok {
			d.absent = append(d.absent, key)
		}
	}
	return d
}

// next is the snapshot's fingerprints once the cycle committed: the
// listing's, and those of absent entities that were not removed (they stay
// in the snapshot until a second absence).
func (d diffed[T]) next(prev map[string]uint64, removed []string) map[string]uint64 {
	gone := make(map[string]bool, len(removed))
	for _, id := range removed {
		gone[id] = true
	}
	for _, id := range d.absent {
		if !gone[id] {
			d.fps[id] = prev[id]
		}
	}
	return d.fps
}

// changes turns a pool diff into what rules.Evaluate reads, with the
// previous version of every changed and absent entity read from the
// snapshot. Missing reports entities absent from the last listing.
func changes[T any](d diffed[T], get func(id string) (T, bool, error), id func(*T) string, missing func(id string) bool) (rules.Changes[T], error) {
	var ch rules.Changes[T]
	ch.Same = rules.Pointers(d.same)
	for _, s := range d.same {
		if missing(id(s)) {
			ch.Back = append(ch.Back, id(s))
		}
	}
	changed := make([]rules.Change[T], 0, len(d.changed))
	for _, c := range d.changed {
		prev, ok, err := get(c.id)
		if err != nil {
			return ch, err
		}
		rc := rules.Change[T]{Cur: c.cur}
		if ok {
			rc.Prev = &prev
		}
		changed = append(changed, rc)
	}
	ch.Changed = slices.Values(changed)
	for _, id := range d.absent {
		prev, ok, err := get(id)
		if err != nil {
			return ch, err
		}
		if ok {
			ch.Absent = append(ch.Absent, &prev)
		}
	}
	return ch, nil
}

func poolID(p *fleet.Pool) string                  { return p.ID }
func encodePool(dst []byte, pl *fleet.Pool) []byte { return append(dst, store.EncodePool(pl)...) }

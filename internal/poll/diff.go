package poll

import (
	"github.com/simwatch/simwatch/internal/fleet"
	"github.com/simwatch/simwatch/internal/rules"
	"github.com/simwatch/simwatch/internal/store"
)

// change is one entity of the new listing that differs from the snapshot,
// with the encoding the snapshot will store.
type change[T any] struct {
	id  string
	cur *T
	enc []byte
	fp  uint64
}

// diffed is one kind of entity of a listing against the snapshot.
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
		fp := store.Fingerprint(buf)
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

// changes turns a diff into what rules.Evaluate reads, with the previous
// version of every changed and absent entity read from the snapshot.
// Absent entities in hold are left out: they wait as they are.
func changes[T any](d diffed[T], get func(id string) (T, bool, error), hold map[string]bool) (rules.Changes[T], error) {
	var ch rules.Changes[T]
	ch.Same = d.same
	ch.Changed = make([]rules.Change[T], 0, len(d.changed))
	for _, c := range d.changed {
		prev, ok, err := get(c.id)
		if err != nil {
			return ch, err
		}
		rc := rules.Change[T]{Cur: c.cur}
		if ok {
			rc.Prev = &prev
		}
		ch.Changed = append(ch.Changed, rc)
	}
	for _, id := range d.absent {
		if hold[id] {
			continue
		}
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

func cardID(c *fleet.Card) string                  { return c.ID }
func poolID(p *fleet.Pool) string                  { return p.ID }
func encodeCard(dst []byte, c *fleet.Card) []byte  { return store.EncodeCard(dst, c) }
func encodePool(dst []byte, pl *fleet.Pool) []byte { return append(dst, store.EncodePool(pl)...) }

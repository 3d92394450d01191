package store

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"
)

var bucketSilences = []byte("silences")

// Silence mutes the events its expression matches until it ends. Silenced
// events keep their alert state and are recorded, but not notified.
type Silence struct {
	ID        string    `json:"id"`
	Match     string    `json:"match"`
	Comment   string    `json:"comment"`
	CreatedAt time.Time `json:"created_at"`
	EndsAt    time.Time `json:"ends_at"`
}

// Active reports whether the silence applies at t.
func (s Silence) Active(t time.Time) bool { return !t.Before(s.CreatedAt) && t.Before(s.EndsAt) }

// PutSilence creates or replaces a silence.
func (s *Store) PutSilence(sl Silence) error {
	return s.Update(func(t *Tx) error { return t.PutSilence(sl) })
}

var pathSilences = [][]byte{bucketSilences}

// PutSilence creates or replaces a silence within a transaction.
func (t *Tx) PutSilence(sl Silence) error {
	b, err := t.tx.CreateBucketIfNotExists(bucketSilences)
	if err != nil {
		return err
	}
	v, err := json.Marshal(sl)
	if err != nil {
		return err
	}
	t.rec.put(pathSilences, []byte(sl.ID), v)
	return b.Put([]byte(sl.ID), v)
}

// Silences lists the silences, newest first.
func (s *Store) Silences() ([]Silence, error) {
	var out []Silence
	err := s.View(func(tx *Tx) error {
		var err error
		out, err = s.SilencesTx(tx)
		return err
	})
	return out, err
}

// SilencesTx lists the silences within a transaction.
func (s *Store) SilencesTx(t *Tx) ([]Silence, error) {
	var out []Silence
	err := func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSilences)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var sl Silence
			if err := json.Unmarshal(v, &sl); err != nil {
				return fmt.Errorf("store: silence %s: %w", k, err)
			}
			out = append(out, sl)
			return nil
		})
	}(t.tx)
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.After(out[j].CreatedAt) })
	return out, err
}

// ExpireSilence ends a silence at t.
func (s *Store) ExpireSilence(id string, t time.Time) error {
	return s.Update(func(tx *Tx) error { return tx.ExpireSilence(id, t) })
}

// ExpireSilence ends a silence at at, within a transaction.
func (t *Tx) ExpireSilence(id string, at time.Time) error {
	b := t.tx.Bucket(bucketSilences)
	var v []byte
	if b != nil {
		v = b.Get([]byte(id))
	}
	if v == nil {
		return fmt.Errorf("store: no silence %s", id)
	}
	var sl Silence
	if err := json.Unmarshal(v, &sl); err != nil {
		return err
	}
	if at.Before(sl.EndsAt) {
		sl.EndsAt = at
	}
	nv, err := json.Marshal(sl)
	if err != nil {
		return err
	}
	t.rec.put(pathSilences, []byte(id), nv)
	return b.Put([]byte(id), nv)
}

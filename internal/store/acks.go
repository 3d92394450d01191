package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/simwatch/simwatch/internal/event"
	"github.com/simwatch/simwatch/internal/rules"
)

// bucketAcks holds the acknowledgements: AckKey → Ack JSON.
var bucketAcks = []byte("acks")

// Errors of Ack, for callers to tell a missing alert from one that is no
// longer active.
var (
	ErrNoAlert        = errors.New("no such alert")
	ErrAlertNotActive = errors.New("alert is not active (pending or firing)")
)

// Ack says someone has seen an active alert and is on it. It lasts as long
// as the episode it acknowledged: when the alert resolves (the poller
// deletes it, or keeps it as resolved under rearm: cycle) or starts a new
// episode, the ack no longer counts. Stale acks are left out at read time
// and dropped at the next Ack, so the poller needs to know nothing of them.
type Ack struct {
	Provider string `json:"provider"`
	// Alert is the alert's key within its provider (rules.AlertKey).
	Alert string `json:"alert"`
	// ActiveAt is the start of the acknowledged episode (the alert's
	// ActiveAt, its firing events' starts_at).
	ActiveAt time.Time `json:"active_at"`
	By       string    `json:"by"`
	Comment  string    `json:"comment"`
	At       time.Time `json:"at"`
}

// AckKey is the key an alert's ack is stored and looked up by.
func AckKey(provider, alert string) string { return provider + "\x00" + alert }

// Ack records an acknowledgement of an active alert and, in the same
// transaction, appends to the outbox the event announce makes of it (nil:
// none), which takes the alert's next seq. The alert is read in that
// transaction, so that it cannot resolve between the check and the write.
// The episode is the alert's: a.ActiveAt is set from it.
//
// The same person acknowledging the same episode with the same comment
// again (a double submit) changes nothing and announces nothing: it
// returns the ack on record and false. The error wraps ErrNoAlert or
// ErrAlertNotActive when the alert is missing or not pending or firing.
func (s *Store) Ack(a Ack, announce func(alert *rules.Alert, a Ack) *event.Event) (Ack, bool, error) {
	var created bool
	err := s.Update(func(t *Tx) error {
		var err error
		a, created, err = t.Ack(a, announce)
		return err
	})
	if err != nil {
		return Ack{}, false, err
	}
	return a, created, nil
}

// Ack is Store.Ack within a transaction (a cluster records it, see
// Store.Record).
func (t *Tx) Ack(a Ack, announce func(alert *rules.Alert, a Ack) *event.Event) (Ack, bool, error) {
	created, err := t.ack(&a, announce)
	if err != nil {
		return Ack{}, false, fmt.Errorf("store: ack %s alert %q: %w", a.Provider, a.Alert, err)
	}
	return a, created, nil
}

func (t *Tx) ack(a *Ack, announce func(alert *rules.Alert, a Ack) *event.Event) (bool, error) {
	alert, err := activeAlert(t.tx, a.Provider, a.Alert)
	if err != nil {
		return false, err
	}
	a.ActiveAt = alert.ActiveAt
	b, err := t.tx.CreateBucketIfNotExists(bucketAcks)
	if err != nil {
		return false, err
	}
	key := []byte(AckKey(a.Provider, a.Alert))
	if v := b.Get(key); v != nil {
		var old Ack
		if json.Unmarshal(v, &old) == nil && old.ActiveAt.Equal(a.ActiveAt) && old.By == a.By && old.Comment == a.Comment {
			*a = old
			return false, nil
		}
	}
	// Acks of episodes that are over go now, so the bucket stays as
	// small as the set of acknowledged active alerts.
	if _, err := deleteWhere(b, func(k, v []byte) bool {
		stale := !ackLive(t.tx, v)
		if stale {
			t.rec.del(pathAcks, k)
		}
		return stale
	}); err != nil {
		return false, err
	}
	v, err := json.Marshal(a)
	if err != nil {
		return false, err
	}
	t.rec.put(pathAcks, key, v)
	if err := b.Put(key, v); err != nil {
		return false, err
	}
	if announce == nil {
		return true, nil
	}
	if e := announce(alert, *a); e != nil {
		return true, t.AppendOutbox([]event.Event{*e})
	}
	return true, nil
}

var pathAcks = [][]byte{bucketAcks}

// activeAlert reads a provider's alert, which must be pending or firing.
// It never creates the provider's bucket.
func activeAlert(tx *bolt.Tx, provider, key string) (*rules.Alert, error) {
	v := alertBytes(tx, provider, key)
	if v == nil {
		return nil, ErrNoAlert
	}
	var a rules.Alert
	if err := json.Unmarshal(v, &a); err != nil {
		return nil, err
	}
	if a.State != rules.StatePending && a.State != rules.StateFiring {
		return nil, ErrAlertNotActive
	}
	return &a, nil
}

func alertBytes(tx *bolt.Tx, provider, key string) []byte {
	p := tx.Bucket(bucketProviders).Bucket([]byte(provider))
	if p == nil {
		return nil
	}
	b := p.Bucket(bucketAlerts)
	if b == nil {
		return nil
	}
	return b.Get([]byte(key))
}

// ackLive reports whether a stored ack's episode is still under way: its
// alert exists, is pending or firing, and started when the ack's did.
func ackLive(tx *bolt.Tx, v []byte) bool {
	var a Ack
	if json.Unmarshal(v, &a) != nil {
		return false
	}
	alert, err := activeAlert(tx, a.Provider, a.Alert)
	return err == nil && alert.ActiveAt.Equal(a.ActiveAt)
}

// Acks returns the acks of the alerts' current episodes by AckKey.
func (t *Tx) Acks() (map[string]Ack, error) {
	out := map[string]Ack{}
	b := t.tx.Bucket(bucketAcks)
	if b == nil {
		return out, nil
	}
	err := b.ForEach(func(k, v []byte) error {
		if !ackLive(t.tx, v) {
			return nil
		}
		var a Ack
		if err := json.Unmarshal(v, &a); err != nil {
			return fmt.Errorf("store: ack %q: %w", k, err)
		}
		out[string(k)] = a
		return nil
	})
	return out, err
}

// Acks lists the acks of the alerts' current episodes, the newest first.
func (s *Store) Acks() ([]Ack, error) {
	var out []Ack
	err := s.View(func(t *Tx) error {
		m, err := t.Acks()
		for _, a := range m {
			out = append(out, a)
		}
		return err
	})
	sort.Slice(out, func(i, j int) bool { return out[i].At.After(out[j].At) })
	return out, err
}

// AckFor returns the ack of an alert's current episode, by AckKey.
func (s *Store) AckFor(alert string) (Ack, bool, error) {
	var a Ack
	found := false
	err := s.View(func(t *Tx) error {
		b := t.tx.Bucket(bucketAcks)
		if b == nil {
			return nil
		}
		v := b.Get([]byte(alert))
		if v == nil || !ackLive(t.tx, v) {
			return nil
		}
		found = true
		return json.Unmarshal(v, &a)
	})
	return a, found, err
}

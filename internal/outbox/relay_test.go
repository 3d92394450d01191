package outbox

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"github.com/simwatch/simwatch/internal/event"
	"github.com/simwatch/simwatch/internal/store"
)

type flakyPublisher struct {
	failAt int // fail the publish with this index (0-based), once
	calls  int
	got    []string
}

func (p *flakyPublisher) PublishEncoded(ctx context.Context, events []event.Encoded) (int, error) {
	for i, e := range events {
		if p.calls == p.failAt {
			p.calls++
			return i, errors.New("nats: timeout")
		}
		p.calls++
		p.got = append(p.got, e.ID)
	}
	return len(events), nil
}

func TestDrainKeepsOrderAndUnpublished(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "s.db"))
	require.NoError(t, err)
	defer st.Close()
	require.NoError(t, st.Update(func(tx *store.Tx) error {
		return tx.AppendOutbox([]event.Event{{ID: "a"}, {ID: "b"}, {ID: "c"}})
	}))
	pub := &flakyPublisher{failAt: 1}
	r := New(st, pub, 0, nil)
	n, err := r.Drain(context.Background())
	require.ErrorContains(t, err, "nats: timeout")
	require.Equal(t, 1, n)
	require.Equal(t, 2, st.OutboxLen(), "unpublished events stay")

	n, err = r.Drain(context.Background())
	require.NoError(t, err)
	require.Equal(t, 2, n)
	require.Equal(t, []string{"a", "b", "c"}, pub.got)
	require.Zero(t, st.OutboxLen())
}

// refusedErr is a publisher's error for an event the bus refuses for good.
type refusedErr struct{ id string }

func (e refusedErr) Error() string {
	return "bus: publish " + e.id + ": nats: maximum payload exceeded"
}
func (e refusedErr) Permanent() bool { return true }

// refusingPublisher refuses some events for good and fails transiently
// while down.
type refusingPublisher struct {
	refuse map[string]bool
	down   bool
	got    []string
}

func (p *refusingPublisher) PublishEncoded(_ context.Context, events []event.Encoded) (int, error) {
	for i, e := range events {
		if p.down {
			return i, errors.New("nats: connection closed")
		}
		if p.refuse[e.ID] {
			return i, refusedErr{e.ID}
		}
		p.got = append(p.got, e.ID)
	}
	return len(events), nil
}

func openStore(t *testing.T, path string) *store.Store {
	t.Helper()
	st, err := store.Open(path)
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func appendEvents(t *testing.T, st *store.Store, ids ...string) {
	t.Helper()
	events := make([]event.Event, len(ids))
	for i, id := range ids {
		events[i] = event.Event{ID: id}
	}
	require.NoError(t, st.Update(func(tx *store.Tx) error { return tx.AppendOutbox(events) }))
}

// An event the bus refuses for good is set aside, logged once, and the
// events behind it flow on in order; a transient failure still stops the
// drain and keeps the rest.
func TestDrainSetsAsideWhatTheBusRefusesForGood(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "s.db"))
	appendEvents(t, st, "a", "big", "b", "c")
	var logs bytes.Buffer
	pub := &refusingPublisher{refuse: map[string]bool{"big": true}, down: true}
	r := New(st, pub, 0, slog.New(slog.NewTextHandler(&logs, nil)))

	n, err := r.Drain(context.Background())
	require.ErrorContains(t, err, "connection closed", "a transient failure stops the drain")
	require.Zero(t, n)
	require.Equal(t, 4, st.OutboxLen())

	pub.down = false
	n, err = r.Drain(context.Background())
	require.NoError(t, err)
	require.Equal(t, 3, n)
	require.Equal(t, []string{"a", "b", "c"}, pub.got, "the published events keep their order")
	require.Zero(t, st.OutboxLen(), "nothing stuck")

	aside, err := st.SetAsideEntries()
	require.NoError(t, err)
	require.Len(t, aside, 1)
	require.Contains(t, aside[0].Reason, "maximum payload exceeded")
	require.Contains(t, string(aside[0].Event), `"id":"big"`)

	appendEvents(t, st, "d")
	_, err = r.Drain(context.Background())
	require.NoError(t, err)
	require.Equal(t, 1, strings.Count(logs.String(), "event_id=big"), "logged once:\n%s", logs.String())
}

// An outbox entry that does not decode is set aside instead of stalling
// the outbox.
func TestDrainSetsAsideAnUndecodableEntry(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	st, err := store.Open(path)
	require.NoError(t, err)
	appendEvents(t, st, "a")
	require.NoError(t, st.Close())
	db, err := bolt.Open(path, 0o600, nil)
	require.NoError(t, err)
	require.NoError(t, db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("outbox"))
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		return b.Put(binary.BigEndian.AppendUint64(nil, seq), []byte(`{"id": not json`))
	}))
	require.NoError(t, db.Close())
	st = openStore(t, path)
	appendEvents(t, st, "b")

	pub := &refusingPublisher{}
	n, err := New(st, pub, 0, nil).Drain(context.Background())
	require.NoError(t, err)
	require.Equal(t, 2, n)
	require.Equal(t, []string{"a", "b"}, pub.got)
	require.Zero(t, st.OutboxLen())
	aside, err := st.SetAsideEntries()
	require.NoError(t, err)
	require.Len(t, aside, 1)
	require.Contains(t, aside[0].Reason, "outbox entry 2")
	require.JSONEq(t, `"{\"id\": not json"`, string(aside[0].Event), "the bytes are kept")
}

// An event the bus refuses for good is no longer owed to any notifier: the
// later events of its alert are not held back behind it, and nothing waits
// for it (run --once would otherwise wait until its timeout).
func TestSetAsideEventReleasedFromTheLedger(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "s.db"))
	_, err := st.SetNotifiers([]string{"crm"})
	require.NoError(t, err)
	alert := func(id, kind string) event.Event {
		return event.Event{ID: id, Kind: kind, Rule: "card_low_flow", Provider: "hw", Entity: "card", EntityID: "c1"}
	}
	require.NoError(t, st.Update(func(tx *store.Tx) error {
		return tx.AppendOutbox([]event.Event{alert("big", event.KindFiring), alert("next", event.KindResolved)})
	}))
	require.Equal(t, map[string]int{"crm": 2}, st.Owing())

	pub := &refusingPublisher{refuse: map[string]bool{"big": true}}
	_, err = New(st, pub, 0, nil).Drain(context.Background())
	require.NoError(t, err)
	require.Equal(t, []string{"next"}, pub.got)
	require.Equal(t, map[string]int{"crm": 1}, st.Owing(), "only the published event is owed")
	next := alert("next", event.KindResolved)
	before, err := st.OwedBefore("crm", []string{next.AlertKey()})
	require.NoError(t, err)
	require.Len(t, before[next.AlertKey()], 1, "only the event itself is owed: nothing earlier holds it back")
}

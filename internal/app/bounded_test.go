package app_test

import (
	"encoding/binary"
	"encoding/json"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"github.com/simwatch/simwatch/internal/event"
	"github.com/simwatch/simwatch/internal/sim"
	"github.com/simwatch/simwatch/internal/store"
)

// openStore opens the watcher's store once no run holds it.
func (e *env) openStore() *store.Store {
	e.t.Helper()
	st, err := store.Open(filepath.Join(filepath.Dir(e.config), "data", "simwatch.db"))
	require.NoError(e.t, err)
	e.t.Cleanup(func() { _ = st.Close() })
	return st
}

// requireBounded checks that every event is at most event.MaxSize encoded,
// and returns them by "kind rule iccid".
func requireBounded(t *testing.T, events []event.Event) map[string]event.Event {
	t.Helper()
	out := map[string]event.Event{}
	for _, ev := range events {
		data, err := json.Marshal(ev)
		require.NoError(t, err)
		require.LessOrEqual(t, len(data), event.MaxSize, "event %s %s %s", ev.Kind, ev.Rule, ev.ICCID)
		out[ev.Kind+" "+ev.Rule+" "+ev.ICCID] = ev
	}
	return out
}

// requireCut checks that a delivered event says it was cut and that its
// huge attribute, if it kept it, ends with the marker.
func requireCut(t *testing.T, ev event.Event) {
	t.Helper()
	require.True(t, ev.Truncated, "%s %s: truncated is visible to the receiver", ev.Kind, ev.Rule)
	var values struct {
		Attributes map[string]string `json:"attributes"`
	}
	require.NoError(t, json.Unmarshal(ev.Values, &values))
	if attr, ok := values.Attributes["customer_attribute1"]; ok {
		require.LessOrEqual(t, len(attr), event.MaxString)
		require.True(t, utf8.ValidString(attr), "cut on a rune boundary")
		require.Regexp(t, `^€+…\[cut \d+ bytes\]$`, attr)
	}
}

// One card whose provider sends a 1.2 MB attribute (GSL customer_attribute1)
// must not hold back the outbox: its events arrive cut to event.MaxSize with
// a marker, and every other event arrives whole.
func TestOnceDeliversEventsOfACardWithAHugeAttribute(t *testing.T) {
	e := newEnv(t, "")
	huge := strings.Repeat("€", 400_000) // 1.2 MB of 3-byte runes
	require.NoError(t, e.sim.Fleet().PatchCard(e.iccids[1], sim.CardPatch{Attr1: &huge}))
	code, out := e.once()
	require.Zero(t, code, out)
	require.Empty(t, e.recv.takeEvents(), "first sight fires nothing")

	steps := []struct {
		name string
		act  func()
		want []string
		cut  []string // of want, the events of the big card
	}{
		{
			name: "the big card and two others alert",
			act: func() {
				e.patchCard(1, `{"flow_used": 99995, "flow_total": 100000}`)
				e.patchCard(2, `{"flow_used": 99995, "flow_total": 100000}`)
				e.patchCard(3, `{"sim_status": 14}`)
			},
			want: []string{"firing card_low_flow " + e.iccids[1], "firing card_low_flow " + e.iccids[2],
				"transition card_suspended " + e.iccids[3]},
			cut: []string{"firing card_low_flow " + e.iccids[1]},
		},
		{
			name: "the big card's transition carries prev too",
			act:  func() { e.patchCard(1, `{"sim_status": 14}`) },
			want: []string{"resolved card_low_flow " + e.iccids[1], "transition card_suspended " + e.iccids[1]},
			cut:  []string{"resolved card_low_flow " + e.iccids[1], "transition card_suspended " + e.iccids[1]},
		},
	}
	for _, st := range steps {
		st.act()
		code, out := e.once()
		require.Zero(t, code, "%s: %s", st.name, out)
		got := requireBounded(t, e.recv.takeEvents())
		require.ElementsMatch(t, st.want, slices.Collect(maps.Keys(got)), st.name)
		for _, k := range st.want {
			if slices.Contains(st.cut, k) {
				requireCut(t, got[k])
			} else {
				require.False(t, got[k].Truncated, "%s: %s arrives whole", st.name, k)
			}
		}
	}

	s := e.openStore()
	require.Zero(t, s.OutboxLen(), "nothing stuck in the outbox")
	aside, err := s.SetAsideEntries()
	require.NoError(t, err)
	require.Empty(t, aside, "nothing needed setting aside")
	history, err := s.Events(store.EventFilter{ICCID: e.iccids[1]})
	require.NoError(t, err)
	require.Len(t, history, 3)
	requireBounded(t, history)
}

// An outbox written by an older version may hold an event larger than the
// bus accepts (NATS's max_payload is 1 MB by default): the relay publishes it
// bounded, and the events behind it flow on.
func TestRelayPublishesALegacyOversizeEventBounded(t *testing.T) {
	e := newEnv(t, "")
	code, out := e.once()
	require.Zero(t, code, out)

	values, err := json.Marshal(map[string]any{"id": "legacy", "iccid": e.iccids[5], "status": "active",
		"attributes": map[string]string{"customer_attribute1": strings.Repeat("€", 500_000)}})
	require.NoError(t, err)
	at := time.Now().UTC()
	legacy := []event.Event{
		{ID: "legacy-big", Kind: event.KindTransition, Rule: "card_suspended", Severity: "critical", Provider: "hw",
			Entity: "card", EntityID: "legacy", ICCID: e.iccids[5], Values: values, Prev: values, StartsAt: at, ObservedAt: at},
		{ID: "legacy-small", Kind: event.KindTransition, Rule: "card_suspended", Severity: "critical", Provider: "hw",
			Entity: "card", EntityID: "legacy2", ICCID: e.iccids[6], StartsAt: at, ObservedAt: at},
	}
	writeLegacyOutbox(t, filepath.Join(filepath.Dir(e.config), "data", "simwatch.db"), legacy)

	code, out = e.once()
	require.Zero(t, code, out)
	got := requireBounded(t, e.recv.takeEvents())
	require.ElementsMatch(t, []string{"transition card_suspended " + e.iccids[5], "transition card_suspended " + e.iccids[6]}, slices.Collect(maps.Keys(got)))
	big := got["transition card_suspended "+e.iccids[5]]
	require.Equal(t, "legacy-big", big.ID, "the id, the idempotency key, is kept")
	requireCut(t, big)
	require.False(t, got["transition card_suspended "+e.iccids[6]].Truncated)
	require.Zero(t, e.openStore().OutboxLen(), "nothing stuck in the outbox")
}

// writeLegacyOutbox appends events to the outbox bucket as an older version
// did: encoded as they are, unbounded.
func writeLegacyOutbox(t *testing.T, path string, events []event.Event) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	require.NoError(t, err)
	defer db.Close()
	require.NoError(t, db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("outbox"))
		for _, ev := range events {
			data, err := json.Marshal(ev)
			if err != nil {
				return err
			}
			if ev.Values != nil {
				require.Greater(t, len(data), 1<<20, "larger than NATS's default max_payload")
			}
			seq, err := b.NextSequence()
			if err != nil {
				return err
			}
			if err := b.Put(binary.BigEndian.AppendUint64(nil, seq), data); err != nil {
				return err
			}
		}
		return nil
	}))
}

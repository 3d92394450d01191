package outbox

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/simwatch/simwatch/internal/event"
	"github.com/simwatch/simwatch/internal/store"
)

type countingPublisher struct{ bytes int }

func (p *countingPublisher) PublishEncoded(_ context.Context, events []event.Encoded) (int, error) {
	for _, e := range events {
		p.bytes += len(e.Data)
	}
	return len(events), nil
}

// BenchmarkDrainStorm reads a cold cycle's 35 000 outbox entries as the
// relay does: "stored bytes" is this version (the stored bytes go to the
// publisher as they are); "decode and re-encode" is what the previous
// version did for each (decode the entry, encode it again to publish).
// Neither deletes the entries, so each iteration reads the same outbox.
func BenchmarkDrainStorm(b *testing.B) {
	const n = 35000
	st, err := store.Open(filepath.Join(b.TempDir(), "s.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	values, _ := json.Marshal(map[string]any{"iccid": "89860000000000000000", "flow_used": 512.5, "flow_left": -12.25,
		"status": "active", "tags": []string{"fleet-a"}, "expire_time": at, "attributes": map[string]string{"customer_attribute1": "x"}})
	events := make([]event.Event, n)
	for i := range events {
		events[i] = event.Event{ID: fmt.Sprintf("%032d", i), Kind: event.KindFiring, Rule: "over_budget", Provider: "gsl",
			Entity: "card", EntityID: fmt.Sprint(i), Summary: "over budget", Values: values, StartsAt: at, ObservedAt: at}
	}
	if err := st.Update(func(tx *store.Tx) error { return tx.AppendOutbox(events) }); err != nil {
		b.Fatal(err)
	}
	b.Run("stored bytes", func(b *testing.B) {
		for b.Loop() {
			var p countingPublisher
			entries, err := st.OutboxEncoded(n)
			if err != nil {
				b.Fatal(err)
			}
			enc := make([]event.Encoded, len(entries))
			for i := range entries {
				enc[i] = entries[i].Encoded
			}
			_, _ = p.PublishEncoded(context.Background(), enc)
		}
	})
	b.Run("decode and re-encode", func(b *testing.B) {
		for b.Loop() {
			var p countingPublisher
			entries, err := st.Outbox(n)
			if err != nil {
				b.Fatal(err)
			}
			enc := make([]event.Encoded, len(entries))
			for i := range entries {
				e := entries[i].Event
				data, err := e.Encode(event.MaxSize)
				if err != nil {
					b.Fatal(err)
				}
				enc[i] = event.Encoded{ID: e.ID, Subject: e.Subject(), Data: data}
			}
			_, _ = p.PublishEncoded(context.Background(), enc)
		}
	})
}

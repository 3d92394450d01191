package store

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/simwatch/simwatch/internal/event"
	"github.com/simwatch/simwatch/internal/fleet"
)

// stormEvents is a cold cycle's alert storm: n firing events of cards, each
// carrying the card's values as a rule's event does.
func stormEvents(n int, at time.Time) []event.Event {
	out := make([]event.Event, n)
	for i := range out {
		c := fleet.Card{Provider: "gsl", Account: "acc", ID: fmt.Sprintf("%d", 1000000+i), ICCID: fmt.Sprintf("8986%016d", i),
			MSISDN: "1440000000", IMSI: "460000000000000", Status: fleet.StatusActive, StatusCode: 2, OperatorStatus: -1,
			FlowUsed: 512.5, FlowLeft: -12.25, FlowTotal: 500, PoolID: "p1", Plan: "plan-1",
			ExpireTime: at.Add(30 * 24 * time.Hour), ActDate: at.Add(-300 * 24 * time.Hour), Tags: []string{"fleet-a"},
			Attributes: map[string]string{"customer_attribute1": "x"}, NetworkType: "4G"}
		values, _ := json.Marshal(c)
		out[i] = event.Event{
			ID: event.ID("gsl", "card", c.ID, "over_budget", event.KindFiring, at, 0), Kind: event.KindFiring,
			Rule: "over_budget", Severity: "warning", Summary: "over_budget: card " + c.ICCID,
			Provider: "gsl", Entity: "card", EntityID: c.ID, ICCID: c.ICCID, Values: values,
			StartsAt: at, ObservedAt: at,
		}
	}
	return out
}

// BenchmarkCommitStorm commits one cycle of 35 000 events (a cold cycle's
// alert storm) with two notifiers configured, and reports the store's bytes
// per event: what the outbox, ledger, history and firing buckets hold.
func BenchmarkCommitStorm(b *testing.B) {
	const n = 35000
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for b.Loop() {
		b.StopTimer()
		s, err := Open(filepath.Join(b.TempDir(), "s.db"))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.SetNotifiers([]string{"slack", "webhook"}); err != nil {
			b.Fatal(err)
		}
		events := stormEvents(n, at)
		b.StartTimer()
		if err := s.Update(func(tx *Tx) error { return tx.AppendOutbox(events) }); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		var stored int
		_ = s.db.View(func(tx *bolt.Tx) error {
			return tx.ForEach(func(name []byte, bk *bolt.Bucket) error {
				_ = bk.ForEach(func(k, v []byte) error { stored += len(k) + len(v); return nil })
				return nil
			})
		})
		b.ReportMetric(float64(stored)/n, "storedB/event")
		b.ReportMetric(float64(s.Size())/n, "fileB/event")
		s.Close()
		b.StartTimer()
	}
}

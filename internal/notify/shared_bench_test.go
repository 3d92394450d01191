package notify_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/event"
	"github.com/simwatch/simwatch/internal/notify"
	"github.com/simwatch/simwatch/internal/store"
)

// BenchmarkSharedDelivery measures events delivered per second to a
// webhook receiver (httptest) from a backlog on the bus, 100 alerts
// interleaved: one watcher with its local ledger, and two watchers sharing
// the consumer through the shared delivery log (cluster mode).
func BenchmarkSharedDelivery(b *testing.B) {
	for _, tc := range []struct {
		name    string
		workers int
		shared  bool
	}{
		{"ledger-1", 1, false},
		{"shared-1", 1, true},
		{"shared-2", 2, true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			c := newCluster(b, "crm")
			rcv := newReceiver(b)
			const alerts = 100
			var stories [][]event.Event
			for i := range alerts {
				stories = append(stories, story(fmt.Sprintf("card%03d", i), (b.N+alerts-1)/alerts))
			}
			all := interleave(stories...)[:b.N]
			n, err := c.pub.PublishBatch(context.Background(), all)
			require.NoError(b, err)
			require.Equal(b, len(all), n)
			b.ResetTimer()
			began := time.Now()
			for i := range tc.workers {
				c.startWorker(b, fmt.Sprint("w", i), "crm", rcv, func(o *notify.Options) {
					if !tc.shared {
						st, err := store.Open(filepath.Join(b.TempDir(), "s.db"))
						require.NoError(b, err)
						b.Cleanup(func() { _ = st.Close() })
						o.Shared, o.Ledger = nil, st
					}
				})
			}
			waitFor(b, 10*time.Minute, func() bool { return len(rcv.all()) >= len(all) }, func() string {
				return fmt.Sprintf("%d of %d delivered", len(rcv.all()), len(all))
			})
			elapsed := time.Since(began)
			b.StopTimer()
			b.ReportMetric(float64(len(all))/elapsed.Seconds(), "events/s")
		})
	}
}

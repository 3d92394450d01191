package bus_test

import (
	"context"
	"sync"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/bus"
	"github.com/simwatch/simwatch/internal/cluster/clustertest"
)

// Watchers of a cluster start together: they race to create the R3
// streams and the notifiers' consumers, and every one of them starts.
func TestWatchersStartTogetherOnANATSCluster(t *testing.T) {
	srvs := clustertest.Start(t, 3)
	nc, err := nats.Connect(clustertest.URLs(srvs))
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	for round := range 3 {
		for _, name := range []string{bus.EventsStream, bus.DeadLetterStream} {
			if err := js.DeleteStream(context.Background(), name); err != nil {
				require.ErrorIs(t, err, jetstream.ErrStreamNotFound)
			}
		}
		var wg sync.WaitGroup
		errs := make([]error, 3)
		for i := range 3 {
			wg.Go(func() {
				b, err := bus.Open(context.Background(), bus.Options{URL: clustertest.URLs(srvs), AutoReplicas: true})
				if err != nil {
					errs[i] = err
					return
				}
				defer b.Close()
				if b.Replicas() != 3 {
					t.Errorf("replicas %d on a 3-node cluster, want 3", b.Replicas())
				}
				_, _, errs[i] = b.Consumer(context.Background(), "crm")
			})
		}
		wg.Wait()
		for i, err := range errs {
			require.NoError(t, err, "round %d watcher %d", round, i)
		}
	}
}

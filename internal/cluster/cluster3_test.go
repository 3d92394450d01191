package cluster

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/simwatch/simwatch/internal/cluster/clustertest"
)

func replicas3(o *Options) { o.Replicas = 3 }

// streamLeader is the node leading the leases bucket's stream.
func streamLeader(t *testing.T, srvs []*server.Server) int {
	t.Helper()
	i := -1
	eventually(t, 10*time.Second, "leases stream leader", func() bool {
		for j, s := range srvs {
			if s.Running() && s.JetStreamIsStreamLeader("$G", "KV_"+LeasesBucket("test")) {
				i = j
				return true
			}
		}
		return false
	})
	return i
}

// TestThreeNodeClusterSurvivesNodeLoss shuts down the node leading the
// leases stream: the members keep their leases through the election and an
// orderly hand-over still works on the two remaining nodes.
func TestThreeNodeClusterSurvivesNodeLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("3-node cluster with a leader election")
	}
	// A stream leader that dies is replaced after the raft election timeout
	// (4–9 s), so the TTL must outlast it, as the 30 s default does.
	const ttl = 15 * time.Second
	srvs := clustertest.Start(t, 3)
	url := clustertest.URLs(srvs)
	accs := accountsN(4)
	a := startMember(t, url, "a", accs, ttl, replicas3)
	b := startMember(t, url, "b", accs, ttl, replicas3)
	eventually(t, 10*time.Second, "2/2 split", func() bool { return a.held(accs) == 2 && b.held(accs) == 2 })

	leader := streamLeader(t, srvs)
	srvs[leader].Shutdown()
	down := time.Now()
	took := eventually(t, ttl-ttl/5, "every lease renewed after the node loss", func() bool {
		if a.held(accs) != 2 || b.held(accs) != 2 {
			t.Fatalf("a member stopped claiming during the election: a %d, b %d", a.held(accs), b.held(accs))
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		st, err := a.g.Status(ctx)
		if err != nil || len(st.Leases) != 4 {
			return false
		}
		for _, l := range st.Leases {
			if !l.Renewed.After(down) {
				return false
			}
		}
		return true
	})
	t.Logf("all leases renewed %v after the stream leader's node went down", took)
	if s := a.g.Stats().Losses + b.g.Stats().Losses; s != 0 {
		t.Errorf("%d leases lost during the election", s)
	}
	b.stop()
	handover := eventually(t, 2*ttl, "a takes b's accounts on two nodes", func() bool { return a.held(accs) == 4 })
	t.Logf("orderly hand-over on the degraded cluster took %v", handover)
}

// TestQuorumLoss shows what happens when two of three nodes are gone: leases
// can be neither renewed nor taken, so the holder stops claiming within the
// TTL; when the quorum returns the accounts are taken again.
func TestQuorumLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("3-node cluster losing and regaining its quorum")
	}
	const ttl = 3 * time.Second
	srvs := clustertest.Start(t, 3)
	url := clustertest.URLs(srvs)
	accs := accountsN(2)
	a := startMember(t, url, "a", accs, ttl, replicas3)
	eventually(t, 10*time.Second, "a holds both", func() bool { return a.held(accs) == 2 })

	srvs[1].Shutdown()
	srvs[2].Shutdown()
	down := time.Now()
	stopped := eventually(t, ttl, "a stops claiming", func() bool { return a.held(accs) == 0 })
	lost := eventually(t, ttl, "OnLose(expired)", func() bool {
		return a.lost(accs[0]) == LoseExpired && a.lost(accs[1]) == LoseExpired
	})
	t.Logf("quorum lost: Holds false after %v, OnLose after %v more", stopped, lost)

	srvs[1] = clustertest.Restart(t, srvs[1])
	srvs[2] = clustertest.Restart(t, srvs[2])
	clustertest.WaitLeader(t, srvs)
	back := time.Now()
	again := eventually(t, 60*time.Second, "a holds both again", func() bool { return a.held(accs) == 2 })
	t.Logf("quorum back %v after the loss; leases held again %v later; takeovers %v",
		back.Sub(down), again, a.g.Stats().Takeover)
}

package replica

import (
	"fmt"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/store"
)

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// natsCluster starts three in-process JetStream servers routed together
// and returns their client URLs once JetStream has a leader.
func natsCluster(t testing.TB) []string {
	t.Helper()
	ports := []int{freePort(t), freePort(t), freePort(t)}
	var routes []*url.URL
	for _, p := range ports {
		u, _ := url.Parse(fmt.Sprintf("nats://127.0.0.1:%d", p))
		routes = append(routes, u)
	}
	var urls []string
	var servers []*server.Server
	for i, p := range ports {
		srv, err := server.NewServer(&server.Options{ServerName: fmt.Sprint("n", i), Host: "127.0.0.1", Port: -1,
			JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
			Cluster: server.ClusterOpts{Name: "c3", Host: "127.0.0.1", Port: p}, Routes: routes})
		require.NoError(t, err)
		srv.Start()
		t.Cleanup(srv.Shutdown)
		require.True(t, srv.ReadyForConnections(10*time.Second))
		servers = append(servers, srv)
		urls = append(urls, srv.ClientURL())
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		ready := 0
		for _, s := range servers {
			if s.JetStreamIsLeader() || s.JetStreamIsCurrent() {
				ready++
			}
		}
		if ready == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no JetStream leader")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return urls
}

func TestThreeServersR3ReplicatesAndRefusesAStaleWriter(t *testing.T) {
	urls := natsCluster(t)
	ctx := ctxT(t)
	eventually(t, "an R3 stream", func() bool {
		js := connect(t, urls[0])
		_, err := js.AccountInfo(ctx)
		return err == nil
	})
	a := newNodeR(t, connect(t, urls[0]), "a", 3)
	b := newNodeR(t, connect(t, urls[2]), "b", 3)
	_, err := putCards(a, ctx, map[string][]byte{"c0": []byte("v0")})
	require.NoError(t, err)
	var inner error
	_, err = a.r.Commit(ctx, subj, func(tx *store.Tx) error {
		_, inner = putCards(b, ctx, map[string][]byte{"c1": []byte("from-b")})
		pt, err := tx.Provider("hw")
		if err != nil {
			return err
		}
		return pt.PutCard("c1", []byte("from-a"))
	})
	require.NoError(t, inner)
	require.ErrorIs(t, err, ErrConflict)
	require.NoError(t, a.r.CatchUp(ctx, subj))
	require.Equal(t, []byte("from-b"), card(a, "c1"))
	st, err := a.js.Stream(ctx, StreamName(cluster))
	require.NoError(t, err)
	require.Equal(t, 3, st.CachedInfo().Config.Replicas)
}

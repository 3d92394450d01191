// Package clustertest starts real in-process NATS servers with JetStream for
// tests: a single server or an n-node cluster routed on 127.0.0.1, so tests of
// leases, replication and shared delivery run against the same quorum rules
// as production (a 3-node cluster keeps working with one node down and stops
// accepting writes with two down).
package clustertest

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// startTimeout bounds how long Start waits for routes and a JetStream meta
// leader; a 3-node election usually takes well under two seconds.
const startTimeout = 20 * time.Second

// opts remembers each server's options so Restart can bring a node back with
// its store and ports.
var opts sync.Map // *server.Server -> *server.Options

// Start runs n JetStream servers (n = 1: a plain single server; n > 1: a
// cluster named "simwatch-test" with every node routed to every other) and
// waits until the JetStream meta group has a leader and every node is
// current. Servers are shut down at the end of the test; shutting one down
// earlier (to test a node loss) is fine.
func Start(t testing.TB, n int) []*server.Server {
	t.Helper()
	if n < 1 {
		t.Fatalf("clustertest: n = %d, want >= 1", n)
	}
	var ports []int
	if n > 1 {
		ports = freePorts(t, n)
	}
	srvs := make([]*server.Server, 0, n)
	for i := range n {
		o := &server.Options{
			ServerName: fmt.Sprintf("s%d", i+1),
			Host:       "127.0.0.1",
			Port:       -1,
			JetStream:  true,
			StoreDir:   t.TempDir(),
			NoLog:      true,
			NoSigs:     true,
		}
		if n > 1 {
			o.Cluster = server.ClusterOpts{Name: "simwatch-test", Host: "127.0.0.1", Port: ports[i]}
			for j, p := range ports {
				if j != i {
					o.Routes = append(o.Routes, &url.URL{Scheme: "nats", Host: fmt.Sprintf("127.0.0.1:%d", p)})
				}
			}
		}
		srvs = append(srvs, run(t, o))
	}
	for i, s := range srvs {
		if !s.ReadyForConnections(startTimeout) {
			t.Fatalf("clustertest: server %d not ready", i+1)
		}
	}
	WaitLeader(t, srvs)
	return srvs
}

func run(t testing.TB, o *server.Options) *server.Server {
	t.Helper()
	s, err := server.NewServer(o.Clone())
	if err != nil {
		t.Fatalf("clustertest: server %s: %v", o.ServerName, err)
	}
	opts.Store(s, o)
	go s.Start()
	t.Cleanup(s.Shutdown)
	return s
}

// Restart starts a node Start made again after it was shut down, with the
// same name, store and cluster port (its client port is new), and returns
// it. Callers replace it in their slice and call WaitLeader if they need
// the quorum back.
func Restart(t testing.TB, s *server.Server) *server.Server {
	t.Helper()
	v, ok := opts.Load(s)
	if !ok {
		t.Fatalf("clustertest: Restart of a server Start did not make")
	}
	s.WaitForShutdown()
	ns := run(t, v.(*server.Options))
	if !ns.ReadyForConnections(startTimeout) {
		t.Fatalf("clustertest: restarted server not ready")
	}
	return ns
}

// WaitLeader waits until the running servers among srvs have full routes, a
// JetStream meta leader and are all current.
func WaitLeader(t testing.TB, srvs []*server.Server) {
	t.Helper()
	deadline := time.Now().Add(startTimeout)
	for {
		running := 0
		leader, current, routed := false, true, true
		for _, s := range srvs {
			if !s.Running() {
				continue
			}
			running++
		}
		for _, s := range srvs {
			if !s.Running() {
				continue
			}
			if len(srvs) > 1 && s.NumRoutes() < running-1 {
				routed = false
			}
			if s.JetStreamIsLeader() {
				leader = true
			}
			if !s.JetStreamIsCurrent() {
				current = false
			}
		}
		if (len(srvs) == 1 || leader) && current && routed {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("clustertest: no JetStream meta leader after %v (leader=%v current=%v routed=%v)", startTimeout, leader, current, routed)
		}
		time.Sleep(20 * time.Millisecond) // polling the server's own state; there is no event to wait on
	}
}

// URLs is the comma-separated client URL list of the running servers, as
// nats.Connect accepts it.
func URLs(srvs []*server.Server) string {
	var us []string
	for _, s := range srvs {
		if s.Running() {
			us = append(us, s.ClientURL())
		}
	}
	return strings.Join(us, ",")
}

// freePorts reserves n distinct loopback ports for cluster routes: every node
// must know the others' route ports before it starts, so "port -1" cannot be
// used there. The ports are released just before the servers bind them.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	ls := make([]net.Listener, 0, n)
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("clustertest: reserve port: %v", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

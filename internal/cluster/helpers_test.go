package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/simwatch/simwatch/internal/cluster/clustertest"
)

// member is one running Group with what its callbacks reported.
type member struct {
	g      *Group
	nc     *nats.Conn
	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	acquired map[string]time.Duration // last takeover per account
	lostWhy  map[string]string
}

func (m *member) takeover(acc string) (time.Duration, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.acquired[acc]
	return d, ok
}

func (m *member) lost(acc string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lostWhy[acc]
}

// held counts the accounts m Holds.
func (m *member) held(accounts []string) int {
	n := 0
	for _, a := range accounts {
		if m.g.Holds(a) {
			n++
		}
	}
	return n
}

// stop ends Run and waits for it.
func (m *member) stop() {
	m.cancel()
	<-m.done
}

func connect(t testing.TB, url string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(url, nats.ReconnectWait(50*time.Millisecond), nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// startMember opens a Group named id on url and runs it until the test ends.
func startMember(t testing.TB, url, id string, accounts []string, ttl time.Duration, mod ...func(*Options)) *member {
	t.Helper()
	nc, js := connect(t, url)
	m := &member{nc: nc, done: make(chan struct{}), acquired: map[string]time.Duration{}, lostWhy: map[string]string{}}
	o := Options{
		JS: js, Cluster: "test", Member: id, TTL: ttl, Accounts: accounts,
		Info: MemberInfo{Host: "h", PID: 1, Role: RoleWatcher, Started: time.Now()},
		OnAcquire: func(acc string, takeover time.Duration) {
			m.mu.Lock()
			m.acquired[acc] = takeover
			delete(m.lostWhy, acc)
			m.mu.Unlock()
		},
		OnLose: func(acc, reason string) {
			m.mu.Lock()
			m.lostWhy[acc] = reason
			m.mu.Unlock()
		},
	}
	if os.Getenv("CLUSTER_DEBUG") != "" {
		o.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	for _, f := range mod {
		f(&o)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	g, err := Open(ctx, o)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	m.g, m.cancel = g, cancel
	go func() {
		defer close(m.done)
		g.Run(ctx)
	}()
	t.Cleanup(m.stop)
	return m
}

// noRelease makes a member die without handing its leases back.
func noRelease(o *Options) { o.NoRelease = true }

// eventually polls cond until it holds or d passes, and returns how long it
// took.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := start.Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(5 * time.Millisecond) // polling state owned by Run; nothing to wait on
	}
	return time.Since(start)
}

func accountsN(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("acct%d", i+1)
	}
	return out
}

func singleURL(t testing.TB) string {
	return clustertest.URLs(clustertest.Start(t, 1))
}

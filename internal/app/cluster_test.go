package app_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/api"
	"github.com/simwatch/simwatch/internal/cluster/clustertest"
	"github.com/simwatch/simwatch/internal/event"
	"github.com/simwatch/simwatch/internal/store"
)

// member is one watcher process of a cluster test.
type member struct {
	name   string
	config string
	data   string
	http   string
	cmd    *exec.Cmd
	out    *syncBuffer
	exited chan error
	done   atomic.Bool // the process has exited
}

// clusterEnv is an env whose watchers share a NATS cluster.
type clusterEnv struct {
	*env
	members []*member
}

// newClusterEnv writes one config per watcher: the env's, with its own
// data_dir and http.listen, the cluster's NATS URLs, and extra.
func newClusterEnv(t *testing.T, watchers int, natsURLs, extra string) *clusterEnv {
	t.Helper()
	e := newEnv(t, "")
	e.tune("retries: 1}", "retries: 1, interval: 200ms}",
		"max_deliver: 4", "max_deliver: 100000", "max_backoff: 20ms", "max_backoff: 50ms")
	raw, err := os.ReadFile(e.config)
	require.NoError(t, err)
	base := string(raw)
	ce := &clusterEnv{env: e}
	dir := filepath.Dir(e.config)
	for i := range watchers {
		m := &member{name: fmt.Sprintf("w%d", i+1), data: filepath.Join(dir, fmt.Sprintf("data-%d", i+1)), http: freeAddr(t)}
		cfg := strings.Replace(base, filepath.Join(dir, "data"), m.data, 1)
		cfg += fmt.Sprintf("nats: {url: %q, ack_wait: 2s}\nhttp: {listen: %q}\n%s", natsURLs, m.http, extra)
		m.config = filepath.Join(dir, m.name+".yaml")
		require.NoError(t, os.WriteFile(m.config, []byte(cfg), 0o644))
		ce.members = append(ce.members, m)
	}
	return ce
}

// start runs the member's `watcher run` as a process.
func (m *member) start(t *testing.T) {
	t.Helper()
	m.cmd = exec.Command(watcherBinary(t), "run", "--config", m.config)
	m.out = &syncBuffer{}
	m.cmd.Stdout, m.cmd.Stderr = m.out, m.out
	require.NoError(t, m.cmd.Start())
	m.done.Store(false) // a member may be started again after it was killed
	m.exited = make(chan error, 1)
	go func() {
		err := m.cmd.Wait()
		m.done.Store(true)
		m.exited <- err
	}()
	t.Cleanup(func() {
		if !m.done.Load() {
			_ = m.cmd.Process.Kill()
			<-m.exited
		}
	})
}

// stop ends the member in order (SIGTERM) and waits for it.
func (m *member) stop(t *testing.T) {
	t.Helper()
	require.False(t, m.done.Load(), "%s exited on its own before it was stopped:\n%s", m.name, m.out.String())
	require.NoError(t, m.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-m.exited:
		require.NoError(t, err, m.out.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not stop\n%s", m.name, m.out.String())
	}
}

// status reads the member's /api/v1/cluster; nil while it does not answer.
func (m *member) status() *api.ClusterStatus {
	resp, err := http.Get("http://" + m.http + "/api/v1/cluster")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil
	}
	var st api.ClusterStatus
	if json.NewDecoder(resp.Body).Decode(&st) != nil {
		return nil
	}
	return &st
}

// holder returns the running member that holds account's lease, as any
// running member sees it, and when the lease was taken.
func (ce *clusterEnv) holder(account string) (*member, time.Time) {
	for _, m := range ce.members {
		if m.cmd == nil || m.done.Load() {
			continue
		}
		st := m.status()
		if st == nil {
			continue
		}
		for _, l := range st.Leases {
			if l.Account != account || l.Holder == "" {
				continue
			}
			for _, mm := range st.Members {
				if mm.ID != l.Holder {
					continue
				}
				for _, cand := range ce.members {
					if cand.cmd != nil && cand.cmd.Process.Pid == mm.PID && !cand.done.Load() {
						return cand, l.Since
					}
				}
			}
		}
		return nil, time.Time{}
	}
	return nil, time.Time{}
}

// waitHolder waits until a running member other than not holds account.
func (ce *clusterEnv) waitHolder(t *testing.T, account string, not *member, within time.Duration) (*member, time.Time) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if m, since := ce.holder(account); m != nil && m != not {
			return m, since
		}
		time.Sleep(25 * time.Millisecond) // polling other processes' HTTP status
	}
	var logs strings.Builder
	for _, m := range ce.members {
		fmt.Fprintf(&logs, "--- %s\n%s\n", m.name, m.out.String())
	}
	t.Fatalf("no member other than %v holds %s after %s\n%s", not, account, within, logs.String())
	return nil, time.Time{}
}

// TestClusterFailover is the cluster's promise, end to end: three watcher
// processes share one provider account through a three-node NATS cluster
// while cards flip between low and fine flow. The lease holder is SIGKILLed,
// then a NATS node is shut down. The receiver gets every event of every
// alert once, in each alert's order, nothing generated twice, and the
// account is taken over within the lease TTL.
func TestClusterFailover(t *testing.T) {
	const ttl = 3 * time.Second
	srvs := clustertest.Start(t, 3)
	ce := newClusterEnv(t, 3, clustertest.URLs(srvs), fmt.Sprintf("cluster: {enabled: true, lease_ttl: %s}\n", ttl))
	for _, m := range ce.members {
		m.start(t)
	}
	first, _ := ce.waitHolder(t, "hw", nil, 30*time.Second)

	cards := []int{20, 22, 23, 25, 26, 28} // in no pool: their use does not overdraw one
	var iccids []string
	for _, c := range cards {
		iccids = append(iccids, ce.iccids[c])
	}
	var (
		mu    sync.Mutex
		low   = make([]bool, len(cards))
		flips int
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Duration(30+r.IntN(270)) * time.Millisecond):
			}
			i := r.IntN(len(cards))
			mu.Lock()
			p := lowFlow
			if low[i] {
				p = fineFlow
			}
			if err := ce.sim.Fleet().PatchCard(iccids[i], p); err == nil {
				low[i] = !low[i]
				flips++
			}
			mu.Unlock()
		}
	})
	flipFor := func(d time.Duration) {
		select {
		case <-time.After(d):
		case err := <-first.exited:
			t.Fatalf("%s exited on its own: %v\n%s", first.name, err, first.out.String())
		}
	}
	flipFor(2500 * time.Millisecond)

	// The lease holder dies without a word.
	killed := time.Now()
	require.NoError(t, first.cmd.Process.Signal(syscall.SIGKILL))
	killedBySIGKILL(t, <-first.exited, first.out.String())
	second, since := ce.waitHolder(t, "hw", first, 3*ttl)
	seen := time.Since(killed)
	takeover := since.Sub(killed)
	t.Logf("lease holder %s killed; %s took the account over %s after the kill (seen after %s)", first.name, second.name, takeover.Round(time.Millisecond), seen.Round(time.Millisecond))
	require.LessOrEqual(t, takeover, ttl, "the account is taken over within the lease TTL")

	time.Sleep(2 * time.Second) // cards keep flipping under the new holder
	// Then a NATS node goes, the one leading the state stream: the
	// cluster keeps its quorum and elects another leader.
	gone := srvs[0]
	for _, s := range srvs {
		if s.JetStreamIsStreamLeader(server.DEFAULT_GLOBAL_ACCOUNT, "SIMWATCH_simwatch_STATE") {
			gone = s
		}
	}
	gone.Shutdown()
	t.Logf("NATS node %s, the state stream's leader, shut down", gone.Name())
	time.Sleep(3 * time.Second) // cards keep flipping with two NATS nodes
	close(stop)
	wg.Wait()
	mu.Lock()
	finalLow := slices.Clone(low)
	nFlips := flips
	mu.Unlock()

	// Every card's alert ends in its final state at the receiver.
	var got []event.Event
	deadline := time.Now().Add(60 * time.Second)
	for {
		got = append(got, ce.recv.takeEvents()...)
		if settled(got, ce.iccids, cards, finalLow) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the receiver never saw every card's final state; got %d events", len(got))
		}
		time.Sleep(100 * time.Millisecond) // polling the receiver
	}
	// Let a last cycle or two pass, so that anything still owed arrives.
	time.Sleep(2 * time.Second)
	got = append(got, ce.recv.takeEvents()...)

	var survivors []*member
	for _, m := range ce.members {
		if m != first {
			m.stop(t)
			survivors = append(survivors, m)
		}
	}
	rep := checkOrder(t, got)
	histories := make([]map[string]uint64, len(survivors))
	for i, m := range survivors {
		st, err := store.Open(filepath.Join(m.data, "simwatch.db"))
		require.NoError(t, err)
		lost := requireAllHistoryReceived(t, st, "card_low_flow", iccids, rep)
		require.Zero(t, lost, "%s's history: lost", m.name)
		histories[i] = map[string]uint64{}
		for _, icc := range iccids {
			evs, err := st.Events(store.EventFilter{ICCID: icc, Rule: "card_low_flow", Limit: 100000})
			require.NoError(t, err)
			for _, ev := range evs {
				histories[i][ev.ID] = ev.Seq
			}
		}
		require.NoError(t, st.Close())
	}
	require.Equal(t, histories[0], histories[1], "both survivors hold the same history")
	require.Zero(t, rep.inversions, "inversions")
	require.Zero(t, rep.collisions, "an alert's seq carried by two events: a transition generated twice")
	require.Zero(t, rep.gaps, "gaps")
	t.Logf("flips %d; events received %d, distinct %d, repeats of an id %d, alerts %d; takeover %s",
		nFlips, rep.received, rep.distinct, rep.duplicates, len(rep.byAlert), takeover.Round(time.Millisecond))
	require.Zero(t, rep.duplicates, "each event delivered once")
}

// settled reports whether every card's card_low_flow alert, as received,
// ends in the card's final state: firing when low, resolved (or never
// fired) when fine.
func settled(got []event.Event, all []string, cards []int, finalLow []bool) bool {
	last := map[string]event.Event{}
	for _, ev := range got {
		if ev.Rule != "card_low_flow" {
			continue
		}
		if prev, ok := last[ev.ICCID]; !ok || ev.Seq > prev.Seq {
			last[ev.ICCID] = ev
		}
	}
	for i, c := range cards {
		ev, ok := last[all[c]]
		switch {
		case finalLow[i] && (!ok || ev.Kind != event.KindFiring):
			return false
		case !finalLow[i] && ok && ev.Kind != event.KindResolved:
			return false
		}
	}
	return true
}

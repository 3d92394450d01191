package app_test

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/event"
	"github.com/simwatch/simwatch/internal/sim"
	"github.com/simwatch/simwatch/internal/store"
)

// Card patches that make card_low_flow fire (5 KB left) and resolve.
var (
	lowFlow  = sim.CardPatch{FlowUsed: ptr(99995.0), FlowTotal: ptr(100000.0)}
	fineFlow = sim.CardPatch{FlowUsed: ptr(0.0)}
)

// tune rewrites the env's config: each pair is old, new; each old must be there.
func (e *env) tune(pairs ...string) {
	e.t.Helper()
	raw, err := os.ReadFile(e.config)
	require.NoError(e.t, err)
	cfg := string(raw)
	for i := 0; i < len(pairs); i += 2 {
		require.Contains(e.t, cfg, pairs[i])
		cfg = strings.Replace(cfg, pairs[i], pairs[i+1], 1)
	}
	require.NoError(e.t, os.WriteFile(e.config, []byte(cfg), 0o644))
}

// setDown makes the receiver answer 503 to every post (down) or accept (up).
func (r *receiver) setDown(down bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status = 0
	if down {
		r.status = http.StatusServiceUnavailable
	}
}

// orderReport is what a receiver saw, alert by alert.
type orderReport struct {
	received   int                      // events accepted, repeats included
	distinct   int                      // distinct event ids
	duplicates int                      // repeats of an id already accepted
	late       int                      // repeats arriving after a later event of their alert
	inversions int                      // a new event with a seq not above every earlier one of its alert
	collisions int                      // two ids for one alert's seq: a transition generated twice
	gaps       int                      // seqs missing from an alert's 1..N
	byAlert    map[string][]event.Event // distinct events in arrival order
	ids        map[string]event.Event
}

// checkOrder reads the receiver's events in arrival order and checks, per
// alert, that distinct events arrive with strictly increasing seq, that a
// repeat is the same event, that seqs form 1..N without holes, and that
// firing and resolved alternate starting with firing.
func checkOrder(t *testing.T, got []event.Event) orderReport {
	t.Helper()
	rep := orderReport{received: len(got), byAlert: map[string][]event.Event{}, ids: map[string]event.Event{}}
	last := map[string]uint64{}
	seqID := map[string]string{}
	for _, ev := range got {
		k := ev.AlertKey()
		require.NotZero(t, ev.Seq, "event %s %s %s carries no seq", ev.Kind, ev.Rule, ev.EntityID)
		if prev, seen := rep.ids[ev.ID]; seen {
			rep.duplicates++
			require.Equal(t, prev.Seq, ev.Seq, "repeat of %s: same seq", ev.ID)
			require.Equal(t, prev.Kind, ev.Kind, "repeat of %s: same kind", ev.ID)
			require.Equal(t, k, prev.AlertKey(), "repeat of %s: same alert", ev.ID)
			if ev.Seq < last[k] {
				rep.late++
			}
			continue
		}
		rep.ids[ev.ID] = ev
		rep.distinct++
		sk := fmt.Sprintf("%s#%d", k, ev.Seq)
		if other, ok := seqID[sk]; ok {
			rep.collisions++
			t.Errorf("alert %q seq %d: two events, %s and %s (%s)", showKey(k), ev.Seq, other, ev.ID, ev.Kind)
		}
		seqID[sk] = ev.ID
		if ev.Seq <= last[k] {
			rep.inversions++
			t.Errorf("alert %q: %s seq %d (%s) arrived after seq %d", showKey(k), ev.Kind, ev.Seq, ev.ID, last[k])
		}
		last[k] = max(last[k], ev.Seq)
		rep.byAlert[k] = append(rep.byAlert[k], ev)
	}
	for k, evs := range rep.byAlert {
		sorted := slices.Clone(evs)
		slices.SortFunc(sorted, func(a, b event.Event) int { return int(a.Seq) - int(b.Seq) })
		var seqs []uint64
		for _, ev := range sorted {
			seqs = append(seqs, ev.Seq)
		}
		for i, ev := range sorted {
			if ev.Seq != uint64(i+1) {
				rep.gaps++
				t.Errorf("alert %q: seqs %v are not 1..%d", showKey(k), seqs, len(seqs))
				break
			}
		}
		if ev := sorted[0]; ev.Kind == event.KindFiring || ev.Kind == event.KindResolved {
			for i, ev := range sorted {
				want := event.KindFiring
				if i%2 == 1 {
					want = event.KindResolved
				}
				if ev.Kind != want {
					t.Errorf("alert %q: event seq %d is %s, want %s (kinds by seq: %v)", showKey(k), ev.Seq, ev.Kind, want, kinds(sorted))
					break
				}
			}
		}
	}
	return rep
}

func showKey(k string) string { return strings.ReplaceAll(k, "\x00", " ") }

func kinds(evs []event.Event) []string {
	var out []string
	for _, ev := range evs {
		out = append(out, fmt.Sprintf("%d:%s", ev.Seq, ev.Kind))
	}
	return out
}

// requireAllHistoryReceived checks that every event the store's history
// holds for these cards under rule reached the receiver, with the same id
// and seq, and that the receiver got nothing the history lacks. It returns
// how many were lost.
func requireAllHistoryReceived(t *testing.T, st *store.Store, rule string, iccids []string, rep orderReport) (lost int) {
	t.Helper()
	want := map[string]bool{}
	for _, icc := range iccids {
		history, err := st.Events(store.EventFilter{ICCID: icc, Rule: rule, Limit: 100000})
		require.NoError(t, err)
		for _, h := range history {
			want[h.ID] = true
			got, ok := rep.ids[h.ID]
			if !ok {
				lost++
				t.Errorf("lost: %s %s %s seq %d (%s) is in the history, never received", h.Kind, h.Rule, h.ICCID, h.Seq, h.ID)
				continue
			}
			require.Equal(t, h.Seq, got.Seq, "event %s: the seq received is the one recorded", h.ID)
		}
	}
	for id, ev := range rep.ids {
		if ev.Rule == rule && slices.Contains(iccids, ev.ICCID) && !want[id] {
			t.Errorf("received %s %s %s seq %d (%s), which the history lacks", ev.Kind, ev.Rule, ev.ICCID, ev.Seq, id)
		}
	}
	return lost
}

// TestKillAtRandomKeepsEachAlertsOrder runs the real daemon, SIGKILLs it at
// random moments and restarts it, while cards flip between low and fine flow
// and the receiver goes down and up. Afterwards every alert's events have
// arrived in order (strictly increasing seq), none is missing, repeats are
// the same event, and each card's last event is its last state.
func TestKillAtRandomKeepsEachAlertsOrder(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("SIMWATCH_ORDER_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		require.NoError(t, err)
		seed = v
	}
	t.Logf("seed %d (SIMWATCH_ORDER_SEED=%d replays the same choices)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	between := func(r *rand.Rand, lo, hi time.Duration) time.Duration {
		return lo + time.Duration(r.Int64N(int64(hi-lo)))
	}

	e := newEnv(t, "nats: {ack_wait: 1s}\n")
	e.tune("retries: 1}", "retries: 1, interval: 150ms}",
		"max_deliver: 4", "max_deliver: 100000", "max_backoff: 20ms", "max_backoff: 50ms")
	bin := watcherBinary(t)

	// First sight of the fleet, all fine.
	cmd, out := e.start(t)
	require.NoError(t, cmd.Wait(), out.String())
	require.Empty(t, e.recv.takeEvents())

	cards := []int{20, 22, 23, 25, 26, 28} // in no pool: their use does not overdraw one
	var iccids []string
	for _, c := range cards {
		iccids = append(iccids, e.iccids[c])
	}
	var (
		mu       sync.Mutex
		low      = make([]bool, len(cards))
		flips    int
		outages  int
		patchErr error
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { // the fleet
		r := rand.New(rand.NewPCG(seed, 1))
		for {
			select {
			case <-stop:
				return
			case <-time.After(between(r, 30*time.Millisecond, 300*time.Millisecond)):
			}
			i := r.IntN(len(cards))
			mu.Lock()
			p := lowFlow
			if low[i] {
				p = fineFlow
			}
			if err := e.sim.Fleet().PatchCard(iccids[i], p); err != nil && patchErr == nil {
				patchErr = err
			}
			low[i] = !low[i]
			flips++
			mu.Unlock()
		}
	})
	wg.Go(func() { // the receiver
		r := rand.New(rand.NewPCG(seed, 2))
		down := false
		for {
			d := between(r, 200*time.Millisecond, time.Second)
			if down {
				d = between(r, 100*time.Millisecond, 800*time.Millisecond)
			}
			select {
			case <-stop:
				e.recv.setDown(false)
				return
			case <-time.After(d):
			}
			down = !down
			if down {
				mu.Lock()
				outages++
				mu.Unlock()
			}
			e.recv.setDown(down)
		}
	})

	kills := 8 + rng.IntN(8)
	started := time.Now()
	for i := range kills {
		cmd := exec.Command(bin, "run", "--config", e.config)
		cmd.Env = os.Environ()
		var out syncBuffer
		cmd.Stdout, cmd.Stderr = &out, &out
		require.NoError(t, cmd.Start())
		life := between(rng, 200*time.Millisecond, 1500*time.Millisecond)
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		select {
		case err := <-exited:
			close(stop)
			wg.Wait()
			t.Fatalf("kill %d: the daemon exited on its own before its %s: %v\n%s", i+1, life, err, out.String())
		case <-time.After(life):
		}
		require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
		killedBySIGKILL(t, <-exited, out.String())
	}
	close(stop)
	wg.Wait()
	require.NoError(t, patchErr)
	mu.Lock()
	finalLow := slices.Clone(low)
	nFlips, nOutages := flips, outages
	mu.Unlock()
	chaos := time.Since(started)

	// A clean run polls the last state and delivers everything owed.
	cmd, out = e.start(t)
	require.NoError(t, cmd.Wait(), out.String())
	got := e.recv.takeEvents()
	// Nothing is left to deliver or generate.
	cmd, out = e.start(t)
	require.NoError(t, cmd.Wait(), out.String())
	require.Empty(t, e.recv.take())

	rep := checkOrder(t, got)
	lost := requireAllHistoryReceived(t, e.openStore(), "card_low_flow", iccids, rep)
	for i, c := range cards {
		var ours []event.Event
		for _, evs := range rep.byAlert {
			if evs[0].ICCID == e.iccids[c] && evs[0].Rule == "card_low_flow" {
				ours = evs
			}
		}
		slices.SortFunc(ours, func(a, b event.Event) int { return int(a.Seq) - int(b.Seq) })
		switch {
		case finalLow[i]:
			require.NotEmpty(t, ours, "card %d is left low: its alert fires", c)
			require.Equal(t, event.KindFiring, ours[len(ours)-1].Kind, "card %d is left low; events %v", c, kinds(ours))
		case len(ours) > 0:
			require.Equal(t, event.KindResolved, ours[len(ours)-1].Kind, "card %d is left fine; events %v", c, kinds(ours))
		}
	}
	for k := range rep.byAlert {
		require.Contains(t, k, "card_low_flow", "only the flipped cards alert")
	}
	require.Zero(t, rep.inversions, "inversions")
	require.Zero(t, rep.collisions, "an alert's seq carried by two events")
	require.Zero(t, rep.gaps, "gaps")
	require.Zero(t, lost, "lost")
	t.Logf("kills %d over %s, flips %d, receiver outages %d; events received %d, distinct %d, duplicates %d (after a later event of their alert: %d), alerts %d, inversions %d, lost %d",
		kills, chaos.Round(time.Millisecond), nFlips, nOutages, rep.received, rep.distinct, rep.duplicates, rep.late, len(rep.byAlert), rep.inversions, lost)
}

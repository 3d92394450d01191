package app_test

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/cluster/clustertest"
	"github.com/simwatch/simwatch/internal/event"
	"github.com/simwatch/simwatch/internal/store"
)

// hostileFlipper flips cards between low and fine flow at random until stopped.
type hostileFlipper struct {
	mu   sync.Mutex
	low  []bool
	stop chan struct{}
	wg   sync.WaitGroup
}

func startFlipper(ce *clusterEnv, iccids []string) *hostileFlipper {
	f := &hostileFlipper{low: make([]bool, len(iccids)), stop: make(chan struct{})}
	f.wg.Go(func() {
		r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 2))
		for {
			select {
			case <-f.stop:
				return
			case <-time.After(time.Duration(30+r.IntN(270)) * time.Millisecond):
			}
			i := r.IntN(len(iccids))
			f.mu.Lock()
			p := lowFlow
			if f.low[i] {
				p = fineFlow
			}
			if err := ce.sim.Fleet().PatchCard(iccids[i], p); err == nil {
				f.low[i] = !f.low[i]
			}
			f.mu.Unlock()
		}
	})
	return f
}

func (f *hostileFlipper) finish() []bool {
	close(f.stop)
	f.wg.Wait()
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.low)
}

// waitSettled collects receiver events until every card's last event is its final state.
func waitSettled(t *testing.T, ce *clusterEnv, cards []int, finalLow []bool, within time.Duration) []event.Event {
	t.Helper()
	var got []event.Event
	deadline := time.Now().Add(within)
	for {
		got = append(got, ce.recv.takeEvents()...)
		var trans []event.Event // acknowledgements do not change an alert's state
		for _, ev := range got {
			if ev.Kind == event.KindFiring || ev.Kind == event.KindResolved {
				trans = append(trans, ev)
			}
		}
		if settled(trans, ce.iccids, cards, finalLow) {
			break
		}
		if time.Now().After(deadline) {
			var logs strings.Builder
			for _, m := range ce.members {
				if m.out != nil {
					fmt.Fprintf(&logs, "--- %s\n%s\n", m.name, tail(m.out.String(), 4000))
				}
			}
			t.Fatalf("the receiver never saw every card's final state; got %d events\n%s", len(got), logs.String())
		}
		time.Sleep(100 * time.Millisecond) // polling the receiver
	}
	time.Sleep(2 * time.Second) // let anything still owed arrive
	return append(got, ce.recv.takeEvents()...)
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func kill(t *testing.T, m *member) {
	t.Helper()
	require.NoError(t, m.cmd.Process.Signal(syscall.SIGKILL))
	killedBySIGKILL(t, <-m.exited, m.out.String())
}

// historyOf returns every event id → seq of these cards under rule in the member's store.
func historyOf(t *testing.T, m *member, rule string, iccids []string, rep *orderReport) map[string]uint64 {
	t.Helper()
	st, err := store.Open(filepath.Join(m.data, "simwatch.db"))
	require.NoError(t, err)
	defer st.Close()
	if rep != nil {
		require.Zero(t, requireAllHistoryReceived(t, st, rule, iccids, *rep), "%s's history: lost", m.name)
	}
	h := map[string]uint64{}
	for _, icc := range iccids {
		evs, err := st.Events(store.EventFilter{ICCID: icc, Rule: rule, Limit: 100000})
		require.NoError(t, err)
		for _, ev := range evs {
			h[ev.ID] = ev.Seq
		}
	}
	return h
}

// Attack 1 + 5: the lease holder is killed, then the new holder too, while
// the receiver goes down and up; then the first victim comes back on its old
// data_dir. Nothing lost, nothing twice, each alert in order; every member
// holds the same history.
func TestHostileClusterDoubleKillFlappingReceiverAndStaleRestart(t *testing.T) {
	const ttl = 3 * time.Second
	srvs := clustertest.Start(t, 3)
	ce := newClusterEnv(t, 3, clustertest.URLs(srvs), fmt.Sprintf("cluster: {enabled: true, lease_ttl: %s}\n", ttl))
	for _, m := range ce.members {
		m.start(t)
	}
	first, _ := ce.waitHolder(t, "hw", nil, 30*time.Second)
	cards := []int{20, 22, 23, 25, 26, 28}
	var iccids []string
	for _, c := range cards {
		iccids = append(iccids, ce.iccids[c])
	}
	f := startFlipper(ce, iccids)
	stopFlap := make(chan struct{})
	var fwg sync.WaitGroup
	fwg.Go(func() {
		r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 3))
		down := false
		for {
			select {
			case <-stopFlap:
				ce.recv.setDown(false)
				return
			case <-time.After(time.Duration(100+r.IntN(600)) * time.Millisecond):
			}
			down = !down
			ce.recv.setDown(down)
		}
	})

	time.Sleep(2 * time.Second)
	killed := time.Now()
	kill(t, first)
	second, since := ce.waitHolder(t, "hw", first, 3*ttl)
	t.Logf("%s killed; %s took over after %s", first.name, second.name, since.Sub(killed).Round(time.Millisecond))
	require.LessOrEqual(t, since.Sub(killed), ttl, "takeover within the lease TTL")

	time.Sleep(1500 * time.Millisecond)
	killed = time.Now()
	kill(t, second)
	third, since := ce.waitHolder(t, "hw", second, 3*ttl)
	t.Logf("%s killed; %s took over after %s", second.name, third.name, since.Sub(killed).Round(time.Millisecond))
	require.LessOrEqual(t, since.Sub(killed), ttl, "second takeover within the lease TTL")

	time.Sleep(1500 * time.Millisecond)
	// The first victim comes back on its old data_dir, far behind.
	first.start(t)
	time.Sleep(3 * time.Second)
	finalLow := f.finish()
	close(stopFlap)
	fwg.Wait()

	got := waitSettled(t, ce, cards, finalLow, 60*time.Second)
	rep := checkOrder(t, got)
	first.stop(t)
	third.stop(t)
	hFirst := historyOf(t, first, "card_low_flow", iccids, &rep)
	hThird := historyOf(t, third, "card_low_flow", iccids, &rep)
	hSecond := historyOf(t, second, "card_low_flow", iccids, nil)
	require.Equal(t, hThird, hFirst, "the restarted member caught up to the same history")
	for id, seq := range hSecond {
		require.Equal(t, seq, hThird[id], "a killed member's event %s has the survivors' seq", id)
	}
	t.Logf("received %d distinct %d duplicates %d alerts %d", rep.received, rep.distinct, rep.duplicates, len(rep.byAlert))
	require.Zero(t, rep.inversions, "inversions")
	require.Zero(t, rep.collisions, "collisions")
	require.Zero(t, rep.gaps, "gaps")
	require.Zero(t, rep.duplicates, "each event delivered once")
}

// alertsOn reads a member's /api/v1/alerts?rule=rule.
func alertsOn(t *testing.T, m *member, rule, state string) []map[string]any {
	t.Helper()
	q := url.Values{"rule": {rule}}
	if state != "" {
		q.Set("state", state)
	}
	resp, err := http.Get("http://" + m.http + "/api/v1/alerts?" + q.Encode())
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var a struct {
		Alerts []map[string]any `json:"alerts"`
	}
	if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&a) != nil {
		return nil
	}
	return a.Alerts
}

// seqCheck: per alert, distinct events carry distinct seqs 1..N, arriving in increasing seq.
func seqCheck(t *testing.T, got []event.Event) (collisions, inversions, gaps, dups int) {
	t.Helper()
	ids := map[string]bool{}
	last := map[string]uint64{}
	seqID := map[string]string{}
	byAlert := map[string][]uint64{}
	for _, ev := range got {
		k := ev.AlertKey()
		if ids[ev.ID] {
			dups++
			continue
		}
		ids[ev.ID] = true
		sk := fmt.Sprintf("%s#%d", k, ev.Seq)
		if o, ok := seqID[sk]; ok {
			collisions++
			t.Errorf("alert %q seq %d: two events %s and %s (%s)", showKey(k), ev.Seq, o, ev.ID, ev.Kind)
		}
		seqID[sk] = ev.ID
		if ev.Seq <= last[k] {
			inversions++
			t.Errorf("alert %q: %s seq %d after seq %d", showKey(k), ev.Kind, ev.Seq, last[k])
		}
		last[k] = max(last[k], ev.Seq)
		byAlert[k] = append(byAlert[k], ev.Seq)
	}
	for k, s := range byAlert {
		s = slices.Clone(s)
		slices.Sort(s)
		for i, v := range s {
			if v != uint64(i+1) {
				gaps++
				t.Errorf("alert %q: seqs %v not 1..N", showKey(k), s)
				break
			}
		}
	}
	return
}

// Attack 3: acks posted on standbys while the holder keeps generating
// transitions for the same alerts: each ack takes its own seq; nothing collides.
func TestHostileClusterAckOnStandbyDuringTransitions(t *testing.T) {
	const ttl = 3 * time.Second
	srvs := clustertest.Start(t, 3)
	ce := newClusterEnv(t, 3, clustertest.URLs(srvs), fmt.Sprintf("cluster: {enabled: true, lease_ttl: %s}\n", ttl))
	for _, m := range ce.members {
		m.start(t)
	}
	holder, _ := ce.waitHolder(t, "hw", nil, 30*time.Second)
	var standbys []*member
	for _, m := range ce.members {
		if m != holder {
			standbys = append(standbys, m)
		}
	}
	cards := []int{20, 22, 23, 25}
	var iccids []string
	for _, c := range cards {
		iccids = append(iccids, ce.iccids[c])
		require.NoError(t, ce.sim.Fleet().PatchCard(ce.iccids[c], lowFlow))
	}
	f := startFlipper(ce, iccids)
	// Mark the flipper's view: every card starts low.
	f.mu.Lock()
	for i := range f.low {
		f.low[i] = true
	}
	f.mu.Unlock()

	acks, ackErrs := 0, map[int]int{}
	deadline := time.Now().Add(8 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		m := standbys[i%len(standbys)]
		for _, a := range alertsOn(t, m, "card_low_flow", "firing") {
			key, _ := a["key"].(string)
			body, _ := json.Marshal(map[string]string{"alert": key, "comment": fmt.Sprintf("on it %d", i)})
			resp, err := http.Post("http://"+m.http+"/api/v1/alerts/ack", "application/json", strings.NewReader(string(body)))
			if err != nil {
				continue
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode/100 == 2 {
				acks++
			} else {
				ackErrs[resp.StatusCode]++
				if resp.StatusCode >= 500 {
					t.Errorf("ack on standby %s: %d %s", m.name, resp.StatusCode, b)
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	finalLow := f.finish()
	t.Logf("acks accepted %d, refused %v", acks, ackErrs)
	require.NotZero(t, acks, "some acks on a standby were accepted")

	got := waitSettled(t, ce, cards, finalLow, 60*time.Second)
	nAck := 0
	for _, ev := range got {
		if ev.Kind != event.KindFiring && ev.Kind != event.KindResolved {
			nAck++
		}
	}
	c, inv, gaps, dups := seqCheck(t, got)
	t.Logf("received %d events, %d acknowledgements", len(got), nAck)
	require.NotZero(t, nAck, "acknowledgements reached the receiver")
	require.Zero(t, c, "collisions")
	require.Zero(t, inv, "inversions")
	require.Zero(t, gaps, "gaps")
	require.Zero(t, dups, "duplicates")
	var hs []map[string]uint64
	for _, m := range ce.members {
		m.stop(t)
		hs = append(hs, historyOf(t, m, "card_low_flow", iccids, nil))
	}
	require.Equal(t, hs[0], hs[1])
	require.Equal(t, hs[1], hs[2])
}

// Attack 2: a rule with for: the holder is killed while the alert is
// pending; the new holder fires it once, on the original timer.
func TestHostileClusterPendingForSurvivesKill(t *testing.T) {
	const ttl = 3 * time.Second
	const hold = 6 * time.Second
	srvs := clustertest.Start(t, 3)
	ce := newClusterEnv(t, 3, clustertest.URLs(srvs), fmt.Sprintf("cluster: {enabled: true, lease_ttl: %s}\n", ttl))
	rulesPath := filepath.Join(filepath.Dir(ce.config), "rules.yaml")
	raw, err := os.ReadFile(rulesPath)
	require.NoError(t, err)
	raw = append(raw, []byte(fmt.Sprintf("  - name: card_low_for\n    on: card\n    when: status == \"active\" && flow_left < 10\n    for: %s\n    repeat: 24h\n", hold))...)
	require.NoError(t, os.WriteFile(rulesPath, raw, 0o644))
	for _, m := range ce.members {
		m.start(t)
	}
	holder, _ := ce.waitHolder(t, "hw", nil, 30*time.Second)
	var standby *member
	for _, m := range ce.members {
		if m != holder {
			standby = m
			break
		}
	}
	require.NoError(t, ce.sim.Fleet().PatchCard(ce.iccids[20], lowFlow))
	// Wait for the standby to see it pending (replicated).
	var activeAt time.Time
	deadline := time.Now().Add(10 * time.Second)
	for activeAt.IsZero() {
		require.True(t, time.Now().Before(deadline), "standby never saw the alert pending\n%s", holder.out.String())
		for _, a := range alertsOn(t, standby, "card_low_for", "pending") {
			if a["iccid"] == ce.iccids[20] {
				activeAt, err = time.Parse(time.RFC3339Nano, a["active_at"].(string))
				require.NoError(t, err)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("standby %s sees pending since %s", standby.name, activeAt.Format(time.StampMilli))
	kill(t, holder)
	killedAt := time.Now()
	_, since := ce.waitHolder(t, "hw", holder, 3*ttl)
	t.Logf("takeover %s after kill (%s after active)", since.Sub(killedAt).Round(time.Millisecond), since.Sub(activeAt).Round(time.Millisecond))

	var fires []event.Event
	deadline = time.Now().Add(25 * time.Second)
	var firstSeen time.Time
	for time.Now().Before(deadline) {
		for _, ev := range ce.recv.takeEvents() {
			if ev.Rule == "card_low_for" {
				fires = append(fires, ev)
				if firstSeen.IsZero() {
					firstSeen = time.Now()
				}
			}
		}
		if !firstSeen.IsZero() && time.Since(firstSeen) > 3*time.Second {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	require.Len(t, fires, 1, "the pending alert fires once: %+v", fires)
	ev := fires[0]
	require.Equal(t, event.KindFiring, ev.Kind)
	require.Equal(t, uint64(1), ev.Seq)
	late := ev.ObservedAt.Sub(activeAt)
	t.Logf("fired %s after active (for: %s); starts_at %s", late.Round(time.Millisecond), hold, ev.StartsAt.Format(time.StampMilli))
	require.GreaterOrEqual(t, late, hold, "not fired before its for")
	// Takeover ≤ ttl after kill, kill right after pending: a restarted timer
	// would fire at ≥ takeover+hold.
	require.Less(t, late, hold+1500*time.Millisecond, "fired on the original timer, not a restarted one")
}

// Attack 6: garbage on the state subject: members neither crash nor stop
// replicating; the holder keeps committing and standbys match.
func TestHostileClusterGarbageOnStateSubject(t *testing.T) {
	const ttl = 3 * time.Second
	srvs := clustertest.Start(t, 3)
	ce := newClusterEnv(t, 3, clustertest.URLs(srvs), fmt.Sprintf("cluster: {enabled: true, lease_ttl: %s}\n", ttl))
	for _, m := range ce.members {
		m.start(t)
	}
	first, _ := ce.waitHolder(t, "hw", nil, 30*time.Second)
	nc, err := nats.Connect(clustertest.URLs(srvs))
	require.NoError(t, err)
	defer nc.Close()
	cards := []int{20, 22, 23}
	var iccids []string
	for _, c := range cards {
		iccids = append(iccids, ce.iccids[c])
	}
	f := startFlipper(ce, iccids)
	subj := "simwatch.simwatch.state.p.hw"
	garbage := []*nats.Msg{
		{Subject: subj, Data: []byte("hello")},
		{Subject: subj, Data: []byte{0xff, 0x00, 0x01}, Header: nats.Header{"Simwatch-Delta": {"x"}, "Simwatch-Part": {"1/1"}}},
		{Subject: subj, Data: []byte("zz"), Header: nats.Header{"Simwatch-Delta": {"y"}, "Simwatch-Part": {"1/3"}}},
		{Subject: subj, Data: []byte("zz"), Header: nats.Header{"Simwatch-Delta": {"z"}, "Simwatch-Part": {"2/3"}}},
		{Subject: subj, Data: []byte("zz"), Header: nats.Header{"Simwatch-Delta": {"w"}, "Simwatch-Part": {"0/0"}}},
		{Subject: subj, Data: []byte("zz"), Header: nats.Header{"Simwatch-Delta": {"v"}, "Simwatch-Part": {"1/999999999999999999999"}}},
		{Subject: "simwatch.simwatch.state.g.silences", Data: []byte("{}"), Header: nats.Header{"Simwatch-Delta": {"s"}, "Simwatch-Part": {"1/1"}}},
		{Subject: "simwatch.simwatch.state.p.other", Data: []byte("x"), Header: nats.Header{"Simwatch-Delta": {"o"}, "Simwatch-Part": {"1/1"}}},
	}
	js, err := nc.JetStream()
	require.NoError(t, err)
	for round := 0; round < 6; round++ {
		for _, g := range garbage {
			_, err := js.PublishMsg(g)
			require.NoError(t, err)
		}
		// An incomplete partial left dangling right before the holder's commits.
		_, err := js.PublishMsg(&nats.Msg{Subject: subj, Data: []byte("zz"), Header: nats.Header{"Simwatch-Delta": {fmt.Sprint("dangle", round)}, "Simwatch-Part": {"1/2"}}})
		require.NoError(t, err)
		time.Sleep(700 * time.Millisecond)
	}
	finalLow := f.finish()
	got := waitSettled(t, ce, cards, finalLow, 40*time.Second)
	rep := checkOrder(t, got)
	for _, m := range ce.members {
		require.False(t, m.done.Load(), "%s died\n%s", m.name, tail(m.out.String(), 3000))
	}
	var hs []map[string]uint64
	for _, m := range ce.members {
		m.stop(t)
		hs = append(hs, historyOf(t, m, "card_low_flow", iccids, &rep))
	}
	require.Equal(t, hs[0], hs[1])
	require.Equal(t, hs[1], hs[2])
	require.Zero(t, rep.duplicates+rep.inversions+rep.collisions+rep.gaps)
	t.Logf("holder %s; received %d", first.name, rep.received)
	for _, m := range ce.members {
		require.NotContains(t, m.out.String(), "e2e-sk", "secret in %s's log", m.name)
		require.NotContains(t, m.out.String(), hookSecret, "secret in %s's log", m.name)
	}
}

// Attack 4: silences made on one watcher's API, the card going low right
// after: whichever watcher delivers, the event is muted.
func TestHostileClusterSilenceOnOneMutesEverywhere(t *testing.T) {
	const ttl = 3 * time.Second
	srvs := clustertest.Start(t, 3)
	ce := newClusterEnv(t, 3, clustertest.URLs(srvs), fmt.Sprintf("cluster: {enabled: true, lease_ttl: %s}\n", ttl))
	for _, m := range ce.members {
		m.start(t)
	}
	holder, _ := ce.waitHolder(t, "hw", nil, 30*time.Second)
	for _, m := range ce.members {
		deadline := time.Now().Add(20 * time.Second)
		for m.status() == nil {
			require.True(t, time.Now().Before(deadline), "%s never answered", m.name)
			time.Sleep(25 * time.Millisecond)
		}
	}
	silenced := []int{20, 22, 23, 25, 26}
	for i, c := range silenced {
		m := ce.members[i%len(ce.members)] // holder and standbys alike
		body, _ := json.Marshal(map[string]string{"match": fmt.Sprintf("iccid == %q", ce.iccids[c]), "for": "1h", "comment": "maintenance"})
		resp, err := http.Post("http://"+m.http+"/api/v1/silences", "application/json", strings.NewReader(string(body)))
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, 200, resp.StatusCode, "silence on %s: %s", m.name, b)
		require.NoError(t, ce.sim.Fleet().PatchCard(ce.iccids[c], lowFlow))
	}
	control := ce.iccids[28]
	require.NoError(t, ce.sim.Fleet().PatchCard(control, lowFlow))
	var got []event.Event
	deadline := time.Now().Add(20 * time.Second)
	var seenControl time.Time
	for time.Now().Before(deadline) {
		for _, ev := range ce.recv.takeEvents() {
			got = append(got, ev)
			if ev.ICCID == control && seenControl.IsZero() {
				seenControl = time.Now()
			}
		}
		if !seenControl.IsZero() && time.Since(seenControl) > 3*time.Second {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	require.False(t, seenControl.IsZero(), "the unsilenced control card's alert arrived")
	for _, ev := range got {
		for _, c := range silenced {
			require.NotEqual(t, ce.iccids[c], ev.ICCID, "silenced card's %s %s delivered (holder %s)", ev.Kind, ev.Rule, holder.name)
		}
	}
	// Every member lists every silence.
	for _, m := range ce.members {
		resp, err := http.Get("http://" + m.http + "/api/v1/silences")
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, len(silenced), strings.Count(string(b), "maintenance"), "%s's silences: %s", m.name, b)
	}
}

// dumpHistories logs, per card, each member's recorded events and the receiver's.
func dumpHistories(t *testing.T, ce *clusterEnv, iccids []string, got []event.Event) {
	t.Helper()
	for _, icc := range iccids {
		var b strings.Builder
		fmt.Fprintf(&b, "card %s\n  receiver:", icc)
		for _, ev := range got {
			if ev.ICCID == icc && ev.Rule == "card_low_flow" {
				fmt.Fprintf(&b, " %d:%s:%s:%s", ev.Seq, ev.Kind[:3], ev.ID[:6], ev.StartsAt.Format("05.000"))
			}
		}
		for _, m := range ce.members {
			st, err := store.Open(filepath.Join(m.data, "simwatch.db"))
			require.NoError(t, err)
			evs, err := st.Events(store.EventFilter{ICCID: icc, Rule: "card_low_flow", Limit: 100000})
			require.NoError(t, err)
			slices.SortFunc(evs, func(a, b event.Event) int { return int(a.Seq) - int(b.Seq) })
			fmt.Fprintf(&b, "\n  %s:", m.name)
			for _, ev := range evs {
				fmt.Fprintf(&b, " %d:%s:%s:%s", ev.Seq, ev.Kind[:3], ev.ID[:6], ev.StartsAt.Format("05.000"))
			}
			require.NoError(t, st.Close())
		}
		t.Log(b.String())
	}
}

// Secrets: NATS credentials in the URL never show in logs, errors or the API,
// even while NATS nodes go away and connections fail.
func TestHostileClusterNATSCredentialsNeverShown(t *testing.T) {
	const pw = "natsPassw0rdXYZ"
	srvs := clustertest.Start(t, 3)
	var urls []string
	for _, u := range strings.Split(clustertest.URLs(srvs), ",") {
		urls = append(urls, strings.Replace(u, "nats://", "nats://simuser:"+pw+"@", 1))
	}
	ce := newClusterEnv(t, 2, strings.Join(urls, ","), "cluster: {enabled: true, lease_ttl: 3s}\nlog: {level: debug}\n")
	for _, m := range ce.members {
		m.start(t)
	}
	holder, _ := ce.waitHolder(t, "hw", nil, 30*time.Second)
	require.NoError(t, ce.sim.Fleet().PatchCard(ce.iccids[20], lowFlow))
	srvs[0].Shutdown()
	srvs[1].Shutdown()
	time.Sleep(3 * time.Second)
	var pages strings.Builder
	for _, m := range ce.members {
		for _, p := range []string{"/api/v1/cluster", "/metrics", "/cluster", "/readyz", "/healthz", "/api/v1/status"} {
			if resp, err := http.Get("http://" + m.http + p); err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				fmt.Fprintf(&pages, "%s %s %d: %s\n", m.name, p, resp.StatusCode, b)
			}
		}
	}
	srvs[0] = clustertest.Restart(t, srvs[0])
	srvs[1] = clustertest.Restart(t, srvs[1])
	time.Sleep(2 * time.Second)
	for _, m := range ce.members {
		require.False(t, m.done.Load(), "%s exited on its own\n%s", m.name, tail(m.out.String(), 5000))
		m.stop(t)
		require.NotContains(t, m.out.String(), pw, "%s's log shows the NATS password", m.name)
	}
	require.NotContains(t, pages.String(), pw, "an HTTP page shows the NATS password")
	t.Logf("holder %s; log bytes %d, pages bytes %d", holder.name, len(ce.members[0].out.String()), pages.Len())
}

package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/simwatch/simwatch/internal/bus"
	"github.com/simwatch/simwatch/internal/outbox"
	"github.com/simwatch/simwatch/internal/poll"
	"github.com/simwatch/simwatch/internal/provider/gsl"
	"github.com/simwatch/simwatch/internal/rules"
	"github.com/simwatch/simwatch/internal/sim"
	"github.com/simwatch/simwatch/internal/store"
)

// benchStages is `watcher bench --stages`: the real pipeline in one process
// against the simulator on loopback, for profiling: per stage wall time, and
// per cycle CPU time, allocations, peak RSS and the store's size, for a cold
// cycle and steady cycles; and, in the same run, a baseline that only
// fetches and decodes the pages with encoding/json. The simulator shares the
// process, so its figures are not the targets' (see benchOut).
func benchStages(ctx context.Context, o benchOpts, stdout io.Writer) error {
	fleet := sim.NewFleet(sim.FleetOptions{Cards: o.cards, Pools: o.pools, Seed: o.seed})
	srv := sim.NewServer(sim.Options{Fleet: fleet})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	defer hs.Close()
	endpoint := "http://" + ln.Addr().String()
	dir, err := os.MkdirTemp("", "simwatch-bench-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	fmt.Fprintf(stdout, "simwatch bench: %d cards, %d pools, %d rules, %.2g%% changed; GOMAXPROCS=%d\n\n", o.cards, o.pools, o.rules, o.changed, runtime.GOMAXPROCS(0))
	// The baseline is the median of three runs: on two shared cores a single
	// run varies by a fifth.
	var bases []sample
	for range 3 {
		b, err := measure(func() (map[string]time.Duration, error) { return baseline(ctx, endpoint, o.cards) })
		if err != nil {
			return err
		}
		bases = append(bases, b)
	}
	sort.Slice(bases, func(i, j int) bool { return bases[i].wall < bases[j].wall })
	base := bases[1]
	set, err := rules.Parse("bench.yaml", []byte(benchRules(o.rules)), rules.LoadOptions{})
	if err != nil {
		return err
	}
	client, err := gsl.New(gsl.Options{Name: "hw", Endpoint: endpoint, Token: "t", PageSize: 500, Rate: 1e6, Concurrency: 4})
	if err != nil {
		return err
	}
	st, err := store.Open(filepath.Join(dir, "simwatch.db"))
	if err != nil {
		return err
	}
	defer st.Close()
	b, err := bus.Open(ctx, bus.Options{DataDir: dir})
	if err != nil {
		return err
	}
	defer b.Close()
	relay := outbox.New(st, b, 0, nil)
	p := poll.New(poll.Options{Provider: "hw", Source: client, Store: st, Rules: func() *rules.Set { return set }, ClockEvery: time.Hour})
	cycle := func() (map[string]time.Duration, error) {
		decode0 := client.DecodeTime()
		res, err := p.Cycle(ctx)
		if err != nil {
			return nil, err
		}
		t := time.Now()
		if _, err := relay.Drain(ctx); err != nil {
			return nil, err
		}
		return map[string]time.Duration{"fetch+decode": res.Fetch, "decode (summed over pages)": client.DecodeTime() - decode0, "diff": res.Diff, "rules (reads + evaluate)": res.Eval,
			"commit (writes)": res.Commit, "publish": time.Since(t), "events": time.Duration(res.Events)}, nil
	}
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
	}
	cold, err := measure(cycle)
	if o.cpuProfile != "" {
		pprof.StopCPUProfile()
	}
	if err != nil {
		return err
	}
	var steady []sample
	iccids := fleet.CardICCIDs()
	n := int(float64(o.cards) * o.changed / 100)
	for round := 1; round <= o.cycles; round++ {
		for i := range n {
			used := float64(round)
			_ = fleet.PatchCard(iccids[(i*7919+round*104729)%len(iccids)], sim.CardPatch{FlowUsed: &used})
		}
		s, err := measure(cycle)
		if err != nil {
			return err
		}
		steady = append(steady, s)
	}
	report(stdout, base, cold, steady, st.Size(), o.cards)
	if o.latency > 0 {
		return benchLatency(ctx, stdout, fleet, endpoint, dir, o.latency)
	}
	return nil
}

// sample is one measured run: stage wall times and process-wide costs.
type sample struct {
	stages map[string]time.Duration
	wall   time.Duration
	cpu    time.Duration
	allocs uint64
	bytes  uint64
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func measure(f func() (map[string]time.Duration, error)) (sample, error) {
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	c0, t0 := cpuTime(), time.Now()
	stages, err := f()
	s := sample{stages: stages, wall: time.Since(t0), cpu: cpuTime() - c0}
	runtime.ReadMemStats(&m1)
	s.allocs, s.bytes = m1.Mallocs-m0.Mallocs, m1.TotalAlloc-m0.TotalAlloc
	return s, err
}

// peakRSS is the process's high-water resident set, from /proc.
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

func report(w io.Writer, base, cold sample, steady []sample, storeSize int64, cards int) {
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }
	fmt.Fprintf(w, "baseline (fetch + encoding/json into a plain struct; median of 3): wall %s, cpu %s, %d allocs, %.1f MB allocated\n",
		ms(base.wall), ms(base.cpu), base.allocs, float64(base.bytes)/1e6)
	fmt.Fprintf(w, "           %-28s %s\n\n", "decode (summed over pages)", ms(base.stages["decode (summed over pages)"]))
	row := func(name string, s sample) {
		fmt.Fprintf(w, "%-8s wall %-10s (%.2f× baseline)  cpu %-10s  allocs %-9d  %.1f MB allocated  events %d\n",
			name, ms(s.wall), float64(s.wall)/float64(base.wall), ms(s.cpu), s.allocs, float64(s.bytes)/1e6, int(s.stages["events"]))
		keys := make([]string, 0, len(s.stages))
		for k := range s.stages {
			if k != "events" {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(w, "           %-28s %s\n", k, ms(s.stages[k]))
		}
	}
	row("cold", cold)
	for i, s := range steady {
		row(fmt.Sprintf("steady%d", i+1), s)
	}
	rss := peakRSS()
	fmt.Fprintf(w, "\npeak RSS %.1f MB (%.0f B per card); store %.1f MB (%.0f B per card)\n",
		float64(rss)/1e6, float64(rss)/float64(cards), float64(storeSize)/1e6, float64(storeSize)/float64(cards))
}

// baseline fetches every page with plain GETs, 4 at a time, and decodes each
// with encoding/json into a plain struct: the least any watcher must do.
func baseline(ctx context.Context, endpoint string, cards int) (map[string]time.Duration, error) {
	type plainCard struct {
		SimCardID      int64    `json:"sim_card_id"`
		AccountID      *string  `json:"account_id"`
		CID            *string  `json:"cid"`
		SimPoolID      *int64   `json:"sim_pool_id"`
		IMEI           *string  `json:"imei"`
		SimStatus      int      `json:"sim_status"`
		DeviceStatus   *int     `json:"device_status"`
		ActDate        *string  `json:"act_date"`
		ICCID          *string  `json:"iccid"`
		NetworkType    *string  `json:"network_type"`
		TagNames       *string  `json:"tag_names"`
		ExpireTime     *string  `json:"expire_time"`
		PricePlanName  *string  `json:"price_plan_name"`
		FlowLeft       *float64 `json:"flow_left"`
		FlowUsed       *float64 `json:"flow_used"`
		OperatorStatus *int     `json:"operator_status"`
		MSISDN         *string  `json:"msisdn"`
		IMSI           *string  `json:"imsi"`
	}
	pages := (cards + 499) / 500
	var wg sync.WaitGroup
	next := make(chan int)
	errs := make(chan error, pages)
	var decode time.Duration
	var mu sync.Mutex
	for range 4 {
		wg.Go(func() {
			for page := range next {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/v1/sim-cards?offset=%d&limit=500", endpoint, page), nil)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					errs <- err
					continue
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil {
					errs <- err
					continue
				}
				t := time.Now()
				var out struct {
					Count    int         `json:"count"`
					SimCards []plainCard `json:"sim_cards"`
				}
				if err := json.Unmarshal(body, &out); err != nil {
					errs <- err
				}
				mu.Lock()
				decode += time.Since(t)
				mu.Unlock()
			}
		})
	}
	for page := 1; page <= pages; page++ {
		next <- page
	}
	close(next)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	return map[string]time.Duration{"decode (summed over pages)": decode}, nil
}

// benchLatency measures, over n cycles, the time from the start of a poll
// cycle in which one card changed to a webhook receiver accepting its event,
// through the outbox, embedded NATS and the notifier. Grouping windows are
// off (0s): what is measured is the pipeline, not group_wait.
func benchLatency(ctx context.Context, w io.Writer, fleet *sim.Fleet, endpoint, dir string, n int) error {
	got := make(chan time.Time, 16)
	recv := &http.Server{Handler: http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		got <- time.Now()
	}), ReadHeaderTimeout: 10 * time.Second}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go func() { _ = recv.Serve(ln) }()
	defer recv.Close()
	cfgText := fmt.Sprintf(`data_dir: %q
rule_files: []
providers:
  - {name: lat, type: huawei-gsl, endpoint: %s, auth: {token: t}, page_size: 500, rate: 1000}
notifiers:
  - {name: hook, type: webhook, url: "http://%s/", backoff: 10ms, group_wait: 0s, group_interval: 0s}
`, filepath.Join(dir, "latency"), endpoint, ln.Addr())
	cfg, err := configFromText(cfgText)
	if err != nil {
		return err
	}
	set, err := rules.Parse("latency.yaml", []byte("rules:\n  - {name: flip, on: card, when: 'changed(\"flow_used\")'}\n"), rules.LoadOptions{})
	if err != nil {
		return err
	}
	wt, err := New(ctx, cfg, Options{Stdout: io.Discard, Logger: slog.New(slog.DiscardHandler), Rules: set})
	if err != nil {
		return err
	}
	defer wt.Close()
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { wt.relay.Run(rctx) })
	for _, d := range wt.dispatchers {
		wg.Go(func() { _ = d.Run(rctx) })
	}
	defer wg.Wait()
	defer cancel()
	p := wt.providers[0].poller
	if _, err := p.Cycle(ctx); err != nil { // first sight
		return err
	}
	iccid := fleet.CardICCIDs()[0]
	var lat []time.Duration
	for i := range n {
		used := float64(1000 + i)
		_ = fleet.PatchCard(iccid, sim.CardPatch{FlowUsed: &used})
		start := time.Now()
		if _, err := p.Cycle(ctx); err != nil {
			return err
		}
		select {
		case at := <-got:
			lat = append(lat, at.Sub(start))
		case <-time.After(30 * time.Second):
			return fmt.Errorf("latency: event %d never arrived", i)
		}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	fmt.Fprintf(w, "\npoll-to-webhook latency, one changed card, %d cycles: p50 %s, p99 %s, max %s\n", n,
		pct(0.50).Round(time.Microsecond), pct(0.99).Round(time.Microsecond), lat[len(lat)-1].Round(time.Microsecond))
	return nil
}

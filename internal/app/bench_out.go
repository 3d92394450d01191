package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"
)

// benchFigures is everything one out-of-process bench run measured; --json
// writes it as is.
type benchFigures struct {
	Date      string  `json:"date"`
	Command   string  `json:"command"`
	GoVersion string  `json:"go_version"`
	CPU       string  `json:"cpu"`
	NProc     int     `json:"nproc"`
	Cards     int     `json:"cards"`
	Pools     int     `json:"pools"`
	Rules     int     `json:"rules"`
	Changed   float64 `json:"changed_percent"`
	Notifier  string  `json:"notifier"`
	SimKeyed  bool    `json:"sim_checks_signatures"`
	SimNote   string  `json:"sim_note,omitempty"`

	SDK          []time.Duration `json:"sdk_listing_ns,omitempty"`
	Strict       []time.Duration `json:"strict_listing_ns,omitempty"`
	SDKMedian    time.Duration   `json:"sdk_listing_median_ns,omitempty"`
	StrictMedian time.Duration   `json:"strict_listing_median_ns,omitempty"`
	Baseline     time.Duration   `json:"baseline_ns,omitempty"` // the smaller median: ratios and verdicts use it

	Cold         *onceRun      `json:"cold,omitempty"`
	Steady       []onceRun     `json:"steady,omitempty"`
	SteadyMedian time.Duration `json:"steady_median_ns,omitempty"`
	Daemon       *daemonRun    `json:"daemon,omitempty"`
	DaemonMedian time.Duration `json:"daemon_steady_median_ns,omitempty"`
	Webhook      struct {
		Requests int64 `json:"requests"`
		Bytes    int64 `json:"bytes"`
	} `json:"webhook"`
	Failed  []string      `json:"failed,omitempty"` // runs that did not finish, and why
	Targets []benchTarget `json:"targets"`
}

// benchTarget is one row of the table: a figure against its target.
type benchTarget struct {
	Name     string  `json:"name"`
	Measured string  `json:"measured"`
	Ratio    float64 `json:"ratio,omitempty"`     // to the baseline
	RatioSDK float64 `json:"ratio_sdk,omitempty"` // to the SDK's listing
	Target   string  `json:"target"`
	Met      string  `json:"met"` // yes, no, stated, or not measured
}

// benchOut measures issue 13's targets with every part in its own process:
// the simulator (`watcher sim`, AK/SK checked), the baselines (the official
// SDK's listing, --sdk, and a strict in-process listing, median of 3 each),
// a cold `run --once` on an empty data_dir, o.cycles steady ones with
// o.changed% of the cards changed before each, and the daemon's steady
// cycles.
func benchOut(ctx context.Context, o benchOpts, argv []string, stdout, stderr io.Writer) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("bench: finding this binary: %w", err)
	}
	say := func(format string, args ...any) { fmt.Fprintf(stderr, "bench: "+format+"\n", args...) }
	f := &benchFigures{Date: time.Now().UTC().Format(time.RFC3339), Command: strings.Join(argv, " "),
		GoVersion: runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH, CPU: cpuModel(), NProc: runtime.NumCPU(),
		Cards: o.cards, Pools: o.pools, Rules: o.rules, Changed: o.changed, Notifier: o.notifier}

	say("starting the simulator: %d cards", o.cards)
	sim, err := startBenchSim(ctx, exe, o, true, stderr)
	if err != nil {
		return err
	}
	defer func() { // sim may be replaced below
		if sim != nil {
			sim.stop()
		}
	}()
	f.SimKeyed = true
	if o.baseline {
		err := benchBaselines(ctx, o, sim, f, say)
		var rejected *errSDKRejected
		if errors.As(err, &rejected) {
			// A simulator bug, not the SDK's: say so loudly, and measure
			// everything against a simulator that checks no signatures
			// (the clients still sign every request).
			f.SimNote = "the simulator rejected the official SDK's AK/SK signature, so every figure is measured against one that checks none (clients still sign): " + rejected.msg
			say("WARNING: %s", f.SimNote)
			sim.stop()
			if sim, err = startBenchSim(ctx, exe, o, false, stderr); err != nil {
				return err
			}
			f.SimKeyed, f.SDK, f.Strict = false, nil, nil
			err = benchBaselines(ctx, o, sim, f, say)
		}
		if err != nil {
			return err
		}
	}

	dir, err := os.MkdirTemp("", "simwatch-bench-*")
	if err != nil {
		return err
	}
	if o.keep {
		say("keeping %s", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	recv, err := startBenchReceiver()
	if err != nil {
		return err
	}
	defer recv.close()
	cfg, err := writeBenchConfig(dir, sim.endpoint, o, recv.addr)
	if err != nil {
		return err
	}
	benchWatcher(ctx, exe, cfg, sim, o, f, say)
	f.Webhook.Requests, f.Webhook.Bytes = recv.requests.Load(), recv.bytes.Load()

	benchVerdicts(f)
	printBench(stdout, f)
	if o.jsonOut != "" {
		if err := writeBenchJSON(o.jsonOut, f); err != nil {
			return err
		}
	}
	if len(f.Failed) > 0 {
		return fmt.Errorf("bench: %d run(s) did not finish: %s", len(f.Failed), strings.Join(f.Failed, "; "))
	}
	return nil
}

// benchBaselines measures the SDK's listing (when --sdk is given) and the
// strict in-process listing three times each, interleaved so that both see
// the same machine.
func benchBaselines(ctx context.Context, o benchOpts, sim *benchSim, f *benchFigures, say func(string, ...any)) error {
	for i := range 3 {
		if o.sdk != "" {
			d, n, err := runSDK(ctx, o.sdk, sim.endpoint)
			if err != nil {
				return err
			}
			if n != o.cards {
				return fmt.Errorf("bench: the SDK listed %d cards of %d", n, o.cards)
			}
			f.SDK = append(f.SDK, d)
			say("baseline %d: official SDK listing %s", i+1, d.Round(time.Millisecond))
		}
		d, n, err := strictListing(ctx, sim.endpoint, sim.keyed)
		if err != nil {
			return err
		}
		if n != o.cards {
			return fmt.Errorf("bench: the strict listing saw %d cards of %d", n, o.cards)
		}
		f.Strict = append(f.Strict, d)
		say("baseline %d: strict in-process listing %s", i+1, d.Round(time.Millisecond))
	}
	f.StrictMedian = median(f.Strict)
	f.Baseline = f.StrictMedian
	if len(f.SDK) > 0 {
		f.SDKMedian = median(f.SDK)
		f.Baseline = min(f.Baseline, f.SDKMedian)
	}
	return nil
}

// benchWatcher runs the watcher: cold run --once, steady ones, the daemon.
// A run that fails is recorded in f.Failed and ends the sequence.
func benchWatcher(ctx context.Context, exe, cfg string, sim *benchSim, o benchOpts, f *benchFigures, say func(string, ...any)) {
	say("cold run --once")
	cold, err := runOnceChild(ctx, exe, cfg, o)
	if err != nil {
		f.Failed = append(f.Failed, "cold run --once: "+err.Error())
		return
	}
	f.Cold = &cold
	say("cold run --once: %s, %d events, %d firing, peak RSS %s", cold.Wall.Round(time.Millisecond), cold.Cycle.Events, cold.Cycle.Firing, mb(cold.MaxRSS))
	var walls []time.Duration
	for i := range o.cycles {
		n, err := sim.churn(ctx, o.changed, i+1)
		if err != nil {
			f.Failed = append(f.Failed, err.Error())
			return
		}
		r, err := runOnceChild(ctx, exe, cfg, o)
		r.Churned = n
		if err != nil {
			f.Failed = append(f.Failed, fmt.Sprintf("steady run --once %d: %v", i+1, err))
			return
		}
		say("steady run --once %d: %s, %d changed (churned %d), %d events, peak RSS %s", i+1, r.Wall.Round(time.Millisecond), r.Cycle.Changed, n, r.Cycle.Events, mb(r.MaxRSS))
		f.Steady = append(f.Steady, r)
		walls = append(walls, r.Wall)
	}
	f.SteadyMedian = median(walls)
	if !o.daemon {
		return
	}
	say("daemon, interval %s", o.interval)
	d, err := runDaemonChild(ctx, exe, cfg, sim, o, say)
	if err != nil {
		f.Failed = append(f.Failed, "daemon: "+err.Error())
		return
	}
	f.Daemon = &d
	took := make([]time.Duration, len(d.Steady))
	for i, c := range d.Steady {
		took[i] = c.Took
	}
	f.DaemonMedian = median(took)
}

// cpuModel is the first "model name" of /proc/cpuinfo.
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

func mb(b int64) string { return fmt.Sprintf("%.1f MB", float64(b)/1e6) }

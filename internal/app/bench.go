package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// benchOpts are `watcher bench`'s flags.
type benchOpts struct {
	cards, pools, rules, cycles int
	changed                     float64
	seed                        uint64

	// Out of process (the default): the targets of issue 13.
	sdk      string        // a built bench/sdk binary; empty skips the SDK baseline
	jsonOut  string        // write the figures here as JSON
	baseline bool          // measure the baselines (SDK and in-process)
	daemon   bool          // measure the daemon's steady cycle
	interval time.Duration // the daemon's interval
	notifier string        // webhook or console
	timeout  time.Duration // the most one run --once may take
	keep     bool          // keep the data_dir (printed) for a look afterwards

	// In process (--stages): the old per-stage breakdown, for profiling.
	stages     bool
	latency    int
	cpuProfile string
}

// benchCmd measures the watcher the way users do. By default it runs the
// simulator and the watcher as separate processes (this binary, exec'd):
// the official SDK's listing and a strict in-process listing as baselines,
// then cold and steady `run --once`, then the daemon's steady cycles; see
// benchOut. With --stages it runs the old in-process breakdown instead.
func benchCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o benchOpts
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.cards, "cards", 200_000, "simulated cards")
	fs.IntVar(&o.pools, "pools", 100, "simulated pools")
	fs.IntVar(&o.rules, "rules", 50, "generated rules")
	fs.Float64Var(&o.changed, "changed", 1, "percent of cards changed before each steady run or cycle")
	fs.IntVar(&o.cycles, "cycles", 3, "steady runs (and daemon cycles) to measure")
	fs.Uint64Var(&o.seed, "seed", 1, "fleet seed")
	fs.StringVar(&o.sdk, "sdk", "", "the bench/sdk binary (make bench builds bin/sdk-list): list the fleet with Huawei's official Go SDK as the baseline")
	fs.StringVar(&o.jsonOut, "json", "", "also write the figures to this file as JSON")
	fs.BoolVar(&o.baseline, "baseline", true, "measure the listing baselines (false: report times only)")
	fs.BoolVar(&o.daemon, "daemon", true, "also measure the daemon's steady cycle")
	fs.DurationVar(&o.interval, "interval", 2*time.Second, "the daemon's poll interval while measured")
	fs.StringVar(&o.notifier, "notifier", "webhook", "where events go: webhook (a receiver the bench serves) or console")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Minute, "the most one run --once may take")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary data_dir and config")
	fs.BoolVar(&o.stages, "stages", false, "the in-process per-stage breakdown (simulator in the same process) instead, for profiling")
	fs.IntVar(&o.latency, "latency", 0, "with --stages: also measure poll-to-webhook latency over this many cycles of one changed card")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "with --stages: write a CPU profile of the cold cycle to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.cards < 1 || o.pools < 1 || o.rules < 1 || o.cycles < 1 || o.changed <= 0 || o.changed > 100 {
		return errors.New("bench: --cards, --pools, --rules and --cycles must be at least 1, and --changed more than 0 and at most 100")
	}
	if err := benchNotifier(o.notifier); err != nil {
		return fmt.Errorf("bench: --notifier %q: %w", o.notifier, err)
	}
	if o.stages {
		return benchStages(ctx, o, stdout)
	}
	if o.latency > 0 || o.cpuProfile != "" {
		return errors.New("bench: --latency and --cpuprofile measure in process: add --stages")
	}
	if o.sdk != "" {
		abs, err := filepath.Abs(o.sdk)
		if err != nil {
			return err
		}
		if _, err := os.Stat(abs); err != nil {
			return fmt.Errorf("bench: --sdk: %w (make bench builds it: cd bench/sdk && go build -o ../../bin/sdk-list .)", err)
		}
		o.sdk = abs
	}
	return benchOut(ctx, o, os.Args, stdout, stderr)
}

// benchNotifier checks --notifier for the command table.
func benchNotifier(v any) error {
	if s := v.(string); s != "webhook" && s != "console" {
		return errors.New("want webhook or console")
	}
	return nil
}

package app

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"time"

	"github.com/simwatch/simwatch"
	"github.com/simwatch/simwatch/internal/config"
	"github.com/simwatch/simwatch/internal/poll"
	"github.com/simwatch/simwatch/internal/rules"
	"github.com/simwatch/simwatch/internal/sim"
)

const (
	demoAK = "demo-access-key"
	demoSK = "demo-secret-key"
)

// demoCmd runs everything embedded: a simulated fleet at each provider (GSL
// and LinkCard) whose days pass in seconds, the watcher polling both over
// loopback with signed requests, embedded NATS, a temporary data directory and
// the console notifier.
func demoCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cards := fs.Int("cards", 200, "simulated cards")
	pools := fs.Int("pools", 4, "simulated pools")
	seed := fs.Uint64("seed", 1, "fleet seed")
	listen := fs.String("listen", "127.0.0.1:8080", "status API address")
	day := fs.Duration("day", 3*time.Second, "real time per simulated day")
	interval := fs.Duration("interval", time.Second, "poll interval")
	duration := fs.Duration("duration", 0, "stop after this long (0: run until Ctrl-C)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	dir, err := os.MkdirTemp("", "simwatch-demo-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	// One simulated account at each provider.
	fleets := map[string]*sim.Fleet{
		"hw":  sim.NewFleet(sim.FleetOptions{Cards: *cards, Pools: *pools, Seed: *seed}),
		"ali": sim.NewFleet(sim.FleetOptions{Cards: *cards / 2, Pools: max(*pools/2, 1), Seed: *seed + 1}),
	}
	keys := map[string]string{demoAK: demoSK}
	hwSrv := httptest.NewServer(sim.NewServer(sim.Options{Fleet: fleets["hw"], Keys: keys}).Handler())
	defer hwSrv.Close()
	aliSrv := httptest.NewServer(sim.NewServer(sim.Options{Fleet: fleets["ali"], Keys: keys}).Handler())
	defer aliSrv.Close()

	if ln, err := net.Listen("tcp", *listen); err != nil {
		fmt.Fprintf(stdout, "status API disabled: %v\n", err)
		*listen = ""
	} else {
		ln.Close()
	}
	// The watcher's clock runs at the simulation's pace, so that `for: 30m`
	// and `repeat: 24h` play out in seconds.
	realStart, simStart := time.Now(), sim.DefaultStart
	scale := float64(24*time.Hour) / float64(*day)
	now := func() time.Time { return simStart.Add(time.Duration(float64(time.Since(realStart)) * scale)) }

	set, err := rules.Parse("rules.example.yaml", simwatch.ExampleRules, rules.LoadOptions{Notifiers: []string{"console"}})
	if err != nil {
		return err
	}
	cfg := &config.Config{
		DataDir: dir,
		HTTP:    config.HTTP{Listen: *listen},
		Providers: []config.Provider{{
			Name: "hw", Type: config.TypeGSL, Endpoint: hwSrv.URL,
			Auth:     config.Auth{AK: demoAK, SK: demoSK},
			Interval: config.Duration(*interval), PageSize: 100, Rate: 50, Concurrency: 4,
			Timeout: config.Duration(10 * time.Second), Retries: 2, UnhealthyAfter: 3, ClockEvery: config.Duration(time.Hour),
		}, {
			Name: "ali", Type: config.TypeLinkCard, Endpoint: aliSrv.URL,
			Auth:     config.Auth{AccessKeyID: demoAK, AccessKeySecret: demoSK},
			Interval: config.Duration(*interval), PageSize: 40, Rate: 50, Concurrency: 4,
			Timeout: config.Duration(10 * time.Second), Retries: 2, UnhealthyAfter: 3, ClockEvery: config.Duration(time.Hour),
		}},
		Notifiers: []config.Notifier{{Name: "console", Type: config.NotifierConsole, MaxDeliver: 3, MaxEvents: 100,
			Backoff: config.Duration(100 * time.Millisecond), MaxBackoff: config.Duration(time.Second)}},
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	w, err := New(ctx, cfg, Options{
		Stdout: stdout, Logger: log, Now: now, Rules: set,
		OnCycle: func(provider string, res poll.Result, err error) {
			if err != nil {
				fmt.Fprintf(stdout, "cycle %s day %d: failed: %v\n", provider, fleets[provider].Day(), err)
				return
			}
			fmt.Fprintf(stdout, "cycle %s day %d: %d cards, %d pools, %d changed, %d events, %d firing (fetch %s, commit %s)\n",
				provider, fleets[provider].Day(), res.Cards, res.Pools, res.Changed, res.Events, res.Firing,
				res.Fetch.Round(time.Millisecond), res.Commit.Round(time.Millisecond))
		},
	})
	if err != nil {
		return err
	}
	defer w.Close()
	fmt.Fprintf(stdout, "simwatch demo: two simulated accounts, polled over loopback with signed requests:\n")
	fmt.Fprintf(stdout, "  hw   Huawei GSL         %d cards, %d pools at %s\n", *cards, *pools, hwSrv.URL)
	fmt.Fprintf(stdout, "  ali  Alibaba LinkCard   %d cards (pools derived from shared plans) at %s\n", *cards/2, aliSrv.URL)
	fmt.Fprintf(stdout, "A simulated day passes every %s; rules from rules.example.yaml; events print below. Ctrl-C to stop.\n", *day)
	if *listen != "" {
		fmt.Fprintf(stdout, "Console on http://%s/ (the JSON API under /api/v1, also /metrics, /healthz).\n\n", *listen)
	}
	for name, f := range fleets {
		go advanceEvery(ctx, f, *day, func(line string) { fmt.Fprintln(stdout, name+" "+line) })
	}
	return w.Run(ctx)
}

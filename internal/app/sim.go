package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"time"

	"github.com/simwatch/simwatch/internal/sim"
)

func simCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:9090", "address to serve on")
	cards := fs.Int("cards", 1000, "cards in the fleet")
	pools := fs.Int("pools", 5, "pools in the fleet")
	seed := fs.Uint64("seed", 1, "fleet seed")
	ak := fs.String("ak", "", "accepted access key (GSL AK or LinkCard AccessKeyId, with --sk); none means no auth")
	sk := fs.String("sk", "", "secret key for --ak")
	token := fs.String("token", "", "accepted static X-Auth-Token")
	day := fs.Duration("day", 0, "advance one simulated day this often (0: only via POST /_sim/advance)")
	maxRate := fs.Float64("max-rate", 0, "throttle API requests over this many per second, as the real gateways do (0: never)")
	retryAfter := fs.Duration("throttle-retry-after", 0, "send this Retry-After on throttled answers (0: none, as real gateways often do)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *maxRate < 0 || math.IsNaN(*maxRate) || math.IsInf(*maxRate, 0) || *retryAfter < 0 {
		return fmt.Errorf("sim: --max-rate and --throttle-retry-after must be finite and not negative")
	}
	o := sim.Options{Fleet: sim.NewFleet(sim.FleetOptions{Cards: *cards, Pools: *pools, Seed: *seed}),
		MaxRate: *maxRate, ThrottleRetryAfter: *retryAfter}
	if *ak != "" {
		o.Keys = map[string]string{*ak: *sk}
	}
	if *token != "" {
		o.Tokens = []string{*token}
	}
	s := sim.NewServer(o)
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stdout, "sim: serving %d cards and %d pools (GSL and LinkCard APIs) on http://%s\n", *cards, *pools, ln.Addr())
	if *day > 0 {
		go advanceEvery(ctx, s.Fleet(), *day, func(line string) { fmt.Fprintln(stdout, line) })
	}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// advanceEvery moves the simulated fleet on a day per period until ctx ends.
func advanceEvery(ctx context.Context, f *sim.Fleet, period time.Duration, say func(string)) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			for _, c := range f.Advance(1) {
				say(fmt.Sprintf("sim: day %d: %s", f.Day(), c))
			}
		}
	}
}

package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/simwatch/simwatch/internal/api"
	"github.com/simwatch/simwatch/internal/bus"
	"github.com/simwatch/simwatch/internal/crash"
	"github.com/simwatch/simwatch/internal/fleet"
	"github.com/simwatch/simwatch/internal/store"
)

func (w *Watcher) cycle(ctx context.Context, p *providerRun) error {
	start := time.Now()
	res, err := p.poller.Cycle(ctx)
	took := time.Since(start)
	if w.o.OnCycle != nil {
		w.o.OnCycle(p.name, res, err)
	}
	if err != nil {
		return err
	}
	w.observeCycle(p.name, res, took)
	w.log.Info("cycle", "provider", p.name, "cards", res.Cards, "pools", res.Pools, "changed", res.Changed,
		"events", res.Events, "firing", res.Firing, "fetch", res.Fetch.Round(time.Millisecond), "diff", res.Diff.Round(time.Millisecond),
		"evaluate", res.Eval.Round(time.Millisecond), "commit", res.Commit.Round(time.Millisecond),
		"took", took.Round(time.Millisecond))
	return nil
}

// RunOnce runs one full cycle of every provider, publishes the events and
// waits until every notifier has delivered or dead-lettered them, for at most
// timeout in all. It returns an error naming every provider that failed,
// every notifier that dead-lettered an event (with the reason), and, when
// the timeout ran out, what was still pending.
func (w *Watcher) RunOnce(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	deadBefore := make([]int64, len(w.dispatchers))
	for i, d := range w.dispatchers {
		deadBefore[i] = d.Stats.DeadLettered.Load()
	}
	var errs []error
	var committed []*providerRun
	for _, p := range w.providers {
		if err := w.cycle(ctx, p); err != nil {
			errs = append(errs, err)
		} else {
			committed = append(committed, p)
		}
	}
	if _, err := w.relay.Drain(ctx); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("--timeout %s reached while publishing: %w; %s", timeout, err, w.pendingReport())
		}
		return errors.Join(append(errs, err)...)
	}
	crash.Point(crash.AfterPublish)
	dctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { w.relay.Run(dctx) }) // actions announce what they did through the outbox
	wg.Go(func() { w.keepBus(dctx, time.Second) })
	for _, d := range w.dispatchers {
		d.SetOnce(true)
		wg.Go(func() { _ = d.Run(dctx) })
	}
	err := w.waitDelivered(ctx, timeout)
	stop()
	// Bounded shutdown: an attempt in flight ends with its context; one that
	// does not (a receiver ignoring cancellation) is left behind, unacked,
	// for the bus to redeliver next time.
	stopped := make(chan struct{})
	go func() { wg.Wait(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(shutdownGrace):
		errs = append(errs, fmt.Errorf("notifiers still busy %s after stopping; their events stay on the bus", shutdownGrace))
	}
	if err != nil {
		errs = append(errs, err)
	}
	for i, d := range w.dispatchers {
		if n := d.Stats.DeadLettered.Load() - deadBefore[i]; n > 0 {
			errs = append(errs, fmt.Errorf("notifier %s dead-lettered %d event(s): %s", w.cfg.Notifiers[i].Name, n, d.LastDeadLetter()))
		}
	}
	// The events are out: now the daily usage history, which the next run's
	// forecasts read.
	for _, p := range committed {
		w.history(ctx, p)
	}
	return errors.Join(errs...)
}

// shutdownGrace bounds how long RunOnce waits for notifiers to stop.
const shutdownGrace = 5 * time.Second

// waitDelivered polls the outbox, the consumers and the ledger until every
// event is published, taken by its notifiers (the bus has nothing pending:
// an event the ledger did not know, e.g. a replayed dead letter, is in it
// once taken) and settled by each, or ctx ends.
func (w *Watcher) waitDelivered(ctx context.Context, timeout time.Duration) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		if w.store.OutboxLen() == 0 && w.busIdle(ctx) && len(w.store.Owing()) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("--timeout %s reached with events still undelivered: %s", timeout, w.pendingReport())
		case <-t.C:
		}
	}
}

// busIdle reports whether no notifier's consumer has events pending.
func (w *Watcher) busIdle(ctx context.Context) bool {
	for _, nc := range w.cfg.Notifiers {
		if n, err := w.bus.Pending(ctx, nc.Name); err != nil || n > 0 {
			return false
		}
	}
	return true
}

// pendingReport says what is still waiting: the outbox and each notifier.
func (w *Watcher) pendingReport() string {
	parts := []string{fmt.Sprintf("outbox %d", w.store.OutboxLen())}
	owing := w.store.Owing()
	for i, nc := range w.cfg.Notifiers {
		if n := owing[nc.Name]; n > 0 {
			part := fmt.Sprintf("notifier %s %d pending", nc.Name, n)
			if i < len(w.dispatchers) {
				if last := w.dispatchers[i].LastFailure(); last != "" {
					part += " (last attempt: " + last + ")"
				}
			}
			parts = append(parts, part)
		}
	}
	return strings.Join(parts, ", ")
}

// keepBus checks every period that the bus still has the streams and what
// each notifier is owed, and refills it from the ledger when it lost them
// (a deleted or corrupt store, an external server that came back empty).
func (w *Watcher) keepBus(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := w.bus.EnsureStreams(ctx); err != nil {
			if ctx.Err() == nil {
				w.log.Warn("bus unavailable", "err", err)
			}
			continue
		}
		if w.cl != nil {
			continue // no ledger to refill from: the cluster's streams are replicated
		}
		for _, nc := range w.cfg.Notifiers {
			if _, err := w.relay.Recover(ctx, w.bus, nc.Name, false); err != nil && ctx.Err() == nil {
				w.log.Warn("bus check failed", "notifier", nc.Name, "err", err)
			}
		}
	}
}

// Run runs the daemon until ctx ends, then shuts down in order: pollers stop,
// the relay drains what they committed, dispatchers finish their attempt.
func (w *Watcher) Run(ctx context.Context) error {
	ln, err := w.listenHTTP()
	if err != nil {
		return err
	}
	return w.serve(ctx, ln)
}

// serve is Run with http.listen already bound (ln; nil when it is off), so
// that runCmd can refuse a port in use before it logs that it started.
func (w *Watcher) serve(ctx context.Context, ln net.Listener) error {
	var srv *http.Server
	if ln != nil {
		// No WriteTimeout: queries end at their own deadline (api.DefaultQueryTimeout).
		srv = &http.Server{Handler: w.apiHandler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				w.log.Error("http server stopped", "err", err)
			}
		}()
		w.log.Info("http listening", "addr", ln.Addr().String())
	}
	relayCtx, stopRelay := context.WithCancel(context.WithoutCancel(ctx))
	notifyCtx, stopNotify := context.WithCancel(context.WithoutCancel(ctx))
	var relayWG, notifyWG, pollWG sync.WaitGroup
	relayWG.Go(func() { w.relay.Run(relayCtx) })
	relayWG.Go(func() { w.keepBus(relayCtx, 10*time.Second) })
	for _, d := range w.dispatchers {
		notifyWG.Go(func() { _ = d.Run(notifyCtx) })
	}
	if w.cl != nil {
		// In a cluster, a provider is polled only under its lease.
		pollWG.Go(func() { w.cl.run(ctx, w.loop) })
	} else {
		for _, p := range w.providers {
			pollWG.Go(func() { w.loop(ctx, p) })
		}
	}
	if w.o.Rules == nil {
		pollWG.Go(func() { w.watchRules(ctx, 2*time.Second) })
	}
	pollWG.Go(func() { w.pruneDeliveryLog(ctx) })
	w.api.SetReady(true)
	<-ctx.Done()
	w.log.Info("shutting down")
	w.api.SetReady(false)
	pollWG.Wait()
	stopRelay()
	relayWG.Wait()
	dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	if _, err := w.relay.Drain(dctx); err != nil {
		w.log.Warn("outbox not fully published; it will be on the next start", "err", err)
	}
	cancel()
	stopNotify()
	notifyWG.Wait()
	if srv != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = srv.Shutdown(sctx)
		cancel()
	}
	return nil
}

// Reload reads the rule files again. A set with problems is refused, with
// the reasons, and the running set stays; alert state of rules that keep
// their name carries over.
func (w *Watcher) Reload() error {
	set, err := loadRules(w.cfg)
	if err != nil {
		w.log.Error("rules reload refused; the running rules stay", "err", err)
		return err
	}
	w.rules.Store(set)
	w.log.Info("rules reloaded", "rules", len(set.Rules))
	return nil
}

// rulesStamp identifies the rule files' contents by modification time and size.
func (w *Watcher) rulesStamp() string {
	var b strings.Builder
	for _, f := range w.cfg.RuleFiles {
		if st, err := os.Stat(f); err == nil {
			fmt.Fprintf(&b, "%s:%d:%d;", f, st.ModTime().UnixNano(), st.Size())
		}
	}
	return b.String()
}

// watchRules reloads the rules on SIGHUP and when a rule file changes.
func (w *Watcher) watchRules(ctx context.Context, every time.Duration) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	stamp := w.rulesStamp
	last := w.loadedStamp
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			last = stamp()
			_ = w.Reload()
		case <-t.C:
			if now := stamp(); now != last {
				last = now
				_ = w.Reload()
			}
		}
	}
}

// history brings a provider's daily usage history up to date after a
// committed cycle (poll.Poller.UpdateHistory); a failure is logged and the
// history is asked again after the next cycle.
func (w *Watcher) history(ctx context.Context, p *providerRun) {
	res, err := p.poller.UpdateHistory(ctx)
	switch {
	case err != nil && ctx.Err() == nil:
		w.log.Warn("daily usage history not updated; will try again after the next cycle", "provider", p.name, "err", err)
	case res.Asked:
		if w.api != nil {
			w.api.ObserveCycle(p.name, map[string]time.Duration{api.StageHistory: res.Took})
		}
		w.log.Info("daily usage history", "provider", p.name, "cards", res.Cards, "card_days", res.Days,
			"through", fleet.DayDate(res.Through).Format(time.DateOnly), "took", res.Took.Round(time.Millisecond))
	}
}

func (w *Watcher) loop(ctx context.Context, p *providerRun) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if w.cl != nil {
			if err := w.cl.beforeCycle(ctx, p); err != nil {
				if ctx.Err() == nil {
					w.log.Warn("cycle skipped", "provider", p.name, "err", err)
				}
				t.Reset(min(p.interval, 5*time.Second))
				continue
			}
		}
		if err := w.cycle(ctx, p); err != nil && ctx.Err() == nil {
			w.log.Warn("cycle failed; snapshot kept", "provider", p.name, "err", err)
		} else {
			w.history(ctx, p)
		}
		t.Reset(p.interval)
	}
}

func (w *Watcher) stats() api.Stats {
	s := api.Stats{Notifiers: map[string]api.NotifierStats{}}
	owing := w.store.Owing()
	for i, d := range w.dispatchers {
		name := w.cfg.Notifiers[i].Name
		pending := uint64(owing[name])
		if w.cl != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			pending, _ = w.bus.Pending(ctx, name)
			cancel()
		}
		s.Notifiers[name] = api.NotifierStats{
			Delivered:    d.Stats.Delivered.Load(),
			Retried:      d.Stats.Retried.Load(),
			DeadLettered: d.Stats.DeadLettered.Load(),
			Pending:      pending,
		}
	}
	s.Outbox = w.store.OutboxLen()
	return s
}

// pruneDeliveryLog keeps the delivery log, Slack's thread records and the
// mute records bounded, at start and then daily: an entry older than the
// bus's retention can no longer be redelivered, and a mute record outlives
// its event in the history by nothing.
func (w *Watcher) pruneDeliveryLog(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := w.o.Now()
		for _, p := range []struct {
			what  string
			prune func(time.Time) (int, error)
			age   time.Duration
		}{
			{"delivery log", w.store.PruneDelivered, bus.DefaultMaxAge},
			{"slack threads", w.store.PruneThreads, bus.DefaultMaxAge},
			{"mute records", w.store.PruneMutes, store.EventRetention},
		} {
			if n, err := p.prune(now.Add(-p.age)); err != nil {
				w.log.Warn(p.what+" not pruned", "err", err)
			} else if n > 0 {
				w.log.Info(p.what+" pruned", "entries", n)
			}
		}
		t.Reset(24 * time.Hour)
	}
}

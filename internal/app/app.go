// Package app wires simwatch together from a config: store, bus, pollers,
// outbox relay, notifier dispatchers and the HTTP server, and runs them as a
// daemon or for one cycle.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/simwatch/simwatch/internal/api"
	"github.com/simwatch/simwatch/internal/bus"
	"github.com/simwatch/simwatch/internal/config"
	"github.com/simwatch/simwatch/internal/crash"
	"github.com/simwatch/simwatch/internal/fleet"
	"github.com/simwatch/simwatch/internal/notify"
	"github.com/simwatch/simwatch/internal/notify/action"
	"github.com/simwatch/simwatch/internal/notify/console"
	"github.com/simwatch/simwatch/internal/notify/slack"
	"github.com/simwatch/simwatch/internal/notify/webhook"
	"github.com/simwatch/simwatch/internal/outbox"
	"github.com/simwatch/simwatch/internal/poll"
	"github.com/simwatch/simwatch/internal/provider/gsl"
	"github.com/simwatch/simwatch/internal/provider/linkcard"
	"github.com/simwatch/simwatch/internal/rules"
	"github.com/simwatch/simwatch/internal/store"
)

// Options adjusts how a watcher runs; the zero value is the daemon's defaults.
type Options struct {
	Stdout io.Writer // console notifier output; default os.Stdout
	Logger *slog.Logger
	Now    func() time.Time
	// Rules, when set, is used instead of the config's rule files.
	Rules *rules.Set
	// OnCycle is called after every poll cycle, with its error if it failed.
	OnCycle func(provider string, res poll.Result, err error)
	// AckWait overrides the bus's redelivery wait (tests).
	AckWait time.Duration
	// HTTPClient is used for provider and webhook requests.
	HTTPClient *http.Client
}

// Watcher is a wired watcher.
type Watcher struct {
	cfg         *config.Config
	o           Options
	log         *slog.Logger
	store       *store.Store
	bus         *bus.Bus
	rules       atomic.Pointer[rules.Set]
	providers   []*providerRun
	relay       *outbox.Relay
	dispatchers []*notify.Dispatcher
	api         *api.Server
	gsl         map[string]*gsl.Client // by provider name, for actions
	loadedStamp string                 // the rule files as they were loaded
}

type providerRun struct {
	name     string
	interval time.Duration
	poller   *poll.Poller
}

// New opens the store and bus and builds every part. Close releases them.
func New(ctx context.Context, cfg *config.Config, o Options) (w *Watcher, err error) {
	if o.Stdout == nil {
		o.Stdout = os.Stdout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{}
	}
	if o.AckWait == 0 {
		o.AckWait = cfg.NATS.AckWait.D()
	}
	w = &Watcher{cfg: cfg, o: o, log: o.Logger, gsl: map[string]*gsl.Client{}}
	set := o.Rules
	w.loadedStamp = w.rulesStamp()
	if set == nil {
		if set, err = rules.LoadFiles(cfg.RuleFiles, rules.LoadOptions{Notifiers: cfg.NotifierNames()}); err != nil {
			return nil, fmt.Errorf("rules:\n%w", err)
		}
	}
	w.rules.Store(set)
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data_dir: %w", err)
	}
	defer func() {
		if err != nil {
			w.Close()
		}
	}()
	if w.store, err = store.Open(filepath.Join(cfg.DataDir, "simwatch.db")); err != nil {
		return nil, err
	}
	if w.bus, err = bus.Open(ctx, bus.Options{URL: cfg.NATS.URL, DataDir: cfg.DataDir, AckWait: o.AckWait, Logger: w.log}); err != nil {
		return nil, err
	}
	w.relay = outbox.New(w.store, w.bus, 0, w.log.With("component", "outbox"))
	for _, pc := range cfg.Providers {
		src, daily, err := w.source(pc)
		if err != nil {
			return nil, err
		}
		w.providers = append(w.providers, &providerRun{
			name:     pc.Name,
			interval: pc.Interval.D(),
			poller: poll.New(poll.Options{
				Provider:       pc.Name,
				Source:         src,
				Store:          w.store,
				Rules:          w.rules.Load,
				UnhealthyAfter: pc.UnhealthyAfter,
				Now:            o.Now,
				Logger:         w.log,
				Daily:          daily,
				ClockEvery:     pc.ClockEvery.D(),
				Committed: func() {
					crash.Point(crash.AfterCommit)
					w.relay.Kick()
				},
			}),
		})
	}
	for _, nc := range cfg.Notifiers {
		d, err := w.dispatcher(ctx, nc)
		if err != nil {
			return nil, err
		}
		w.dispatchers = append(w.dispatchers, d)
	}
	w.api = api.New(api.Options{Store: w.store, DeadLetters: w.bus, Logger: w.log, Stats: w.stats})
	return w, nil
}

// source builds a provider's client, and its daily usage API when it has one.
func (w *Watcher) source(pc config.Provider) (poll.Source, poll.DailyFunc, error) {
	switch pc.Type {
	case config.TypeGSL:
		o := gsl.Options{
			Name: pc.Name, Endpoint: pc.Endpoint,
			AK: pc.Auth.AK.Reveal(), SK: pc.Auth.SK.Reveal(), Token: pc.Auth.Token.Reveal(),
			PageSize: pc.PageSize, Rate: pc.Rate, Concurrency: pc.Concurrency,
			Timeout: pc.Timeout.D(), Retries: pc.Retries,
			HTTPClient: w.o.HTTPClient, Logger: w.log,
		}
		if pc.Auth.User != "" {
			o.IAM = &gsl.IAMAuth{Endpoint: pc.Auth.IAMEndpoint, Domain: pc.Auth.Domain, User: pc.Auth.User,
				Password: pc.Auth.Password.Reveal(), Project: pc.Auth.Project}
		}
		c, err := gsl.New(o)
		if err != nil {
			return nil, nil, fmt.Errorf("provider %s: %w", pc.Name, err)
		}
		w.gsl[pc.Name] = c
		daily := func(ctx context.Context, month, date string, ids []string) (map[string][]fleet.DayUsage, error) {
			return c.DailyFlow(ctx, gsl.DailyQuery{Month: month, Date: date}, ids)
		}
		return c, daily, nil
	case config.TypeLinkCard:
		c, err := linkcard.New(linkcard.Options{
			Name: pc.Name, Endpoint: pc.Endpoint,
			AccessKeyID: pc.Auth.AccessKeyID.Reveal(), AccessKeySecret: pc.Auth.AccessKeySecret.Reveal(),
			PageSize: pc.PageSize, Rate: pc.Rate, Concurrency: pc.Concurrency,
			Timeout: pc.Timeout.D(), Retries: pc.Retries,
			HTTPClient: w.o.HTTPClient, Logger: w.log,
		})
		if err != nil {
			return nil, nil, fmt.Errorf("provider %s: %w", pc.Name, err)
		}
		return c, nil, nil
	default:
		return nil, nil, fmt.Errorf("provider %s: unknown type %s", pc.Name, pc.Type)
	}
}

func (w *Watcher) dispatcher(ctx context.Context, nc config.Notifier) (*notify.Dispatcher, error) {
	var n notify.Notifier
	switch nc.Type {
	case config.NotifierConsole:
		n = console.New(w.o.Stdout)
	case config.NotifierWebhook:
		n = webhook.New(webhook.Options{Name: nc.Name, URL: nc.URL, Secret: nc.Secret.Reveal(), Format: nc.Format,
			ExternalURL: w.cfg.HTTP.ExternalURL, Timeout: nc.Timeout.D(), Client: w.o.HTTPClient, Now: w.o.Now})
	case config.NotifierSlack:
		s, err := slack.New(slack.Options{Name: nc.Name, Token: nc.Token.Reveal(), Channel: nc.Channel, APIURL: nc.APIURL,
			WebhookURL: nc.URL, StatusURL: w.cfg.HTTP.ExternalURL, Timeout: nc.Timeout.D(), Client: w.o.HTTPClient,
			Threads: w.store, Now: w.o.Now})
		if err != nil {
			return nil, fmt.Errorf("notifier %s: %w", nc.Name, err)
		}
		n = s
	case config.NotifierAction:
		for _, r := range nc.Rules {
			if !slices.ContainsFunc(w.rules.Load().Rules, func(rule *rules.Rule) bool { return rule.Name == r }) {
				return nil, fmt.Errorf("notifier %s: rules: no rule named %q", nc.Name, r)
			}
		}
		var others []string
		for _, o := range w.cfg.Notifiers {
			if o.Type != config.NotifierAction {
				others = append(others, o.Name)
			}
		}
		a, err := action.New(action.Options{Name: nc.Name, Provider: nc.Provider, Operation: nc.Operation, Rules: nc.Rules,
			DryRun: nc.IsDryRun(), MaxPerHour: nc.MaxPerHour, AnnounceTo: others, Operator: w.gsl[nc.Provider],
			Journal: w.store, Announced: func() { w.relay.Kick() }, Now: w.o.Now, Logger: w.log})
		if err != nil {
			return nil, fmt.Errorf("notifier %s: %w", nc.Name, err)
		}
		n = a
	default:
		return nil, fmt.Errorf("notifier %s: unknown type %s", nc.Name, nc.Type)
	}
	cons, err := w.bus.Consumer(ctx, nc.Name)
	if err != nil {
		return nil, err
	}
	return notify.NewDispatcher(notify.Options{
		Name: nc.Name, Notifier: n, Consumer: cons, Log: w.store, DeadLetters: w.bus,
		MaxDeliver: nc.MaxDeliver, MaxEvents: nc.MaxEvents,
		Backoff: notify.Backoff{Base: nc.Backoff.D(), Max: nc.MaxBackoff.D()},
		AckWait: w.o.AckWait, Now: w.o.Now, Logger: w.log,
		Observe: func(d time.Duration) { w.api.ObserveDelivery(nc.Name, d) },
	}), nil
}

// Close releases the bus and the store.
func (w *Watcher) Close() {
	if w.bus != nil {
		w.bus.Close()
	}
	if w.store != nil {
		_ = w.store.Close()
	}
}

func (w *Watcher) cycle(ctx context.Context, p *providerRun) error {
	res, err := p.poller.Cycle(ctx)
	if w.o.OnCycle != nil {
		w.o.OnCycle(p.name, res, err)
	}
	if err != nil {
		return err
	}
	w.log.Info("cycle", "provider", p.name, "cards", res.Cards, "pools", res.Pools, "changed", res.Changed,
		"events", res.Events, "firing", res.Firing, "fetch", res.Fetch.Round(time.Millisecond), "commit", res.Commit.Round(time.Millisecond))
	return nil
}

// RunOnce runs one full cycle of every provider, publishes the events and
// waits until every notifier has delivered or dead-lettered them. It returns
// an error naming every provider that failed.
func (w *Watcher) RunOnce(ctx context.Context, timeout time.Duration) error {
	var errs []error
	for _, p := range w.providers {
		if err := w.cycle(ctx, p); err != nil {
			errs = append(errs, err)
		}
	}
	if _, err := w.relay.Drain(ctx); err != nil {
		return errors.Join(append(errs, err)...)
	}
	crash.Point(crash.AfterPublish)
	dctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { w.relay.Run(dctx) }) // actions announce what they did through the outbox
	for _, d := range w.dispatchers {
		wg.Go(func() { _ = d.Run(dctx) })
	}
	err := w.waitDelivered(ctx, timeout)
	stop()
	wg.Wait()
	return errors.Join(append(errs, err)...)
}

// waitDelivered polls the outbox and the consumers until nothing is pending.
func (w *Watcher) waitDelivered(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		pending := uint64(w.store.OutboxLen())
		for _, nc := range w.cfg.Notifiers {
			n, err := w.bus.Pending(ctx, nc.Name)
			if err != nil {
				return err
			}
			pending += n
		}
		if pending == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d events still undelivered: %w", pending, ctx.Err())
		case <-t.C:
		}
	}
}

// Run runs the daemon until ctx ends, then shuts down in order: pollers stop,
// the relay drains what they committed, dispatchers finish their attempt.
func (w *Watcher) Run(ctx context.Context) error {
	var srv *http.Server
	if addr := w.cfg.HTTP.Listen; addr != "" {
		ln, err := listen(addr)
		if err != nil {
			return fmt.Errorf("http: %w", err)
		}
		srv = &http.Server{Handler: w.api.Handler(), ReadHeaderTimeout: 10 * time.Second}
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
	for _, d := range w.dispatchers {
		notifyWG.Go(func() { _ = d.Run(notifyCtx) })
	}
	for _, p := range w.providers {
		pollWG.Go(func() { w.loop(ctx, p) })
	}
	if w.o.Rules == nil {
		pollWG.Go(func() { w.watchRules(ctx, 2*time.Second) })
	}
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
	set, err := rules.LoadFiles(w.cfg.RuleFiles, rules.LoadOptions{Notifiers: w.cfg.NotifierNames()})
	if err != nil {
		w.log.Error("rules reload refused; the running rules stay", "err", err)
		return err
	}
	for _, nc := range w.cfg.Notifiers {
		for _, r := range nc.Rules {
			if !slices.ContainsFunc(set.Rules, func(rule *rules.Rule) bool { return rule.Name == r }) {
				err := fmt.Errorf("notifier %s acts on rule %q, which the new rules lack", nc.Name, r)
				w.log.Error("rules reload refused; the running rules stay", "err", err)
				return err
			}
		}
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

func (w *Watcher) loop(ctx context.Context, p *providerRun) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := w.cycle(ctx, p); err != nil && ctx.Err() == nil {
			w.log.Warn("cycle failed; snapshot kept", "provider", p.name, "err", err)
		}
		t.Reset(p.interval)
	}
}

func (w *Watcher) stats() api.Stats {
	s := api.Stats{Notifiers: map[string]api.NotifierStats{}}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for i, d := range w.dispatchers {
		name := w.cfg.Notifiers[i].Name
		pending, _ := w.bus.Pending(ctx, name)
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

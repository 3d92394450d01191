// Package app wires simwatch together from a config: store, bus, pollers,
// outbox relay, notifier dispatchers and the HTTP server, and runs them as a
// daemon or for one cycle.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/simwatch/simwatch/internal/api"
	"github.com/simwatch/simwatch/internal/bus"
	"github.com/simwatch/simwatch/internal/config"
	"github.com/simwatch/simwatch/internal/crash"
	"github.com/simwatch/simwatch/internal/fleet"
	"github.com/simwatch/simwatch/internal/mute"
	"github.com/simwatch/simwatch/internal/notify"
	"github.com/simwatch/simwatch/internal/notify/action"
	"github.com/simwatch/simwatch/internal/notify/console"
	"github.com/simwatch/simwatch/internal/notify/slack"
	"github.com/simwatch/simwatch/internal/notify/webhook"
	"github.com/simwatch/simwatch/internal/outbox"
	"github.com/simwatch/simwatch/internal/poll"
	"github.com/simwatch/simwatch/internal/provider/gsl"
	"github.com/simwatch/simwatch/internal/provider/linkcard"
	"github.com/simwatch/simwatch/internal/redact"
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
	// Redact masks secrets in logs, events, dead letters and API answers;
	// by default it holds every secret of the config.
	Redact *redact.Redactor
	// NotifyOnly makes a cluster member that delivers events and polls
	// nothing (watcher notify).
	NotifyOnly bool
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
	muter       *muter
	api         *api.Server
	gsl         map[string]*gsl.Client // by provider name, for actions
	loadedStamp string                 // the rule files as they were loaded
	redact      *redact.Redactor
	unlock      func() error // releases the data_dir lock
	cl          *clusterRun  // nil outside a cluster
}

type providerRun struct {
	name     string
	interval time.Duration
	poller   *poll.Poller
	// running is held by the provider's loop in a cluster: a loop started
	// under a new lease waits for the one of a lost lease to end.
	running sync.Mutex
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
	if o.Redact == nil {
		o.Redact = redact.New(cfg.Secrets()...)
	}
	o.Logger = slog.New(o.Redact.Handler(o.Logger.Handler()))
	w = &Watcher{cfg: cfg, o: o, log: o.Logger, redact: o.Redact, gsl: map[string]*gsl.Client{}}
	set := o.Rules
	w.loadedStamp = w.rulesStamp()
	if set == nil {
		if set, err = loadRules(cfg); err != nil {
			return nil, fmt.Errorf("rules:\n%w", err)
		}
	}
	w.rules.Store(set)
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, dataDirError(cfg.DataDir, err)
	}
	built := w // the result is nil when New fails; close what was opened
	defer func() {
		if err != nil {
			built.Close()
		}
	}()
	// The data_dir lock comes first: a second watcher, or a command that
	// would open the store and an embedded NATS server in process, is
	// turned away at once, before it can touch either.
	if w.unlock, err = store.LockDir(cfg.DataDir); err != nil {
		return nil, err
	}
	if w.store, err = store.Open(filepath.Join(cfg.DataDir, "simwatch.db")); err != nil {
		return nil, withConfig(err, cfg.Path)
	}
	bo := bus.Options{URL: cfg.NATS.URL, DataDir: cfg.DataDir, AckWait: o.AckWait, Logger: w.log}
	owed := cfg.NotifierNames()
	if cfg.Cluster.Enabled {
		bo.Replicas, bo.AutoReplicas = clusterReplicas(cfg.Cluster)
		// The shared delivery log, not this store's ledger, keeps what
		// the cluster's notifiers owe.
		owed = nil
	}
	if w.bus, err = bus.Open(ctx, bo); err != nil {
		return nil, withConfig(err, cfg.Path)
	}
	w.relay = outbox.New(w.store, w.bus, 0, w.log.With("component", "outbox"))
	if cfg.Cluster.Enabled {
		if err := w.joinCluster(ctx); err != nil {
			return nil, withConfig(err, cfg.Path)
		}
	}
	if released, err := w.store.SetNotifiers(owed); err != nil {
		return nil, err
	} else if released > 0 {
		w.log.Warn("events owed to notifiers no longer configured were released", "events", released)
	}
	inhibit, err := mute.NewInhibitor(cfg.InhibitRules)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	w.muter = &muter{store: w.store, log: w.log}
	if inhibit.Len() > 0 {
		w.muter.inhibit = inhibit
	}
	for _, pc := range cfg.Providers {
		src, daily, err := w.source(pc)
		if err != nil {
			return nil, err
		}
		lister := redactLister(src, w.redact)
		src = redactSource(src, w.redact)
		var commit func(context.Context, func(*store.Tx) error) error
		if w.cl != nil {
			commit = w.cl.commit(pc.Name)
		}
		w.providers = append(w.providers, &providerRun{
			name:     pc.Name,
			interval: pc.Interval.D(),
			poller: poll.New(poll.Options{
				Provider:       pc.Name,
				Source:         src,
				Lister:         lister,
				Store:          w.store,
				Rules:          w.rules.Load,
				UnhealthyAfter: pc.UnhealthyAfter,
				Now:            o.Now,
				Logger:         w.log,
				Daily:          daily,
				ClockEvery:     pc.ClockEvery.D(),
				Commit:         commit,
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
	ao := api.Options{Store: w.store, DeadLetters: w.bus, Logger: w.log, Stats: w.stats,
		Rules: w.rules.Load, Announced: w.relay.Kick}
	if w.cl != nil {
		ao.Writes, ao.Cluster = clusterWrites{w.cl}, w.cl.status
	}
	w.api = api.New(ao)
	w.api.Watch(w.watched)
	if w.cl != nil {
		w.api.WatchCluster(w.cl.metrics)
	}
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
			ExternalURL: w.cfg.HTTP.ExternalURL, Timeout: nc.Timeout.D(), Client: w.o.HTTPClient, Now: w.o.Now, Redact: w.redact})
	case config.NotifierSlack:
		s, err := slack.New(slack.Options{Name: nc.Name, Token: nc.Token.Reveal(), Channel: nc.Channel, APIURL: nc.APIURL,
			WebhookURL: nc.URL, StatusURL: w.cfg.HTTP.ExternalURL, Timeout: nc.Timeout.D(), Client: w.o.HTTPClient,
			Threads: w.store, Now: w.o.Now, Log: w.log.With("notifier", nc.Name), Redact: w.redact})
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
	// The consumer exists before anything is published, so that it sees
	// every event; one made anew later (the bus lost it) is refilled from
	// the ledger.
	consumer := func(ctx context.Context) (notify.Consumer, error) {
		c, created, err := w.bus.Consumer(ctx, nc.Name)
		if err != nil {
			return nil, err
		}
		if created && w.cl == nil {
			if _, err := w.relay.Recover(ctx, w.bus, nc.Name, true); err != nil {
				return nil, err
			}
		}
		return c, nil
	}
	if _, err := consumer(ctx); err != nil {
		return nil, err
	}
	maxEvents := nc.MaxEvents
	if nc.Type == config.NotifierAction {
		// One card per call: a card over the hourly cap is dead-lettered
		// with its own reason, and the cards acted on are not.
		maxEvents = 1
	}
	wait, interval := nc.GroupWindows()
	var shared *notify.SharedLog
	if w.cl != nil {
		shared = w.cl.shared
	}
	return notify.NewDispatcher(notify.Options{
		Shared: shared,
		Name:   nc.Name, Notifier: n, Consumer: consumer, Ledger: w.store, DeadLetters: redactedDeadLetters{w.bus, w.redact},
		Mute:    w.muter.source,
		GroupBy: nc.GroupBy, GroupWait: wait, GroupInterval: interval,
		MaxDeliver: nc.MaxDeliver, MaxEvents: maxEvents,
		Backoff: notify.Backoff{Base: nc.Backoff.D(), Max: nc.MaxBackoff.D()},
		Now:     w.o.Now, Logger: w.log,
		Observe: func(d time.Duration) { w.api.ObserveDelivery(nc.Name, d) },
	}), nil
}

// Close releases the bus, the store and, last, the data_dir lock.
func (w *Watcher) Close() {
	if w.bus != nil {
		w.bus.Close()
	}
	if w.store != nil {
		_ = w.store.Close()
	}
	if w.unlock != nil {
		_ = w.unlock()
		w.unlock = nil
	}
}

// dataDirError says why data_dir could not be created, and what to do.
func dataDirError(dir string, err error) error {
	switch {
	case errors.Is(err, syscall.ENOTDIR), errors.Is(err, fs.ErrExist):
		return fmt.Errorf("data_dir %s is not a directory (%w): point data_dir at a directory", dir, err)
	case errors.Is(err, fs.ErrPermission), errors.Is(err, syscall.EROFS):
		return fmt.Errorf("data_dir %s cannot be created by this user (%w): create it with the right owner, or point data_dir elsewhere", dir, err)
	}
	return fmt.Errorf("data_dir %s: %w", dir, err)
}

// withConfig names the config file in the fix of a damaged store's error
// (`watcher doctor --config F --repair`).
func withConfig(err error, path string) error {
	var dmg *store.DamagedError
	if errors.As(err, &dmg) {
		dmg.Config = path
	}
	var se *bus.StartError
	if errors.As(err, &se) {
		se.Config = path
	}
	return err
}

package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/simwatch/simwatch/internal/api"
	"github.com/simwatch/simwatch/internal/cluster"
	"github.com/simwatch/simwatch/internal/config"
	"github.com/simwatch/simwatch/internal/event"
	"github.com/simwatch/simwatch/internal/notify"
	"github.com/simwatch/simwatch/internal/poll"
	"github.com/simwatch/simwatch/internal/replica"
	"github.com/simwatch/simwatch/internal/rules"
	"github.com/simwatch/simwatch/internal/store"
)

// clusterRun is a watcher's part in a cluster (README: Running a cluster):
// its leases on provider accounts, its replica of the state, and the shared
// delivery log its notifiers settle in.
type clusterRun struct {
	w        *Watcher
	name     string
	member   string
	ttl      time.Duration
	replicas int
	group    *cluster.Group
	replica  *replica.Replica
	shared   *notify.SharedLog

	mu sync.Mutex
	// loops are the provider loops running under a lease, by provider.
	loops map[string]context.CancelFunc
	// own is the state stream sequence of this watcher's last commit of
	// each provider: a provider whose last applied delta is not its own
	// was written elsewhere, and its poller reloads.
	own        map[string]uint64
	deltas     map[string]uint64
	deltaBytes map[string]uint64
	// start runs a provider's loop under its lease; set by serve.
	start func(p *providerRun)
	wg    sync.WaitGroup
}

// joinCluster opens the cluster's parts on the bus: the replica of the
// state stream, the lease group and the shared delivery log.
func (w *Watcher) joinCluster(ctx context.Context) error {
	cc := w.cfg.Cluster
	host, _ := os.Hostname()
	c := &clusterRun{w: w, name: cc.Name, member: cluster.MemberID(host, os.Getpid()), ttl: cc.LeaseTTL.D(),
		replicas: w.bus.Replicas(), loops: map[string]context.CancelFunc{}, own: map[string]uint64{},
		deltas: map[string]uint64{}, deltaBytes: map[string]uint64{}}
	js := w.bus.JetStream()
	var err error
	if c.replica, err = opening(ctx, func(ctx context.Context) (*replica.Replica, error) {
		return replica.Open(ctx, replica.Options{JS: js, Store: w.store, Cluster: c.name, Member: c.member,
			Replicas: c.replicas, Logger: w.log.With("component", "replica")})
	}); err != nil {
		return fmt.Errorf("cluster %s: %w", c.name, err)
	}
	var accounts []string
	role := cluster.RoleNotify
	if !w.o.NotifyOnly {
		role = cluster.RoleWatcher
		for _, p := range w.cfg.Providers {
			accounts = append(accounts, p.Name)
		}
	}
	if c.group, err = opening(ctx, func(ctx context.Context) (*cluster.Group, error) {
		return cluster.Open(ctx, cluster.Options{JS: js, Cluster: c.name, Member: c.member,
			Info: cluster.MemberInfo{Host: host, PID: os.Getpid(), Role: role, HTTP: w.cfg.HTTP.ExternalURL,
				Started: w.o.Now().UTC(), Version: currentVersion().Version},
			TTL: leaseExpiry(c.ttl), Replicas: c.replicas, Accounts: accounts, Now: w.o.Now, Logger: w.log.With("component", "cluster"),
			OnAcquire: c.acquired, OnLose: c.lost})
	}); err != nil {
		return fmt.Errorf("cluster %s: %w", c.name, err)
	}
	if c.shared, err = opening(ctx, func(ctx context.Context) (*notify.SharedLog, error) {
		return notify.OpenSharedLog(ctx, js, c.name, c.replicas)
	}); err != nil {
		return fmt.Errorf("cluster %s: %w", c.name, err)
	}
	w.cl = c
	w.log.Info("cluster joined", "cluster", c.name, "member", c.member, "role", role, "replicas", c.replicas,
		"nats_servers", w.bus.ClusterSize(), "lease_ttl", c.ttl)
	return nil
}

// Bounds on opening the cluster's streams and buckets. Watchers that
// start together race to create them, and NATS may leave a losing request
// unanswered: a later attempt finds what the winner made.
const (
	openAttempt = 3 * time.Second
	openWithin  = 30 * time.Second
)

// opening runs open, again after an attempt that ran out of time, until
// openWithin has passed.
func opening[T any](ctx context.Context, open func(context.Context) (T, error)) (T, error) {
	deadline := time.Now().Add(openWithin)
	for {
		actx, cancel := context.WithTimeout(ctx, openAttempt)
		v, err := open(actx)
		cancel()
		if err == nil || !errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil || time.Now().After(deadline) {
			return v, err
		}
	}
}

// leaseExpiry is how long after its last renewal NATS expires a lease:
// four fifths of cluster.lease_ttl, so that the server's expiry, the
// others' noticing it and their taking the account over all fit within
// lease_ttl of the holder's death.
func leaseExpiry(ttl time.Duration) time.Duration { return ttl * 4 / 5 }

// subject is the state stream subject of a provider.
func (c *clusterRun) subject(provider string) string {
	return replica.ProviderSubject(c.name, provider)
}

// commit is a provider poller's Options.Commit: a write replicated through
// the state stream, made only while this watcher holds the account.
func (c *clusterRun) commit(provider string) func(ctx context.Context, fn func(*store.Tx) error) error {
	return func(ctx context.Context, fn func(*store.Tx) error) error {
		if !c.group.Holds(provider) {
			return fmt.Errorf("lease on %s not held: %w", provider, poll.ErrSuperseded)
		}
		info, err := c.replica.Commit(ctx, c.subject(provider), fn)
		if errors.Is(err, replica.ErrConflict) {
			return fmt.Errorf("%w: %w", poll.ErrSuperseded, err)
		}
		if err != nil {
			return err
		}
		if info.Seq > 0 {
			c.mu.Lock()
			c.own[provider] = info.Seq
			c.deltas[provider]++
			c.deltaBytes[provider] += uint64(info.Bytes)
			c.mu.Unlock()
		}
		return nil
	}
}

// beforeCycle brings the replica of a provider's state up to date, and has
// the poller reload it when someone else wrote it since this watcher's own
// last commit (a previous holder, an acknowledgement made elsewhere).
func (c *clusterRun) beforeCycle(ctx context.Context, p *providerRun) error {
	subject := c.subject(p.name)
	if err := c.replica.CatchUp(ctx, subject); err != nil {
		return fmt.Errorf("catch up with %s's state: %w", p.name, err)
	}
	seq, _ := c.replica.Applied(subject)
	c.mu.Lock()
	stale := c.own[p.name] != seq
	c.own[p.name] = seq
	c.mu.Unlock()
	if stale {
		p.poller.Reset()
	}
	return nil
}

// acquired starts polling an account this watcher now holds. Called from
// the lease group's goroutine: it must not block.
func (c *clusterRun) acquired(account string, takeover time.Duration) {
	args := []any{"provider", account, "member", c.member}
	if takeover > 0 {
		args = append(args, "takeover", takeover.Round(time.Millisecond))
	}
	c.w.log.Info("lease acquired", args...)
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, running := c.loops[account]; running || c.start == nil {
		return
	}
	for _, p := range c.w.providers {
		if p.name == account {
			c.start(p)
		}
	}
}

// lost stops polling an account this watcher no longer holds.
func (c *clusterRun) lost(account, reason string) {
	if reason == cluster.LoseShutdown || reason == cluster.LoseRebalance {
		c.w.log.Info("lease handed back", "provider", account, "reason", reason)
	} else {
		c.w.log.Warn("lease lost; polling stops", "provider", account, "reason", reason)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if cancel, ok := c.loops[account]; ok {
		cancel()
		delete(c.loops, account)
	}
}

// run runs the replica's applier and the lease group until ctx ends; the
// provider loops under leases run as children of pollCtx. It returns once
// the loops have stopped, the leases are released and the applier is done.
func (c *clusterRun) run(ctx context.Context, loop func(ctx context.Context, p *providerRun)) {
	appCtx, stopApply := context.WithCancel(context.WithoutCancel(ctx))
	groupCtx, stopGroup := context.WithCancel(context.WithoutCancel(ctx))
	var bg sync.WaitGroup
	bg.Go(func() { c.replica.Run(appCtx) })
	c.mu.Lock()
	c.start = func(p *providerRun) {
		lctx, cancel := context.WithCancel(ctx)
		c.loops[p.name] = cancel
		c.wg.Go(func() {
			defer cancel()
			p.running.Lock()
			defer p.running.Unlock()
			loop(lctx, p)
		})
	}
	c.mu.Unlock()
	bg.Go(func() { c.group.Run(groupCtx) })
	<-ctx.Done()
	// Loops first (a cycle in flight ends with its context), then the
	// leases are released so another watcher takes the accounts at once,
	// then the applier.
	c.mu.Lock()
	c.start = nil
	c.mu.Unlock()
	c.wg.Wait()
	stopGroup()
	stopApply()
	bg.Wait()
}

// status is /api/v1/cluster and the console's cluster page.
func (c *clusterRun) status(ctx context.Context) (*api.ClusterStatus, error) {
	gs, err := c.group.Status(ctx)
	if err != nil {
		return nil, err
	}
	rs, err := c.replica.Status(ctx)
	if err != nil {
		return nil, err
	}
	now := c.w.o.Now()
	st := &api.ClusterStatus{Name: c.name, Member: c.member, Replicas: c.replicas, LeaseTTL: c.ttl.String(),
		Replication: api.ClusterReplication{Applied: rs.Position, StreamLast: rs.Last, LagMessages: rs.Lag,
			StreamBytes: rs.Bytes, Subjects: rs.Applied}}
	takeover := c.group.Stats().Takeover
	for _, m := range gs.Members {
		st.Members = append(st.Members, api.ClusterMember{ID: m.ID, Host: m.Info.Host, PID: m.Info.PID, Role: m.Info.Role,
			HTTP: m.Info.HTTP, Started: m.Info.Started, LastSeen: now.Add(-time.Duration(m.HeartbeatAgeSeconds * float64(time.Second))),
			Leases: m.Leases, Self: m.ID == c.member})
	}
	for _, l := range gs.Leases {
		cl := api.ClusterLease{Account: l.Account, Holder: l.Holder, Since: l.Since, Renewed: l.Renewed,
			ExpiresIn: time.Duration(l.ExpiresInSeconds * float64(time.Second)).Round(100 * time.Millisecond).String()}
		if d, ok := takeover[l.Account]; ok && d > 0 {
			cl.Takeover = d.Round(time.Millisecond).String()
		}
		st.Leases = append(st.Leases, cl)
	}
	for _, account := range gs.Unheld {
		st.Leases = append(st.Leases, api.ClusterLease{Account: account})
	}
	slices.SortFunc(st.Leases, func(a, b api.ClusterLease) int { return strings.Compare(a.Account, b.Account) })
	return st, nil
}

// metrics is what /metrics reports of the cluster.
func (c *clusterRun) metrics() api.ClusterMetrics {
	stats := c.group.Stats()
	m := api.ClusterMetrics{
		LeaseChanges: map[string]uint64{"acquired": stats.Acquisitions, "lost": stats.Losses, "released": stats.Releases},
		Takeover:     map[string]float64{}, Held: stats.Held, Deltas: map[string]uint64{}, DeltaBytes: map[string]uint64{}}
	for account, d := range stats.Takeover {
		m.Takeover[account] = d.Seconds()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if rs, err := c.replica.Status(ctx); err == nil {
		m.Lag = rs.Lag
	}
	if gs, err := c.group.Status(ctx); err == nil {
		m.Members = len(gs.Members)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for p, n := range c.deltas {
		m.Deltas[p] = n
		m.DeltaBytes[p] = c.deltaBytes[p]
	}
	return m
}

// clusterWrites makes the API's acknowledgements and silences through the
// state stream, so every watcher's store has them.
type clusterWrites struct{ c *clusterRun }

func (cw clusterWrites) Ack(ctx context.Context, a store.Ack, announce func(*rules.Alert, store.Ack) *event.Event) (store.Ack, bool, error) {
	var got store.Ack
	var created bool
	err := cw.retry(ctx, cw.c.subject(a.Provider), func(tx *store.Tx) (err error) {
		got, created, err = tx.Ack(a, announce)
		return err
	})
	return got, created, err
}

func (cw clusterWrites) PutSilence(ctx context.Context, sl store.Silence) error {
	return cw.retry(ctx, replica.SilencesSubject(cw.c.name), func(tx *store.Tx) error { return tx.PutSilence(sl) })
}

func (cw clusterWrites) ExpireSilence(ctx context.Context, id string, at time.Time) error {
	return cw.retry(ctx, replica.SilencesSubject(cw.c.name), func(tx *store.Tx) error { return tx.ExpireSilence(id, at) })
}

// retry commits fn on subject, again after a conflict (someone wrote the
// subject meanwhile: the next attempt starts from their state).
func (cw clusterWrites) retry(ctx context.Context, subject string, fn func(*store.Tx) error) error {
	var err error
	for range 5 {
		if _, err = cw.c.replica.Commit(ctx, subject, fn); !errors.Is(err, replica.ErrConflict) {
			return err
		}
	}
	return fmt.Errorf("the cluster's state kept changing under this write; try again: %w", err)
}

// clusterReplicas is how many copies a cluster asks of NATS: cluster.replicas,
// or three when the NATS cluster has three servers (bus.Options.AutoReplicas).
func clusterReplicas(cc config.Cluster) (n int, auto bool) {
	if cc.Replicas > 0 {
		return cc.Replicas, false
	}
	return 1, true
}

// Package cluster shares provider accounts between watchers through JetStream
// KV leases, so each account is polled by exactly one watcher of a cluster and
// a dead watcher's accounts move to the others within the lease TTL.
//
// The rules of the package:
//   - A lease is a key (the provider name) in the bucket simwatch_<NAME>_leases.
//     The bucket's MaxAge is the TTL, so the server itself expires a lease that
//     is not renewed; the limit markers it leaves let watchers see the expiry.
//   - A lease is taken with Create (only one member can create a missing key),
//     renewed with Update at the revision the holder last wrote (every TTL/3),
//     and handed back with Delete at that revision (rebalance, shutdown).
//   - Members heartbeat a key in simwatch_<NAME>_members (same MaxAge). A member
//     holds at most ceil(accounts / live members that can hold accounts), and
//     gives back at most one lease per round above that share, so accounts
//     spread without flapping.
//   - Fencing: Holds is true only while the last successful renewal (timed
//     from when it was sent) is younger than TTL minus a margin, so a
//     partitioned holder stops claiming before the server lets anyone else
//     take the lease. The replica's compare-and-set is the backstop.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// DefaultTTL is the lease TTL when Options.TTL is zero: a dead watcher's
// accounts are taken over within it, and a watcher cut off from NATS for
// longer loses them.
const DefaultTTL = 30 * time.Second

// MinTTL is the shortest TTL accepted: the server keeps expiry markers for at
// least a second.
const MinTTL = time.Second

// Roles a member announces in MemberInfo.Role.
const (
	RoleWatcher = "watcher"
	RoleNotify  = "notify"
)

// ErrInvalid is wrapped by Open's errors for options that cannot work.
var ErrInvalid = errors.New("cluster: invalid options")

var nameRe = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// MemberInfo describes a member for the status API and operators.
type MemberInfo struct {
	Host    string    `json:"host"`
	PID     int       `json:"pid"`
	Role    string    `json:"role"` // RoleWatcher or RoleNotify
	HTTP    string    `json:"http,omitempty"`
	Started time.Time `json:"started"`
	Version string    `json:"version,omitempty"`
}

// Options configure a Group. JS, Cluster and Member are required; the zero
// value of every other field is a working default.
type Options struct {
	JS      jetstream.JetStream
	Cluster string // cluster name, [A-Za-z0-9_-]+
	Member  string // this member's id, unique in the cluster (see MemberID)
	Info    MemberInfo
	// TTL of leases and member heartbeats (default DefaultTTL). All members
	// of a cluster must agree: Open updates buckets created with another TTL.
	TTL      time.Duration
	Replicas int // bucket replicas (default 1; 3 on a 3-node NATS cluster)
	// Accounts are the provider names this member may hold; nil for a
	// notify-only worker, which heartbeats but never takes a lease.
	Accounts []string
	Now      func() time.Time // default time.Now
	Logger   *slog.Logger     // default discards
	// OnAcquire and OnLose are called from Run's goroutine and must not
	// block: they should hand the news to the poller (start or stop polling
	// the account) and return. takeover is the time since the previous
	// holder's last renewal when the lease was taken after it expired, 0
	// when the account was free or handed back in order.
	OnAcquire func(account string, takeover time.Duration)
	OnLose    func(account, reason string)
	// NoRelease, for tests only, makes Run return at the end of its context
	// without handing its leases back or removing its member key, as if the
	// process died: the leases expire after the TTL.
	NoRelease bool
}

func (o *Options) validate() error {
	if o.JS == nil {
		return fmt.Errorf("%w: no JetStream", ErrInvalid)
	}
	if !nameRe.MatchString(o.Cluster) {
		return fmt.Errorf("%w: cluster name %q must match %s", ErrInvalid, o.Cluster, nameRe)
	}
	if !nameRe.MatchString(o.Member) {
		return fmt.Errorf("%w: member id %q must match %s", ErrInvalid, o.Member, nameRe)
	}
	if o.TTL == 0 {
		o.TTL = DefaultTTL
	}
	if o.TTL < MinTTL {
		return fmt.Errorf("%w: lease TTL %v is below %v", ErrInvalid, o.TTL, MinTTL)
	}
	o.Replicas = max(o.Replicas, 1)
	seen := make(map[string]bool, len(o.Accounts))
	accounts := make([]string, 0, len(o.Accounts))
	for _, a := range o.Accounts {
		if !nameRe.MatchString(a) {
			return fmt.Errorf("%w: account %q must match %s", ErrInvalid, a, nameRe)
		}
		if !seen[a] {
			seen[a] = true
			accounts = append(accounts, a)
		}
	}
	o.Accounts = accounts
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.OnAcquire == nil {
		o.OnAcquire = func(string, time.Duration) {}
	}
	if o.OnLose == nil {
		o.OnLose = func(string, string) {}
	}
	return nil
}

// Group is one member's view of a cluster: it heartbeats, takes, renews and
// hands back leases while Run runs. Holds, Status and Stats are safe to call
// from any goroutine.
type Group struct {
	o       Options
	leases  jetstream.KeyValue
	members jetstream.KeyValue
	log     *slog.Logger
	margin  time.Duration // Holds turns false this long before the TTL runs out

	// Run's goroutine only:
	lastBeat  time.Time             // last successful heartbeat
	view      map[string]memberSeen // members seen by the members watch
	viewReady bool                  // the watch delivered its initial values

	mu   sync.Mutex
	held map[string]*lease   // leases this member holds
	seen map[string]sighting // last lease event seen per account, for takeover times
	last map[string]time.Duration

	acquisitions, losses, releases atomic.Uint64
}

// lease is a lease this member holds.
type lease struct {
	rev    uint64
	since  time.Time
	lastOK time.Time // when the last successful Create/Update was sent
}

// sighting is the last event seen for a lease key.
type sighting struct {
	op      jetstream.KeyValueOp
	member  string
	created time.Time // server time of the last put
	rev     uint64
}

// leaseValue is what a lease key holds.
type leaseValue struct {
	Member  string    `json:"member"`
	Since   time.Time `json:"since"`
	Renewed time.Time `json:"renewed"`
}

// memberSeen is a member as the members watch last saw it; seenAt is local
// time, so a member whose expiry marker was missed is dropped without
// comparing clocks.
type memberSeen struct {
	memberValue
	seenAt time.Time
}

// memberValue is what a member key holds.
type memberValue struct {
	ID        string     `json:"id"`
	Info      MemberInfo `json:"info"`
	Accounts  []string   `json:"accounts,omitempty"`
	Heartbeat time.Time  `json:"heartbeat"`
}

// Open validates o and creates the cluster's buckets, or updates them when
// they exist with another TTL or replica count (logged: every member of a
// cluster must run with the same lease_ttl).
func Open(ctx context.Context, o Options) (*Group, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	g := &Group{
		o:      o,
		log:    o.Logger.With("component", "cluster", "member", o.Member),
		margin: o.TTL / 5,
		held:   map[string]*lease{},
		seen:   map[string]sighting{},
		last:   map[string]time.Duration{},
		view:   map[string]memberSeen{},
	}
	var err error
	g.leases, err = g.ensure(ctx, jetstream.KeyValueConfig{
		Bucket:         LeasesBucket(o.Cluster),
		Description:    "simwatch account leases",
		History:        1,
		TTL:            o.TTL,
		LimitMarkerTTL: o.TTL,
		Replicas:       o.Replicas,
		Storage:        jetstream.FileStorage,
	})
	if err != nil {
		return nil, err
	}
	g.members, err = g.ensure(ctx, jetstream.KeyValueConfig{
		Bucket:         MembersBucket(o.Cluster),
		Description:    "simwatch cluster members",
		History:        1,
		TTL:            o.TTL,
		LimitMarkerTTL: o.TTL, // so the members watch sees a dead member go
		Replicas:       o.Replicas,
		Storage:        jetstream.FileStorage,
	})
	if err != nil {
		return nil, err
	}
	return g, nil
}

// ensure returns the bucket cfg names, creating it or bringing its TTL and
// replicas in line with cfg.
func (g *Group) ensure(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	for range 3 { // another member may create the bucket between our look-up and create
		kv, err := g.o.JS.KeyValue(ctx, cfg.Bucket)
		if errors.Is(err, jetstream.ErrBucketNotFound) {
			kv, err = g.o.JS.CreateKeyValue(ctx, cfg)
			if errors.Is(err, jetstream.ErrBucketExists) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("cluster: create bucket %s: %w", cfg.Bucket, err)
			}
			return kv, nil
		}
		if err != nil {
			return nil, fmt.Errorf("cluster: open bucket %s: %w", cfg.Bucket, err)
		}
		st, err := kv.Status(ctx)
		if err != nil {
			return nil, fmt.Errorf("cluster: bucket %s status: %w", cfg.Bucket, err)
		}
		replicas := cfg.Replicas
		if bs, ok := st.(*jetstream.KeyValueBucketStatus); ok {
			replicas = bs.StreamInfo().Config.Replicas
		}
		if st.TTL() == cfg.TTL && replicas == cfg.Replicas {
			return kv, nil
		}
		g.log.Warn("cluster bucket settings changed; every member of a cluster must use the same lease_ttl",
			"bucket", cfg.Bucket, "old_ttl", st.TTL(), "ttl", cfg.TTL, "old_replicas", replicas, "replicas", cfg.Replicas)
		kv, err = g.o.JS.UpdateKeyValue(ctx, cfg)
		if err != nil {
			return nil, fmt.Errorf("cluster: update bucket %s: %w", cfg.Bucket, err)
		}
		return kv, nil
	}
	return nil, fmt.Errorf("cluster: bucket %s: created and removed concurrently", cfg.Bucket)
}

// Member is this member's id.
func (g *Group) Member() string { return g.o.Member }

// TTL is the lease TTL in force.
func (g *Group) TTL() time.Duration { return g.o.TTL }

// Holds reports whether this member may act as the account's owner now: it
// holds the lease and its last successful renewal, timed from when it was
// sent, is younger than the TTL minus a margin of TTL/5. The server expires
// the lease no sooner than a TTL after it stored that renewal, so a member
// cut off from NATS stops claiming at least TTL/5 before anyone else can
// take the lease.
func (g *Group) Holds(account string) bool {
	now := g.o.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	l, ok := g.held[account]
	return ok && now.Sub(l.lastOK) < g.o.TTL-g.margin
}

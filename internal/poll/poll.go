// Package poll runs a provider's poll cycle, top-down: fetch a complete
// listing, diff it against the last committed snapshot by fingerprint,
// evaluate the rules on what changed (rules.Evaluate, outside any write
// transaction), and commit snapshot, alert state, history and events in one
// short store transaction. A cycle whose fetch fails evaluates nothing and
// moves no state.
package poll

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/simwatch/simwatch/internal/fleet"
	"github.com/simwatch/simwatch/internal/rules"
	"github.com/simwatch/simwatch/internal/store"
)

// Source is a provider account that can list its whole fleet.
type Source interface {
	Fetch(ctx context.Context) (fleet.Snapshot, error)
}

// RuleUnhealthy names the events a failing provider produces.
const RuleUnhealthy = "provider_unhealthy"

// Options configures a Poller.
type Options struct {
	Provider string
	Source   Source
	// Lister, when set, lists the fleet instead of Source.Fetch, decoding
	// only the cards that changed; nil uses Source when it is a Lister.
	Lister Lister
	// Finder, when set, confirms removals (see confirmRemovals); nil uses
	// Source when it is a Finder.
	Finder Finder
	Store  *store.Store
	// Rules returns the rule set to evaluate; it is called once per cycle so
	// that a reloaded set takes effect at the next cycle.
	Rules func() *rules.Set
	// UnhealthyAfter failed cycles in a row emit a provider_unhealthy event;
	// zero means 3.
	UnhealthyAfter int
	Now            func() time.Time
	Logger         *slog.Logger
	// Committed is called after each committed cycle, e.g. to wake the outbox relay.
	Committed func()
	// Daily, when set, is the provider's daily usage API: history is
	// backfilled from it and kept up to date. Without it, history is derived
	// from successive listings.
	Daily DailyFunc
	// ClockEvery is how often rules that read the clock or the usage
	// history are evaluated on entities that did not change; zero means
	// every cycle. Changed entities are always evaluated.
	ClockEvery time.Duration
	// RebuildMin is the fewest changed cards for which a cycle rebuilds
	// the card snapshot in bounded transactions instead of writing them in
	// its own (see store.Rebuild); zero means 20 000, or a quarter of the
	// snapshot when that is more (a rebuild rewrites all of it).
	RebuildMin int
	// Commit, when set, runs each of the poller's write transactions
	// instead of Store.Update: a cluster replicates them (see replica) and
	// never rebuilds the snapshot beside the live one. An error wrapping
	// ErrSuperseded means the state moved elsewhere: the poller reloads it.
	Commit func(ctx context.Context, fn func(*store.Tx) error) error
}

// ErrSuperseded says a commit was refused because the provider's state was
// changed by someone else (another watcher took the account over, or wrote
// to it) since the poller loaded it: the cycle is not a provider failure,
// and the next one starts from the state as it now is.
var ErrSuperseded = errors.New("the provider's state changed elsewhere")

// Poller runs cycles for one provider. Cycle must not be called concurrently.
type Poller struct {
	o Options
	// cardFP holds the fingerprints of the stored snapshot's cards, of
	// kind fpKind; nil until loaded.
	cardFP map[string]uint64
	fpKind string
	poolFP map[string]uint64
	// state is the evaluation state as committed: alerts, missing
	// entities, rule set hash, last clock evaluation.
	state rules.State
	// failures counts failed cycles in a row (fetch or commit), in memory
	// because a failing commit may mean the store cannot record it;
	// Failures reads it from other goroutines.
	failures atomic.Int64
	// declared is when failures reached UnhealthyAfter, and lastErr the
	// last failure's error: the outage's identity and cause, kept until an
	// event about it is committed.
	declared time.Time
	lastErr  string
}

// New returns a poller. Its snapshot fingerprints and state are loaded from
// the store on the first cycle.
func New(o Options) *Poller {
	if o.UnhealthyAfter <= 0 {
		o.UnhealthyAfter = 3
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Committed == nil {
		o.Committed = func() {}
	}
	if l, ok := o.Source.(Lister); ok && o.Lister == nil {
		o.Lister = l
	}
	if f, ok := o.Source.(Finder); ok && o.Finder == nil {
		o.Finder = f
	}
	return &Poller{o: o}
}

// Result summarises a committed cycle.
type Result struct {
	Cards, Pools     int
	Changed, Removed int // cards and pools
	// Missing counts cards and pools absent from this listing for the
	// first time: one more absence removes them.
	Missing int
	Events  int
	Firing  int // active alerts in firing state after the cycle
	// Stage times: Fetch is the whole listing (requests and decoding),
	// Diff the fingerprinting, Eval the rules (reading what they need),
	// Commit the write transaction including bbolt's write to disk.
	Fetch, Diff, Eval, Commit time.Duration
	// ClockRules reports whether this cycle evaluated clock and history
	// rules on unchanged entities.
	ClockRules bool
}

// Cycle runs one poll cycle: fetch → diff → evaluate → commit.
func (p *Poller) Cycle(ctx context.Context) (Result, error) {
	now := p.o.Now().UTC()
	if err := p.load(); err != nil {
		// An unreadable snapshot fails every cycle until repaired: counted
		// like a failing provider, so that provider_unhealthy says so.
		return Result{}, p.fail(ctx, now, err)
	}
	start := time.Now()
	l, kind, err := p.list(ctx)
	res := Result{Fetch: time.Since(start)}
	if err != nil {
		return Result{}, p.fail(ctx, now, fmt.Errorf("poll %s: %w", p.o.Provider, err))
	}
	t := time.Now()
	cards, err := diffCards(&l, p.cardFP, kind == p.fpKind, p.state.Missing)
	if err != nil {
		return res, p.fail(ctx, now, fmt.Errorf("poll %s: %w", p.o.Provider, err))
	}
	pools := diff(l.Pools, poolID, encodePool, p.poolFP)
	res.Diff = time.Since(t)

	hold := p.confirmRemovals(ctx, cards.absent)

	t = time.Now()
	in, out, err := p.evaluate(ctx, now, &cards, pools, hold)
	res.Eval = time.Since(t)
	if err != nil {
		return res, fmt.Errorf("poll %s: evaluate: %w", p.o.Provider, err)
	}
	for _, e := range out.Errors {
		p.o.Logger.Warn("rule evaluation failed", "provider", p.o.Provider, "err", e)
	}

	t = time.Now()
	// A cycle that changes much of the fleet rebuilds the snapshot beside
	// the live one in bounded transactions; its commit swaps it in.
	threshold := p.o.RebuildMin
	if threshold <= 0 {
		threshold = max(20_000, len(p.cardFP)/4)
	}
	rebuilt := len(cards.changed) >= threshold && p.o.Commit == nil
	if rebuilt {
		removed := make(map[string]bool, len(out.RemovedCards))
		for _, id := range out.RemovedCards {
			removed[id] = true
		}
		err = p.o.Store.Rebuild(p.o.Provider, cards.changed, cards.fps, removed)
	}
	var nEvents int
	if err == nil {
		nEvents, err = p.commit(ctx, now, kind, len(l.Seen), len(l.Pools), in, &out, &cards, rebuilt, pools)
	}
	res.Commit = time.Since(t)
	if errors.Is(err, ErrSuperseded) {
		p.Reset()
		return res, fmt.Errorf("poll %s: commit: %w", p.o.Provider, err)
	}
	if err != nil {
		// A commit that fails (disk full, file read-only or damaged) is a
		// failed cycle like a failing provider: counted, and raising
		// provider_unhealthy once the store takes a small write again.
		return res, p.fail(ctx, now, fmt.Errorf("poll %s: commit: %w", p.o.Provider, err))
	}
	// Only a committed cycle moves the state and becomes the base of the next diff.
	p.state.Apply(&out)
	p.noteAlertCounts()
	if kind != p.fpKind {
		// Every card was decoded and recorded anew; absent ones keep a
		// fingerprint of the old kind, which never matches again.
		p.fpKind = kind
	}
	cards.apply(p.cardFP, out.RemovedCards)
	p.poolFP = pools.next(p.poolFP, out.RemovedPools)
	p.failures.Store(0)

	res.Cards, res.Pools = len(l.Seen), len(l.Pools)
	res.Changed = len(cards.changed) + len(pools.changed)
	res.Removed = len(out.RemovedCards) + len(out.RemovedPools)
	for _, m := range out.Missing {
		if m {
			res.Missing++
		}
	}
	res.Events, res.ClockRules = nEvents, out.Clock
	for _, a := range p.state.Alerts {
		if a.State == rules.StateFiring {
			res.Firing++
		}
	}
	p.o.Committed()
	return res, nil
}

// update runs fn as one write transaction: through Options.Commit when
// set, else Store.Update.
func (p *Poller) update(ctx context.Context, fn func(*store.Tx) error) error {
	if p.o.Commit != nil {
		return p.o.Commit(ctx, fn)
	}
	return p.o.Store.Update(fn)
}

// Reset forgets what the poller holds in memory (fingerprints, evaluation
// state, failure count), so that its next cycle loads them from the store:
// after another watcher wrote the provider's state. Not concurrently with
// Cycle.
func (p *Poller) Reset() {
	p.cardFP, p.poolFP, p.fpKind = nil, nil, ""
	p.state = rules.State{}
	p.failures.Store(0)
	p.declared, p.lastErr = time.Time{}, ""
}

// fail counts a failed cycle (unless ctx ended: a shutdown is no failure)
// and returns its error.
func (p *Poller) fail(ctx context.Context, now time.Time, err error) error {
	if ctx.Err() == nil {
		if uerr := p.failed(ctx, now, err); uerr != nil {
			return errors.Join(err, uerr)
		}
	}
	return err
}

// load reads the snapshot's fingerprints and the evaluation state from the
// store, once: afterwards the poller keeps them in memory, as committed.
// Cards are known by the fingerprint recorded when they were listed; a
// store written before those were recorded knows its cards by id only, and
// its first cycle decodes every card once.
func (p *Poller) load() error {
	if p.cardFP != nil {
		return nil
	}
	cards, pools := map[string]uint64{}, map[string]uint64{}
	var state rules.State
	var kind string
	err := p.o.Store.View(func(tx *store.Tx) error {
		pt, err := tx.Provider(p.o.Provider)
		if err != nil {
			return err
		}
		recorded, err := pt.ForEachCardFP(func(id string, fp uint64) { cards[id] = fp })
		if err != nil {
			return err
		}
		if !recorded {
			if err := pt.ForEachCardID(func(id string) { cards[id] = 0 }); err != nil {
				return err
			}
		}
		if err := pt.ForEachPool(func(id string, enc []byte) error { pools[id] = fleet.Fingerprint(enc); return nil }); err != nil {
			return err
		}
		meta, err := pt.Meta()
		if err != nil {
			return err
		}
		state.RulesHash, state.LastClockEval = meta.RulesHash, meta.LastClockEval
		if recorded {
			kind = meta.FPKind
		}
		if state.Alerts, err = pt.Alerts(); err != nil {
			return err
		}
		state.Missing, err = pt.Missing()
		return err
	})
	if err != nil {
		return fmt.Errorf("poll %s: load snapshot: %w", p.o.Provider, err)
	}
	p.cardFP, p.fpKind, p.poolFP, p.state = cards, kind, pools, state
	return nil
}

// evaluate reads what the rules need (the previous version of what changed
// or went missing, usage history, first IMEIs) in one read transaction and
// runs rules.Evaluate.
// Cards in hold are absent but not to be removed yet (see confirmRemovals).
func (p *Poller) evaluate(ctx context.Context, now time.Time, cards *cardDiff, pools diffed[fleet.Pool], hold map[string]bool) (rules.Input, rules.Output, error) {
	in := rules.Input{Ctx: ctx, Provider: p.o.Provider, Now: now, State: p.state, SnapshotUsage: p.o.Daily == nil, ClockEvery: p.o.ClockEvery}
	var out rules.Output
	err := p.o.Store.View(func(tx *store.Tx) error {
		pt, err := tx.Provider(p.o.Provider)
		if err != nil {
			return err
		}
		var readErr error
		if in.Cards, err = cardChanges(pt, cards, hold, &readErr); err != nil {
			return err
		}
		poolMissing := func(id string) bool { return p.state.Missing[rules.EntityKey(fleet.EntityPool, id)] }
		if in.Pools, err = changes(pools, pt.Pool, poolID, poolMissing); err != nil {
			return err
		}
		meta, err := pt.Meta()
		if err != nil {
			return err
		}
		in.HistoryThrough = meta.HistoryThrough
		in.History = func(entity, id string) fleet.History {
			key := historyKey(entity, id)
			h, err := pt.History(key)
			if err != nil {
				p.o.Logger.Warn("usage history unreadable", "provider", p.o.Provider, "key", key, "err", err)
			}
			return h
		}
		in.FirstIMEI = pt.FirstIMEI
		out = p.o.Rules().Evaluate(in)
		if readErr != nil {
			return readErr
		}
		// Stopped (the context ended mid-evaluation): a partial output
		// must not be committed, so the cycle fails.
		return out.Stopped
	})
	return in, out, err
}

func historyKey(entity, id string) string {
	if entity == fleet.EntityPool {
		return store.PoolHistoryKey(id)
	}
	return store.CardHistoryKey(id)
}

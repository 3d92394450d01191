// Package poll runs a provider's poll cycle: fetch a complete listing, diff it
// against the last successful snapshot by fingerprint, evaluate the rules on
// what changed, and commit snapshot, alert state and events in one store
// transaction. A cycle whose fetch fails evaluates nothing and moves no state.
package poll

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/simwatch/simwatch/internal/event"
	"github.com/simwatch/simwatch/internal/fleet"
	"github.com/simwatch/simwatch/internal/rules"
	"github.com/simwatch/simwatch/internal/silence"
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
	Store    *store.Store
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
}

// Poller runs cycles for one provider. Cycle must not be called concurrently.
type Poller struct {
	o        Options
	cardFP   map[string]uint64 // fingerprints of the stored snapshot
	poolFP   map[string]uint64
	alerts   map[string]*rules.Alert // the stored active alerts, kept between cycles
	failures int
}

// New returns a poller. Its fingerprints are loaded from the store on the first cycle.
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
	return &Poller{o: o}
}

// Result summarises a committed cycle.
type Result struct {
	Cards, Pools     int
	Changed, Removed int // cards and pools
	Events           int
	Firing           int // active alerts in firing state after the cycle
	// Stage times: Fetch is the whole listing (requests and decoding),
	// Diff the fingerprinting, Eval the rules and writes inside the
	// transaction, Commit the whole transaction (Eval included, and bbolt's
	// write to disk).
	Fetch, Diff, Eval, Commit time.Duration
	// ClockRules reports whether this cycle evaluated clock and history
	// rules on unchanged entities.
	ClockRules bool
}

// Cycle runs one poll cycle.
func (p *Poller) Cycle(ctx context.Context) (Result, error) {
	now := p.o.Now().UTC()
	start := time.Now()
	snap, err := p.o.Source.Fetch(ctx)
	fetched := time.Since(start)
	if err != nil {
		err = fmt.Errorf("poll %s: %w", p.o.Provider, err)
		if ctx.Err() == nil {
			if uerr := p.failed(now, err); uerr != nil {
				return Result{}, errors.Join(err, uerr)
			}
		}
		return Result{}, err
	}
	if p.cardFP == nil {
		if err := p.loadFingerprints(); err != nil {
			return Result{}, err
		}
	}
	daily := p.fetchDaily(ctx, now, snap.Cards)
	res, err := p.commit(now, snap, daily)
	res.Fetch = fetched
	if err != nil {
		return res, fmt.Errorf("poll %s: commit: %w", p.o.Provider, err)
	}
	p.failures = 0
	p.o.Committed()
	return res, nil
}

func (p *Poller) loadFingerprints() error {
	cards, pools := map[string]uint64{}, map[string]uint64{}
	err := p.o.Store.View(func(tx *store.Tx) error {
		pt, err := tx.Provider(p.o.Provider)
		if err != nil {
			return err
		}
		if err := pt.ForEachCard(func(id string, enc []byte) error { cards[id] = store.Fingerprint(enc); return nil }); err != nil {
			return err
		}
		return pt.ForEachPool(func(id string, enc []byte) error { pools[id] = store.Fingerprint(enc); return nil })
	})
	if err != nil {
		return fmt.Errorf("poll %s: load snapshot: %w", p.o.Provider, err)
	}
	p.cardFP, p.poolFP = cards, pools
	return nil
}

// change is one entity of the new listing that differs from the snapshot.
type change[T any] struct {
	cur *T
	enc []byte
	fp  uint64
}

// diff splits a listing into changed (or new) entities, unchanged ones, and
// the ids of stored entities the listing no longer has.
func diff[T any](items []T, id func(*T) string, encode func([]byte, *T) []byte, fps map[string]uint64) (changed []change[T], unchanged []*T, removed []string, next map[string]uint64) {
	next = make(map[string]uint64, len(items))
	unchanged = make([]*T, 0, len(items))
	var buf []byte // reused: only a changed entity's encoding is kept
	for i := range items {
		it := &items[i]
		key := id(it)
		if _, dup := next[key]; dup {
			continue // a page boundary shifted during the listing; keep the first
		}
		buf = encode(buf[:0], it)
		fp := store.Fingerprint(buf)
		next[key] = fp
		if old, ok := fps[key]; ok && old == fp {
			unchanged = append(unchanged, it)
			continue
		}
		changed = append(changed, change[T]{cur: it, enc: append([]byte(nil), buf...), fp: fp})
	}
	for key := range fps {
		if _, ok := next[key]; !ok {
			removed = append(removed, key)
		}
	}
	return changed, unchanged, removed, next
}

func cardID(c *fleet.Card) string                  { return c.ID }
func poolID(p *fleet.Pool) string                  { return p.ID }
func encodeCard(dst []byte, c *fleet.Card) []byte  { return store.EncodeCard(dst, c) }
func encodePool(dst []byte, pl *fleet.Pool) []byte { return append(dst, store.EncodePool(pl)...) }

// entityStore is how one kind of entity (cards or pools) is read, written and
// evaluated within a cycle's transaction.
type entityStore[T any] struct {
	id    func(*T) string
	get   func(id string) (T, bool, error)
	put   func(id string, enc []byte) error
	del   func(id string) error
	eval  func(prev, cur *T)
	same  func(cur *T, all bool)
	clock bool // some condition rule reads the clock
	// usage, when set, records the usage between two listings of an entity.
	usage func(prev, cur *T) error
	// seen, when set, records what must be remembered of a new or changed entity.
	seen func(cur *T) error
}

// apply evaluates and writes what changed, evaluates and deletes what is
// gone, and evaluates unchanged entities only when the clock or a new rule
// set asks for it.
func (s entityStore[T]) apply(changed []change[T], removed []string, same []*T, full bool) error {
	for _, ch := range changed {
		id := s.id(ch.cur)
		prev, ok, err := s.get(id)
		if err != nil {
			return err
		}
		if s.seen != nil {
			if err := s.seen(ch.cur); err != nil {
				return err
			}
		}
		if ok {
			if s.usage != nil {
				if err := s.usage(&prev, ch.cur); err != nil {
					return err
				}
			}
			s.eval(&prev, ch.cur)
		} else {
			s.eval(nil, ch.cur)
		}
		if err := s.put(id, ch.enc); err != nil {
			return err
		}
	}
	for _, id := range removed {
		prev, _, err := s.get(id)
		if err != nil {
			return err
		}
		s.eval(&prev, nil)
		if err := s.del(id); err != nil {
			return err
		}
	}
	if full || s.clock {
		for _, cur := range same {
			s.same(cur, full)
		}
	}
	return nil
}

func (p *Poller) commit(now time.Time, snap fleet.Snapshot, daily *dailyUsage) (Result, error) {
	set := p.o.Rules()
	t0 := time.Now()
	cChanged, cSame, cRemoved, cardFP := diff(snap.Cards, cardID, encodeCard, p.cardFP)
	pChanged, pSame, pRemoved, poolFP := diff(snap.Pools, poolID, encodePool, p.poolFP)
	diffed := time.Now()
	res := Result{Cards: len(cardFP), Pools: len(poolFP),
		Changed: len(cChanged) + len(pChanged), Removed: len(cRemoved) + len(pRemoved)}
	log := p.o.Logger.With("provider", p.o.Provider)

	err := p.o.Store.Update(func(tx *store.Tx) error {
		pt, err := tx.Provider(p.o.Provider)
		if err != nil {
			return err
		}
		meta, err := pt.Meta()
		if err != nil {
			return err
		}
		// Active alerts stay in memory between cycles, so a cycle reads
		// none and writes only those it changed; a failed commit drops the
		// copy and the next cycle reads the store again.
		if p.alerts == nil {
			if p.alerts, err = pt.Alerts(); err != nil {
				return err
			}
		}
		alerts := p.alerts
		full := meta.RulesHash != set.Hash // new or edited rules see the whole fleet once
		clock := full || p.o.ClockEvery <= 0 || now.Sub(meta.LastClockEval) >= p.o.ClockEvery
		if clock {
			meta.LastClockEval = now
		}
		res.ClockRules = clock
		today := fleet.DayOf(now)
		if daily != nil {
			if err := writeDaily(pt, daily, snap.Cards, today); err != nil {
				return err
			}
			meta.HistoryThrough = daily.through
		}
		cy := set.NewCycle(p.o.Provider, now, alerts)
		cy.ReadHistory(func(entity, id string) fleet.History {
			key := store.CardHistoryKey(id)
			if entity == fleet.EntityPool {
				key = store.PoolHistoryKey(id)
			}
			h, err := pt.History(key)
			if err != nil {
				log.Warn("usage history unreadable", "key", key, "err", err)
			}
			return h
		})
		var cardUsage func(prev, cur *fleet.Card) error
		var poolUsage func(prev, cur *fleet.Pool) error
		if p.o.Daily == nil {
			cardUsage = func(prev, cur *fleet.Card) error {
				return addSnapshotUsage(pt, store.CardHistoryKey(cur.ID), prev.FlowUsed, cur.FlowUsed, today)
			}
			poolUsage = func(prev, cur *fleet.Pool) error {
				return addSnapshotUsage(pt, store.PoolHistoryKey(cur.ID), prev.FlowUsed, cur.FlowUsed, today)
			}
		}

		cy.ReadFirstIMEI(pt.FirstIMEI)
		cards := entityStore[fleet.Card]{id: cardID, get: pt.Card, put: pt.PutCard, del: pt.DeleteCard,
			eval: cy.Card, same: cy.CardUnchanged, clock: clock && set.HasClockRules(fleet.EntityCard), usage: cardUsage,
			seen: func(c *fleet.Card) error { return pt.NoteIMEI(c.ID, c.IMEI) }}
		if err := cards.apply(cChanged, cRemoved, cSame, full); err != nil {
			return err
		}
		pools := entityStore[fleet.Pool]{id: poolID, get: pt.Pool, put: pt.PutPool, del: pt.DeletePool,
			eval: cy.Pool, same: cy.PoolUnchanged, clock: clock && set.HasClockRules(fleet.EntityPool), usage: poolUsage}
		if err := pools.apply(pChanged, pRemoved, pSame, full); err != nil {
			return err
		}
		events, writes, evalErrs := cy.Finish()
		for _, e := range evalErrs {
			log.Warn("rule evaluation failed", "err", e)
		}
		for key, a := range writes {
			if err := pt.PutAlert(key, a); err != nil {
				return err
			}
		}
		for _, a := range alerts {
			if a.State == rules.StateFiring {
				res.Firing++
			}
		}
		if meta.Unhealthy {
			events = append(events, p.healthEvent(event.KindResolved, now, meta, "provider "+p.o.Provider+" is answering again"))
			meta.Unhealthy = false
		}
		silences, err := p.o.Store.SilencesTx(tx)
		if err != nil {
			return err
		}
		silence.Mark(events, silences, now)
		if err := tx.AppendOutbox(events); err != nil {
			return err
		}
		res.Events = len(events)
		meta.Cycles++
		meta.LastSuccess = now
		meta.Failures = 0
		meta.LastError = ""
		meta.RulesHash = set.Hash
		meta.Cards, meta.Pools = res.Cards, res.Pools
		res.Eval = time.Since(diffed)
		return pt.PutMeta(meta)
	})
	res.Diff, res.Commit = diffed.Sub(t0), time.Since(diffed)
	if err != nil {
		p.alerts = nil // the cycle changed them in memory; the store has the truth
		return res, err
	}
	// Only a committed snapshot becomes the base of the next diff.
	p.cardFP, p.poolFP = cardFP, poolFP
	return res, nil
}

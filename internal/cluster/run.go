package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Reasons passed to OnLose.
const (
	LoseTaken     = "taken"     // another member holds the lease now
	LoseExpired   = "expired"   // the lease expired or could not be renewed for the TTL
	LoseDeleted   = "deleted"   // someone deleted the lease key
	LoseRebalance = "rebalance" // handed back so another member gets its share
	LoseShutdown  = "shutdown"  // handed back because Run is ending
)

// Run keeps this member in the cluster until ctx ends: it heartbeats, takes
// free leases up to its share, renews what it holds, hands back leases above
// its share, and at the end hands every lease back and removes its member key
// so the others take over at once. OnAcquire and OnLose are called from Run's
// goroutine. Run must be called once.
func (g *Group) Run(ctx context.Context) {
	wctx, stopWatches := context.WithCancel(ctx)
	var wg sync.WaitGroup
	leaseCh := make(chan watchEvent, 64)
	memberCh := make(chan watchEvent, 64)
	wg.Go(func() { g.follow(wctx, g.leases, leaseCh) })
	wg.Go(func() { g.follow(wctx, g.members, memberCh) })
	defer func() {
		stopWatches()
		wg.Wait()
	}()

	tick := time.NewTicker(g.o.TTL / 10)
	defer tick.Stop()
	g.maintain(ctx)
	for {
		select {
		case <-ctx.Done():
			g.shutdown(ctx)
			return
		case ev := <-leaseCh:
			if !ev.reset && g.observe(ev.e) {
				g.round(ctx)
			}
		case ev := <-memberCh:
			if g.seeMember(ev) {
				g.round(ctx)
			}
		case <-tick.C:
			g.maintain(ctx)
			g.round(ctx)
		}
	}
}

// opTimeout bounds each batch of KV requests: waiting longer than a part of
// the TTL for a renewal is pointless.
func (g *Group) opTimeout() time.Duration { return min(g.o.TTL/4, 5*time.Second) }

// maintain heartbeats and renews what is due, all at once so one slow
// request does not delay the others, and drops leases whose renewal failed
// for the whole TTL.
func (g *Group) maintain(ctx context.Context) {
	due := g.o.TTL / 3
	now := g.o.Now()
	ctx, cancel := context.WithTimeout(ctx, g.opTimeout())
	defer cancel()
	var wg sync.WaitGroup
	beat := false
	if g.lastBeat.IsZero() || now.Sub(g.lastBeat) >= due {
		wg.Go(func() { beat = g.heartbeat(ctx, now) })
	}
	g.mu.Lock()
	var renew []string
	for acc, l := range g.held {
		if now.Sub(l.lastOK) >= due {
			renew = append(renew, acc)
		}
	}
	g.mu.Unlock()
	slices.Sort(renew)
	lost := make([]renewResult, len(renew))
	for i, acc := range renew {
		wg.Go(func() { lost[i] = g.renew(ctx, acc, now) })
	}
	wg.Wait()
	if beat {
		g.lastBeat = now
	}
	for _, r := range lost {
		if r.lost != "" {
			g.lose(r.acc, r.lost, r.err)
		}
	}
}

func (g *Group) heartbeat(ctx context.Context, now time.Time) bool {
	data, _ := json.Marshal(memberValue{ID: g.o.Member, Info: g.o.Info, Accounts: g.o.Accounts, Heartbeat: now})
	if _, err := g.members.Put(ctx, g.o.Member, data); err != nil {
		g.log.Warn("cluster: heartbeat failed", "err", err)
		return false
	}
	return true
}

// renewResult says why a renewal lost its lease ("" if it did not).
type renewResult struct {
	acc, lost string
	err       error
}

// renew extends one held lease at the revision this member last wrote. It
// runs beside other renewals; the caller reports losses on Run's goroutine.
func (g *Group) renew(ctx context.Context, acc string, now time.Time) renewResult {
	g.mu.Lock()
	l, ok := g.held[acc]
	if !ok {
		g.mu.Unlock()
		return renewResult{}
	}
	rev, since, lastOK := l.rev, l.since, l.lastOK
	g.mu.Unlock()

	data, _ := json.Marshal(leaseValue{Member: g.o.Member, Since: since, Renewed: now})
	newRev, err := g.leases.Update(ctx, acc, data, rev)
	if err == nil {
		g.mu.Lock()
		if l, ok := g.held[acc]; ok && l.rev == rev {
			l.rev, l.lastOK = newRev, now
		}
		g.mu.Unlock()
		return renewResult{}
	}
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyNotFound) {
		e, gerr := g.leases.Get(ctx, acc)
		switch {
		case gerr == nil && g.mine(e, since):
			// Still ours: an earlier renewal landed but its reply was lost
			// (carry on from its revision), or a server without quorum
			// refuses our revision while a proposal is in flight. Either
			// way nothing is confirmed: lastOK stays, and the lease is lost
			// below once that is a TTL old.
			g.mu.Lock()
			if l, ok := g.held[acc]; ok {
				l.rev = e.Revision()
			}
			g.mu.Unlock()
		case gerr == nil:
			return renewResult{acc, LoseTaken, err}
		case errors.Is(gerr, jetstream.ErrKeyNotFound):
			return renewResult{acc, LoseExpired, err}
		default:
			err = fmt.Errorf("%w (and reading it back: %w)", err, gerr)
		}
	}
	if now.Sub(lastOK) >= g.o.TTL {
		return renewResult{acc, LoseExpired, err}
	}
	g.log.Warn("cluster: lease renewal failed", "provider", acc, "err", err)
	return renewResult{}
}

// mine reports whether e is this member's lease taken at since.
func (g *Group) mine(e jetstream.KeyValueEntry, since time.Time) bool {
	var v leaseValue
	return json.Unmarshal(e.Value(), &v) == nil && v.Member == g.o.Member && v.Since.Equal(since)
}

// lose drops a lease this member can no longer claim.
func (g *Group) lose(acc, reason string, err error) {
	g.mu.Lock()
	_, ok := g.held[acc]
	delete(g.held, acc)
	g.mu.Unlock()
	if !ok {
		return
	}
	g.losses.Add(1)
	g.log.Warn("cluster: lease lost", "provider", acc, "reason", reason, "err", err)
	g.o.OnLose(acc, reason)
}

// release hands a held lease back in order, so another member can take it
// at once. Holds turns false before the lease is deleted.
func (g *Group) release(ctx context.Context, acc, reason string) {
	g.mu.Lock()
	l, ok := g.held[acc]
	delete(g.held, acc)
	g.mu.Unlock()
	if !ok {
		return
	}
	g.releases.Add(1)
	g.o.OnLose(acc, reason)
	ctx, cancel := context.WithTimeout(ctx, g.opTimeout())
	defer cancel()
	if err := g.leases.Delete(ctx, acc, jetstream.LastRevision(l.rev)); err != nil {
		// The lease expires by itself within the TTL.
		g.log.Warn("cluster: hand back lease", "provider", acc, "reason", reason, "err", err)
		return
	}
	g.log.Info("cluster: lease handed back", "provider", acc, "reason", reason)
}

// shutdown hands every lease back and leaves the member list, unless the
// NoRelease test hook simulates a crash.
func (g *Group) shutdown(ctx context.Context) {
	if g.o.NoRelease {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), min(g.o.TTL/2, 10*time.Second))
	defer cancel()
	g.mu.Lock()
	accs := make([]string, 0, len(g.held))
	for acc := range g.held {
		accs = append(accs, acc)
	}
	g.mu.Unlock()
	slices.Sort(accs)
	for _, acc := range accs {
		g.release(ctx, acc, LoseShutdown)
	}
	if err := g.members.Delete(ctx, g.o.Member); err != nil {
		g.log.Warn("cluster: leave member list", "err", err)
	}
}

// observe handles a lease event from the watch: it records it, drops a held
// lease the event shows is no longer ours, and returns whether the event may
// change what this member should take (a lease freed or changing hands).
func (g *Group) observe(e jetstream.KeyValueEntry) bool {
	if e == nil { // end of the initial values
		return true
	}
	changed, lost := g.sight(e)
	if lost != "" {
		g.lose(e.Key(), lost, errors.New("seen in the leases bucket"))
	}
	return changed
}

// sight records a lease event for takeover times. It returns whether the
// event frees the lease or moves it to another member, and the reason a held
// lease is lost ("" if it is not).
func (g *Group) sight(e jetstream.KeyValueEntry) (changed bool, lost string) {
	acc := e.Key()
	g.mu.Lock()
	defer g.mu.Unlock()
	s, l := g.seen[acc], g.held[acc]
	if e.Revision() <= s.rev {
		return false, ""
	}
	newer := l != nil && e.Revision() > l.rev
	if e.Operation() == jetstream.KeyValuePut {
		var v leaseValue
		_ = json.Unmarshal(e.Value(), &v)
		changed = s.op != jetstream.KeyValuePut || s.member != v.Member
		g.seen[acc] = sighting{op: jetstream.KeyValuePut, member: v.Member, created: e.Created(), rev: e.Revision()}
		if newer && v.Member != g.o.Member {
			lost = LoseTaken
		}
		return changed, lost
	}
	s.op, s.rev = e.Operation(), e.Revision()
	g.seen[acc] = s
	if newer {
		lost = LoseDeleted
		if e.Operation() == jetstream.KeyValuePurge {
			lost = LoseExpired
		}
	}
	return true, lost
}

// takeover is the time since the previous holder's last renewal when acc
// was taken after an expiry, 0 when it was free or handed back in order.
func (g *Group) takeover(acc string, now time.Time) time.Duration {
	g.mu.Lock()
	s := g.seen[acc]
	g.mu.Unlock()
	if s.created.IsZero() || s.member == g.o.Member {
		return 0
	}
	age := max(now.Sub(s.created), 0)
	switch s.op {
	case jetstream.KeyValuePurge: // the server's expiry marker (or a purge)
		return age
	case jetstream.KeyValuePut:
		// Gone without a delete we saw: it expired if it outlived the TTL.
		if age >= g.o.TTL {
			return age
		}
	}
	return 0
}

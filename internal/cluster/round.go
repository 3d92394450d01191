package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// leaseEntry is a live lease read from the bucket.
type leaseEntry struct {
	leaseValue
	rev     uint64
	created time.Time
}

// seeMember applies a members watch event to the view and reports whether
// the set of members changed.
func (g *Group) seeMember(ev watchEvent) bool {
	switch {
	case ev.reset:
		clear(g.view)
		g.viewReady = false
		return false
	case ev.e == nil:
		g.viewReady = true
		return true
	}
	id := ev.e.Key()
	_, had := g.view[id]
	if ev.e.Operation() != jetstream.KeyValuePut {
		delete(g.view, id)
		return had
	}
	var m memberValue
	if json.Unmarshal(ev.e.Value(), &m) != nil {
		m = memberValue{} // unreadable: counted as a member that holds no account
	}
	g.view[id] = memberSeen{memberValue: m, seenAt: g.o.Now()}
	return !had
}

// eligible maps the live members that can hold accounts, this one included,
// to their accounts. A member is live while its key is there; one not seen
// for longer than the TTL plus a heartbeat period is dropped even without its
// marker.
func (g *Group) eligible(now time.Time) map[string][]string {
	out := map[string][]string{g.o.Member: g.o.Accounts}
	for id, m := range g.view {
		if len(m.Accounts) > 0 && now.Sub(m.seenAt) < g.o.TTL+g.o.TTL/3 {
			out[id] = m.Accounts
		}
	}
	return out
}

// round takes free leases up to this member's share and hands back one lease
// above it. It does nothing until the members watch has delivered the
// member list: without it the share is unknown.
func (g *Group) round(ctx context.Context) {
	if len(g.o.Accounts) == 0 || !g.viewReady {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, g.opTimeout())
	defer cancel()
	members := g.eligible(g.o.Now())
	leases, err := g.readLeasesOf(ctx, members)
	if err != nil {
		g.log.Debug("cluster: read leases", "err", err)
		return
	}
	g.mu.Lock()
	var lost []string
	for acc, l := range g.held {
		if le, ok := leases[acc]; ok && le.Member != g.o.Member && le.rev > l.rev {
			lost = append(lost, acc)
		}
	}
	g.mu.Unlock()
	for _, acc := range lost {
		g.lose(acc, LoseTaken, errors.New("another member holds it"))
	}

	holding := map[string]int{}
	for _, l := range leases {
		holding[l.Member]++
	}
	// below lists the members under their share: they would take acc.
	below := func(acc string) bool {
		for id, accs := range members {
			if id != g.o.Member && holding[id] < shareOf(accs, len(members)) && slices.Contains(accs, acc) {
				return true
			}
		}
		return false
	}
	share := shareOf(g.o.Accounts, len(members))
	for _, acc := range g.order() {
		g.mu.Lock()
		held := len(g.held)
		_, mine := g.held[acc] // gone from the bucket: renew will find out
		g.mu.Unlock()
		if _, taken := leases[acc]; taken || mine {
			continue
		}
		// Above the share only for an account no other member would take
		// (members configured with different providers): never leave one
		// unpolled.
		if held < share || !below(acc) {
			g.acquire(ctx, acc)
		}
	}
	// Hand one lease back when above the share and a live member below its
	// share can poll it; one per round, so a stale member count does not
	// make leases flap.
	g.mu.Lock()
	held := len(g.held)
	g.mu.Unlock()
	if held > share {
		if acc := g.releasable(below); acc != "" {
			g.release(ctx, acc, LoseRebalance)
		}
	}
}

// shareOf is how many of accs a member may hold among n members that can
// hold accounts.
func shareOf(accs []string, n int) int { return (len(accs) + n - 1) / n }

// order is this member's accounts rotated by a hash of its id, so members
// racing for free leases start at different accounts.
func (g *Group) order() []string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(g.o.Member))
	n := len(g.o.Accounts)
	k := int(h.Sum32() % uint32(n))
	return append(append([]string{}, g.o.Accounts[k:]...), g.o.Accounts[:k]...)
}

// releasable picks, among held leases ok accepts, the one taken last.
func (g *Group) releasable(ok func(string) bool) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var pick string
	var since time.Time
	for acc, l := range g.held {
		if !ok(acc) {
			continue
		}
		if pick == "" || l.since.After(since) || (l.since.Equal(since) && acc > pick) {
			pick, since = acc, l.since
		}
	}
	return pick
}

// acquire tries to create acc's lease.
func (g *Group) acquire(ctx context.Context, acc string) bool {
	now := g.o.Now()
	data, _ := json.Marshal(leaseValue{Member: g.o.Member, Since: now, Renewed: now})
	rev, err := g.leases.Create(ctx, acc, data)
	if err != nil {
		if !errors.Is(err, jetstream.ErrKeyExists) {
			g.log.Debug("cluster: take lease", "provider", acc, "err", err)
		}
		return false
	}
	takeover := g.takeover(acc, now)
	g.mu.Lock()
	g.held[acc] = &lease{rev: rev, since: now, lastOK: now}
	g.last[acc] = takeover
	g.mu.Unlock()
	g.acquisitions.Add(1)
	g.log.Info("cluster: lease taken", "provider", acc, "takeover", takeover)
	g.o.OnAcquire(acc, takeover)
	return true
}

// readLeasesOf reads the leases of the accounts of members (direct gets, no
// consumer) and records them for takeover times.
func (g *Group) readLeasesOf(ctx context.Context, members map[string][]string) (map[string]leaseEntry, error) {
	accs := []string{}
	for _, a := range members {
		accs = append(accs, a...)
	}
	slices.Sort(accs)
	out := map[string]leaseEntry{}
	for _, acc := range slices.Compact(accs) {
		e, err := g.leases.Get(ctx, acc)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("lease %s: %w", acc, err)
		}
		out[acc] = g.entry(e)
	}
	return out, nil
}

// entry decodes a lease and records it for takeover times (a loss it shows
// is handled by round, on Run's goroutine).
func (g *Group) entry(e jetstream.KeyValueEntry) leaseEntry {
	le := leaseEntry{rev: e.Revision(), created: e.Created()}
	_ = json.Unmarshal(e.Value(), &le.leaseValue)
	g.sight(e)
	return le
}

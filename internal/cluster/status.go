package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Status is the cluster as one member sees it, served as /api/v1/cluster.
type Status struct {
	Self       string         `json:"self"`
	TTLSeconds float64        `json:"ttl_seconds"`
	Members    []MemberStatus `json:"members"`
	Leases     []LeaseStatus  `json:"leases"`
	// Unheld are this member's accounts that no member holds right now.
	Unheld []string `json:"unheld"`
}

// MemberStatus is one live member.
type MemberStatus struct {
	ID                  string     `json:"id"`
	Info                MemberInfo `json:"info"`
	Accounts            []string   `json:"accounts"`
	HeartbeatAgeSeconds float64    `json:"heartbeat_age_seconds"`
	Leases              []string   `json:"leases"`
}

// LeaseStatus is one held lease.
type LeaseStatus struct {
	Account          string    `json:"account"`
	Holder           string    `json:"holder"`
	Since            time.Time `json:"since"`
	Renewed          time.Time `json:"renewed"`
	ExpiresInSeconds float64   `json:"expires_in_seconds"`
}

// Status reads the members and leases buckets.
func (g *Group) Status(ctx context.Context) (Status, error) {
	members, err := g.liveMembers(ctx)
	if err != nil {
		return Status{}, err
	}
	leases, err := g.readLeases(ctx)
	if err != nil {
		return Status{}, err
	}
	now := g.o.Now()
	st := Status{Self: g.o.Member, TTLSeconds: g.o.TTL.Seconds(), Members: []MemberStatus{}, Leases: []LeaseStatus{}, Unheld: []string{}}
	byMember := map[string][]string{}
	for _, acc := range slices.Sorted(maps.Keys(leases)) {
		l := leases[acc]
		byMember[l.Member] = append(byMember[l.Member], acc)
		st.Leases = append(st.Leases, LeaseStatus{
			Account: acc, Holder: l.Member, Since: l.Since, Renewed: l.Renewed,
			// The server expires a lease TTL after it stored the last renewal.
			ExpiresInSeconds: max(l.created.Add(g.o.TTL).Sub(now), 0).Seconds(),
		})
	}
	for _, id := range slices.Sorted(maps.Keys(members)) {
		m := members[id]
		st.Members = append(st.Members, MemberStatus{
			ID: id, Info: m.Info, Accounts: nonNil(m.Accounts),
			HeartbeatAgeSeconds: max(now.Sub(m.Heartbeat), 0).Seconds(),
			Leases:              nonNil(byMember[id]),
		})
	}
	for _, acc := range g.o.Accounts {
		if _, ok := leases[acc]; !ok {
			st.Unheld = append(st.Unheld, acc)
		}
	}
	return st, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Stats are this member's lease counters, for metrics.
type Stats struct {
	Held         int    // leases held now (whether or not Holds is true)
	Acquisitions uint64 // leases taken
	Losses       uint64 // leases lost: taken by another, expired, deleted
	Releases     uint64 // leases handed back: rebalance, shutdown
	// Takeover is, per account this member took, the takeover time of its
	// last acquisition: 0 when it was free or handed back in order.
	Takeover map[string]time.Duration
}

// Stats returns the counters.
func (g *Group) Stats() Stats {
	g.mu.Lock()
	defer g.mu.Unlock()
	return Stats{
		Held:         len(g.held),
		Acquisitions: g.acquisitions.Load(),
		Losses:       g.losses.Load(),
		Releases:     g.releases.Load(),
		Takeover:     maps.Clone(g.last),
	}
}

// liveMembers lists the member keys: the bucket's MaxAge drops members that
// stopped heartbeating.
func (g *Group) liveMembers(ctx context.Context) (map[string]memberValue, error) {
	out := map[string]memberValue{}
	err := listKeys(ctx, g.members, func(k string) error {
		e, err := g.members.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		var m memberValue
		_ = json.Unmarshal(e.Value(), &m) // unreadable: listed without info
		m.ID = k
		out[k] = m
		return nil
	})
	return out, err
}

// readLeases reads every live lease.
func (g *Group) readLeases(ctx context.Context) (map[string]leaseEntry, error) {
	out := map[string]leaseEntry{}
	err := listKeys(ctx, g.leases, func(k string) error {
		e, err := g.leases.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		out[k] = g.entry(e)
		return nil
	})
	return out, err
}

// listKeys calls fn for every key of kv. The client's lister ends its
// channel quietly when ctx ends, so a list cut short is reported here.
func listKeys(ctx context.Context, kv jetstream.KeyValue, fn func(string) error) error {
	keys, err := kv.ListKeys(ctx)
	if err != nil {
		return fmt.Errorf("cluster: list %s: %w", kv.Bucket(), err)
	}
	defer func() { _ = keys.Stop() }()
	for k := range keys.Keys() {
		if err := fn(k); err != nil {
			return fmt.Errorf("cluster: read %s/%s: %w", kv.Bucket(), k, err)
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("cluster: list %s: %w", kv.Bucket(), err)
	}
	return nil
}

package poll

import (
	"context"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/simwatch/simwatch/internal/event"
	"github.com/simwatch/simwatch/internal/fleet"
	"github.com/simwatch/simwatch/internal/rules"
	"github.com/simwatch/simwatch/internal/store"
)

// writeCards writes the changed cards and their fingerprints and deletes
// the removed ones, or adopts the snapshot rebuilt with them.
func (p *Poller) writeCards(pt *store.ProviderTx, cards *cardDiff, rebuilt bool, removed []string) error {
	if rebuilt {
		return pt.AdoptRebuilt()
	}
	pt.Dense()
	for _, c := range cards.changed {
		if err := pt.PutCard(c.ID, c.Data); err != nil {
			return err
		}
	}
	for i, c := range cards.changed {
		if err := pt.PutCardFP(c.ID, cards.fps[i]); err != nil {
			return err
		}
	}
	gone := make(map[string]bool, len(removed))
	for _, id := range removed {
		gone[id] = true
		if err := pt.DeleteCard(id); err != nil {
			return err
		}
	}
	// An absent card stays in the snapshot until its second absence, and
	// must stay known by a fingerprint: one recorded before fingerprints
	// were (an upgrade) gets a 0, which no record matches.
	for _, id := range cards.absent {
		if !gone[id] && !pt.HasCardFP(id) {
			if err := pt.PutCardFP(id, 0); err != nil {
				return err
			}
		}
	}
	return nil
}

// commit writes the cycle in one transaction: the changed snapshot, what
// Evaluate decided, the events and the metadata. It
// returns how many events it committed.
func (p *Poller) commit(ctx context.Context, now time.Time, kind string, nCards, nPools int, in rules.Input, out *rules.Output, cards *cardDiff, rebuilt bool, pools diffed[fleet.Pool]) (int, error) {
	today := fleet.DayOf(now)
	n := 0
	err := p.update(ctx, func(tx *store.Tx) error {
		pt, err := tx.Provider(p.o.Provider)
		if err != nil {
			return err
		}
		meta, err := pt.Meta()
		if err != nil {
			return err
		}
		counts, err := statusCounts(pt, meta, len(p.cardFP), cards, out.RemovedCards)
		if err != nil {
			return err
		}
		if err := p.writeCards(pt, cards, rebuilt, out.RemovedCards); err != nil {
			return err
		}
		for _, ch := range pools.changed {
			if err := pt.PutPool(ch.id, ch.enc); err != nil {
				return err
			}
		}
		for _, id := range out.RemovedPools {
			if err := pt.DeletePool(id); err != nil {
				return err
			}
		}
		// Maps are written in key order: bbolt inserts in order cheaply,
		// and at random very slowly (a cold cycle's 100k first IMEIs).
		for _, key := range slices.Sorted(maps.Keys(out.Missing)) {
			if err := pt.PutMissing(key, out.Missing[key]); err != nil {
				return err
			}
		}
		for _, key := range slices.Sorted(maps.Keys(out.Alerts)) {
			if err := pt.PutAlert(key, out.Alerts[key]); err != nil {
				return err
			}
		}
		for _, k := range slices.SortedFunc(maps.Keys(out.History), func(a, b rules.HistoryKey) int {
			return strings.Compare(historyKey(a.Entity, a.ID), historyKey(b.Entity, b.ID))
		}) {
			if err := pt.PutHistory(historyKey(k.Entity, k.ID), out.History[k], today); err != nil {
				return err
			}
		}
		for _, id := range slices.Sorted(maps.Keys(out.FirstIMEI)) {
			if err := pt.NoteIMEI(id, out.FirstIMEI[id]); err != nil {
				return err
			}
		}
		events := out.Events
		if !meta.Unhealthy && p.failures.Load() >= int64(p.o.UnhealthyAfter) {
			// The outage was declared while no write succeeded: its
			// firing event is committed now, with its resolution below.
			meta.Unhealthy, meta.UnhealthySince, meta.LastError = true, p.declared, p.lastErr
			events = append(events, p.healthEvent(event.KindFiring, now, meta, p.unhealthySummary()))
		}
		if meta.Unhealthy {
			events = append(events, p.healthEvent(event.KindResolved, now, meta, "provider "+p.o.Provider+" is answering again"))
			meta.Unhealthy = false
		}
		if err := tx.AppendOutbox(events); err != nil {
			return err
		}
		n = len(events)
		meta.Cycles++
		meta.LastSuccess, meta.Committed = now, p.o.Now()
		meta.Failures = 0
		meta.LastError = ""
		meta.RulesHash, meta.LastClockEval = out.RulesHash, out.ClockEval
		meta.Cards, meta.Pools = nCards, nPools
		meta.FPKind = kind
		meta.StatusCounts = counts
		return pt.PutMeta(meta)
	})
	return n, err
}

package poll

import (
	"context"
	"slices"

	"github.com/simwatch/simwatch/internal/fleet"
	"github.com/simwatch/simwatch/internal/rules"
	"github.com/simwatch/simwatch/internal/store"
)

// Finder is a provider that can look cards up one by one: given card ids
// and their ICCIDs, which does the account still list?
type Finder interface {
	FindCards(ctx context.Context, cards map[string]string) (map[string]bool, error)
}

// confirmSample bounds the lookups one cycle makes before removing cards.
const confirmSample = 20

// confirmRemovals asks the provider about the cards this listing would
// remove (absent now and in the previous listing). Offset paging can hide a
// card that crosses a page boundary while the fleet changes — even twice in
// a row, with every count agreeing — so a second absence is not proof. If
// the provider still has any card of the sample, or cannot say, no card is
// removed this cycle: they are returned as held, and stay missing.
func (p *Poller) confirmRemovals(ctx context.Context, absent []string) map[string]bool {
	f := p.o.Finder
	if f == nil {
		return nil
	}
	var due []string
	for _, id := range absent {
		if p.state.Missing[rules.EntityKey(fleet.EntityCard, id)] {
			due = append(due, id)
		}
	}
	if len(due) == 0 {
		return nil
	}
	slices.Sort(due)
	sample := map[string]string{}
	err := p.o.Store.View(func(tx *store.Tx) error {
		pt, err := tx.Provider(p.o.Provider)
		if err != nil {
			return err
		}
		for _, id := range due[:min(len(due), confirmSample)] {
			c, ok, err := pt.Card(id)
			if err != nil {
				return err
			}
			if ok && c.ICCID != "" {
				sample[id] = c.ICCID
			}
		}
		return nil
	})
	var found map[string]bool
	if err == nil && len(sample) > 0 {
		found, err = f.FindCards(ctx, sample)
	}
	log := p.o.Logger.With("provider", p.o.Provider)
	switch {
	case err != nil:
		log.Warn("could not confirm that absent cards are gone; they stay until the provider answers", "cards", len(due), "err", err)
	case len(found) > 0:
		for id := range found {
			log.Warn("the listing lacked a card the provider still has (paging drifted); nothing is removed this cycle", "card", id)
			break
		}
	default:
		return nil
	}
	hold := make(map[string]bool, len(due))
	for _, id := range due {
		hold[id] = true
	}
	return hold
}

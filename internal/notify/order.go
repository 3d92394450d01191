package notify

import (
	"slices"
)

// OwedLedger says which events of each alert a notifier still owes, in the
// order they happened (ledger places).
type OwedLedger interface {
	OwedBefore(notifier string, alerts []string) (map[string][]uint64, error)
}

// Order is the order stage: of the events in hand, only those next in
// their alert's story may go. An event is next when every earlier event of
// its alert that the notifier still owes goes with it (in hand, in the same
// send, before it); otherwise it is held, and holds back only its own
// alert.
type Order struct {
	Notifier string
	Ledger   OwedLedger
}

// Split divides items into those that may go now, in ledger order, and
// those held back.
func (o Order) Split(items []*item) (ready, held []*item, err error) {
	byAlert := map[string][]*item{}
	var alerts []string
	for _, it := range items {
		k := it.ev.AlertKey()
		if _, ok := byAlert[k]; !ok {
			alerts = append(alerts, k)
		}
		byAlert[k] = append(byAlert[k], it)
	}
	owed, err := o.Ledger.OwedBefore(o.Notifier, alerts)
	if err != nil {
		return nil, nil, err
	}
	for _, alert := range alerts {
		its := byAlert[alert]
		slices.SortFunc(its, func(a, b *item) int { return cmpU64(a.lseq, b.lseq) })
		inHand := make(map[uint64]bool, len(its))
		for _, it := range its {
			inHand[it.lseq] = true
		}
		// The first owed event not in hand blocks everything after it.
		block := ^uint64(0)
		for _, lseq := range owed[alert] {
			if !inHand[lseq] {
				block = lseq
				break
			}
		}
		for _, it := range its {
			if it.lseq < block {
				ready = append(ready, it)
			} else {
				held = append(held, it)
			}
		}
	}
	slices.SortFunc(ready, func(a, b *item) int { return cmpU64(a.lseq, b.lseq) })
	return ready, held, nil
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

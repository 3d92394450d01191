package console

import (
	"net/http"
	"testing"

	"github.com/simwatch/simwatch/internal/store"
)

// caBenchCards is the fleet size the console's pages are measured at.
const caBenchCards = 100_000

// caBenchRig is a console over a store filled by one real poll cycle (and
// its daily history) of a 100 000-card simulated fleet: it takes seconds,
// so each benchmark builds it once and measures its pages as sub-benchmarks.
func caBenchRig(b *testing.B) *caRig {
	return newCARig(b, caOptions{cards: caBenchCards, pools: 20, overdraft: true})
}

func caBenchPage(b *testing.B, r *caRig, path string) {
	r.t = b
	if code, body := r.get(path, ""); code != http.StatusOK {
		b.Fatalf("%s: %d %s", path, code, body)
	}
	for b.Loop() {
		r.get(path, "")
	}
}

// BenchmarkOverview renders the overview at 100 000 cards, and measures
// its status count (a walk of the card snapshot) alone.
func BenchmarkOverview(b *testing.B) {
	r := caBenchRig(b)
	b.Run("page", func(b *testing.B) { caBenchPage(b, r, "/") })
	b.Run("status-counts", func(b *testing.B) {
		for b.Loop() {
			err := r.store.View(func(tx *store.Tx) error {
				pt, err := tx.Provider("hw")
				if err == nil {
					_, err = pt.CardStatusCounts()
				}
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkAlerts renders alert pages at 100 000 cards: the first page,
// filters that skip most alerts (the worst case walks all of them), a tag
// and a rule (a seek to its alerts).
func BenchmarkAlerts(b *testing.B) {
	r := caBenchRig(b)
	for _, q := range []string{"", "?severity=critical", "?state=pending", "?tag=fleet-a&limit=200", "?rule=card_testing"} {
		b.Run("q="+q, func(b *testing.B) { caBenchPage(b, r, "/alerts"+q) })
	}
}

package app

import (
	"context"
	"testing"

	"github.com/simwatch/simwatch/internal/poll"
	"github.com/simwatch/simwatch/internal/provider"
	"github.com/simwatch/simwatch/internal/redact"
)

type countingSource struct{ leakySource }

func (countingSource) RequestStats() provider.RequestStats {
	return provider.RequestStats{Requests: 7, Pages: 5, Throttled: 1, Rate: 2.5, Concurrency: 3}
}

type countingFinder struct{ leakyFinder }

func (countingFinder) RequestStats() provider.RequestStats { return provider.RequestStats{Pages: 9} }

// The metrics read a provider's request counts through the redacting
// wrapper: it must keep them, with or without FindCards, and must not
// invent them for a source that has none.
func TestRedactedSourceKeepsRequestStats(t *testing.T) {
	r := redact.New("AKIDSECRET1")
	for _, tc := range []struct {
		src          poll.Source
		stats, finds bool
		pages        int64
	}{
		{countingSource{}, true, false, 5},
		{countingFinder{}, true, true, 9},
		{leakyFinder{}, false, true, 0},
		{leakySource{}, false, false, 0},
	} {
		src := redactSource(tc.src, r)
		st, ok := src.(requestStatser)
		if ok != tc.stats {
			t.Fatalf("%T: RequestStats kept = %v, want %v", tc.src, ok, tc.stats)
		}
		if ok && st.RequestStats().Pages != tc.pages {
			t.Fatalf("%T: pages %d, want %d", tc.src, st.RequestStats().Pages, tc.pages)
		}
		if _, ok := src.(poll.Finder); ok != tc.finds {
			t.Fatalf("%T: FindCards kept = %v, want %v", tc.src, ok, tc.finds)
		}
		if _, err := src.Fetch(context.Background()); err == nil || err.Error() == "" {
			t.Fatalf("%T: Fetch error lost", tc.src)
		}
	}
}

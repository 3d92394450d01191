package gsl_test

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/fleet"
	"github.com/simwatch/simwatch/internal/provider/gsl"
	"github.com/simwatch/simwatch/internal/sim"
)

// Answers are read into pooled buffers. Several listings at once, with
// many pages in flight and every record decoded, must come out exactly as
// the simulator lists the fleet: no id or record taken from a buffer that
// another page has since reused (run with -race).
func TestHostile13PooledBodiesKeepNoBytes(t *testing.T) {
	_, ts := newSim(t, 1500, 2, sim.Options{})
	ctx := context.Background()
	ref := newClient(t, gsl.Options{Endpoint: ts.URL, Token: "t", PageSize: 500, Concurrency: 1})
	want, err := ref.Fetch(ctx)
	require.NoError(t, err)
	wantIDs := make([]string, len(want.Cards))
	wantEnc := map[string]string{}
	for i := range want.Cards {
		wantIDs[i] = want.Cards[i].ID
		wantEnc[want.Cards[i].ID] = string(fleet.EncodeCard(nil, &want.Cards[i]))
	}
	never := func(string, uint64) bool { return false }
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			c := newClient(t, gsl.Options{Endpoint: ts.URL, Token: "t", PageSize: 10, Concurrency: 16})
			l, err := c.List(ctx, never)
			if !assertNoErr(t, err) {
				return
			}
			ids := make([]string, len(l.Seen))
			for i, s := range l.Seen {
				ids[i] = s.ID
			}
			if !equalStrings(t, wantIDs, ids) {
				return
			}
			for _, r := range l.Changed {
				if wantEnc[r.ID] != string(r.Data) {
					t.Errorf("card %s decoded as %s, want %s", r.ID, r.Data, wantEnc[r.ID])
					return
				}
			}
			// Knowing every fingerprint: nothing decoded, same ids.
			fps := map[fleet.Seen]bool{}
			for _, s := range l.Seen {
				fps[s] = true
			}
			again, err := c.List(ctx, func(id string, fp uint64) bool { return fps[fleet.Seen{ID: id, FP: fp}] })
			if !assertNoErr(t, err) {
				return
			}
			if len(again.Changed) != 0 {
				t.Errorf("%d known cards decoded again", len(again.Changed))
			}
			ids = ids[:0]
			for _, s := range again.Seen {
				ids = append(ids, s.ID)
			}
			equalStrings(t, wantIDs, ids)
		})
	}
	wg.Wait()
}

func assertNoErr(t *testing.T, err error) bool {
	if err != nil {
		t.Error(err)
		return false
	}
	return true
}

func equalStrings(t *testing.T, want, got []string) bool {
	if len(want) != len(got) {
		t.Errorf("%d ids, want %d", len(got), len(want))
		return false
	}
	for i := range want {
		if want[i] != got[i] {
			t.Errorf("id %d is %s, want %s", i, got[i], want[i])
			return false
		}
	}
	return true
}

package poll

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/simwatch/simwatch/internal/provider/gsl"
	"github.com/simwatch/simwatch/internal/rules"
	"github.com/simwatch/simwatch/internal/sim"
	"github.com/simwatch/simwatch/internal/store"
)

// benchRig is a simulated fleet served over loopback, polled by the real GSL
// client into a real store, with the shipped example rules.
func benchRig(b *testing.B, cards int) (*sim.Server, *gsl.Client, *rules.Set) {
	b.Helper()
	s := sim.NewServer(sim.Options{Fleet: sim.NewFleet(sim.FleetOptions{Cards: cards, Pools: 20, Seed: 1})})
	ts := httptest.NewServer(s.Handler())
	b.Cleanup(ts.Close)
	c, err := gsl.New(gsl.Options{Name: "hw", Endpoint: ts.URL, Token: "t", PageSize: 500, Rate: 1e6, Concurrency: 4})
	if err != nil {
		b.Fatal(err)
	}
	src, err := os.ReadFile("../../rules.example.yaml")
	if err != nil {
		b.Fatal(err)
	}
	set, err := rules.Parse("rules.example.yaml", src, rules.LoadOptions{})
	if err != nil {
		b.Fatal(err)
	}
	return s, c, set
}

func openStore(b *testing.B) *store.Store {
	st, err := store.Open(filepath.Join(b.TempDir(), fmt.Sprintf("s%d.db", time.Now().UnixNano())))
	if err != nil {
		b.Fatal(err)
	}
	return st
}

// BenchmarkCycleCold is a first cycle: every card new, every card written.
func BenchmarkCycleCold(b *testing.B) {
	for _, n := range []int{10_000} {
		b.Run(fmt.Sprintf("cards=%d", n), func(b *testing.B) {
			_, c, set := benchRig(b, n)
			now := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
			for b.Loop() {
				b.StopTimer()
				st := openStore(b)
				p := New(Options{Provider: "hw", Source: c, Store: st, Rules: func() *rules.Set { return set }, Now: func() time.Time { return now }})
				b.StartTimer()
				if _, err := p.Cycle(context.Background()); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				st.Close()
				b.StartTimer()
			}
		})
	}
}

// BenchmarkCycleSteady is a cycle in which 1% of cards changed.
func BenchmarkCycleSteady(b *testing.B) {
	for _, n := range []int{10_000} {
		b.Run(fmt.Sprintf("cards=%d/changed=1%%", n), func(b *testing.B) {
			s, c, set := benchRig(b, n)
			st := openStore(b)
			defer st.Close()
			now := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
			p := New(Options{Provider: "hw", Source: c, Store: st, Rules: func() *rules.Set { return set }, Now: func() time.Time { return now }})
			if _, err := p.Cycle(context.Background()); err != nil {
				b.Fatal(err)
			}
			iccids := s.Fleet().CardICCIDs()
			round := 0
			for b.Loop() {
				b.StopTimer()
				round++
				now = now.Add(10 * time.Minute)
				for i := 0; i < n/100; i++ {
					used := float64(round % 7)
					if err := s.Fleet().PatchCard(iccids[(i*97+round)%n], sim.CardPatch{FlowUsed: &used}); err != nil {
						b.Fatal(err)
					}
				}
				b.StartTimer()
				res, err := p.Cycle(context.Background())
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(res.Changed), "changed/op")
				b.ReportMetric(float64(res.Fetch.Microseconds())/1000, "fetch-ms/op")
				b.ReportMetric(float64(res.Commit.Microseconds())/1000, "commit-ms/op")
			}
		})
	}
}

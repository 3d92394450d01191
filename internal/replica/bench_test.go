package replica

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/simwatch/simwatch/internal/fleet"
	"github.com/simwatch/simwatch/internal/store"
)

func benchCard(i int, used float64) []byte {
	c := fleet.Card{Provider: "hw", Account: "acct-1", ID: fmt.Sprint(4_900_000_000_000 + i), ICCID: fmt.Sprintf("8986%016d", i),
		MSISDN: fmt.Sprintf("1440%09d", i), IMSI: fmt.Sprintf("46004%010d", i), IMEI: fmt.Sprintf("35789209%07d", i),
		Status: "active", StatusCode: 2, FlowUsed: used, FlowLeft: 1024 - used, FlowTotal: 1024, PoolID: fmt.Sprint(i % 50),
		Plan: "plan-1G", ExpireTime: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), ActDate: time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC),
		Tags: []string{"fleet-a"}, Attributes: map[string]string{"site": fmt.Sprint("s", i%300)}, SignalLevel: "3", NetworkType: "4G"}
	return fleet.EncodeCard(nil, &c)
}

// BenchmarkCommitCycle2000Of200k commits a cycle that changed 2 000 cards
// of a 200 000-card snapshot (their records and fingerprints, the meta)
// through a replica on an in-process JetStream: the catch-up, the
// recorded dry run, compression, publication and the local apply.
func BenchmarkCommitCycle2000Of200k(b *testing.B) { benchCycle(b, true) }

// BenchmarkUpdateCycle2000Of200k is the same cycle as a plain
// store.Update (outside a cluster): the cost replication adds.
func BenchmarkUpdateCycle2000Of200k(b *testing.B) { benchCycle(b, false) }

func benchCycle(b *testing.B, replicated bool) {
	srv := natsServer(b, b.TempDir(), 0)
	defer srv.Shutdown()
	n := newNode(b, connect(b, srv.ClientURL()), "a", 0)
	const total, changed = 200_000, 2_000
	for lo := 0; lo < total; lo += 20_000 {
		if err := n.st.Update(func(tx *store.Tx) error {
			pt, err := tx.Provider("hw")
			if err != nil {
				return err
			}
			pt.Dense()
			for i := lo; i < lo+20_000; i++ {
				id := fmt.Sprint(4_900_000_000_000 + i)
				if err := pt.PutCard(id, benchCard(i, 1)); err != nil {
					return err
				}
				if err := pt.PutCardFP(id, uint64(i)); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
	ctx := context.Background()
	var info CommitInfo
	cycle := 0
	for b.Loop() {
		cycle++
		fn := func(tx *store.Tx) error {
			pt, err := tx.Provider("hw")
			if err != nil {
				return err
			}
			pt.Dense()
			start := (cycle * changed * 7) % (total - changed)
			for i := start; i < start+changed; i++ {
				id := fmt.Sprint(4_900_000_000_000 + i)
				if err := pt.PutCard(id, benchCard(i, float64(cycle))); err != nil {
					return err
				}
				if err := pt.PutCardFP(id, uint64(i*cycle)); err != nil {
					return err
				}
			}
			return pt.PutMeta(store.Meta{Cycles: uint64(cycle), Cards: total})
		}
		var err error
		if replicated {
			info, err = n.r.Commit(ctx, subj, fn)
		} else {
			err = n.st.Update(fn)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	if !replicated {
		return
	}
	b.ReportMetric(float64(info.Raw), "raw-B/commit")
	b.ReportMetric(float64(info.Bytes), "s2-B/commit")
	b.ReportMetric(float64(info.Parts), "parts/commit")
}

package poll

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/store"
)

// meta reads the provider's stored metadata.
func (r *rig) meta() store.Meta {
	r.t.Helper()
	var m store.Meta
	require.NoError(r.t, r.store.View(func(tx *store.Tx) error {
		pt, err := tx.Provider("hw")
		if err != nil {
			return err
		}
		m, err = pt.Meta()
		return err
	}))
	return m
}

// outboxIDs returns and clears the committed events as "kind rule entity"
// and checks that no event id was committed twice over the test.
func (r *rig) outboxOnce(seen map[string]bool) []string {
	r.t.Helper()
	entries, err := r.store.Outbox(1000)
	require.NoError(r.t, err)
	var out []string
	var seqs []uint64
	for _, e := range entries {
		require.False(r.t, seen[e.Event.ID], "event %s committed twice", e.Event.ID)
		seen[e.Event.ID] = true
		out = append(out, e.Event.Kind+" "+e.Event.Rule+" "+e.Event.EntityID)
		seqs = append(seqs, e.Seq)
	}
	require.NoError(r.t, r.store.DeleteOutbox(seqs...))
	return out
}

var errDiskFull = fmt.Errorf("write: %w", syscall.ENOSPC)

// TestStart12FailingCommitIsAFailedCycle: a cycle whose commit fails counts
// as a failed cycle (in memory, and in the store when a small write goes
// through), raises provider_unhealthy after UnhealthyAfter (2 in the rig)
// like a failing provider, committed by the first write that succeeds, and
// resolves it when commits succeed again: no event lost, none twice.
func TestStart12FailingCommitIsAFailedCycle(t *testing.T) {
	type step struct {
		failing  int // how many of the cycle's write transactions fail, from its first (-1: all)
		failures int // p.Failures() after it
		stored   int // meta.Failures after it
		events   []string
	}
	const firing, resolved = "firing provider_unhealthy hw", "resolved provider_unhealthy hw"
	const card = "firing card_low_flow 4900000000004"
	for _, tc := range []struct {
		name  string
		steps []step
	}{{
		name: "the small write goes through",
		steps: []step{
			{failing: 1, failures: 1, stored: 1},
			{failing: 1, failures: 2, stored: 2, events: []string{firing}},
			{failing: 1, failures: 3, stored: 3},
			{failing: 0, failures: 0, stored: 0, events: []string{card, resolved}},
		},
	}, {
		name: "no write goes through until the disk recovers",
		steps: []step{
			{failing: -1, failures: 1},
			{failing: -1, failures: 2},
			{failing: -1, failures: 3},
			{failing: 0, failures: 0, stored: 0, events: []string{card, firing, resolved}},
		},
	}, {
		name: "writes come back during the outage",
		steps: []step{
			{failing: -1, failures: 1},
			{failing: -1, failures: 2},
			{failing: 1, failures: 3, stored: 3, events: []string{firing}},
			{failing: 1, failures: 4, stored: 4},
			{failing: 0, failures: 0, stored: 0, events: []string{card, resolved}},
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, lowRule)
			p := r.poller()
			ctx := context.Background()
			_, err := p.Cycle(ctx)
			require.NoError(t, err)
			seen := map[string]bool{}
			require.Empty(t, r.outboxOnce(seen))
			r.low(3, 95) // a card event the failing cycles must not lose

			for i, st := range tc.steps {
				left := st.failing
				r.store.InjectCommitFault(func() error {
					if left == 0 {
						return nil
					}
					left--
					return errDiskFull
				})
				r.now = r.now.Add(10 * time.Minute)
				_, err := p.Cycle(ctx)
				r.store.InjectCommitFault(nil)
				if st.failing == 0 {
					require.NoError(t, err, "step %d", i)
				} else {
					require.ErrorIs(t, err, syscall.ENOSPC, "step %d", i)
					require.ErrorContains(t, err, "poll hw: commit:")
				}
				require.Equal(t, st.failures, p.Failures(), "step %d: counted in memory", i)
				require.Equal(t, st.stored, r.meta().Failures, "step %d: stored (the metric)", i)
				require.ElementsMatch(t, st.events, r.outboxOnce(seen), "step %d", i)
			}
			m := r.meta()
			require.False(t, m.Unhealthy)
			require.Empty(t, m.LastError)
		})
	}
}

// TestStart12FullFilesystem: the same on a real full filesystem, a small
// tmpfs mounted by the test (root on Linux only).
func TestStart12FullFilesystem(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=2m"); err != nil {
		t.Skipf("cannot mount a tmpfs (needs root on Linux): %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })

	r := newRig(t, lowRule)
	st, err := store.Open(filepath.Join(dir, "s.db"))
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	r.store = st
	p := r.poller()
	ctx := context.Background()
	_, err = p.Cycle(ctx)
	require.NoError(t, err)
	seen := map[string]bool{}
	require.Empty(t, r.outboxOnce(seen))

	// Fill the filesystem, then change every card: the commit needs pages
	// the file does not have.
	filler := filepath.Join(dir, "filler")
	f, err := os.Create(filler)
	require.NoError(t, err)
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			require.ErrorIs(t, err, syscall.ENOSPC)
			break
		}
	}
	require.NoError(t, f.Close())
	for i := range r.iccids {
		r.low(i, 95)
	}
	var events []string
	for i := range 3 {
		r.now = r.now.Add(10 * time.Minute)
		_, err := p.Cycle(ctx)
		require.ErrorIs(t, err, syscall.ENOSPC, "cycle %d", i)
		require.Equal(t, i+1, p.Failures())
		events = append(events, r.outboxOnce(seen)...)
	}
	// The outbox may or may not have taken the firing event yet: a small
	// write can go through on a full disk (bbolt reuses freed pages).
	require.Subset(t, []string{"firing provider_unhealthy hw"}, events)

	require.NoError(t, os.Remove(filler))
	r.now = r.now.Add(10 * time.Minute)
	res, err := p.Cycle(ctx)
	require.NoError(t, err)
	events = append(events, r.outboxOnce(seen)...)
	require.Equal(t, 0, p.Failures())
	n := map[string]int{}
	for _, e := range events {
		n[e]++
	}
	require.Equal(t, 1, n["firing provider_unhealthy hw"], "%v", events)
	require.Equal(t, 1, n["resolved provider_unhealthy hw"], "%v", events)
	cards := 0
	for e, c := range n {
		if strings.HasPrefix(e, "firing card_low_flow ") {
			require.Equal(t, 1, c, e)
			cards++
		}
	}
	require.Equal(t, len(r.iccids), cards, "every card's event, once")
	require.Equal(t, len(r.iccids), res.Cards)
	require.False(t, r.meta().Unhealthy)
}

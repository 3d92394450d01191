package store

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"github.com/simwatch/simwatch/internal/fleet"
)

func record(id string, used float64) fleet.Record {
	c := fleet.Card{ID: id, Provider: "hw", FlowUsed: used}
	return fleet.Record{ID: id, Data: fleet.EncodeCard(nil, &c)}
}

// snapshot reads the provider's cards (id → flow_used) and fingerprints.
func snapshot(t *testing.T, s *Store) (map[string]float64, map[string]uint64) {
	cards, fps := map[string]float64{}, map[string]uint64{}
	require.NoError(t, s.View(func(tx *Tx) error {
		pt, err := tx.Provider("hw")
		if err != nil {
			return err
		}
		if err := pt.ForEachCard(func(id string, enc []byte) error {
			c, err := DecodeCard(enc)
			cards[id] = c.FlowUsed
			return err
		}); err != nil {
			return err
		}
		_, err = pt.ForEachCardFP(func(id string, fp uint64) { fps[id] = fp })
		return err
	}))
	return cards, fps
}

// A rebuilt snapshot is the live one with the changed records in, dropped
// ids out, everything else as it was (fingerprints included), whatever the
// chunk boundaries; and it is invisible until adopted.
func TestRebuildMergesAcrossChunks(t *testing.T) {
	defer func(n int) { rebuildChunk = n }(rebuildChunk)
	for _, chunk := range []int{1, 3, 7, 1000} {
		t.Run(fmt.Sprint("chunk=", chunk), func(t *testing.T) {
			rebuildChunk = chunk
			s, err := Open(filepath.Join(t.TempDir(), "s.db"))
			require.NoError(t, err)
			defer s.Close()
			// Live: ids 10..29, fingerprint = id.
			require.NoError(t, s.Update(func(tx *Tx) error {
				pt, err := tx.Provider("hw")
				if err != nil {
					return err
				}
				for i := 10; i < 30; i++ {
					r := record(fmt.Sprint(i), 1)
					if err := pt.PutCard(r.ID, r.Data); err != nil {
						return err
					}
					if err := pt.PutCardFP(r.ID, uint64(i)); err != nil {
						return err
					}
				}
				return nil
			}))
			// Changed: before the first, replacing some, between, after the last.
			changed := []fleet.Record{record("05", 2), record("10", 2), record("15", 2), record("155", 2), record("29", 2), record("30", 2), record("99", 2)}
			fps := []uint64{105, 110, 115, 1155, 129, 130, 199}
			drop := map[string]bool{"11": true, "28": true}
			require.NoError(t, s.Rebuild("hw", changed, fps, drop))
			for _, r := range changed {
				require.Nil(t, r.Data, "a written record is released")
			}
			before, _ := snapshot(t, s)
			require.Len(t, before, 20, "a rebuild is invisible until adopted")

			require.NoError(t, s.Update(func(tx *Tx) error {
				pt, err := tx.Provider("hw")
				if err != nil {
					return err
				}
				return pt.AdoptRebuilt()
			}))
			cards, gotFP := snapshot(t, s)
			want, wantFP := map[string]float64{}, map[string]uint64{}
			for i := 10; i < 30; i++ {
				want[fmt.Sprint(i)], wantFP[fmt.Sprint(i)] = 1, uint64(i)
			}
			for i, r := range changed {
				want[r.ID], wantFP[r.ID] = 2, fps[i]
			}
			for id := range drop {
				delete(want, id)
				delete(wantFP, id)
			}
			require.Equal(t, want, cards)
			require.Equal(t, wantFP, gotFP)
			require.NoError(t, s.db.View(func(tx *bolt.Tx) error {
				require.Nil(t, tx.Bucket(bucketRebuilt).Bucket([]byte("hw")), "the staging area is gone")
				return nil
			}))
		})
	}
}

// A rebuild left behind (a crash before the cycle committed) is replaced by
// the next one, never adopted by mistake.
func TestRebuildLeftBehindIsReplaced(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "s.db"))
	require.NoError(t, err)
	defer s.Close()
	require.NoError(t, s.Rebuild("hw", []fleet.Record{record("1", 1), record("2", 1)}, []uint64{1, 2}, nil))
	require.NoError(t, s.Rebuild("hw", []fleet.Record{record("3", 3)}, []uint64{3}, nil))
	require.NoError(t, s.Update(func(tx *Tx) error {
		pt, err := tx.Provider("hw")
		if err != nil {
			return err
		}
		return pt.AdoptRebuilt()
	}))
	cards, _ := snapshot(t, s)
	require.Equal(t, map[string]float64{"3": 3}, cards)
	err = s.Update(func(tx *Tx) error {
		pt, err := tx.Provider("hw")
		if err != nil {
			return err
		}
		return pt.AdoptRebuilt()
	})
	require.ErrorContains(t, err, "no rebuilt snapshot")
}

// A salvaged store forgets the card fingerprints (a bucket cut short could
// leave cards without one), keeping the cards: the next cycle knows them by
// id and decodes each once.
func TestSalvageForgetsFingerprints(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	s, err := Open(path)
	require.NoError(t, err)
	require.NoError(t, s.Update(func(tx *Tx) error {
		pt, err := tx.Provider("hw")
		if err != nil {
			return err
		}
		r := record("1", 1)
		if err := pt.PutCard(r.ID, r.Data); err != nil {
			return err
		}
		return pt.PutCardFP(r.ID, 42)
	}))
	require.NoError(t, s.Close())
	_, err = Salvage(path, time.Now())
	require.NoError(t, err)
	s, err = Open(path)
	require.NoError(t, err)
	defer s.Close()
	cards, fps := snapshot(t, s)
	require.Equal(t, map[string]float64{"1": 1}, cards)
	require.Empty(t, fps)
	require.NoError(t, s.View(func(tx *Tx) error {
		pt, err := tx.Provider("hw")
		require.NoError(t, err)
		recorded, err := pt.ForEachCardFP(func(string, uint64) {})
		require.False(t, recorded)
		return err
	}))
}

package outbox

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/event"
	"github.com/simwatch/simwatch/internal/store"
)

type flakyPublisher struct {
	failAt int // fail the publish with this index (0-based), once
	calls  int
	got    []string
}

func (p *flakyPublisher) PublishBatch(ctx context.Context, events []event.Event) (int, error) {
	for i, e := range events {
		if p.calls == p.failAt {
			p.calls++
			return i, errors.New("nats: timeout")
		}
		p.calls++
		p.got = append(p.got, e.ID)
	}
	return len(events), nil
}

func TestDrainKeepsOrderAndUnpublished(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "s.db"))
	require.NoError(t, err)
	defer st.Close()
	require.NoError(t, st.Update(func(tx *store.Tx) error {
		return tx.AppendOutbox([]event.Event{{ID: "a"}, {ID: "b"}, {ID: "c"}})
	}))
	pub := &flakyPublisher{failAt: 1}
	r := New(st, pub, 0, nil)
	n, err := r.Drain(context.Background())
	require.ErrorContains(t, err, "nats: timeout")
	require.Equal(t, 1, n)
	require.Equal(t, 2, st.OutboxLen(), "unpublished events stay")

	n, err = r.Drain(context.Background())
	require.NoError(t, err)
	require.Equal(t, 2, n)
	require.Equal(t, []string{"a", "b", "c"}, pub.got)
	require.Zero(t, st.OutboxLen())
}

package store

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestThreadsSaveAndFind(t *testing.T) {
	s, _ := open(t)
	t0 := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	_, _, ok, err := s.Thread("ops", "e1")
	require.NoError(t, err)
	require.False(t, ok, "nothing yet")

	require.NoError(t, s.SaveThread("ops", t0, "e0", "C1", "1.0"))
	c, ts, ok, err := s.Thread("ops", "e0")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, []string{"C1", "1.0"}, []string{c, ts})

	ref := MessageRef{Channel: "C1", TS: "1.1"}
	require.NoError(t, s.SavePosted("ops", Posted{MessageRef: ref, At: t0, EventIDs: []string{"e1", "e2"},
		Alerts: []string{"a1", "a2"}, Data: []byte(`{"v":1}`)}))
	require.NoError(t, s.SavePosted("ops", Posted{MessageRef: MessageRef{"C1", "1.2"}, At: t0, EventIDs: []string{"e3"},
		Alerts: []string{"a1"}, Data: []byte(`{"v":2}`)}))
	c, ts, ok, err = s.Thread("ops", "e2")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, []string{"C1", "1.1"}, []string{c, ts})
	_, _, ok, _ = s.Thread("other", "e2")
	require.False(t, ok, "per notifier")

	refs, err := s.PostedFor("ops", "a1")
	require.NoError(t, err)
	require.Equal(t, []MessageRef{ref, {"C1", "1.2"}}, refs, "oldest first")
	// Saving the same message again (a retry) does not repeat it.
	require.NoError(t, s.SavePosted("ops", Posted{MessageRef: ref, At: t0, EventIDs: []string{"e1"}, Alerts: []string{"a1"}, Data: []byte(`{"v":1}`)}))
	refs, _ = s.PostedFor("ops", "a1")
	require.Len(t, refs, 2)

	data, ok, err := s.Message("ops", ref)
	require.NoError(t, err)
	require.True(t, ok)
	require.JSONEq(t, `{"v":1}`, string(data))

	require.NoError(t, s.UpdateMessage("ops", ref, t0.Add(time.Hour), func(d []byte, ok bool) ([]byte, bool, error) {
		require.True(t, ok)
		return []byte(`{"v":3}`), true, nil
	}))
	data, _, _ = s.Message("ops", ref)
	require.JSONEq(t, `{"v":3}`, string(data))
	require.NoError(t, s.UpdateMessage("ops", MessageRef{"C9", "9"}, t0, func(d []byte, ok bool) ([]byte, bool, error) {
		require.False(t, ok)
		return nil, false, nil
	}))
	_, ok, _ = s.Message("ops", MessageRef{"C9", "9"})
	require.False(t, ok, "nil leaves it absent")
}

func TestPruneThreads(t *testing.T) {
	s, _ := open(t)
	t0 := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	old, open, recent := MessageRef{"C", "1"}, MessageRef{"C", "2"}, MessageRef{"C", "3"}
	require.NoError(t, s.SavePosted("ops", Posted{MessageRef: old, At: t0, EventIDs: []string{"e1"}, Alerts: []string{"a1"}, Data: []byte("x"), Finished: true}))
	require.NoError(t, s.SavePosted("ops", Posted{MessageRef: open, At: t0, EventIDs: []string{"e2"}, Alerts: []string{"a2", "a3"}, Data: []byte("y")}))
	require.NoError(t, s.SavePosted("ops", Posted{MessageRef: recent, At: t0.Add(48 * time.Hour), EventIDs: []string{"e3"}, Alerts: []string{"a3"}, Data: []byte("z"), Finished: true}))

	n, err := s.PruneThreads(t0.Add(24 * time.Hour))
	require.NoError(t, err)
	// e1, e2 (threads), the finished old message, alert a1.
	require.Equal(t, 4, n)
	for id, want := range map[string]bool{"e1": false, "e2": false, "e3": true} {
		_, _, ok, err := s.Thread("ops", id)
		require.NoError(t, err)
		require.Equal(t, want, ok, id)
	}
	_, ok, _ := s.Message("ops", old)
	require.False(t, ok, "finished and old")
	_, ok, _ = s.Message("ops", open)
	require.True(t, ok, "still firing: kept for the grace period")
	refs, _ := s.PostedFor("ops", "a1")
	require.Empty(t, refs)
	refs, _ = s.PostedFor("ops", "a2")
	require.Equal(t, []MessageRef{open}, refs)

	// Past the grace, an open message goes too, and a3 keeps only the recent one.
	n, err = s.PruneThreads(t0.Add(OpenThreadGrace + time.Hour))
	require.NoError(t, err)
	require.Equal(t, 5, n, "e3, both messages, a2, a3")
	refs, _ = s.PostedFor("ops", "a3")
	require.Empty(t, refs)
	n, err = s.PruneThreads(t0)
	require.NoError(t, err)
	require.Zero(t, n)
}

func TestPruneThreadsKeepsPartOfAnAlert(t *testing.T) {
	s, _ := open(t)
	t0 := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	a, b := MessageRef{"C", "1"}, MessageRef{"C", "2"}
	require.NoError(t, s.SavePosted("ops", Posted{MessageRef: a, At: t0, Alerts: []string{"x"}, Data: []byte("1"), Finished: true}))
	require.NoError(t, s.SavePosted("ops", Posted{MessageRef: b, At: t0.Add(72 * time.Hour), Alerts: []string{"x"}, Data: []byte("2"), Finished: true}))
	_, err := s.PruneThreads(t0.Add(time.Hour))
	require.NoError(t, err)
	refs, _ := s.PostedFor("ops", "x")
	require.Equal(t, []MessageRef{b}, refs)
}

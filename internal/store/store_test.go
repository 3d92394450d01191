package store

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/event"
	"github.com/simwatch/simwatch/internal/fleet"
	"github.com/simwatch/simwatch/internal/rules"
)

func open(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s, path
}

func sampleCard() fleet.Card {
	return fleet.Card{
		Provider: "hw", Account: "acc", ID: "4900000000001", ICCID: "89860000000000000001", MSISDN: "861",
		IMSI: "460", IMEI: "35", Status: "active", StatusCode: 20, OperatorStatus: -1,
		FlowUsed: 12.34, FlowLeft: -0.5, FlowTotal: 11.84, PoolID: "49", Plan: "流量 30M",
		ExpireTime: time.Date(2027, 1, 2, 3, 4, 5, 6, time.UTC), Tags: []string{"a", "b"},
		Attributes:   map[string]string{"customer_attribute2": "x", "customer_attribute1": "y"},
		DeviceStatus: 3, SignalLevel: "2", NetworkType: "4G", Vendor: "CMCC", APN: "cmiot",
	}
}

func TestCardCodecRoundTrip(t *testing.T) {
	for _, c := range []fleet.Card{{}, sampleCard()} {
		enc := fleet.EncodeCard(nil, &c)
		got, err := DecodeCard(enc)
		require.NoError(t, err)
		require.Equal(t, c, got)
		require.Equal(t, fleet.Fingerprint(enc), fleet.Fingerprint(fleet.EncodeCard(nil, &got)))
	}
	c := sampleCard()
	require.Less(t, len(fleet.EncodeCard(nil, &c)), 220)
}

func TestFingerprintSeesEveryField(t *testing.T) {
	base := sampleCard()
	fp := fleet.Fingerprint(fleet.EncodeCard(nil, &base))
	muts := []func(*fleet.Card){
		func(c *fleet.Card) { c.IMEI = "36" },
		func(c *fleet.Card) { c.FlowLeft = -0.25 },
		func(c *fleet.Card) { c.OperatorStatus = 5 },
		func(c *fleet.Card) { c.Tags = []string{"a"} },
		func(c *fleet.Card) { c.Attributes["customer_attribute1"] = "z" },
		func(c *fleet.Card) { c.ExpireTime = c.ExpireTime.Add(time.Second) },
		func(c *fleet.Card) { c.NetworkType = "5G" },
		func(c *fleet.Card) { c.APN = "other" },
	}
	for i, m := range muts {
		c := sampleCard()
		m(&c)
		require.NotEqual(t, fp, fleet.Fingerprint(fleet.EncodeCard(nil, &c)), "mutation %d", i)
	}
}

func FuzzDecodeCard(f *testing.F) {
	c := sampleCard()
	f.Add(fleet.EncodeCard(nil, &c))
	f.Add([]byte{1, 200})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = DecodeCard(b) // must not panic
	})
}

func TestCycleCommitsTogetherAndSurvivesReopen(t *testing.T) {
	s, path := open(t)
	c := sampleCard()
	err := s.Update(func(tx *Tx) error {
		p, err := tx.Provider("hw")
		require.NoError(t, err)
		require.NoError(t, p.PutCard(c.ID, fleet.EncodeCard(nil, &c)))
		require.NoError(t, p.PutAlert("k", &rules.Alert{Rule: "r", State: rules.StateFiring}))
		require.NoError(t, p.PutMeta(Meta{Cycles: 1}))
		return tx.AppendOutbox([]event.Event{{ID: "e1"}, {ID: "e2"}})
	})
	require.NoError(t, err)

	// A failing transaction leaves nothing behind.
	err = s.Update(func(tx *Tx) error {
		p, _ := tx.Provider("hw")
		require.NoError(t, p.DeleteCard(c.ID))
		require.NoError(t, tx.AppendOutbox([]event.Event{{ID: "e3"}}))
		return errBoom
	})
	require.ErrorIs(t, err, errBoom)
	require.NoError(t, s.Close())

	s2, err := Open(path)
	require.NoError(t, err)
	defer s2.Close()
	require.NoError(t, s2.View(func(tx *Tx) error {
		p, err := tx.Provider("hw")
		require.NoError(t, err)
		got, ok, err := p.Card(c.ID)
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, c, got)
		alerts, err := p.Alerts()
		require.NoError(t, err)
		require.Equal(t, rules.StateFiring, alerts["k"].State)
		m, err := p.Meta()
		require.NoError(t, err)
		require.EqualValues(t, 1, m.Cycles)
		return nil
	}))
	out, err := s2.Outbox(10)
	require.NoError(t, err)
	require.Len(t, out, 2)
	require.Equal(t, "e1", out[0].Event.ID)
	require.Equal(t, "e2", out[1].Event.ID)
	require.NoError(t, s2.DeleteOutbox(out[0].Seq))
	require.Equal(t, 1, s2.OutboxLen())
}

type boom struct{}

func (boom) Error() string { return "boom" }

var errBoom = boom{}

func TestDeliveryLog(t *testing.T) {
	s, _ := open(t)
	now := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	ok, err := s.Delivered("crm", "e1")
	require.NoError(t, err)
	require.False(t, ok)
	require.NoError(t, s.MarkDelivered("crm", now.Add(-40*24*time.Hour), "old"))
	require.NoError(t, s.MarkDelivered("crm", now, "e1"))
	ok, _ = s.Delivered("crm", "e1")
	require.True(t, ok)
	ok, _ = s.Delivered("log", "e1")
	require.False(t, ok, "per notifier")
	n, err := s.PruneDelivered(now.Add(-30 * 24 * time.Hour))
	require.NoError(t, err)
	require.Equal(t, 1, n)
	ok, _ = s.Delivered("crm", "old")
	require.False(t, ok)
}

// HistorySource reads a stored history's source without decoding it, and
// says "" for none stored and for an empty one.
func TestHistorySource(t *testing.T) {
	st, err := Open(filepath.Join(t.TempDir(), "s.db"))
	require.NoError(t, err)
	defer st.Close()
	today := fleet.DayOf(time.Date(2026, 11, 23, 4, 0, 0, 0, time.UTC))
	require.NoError(t, st.Update(func(tx *Tx) error {
		pt, err := tx.Provider("hw")
		if err != nil {
			return err
		}
		daily := fleet.History{Source: fleet.HistoryDaily}
		for d := today - 200; d < today; d++ { // more than 127 days: a two-byte count before trimming
			daily.Set(d, 1)
		}
		if err := pt.PutHistory(CardHistoryKey("1"), daily, today); err != nil {
			return err
		}
		if err := pt.PutHistory(CardHistoryKey("2"), fleet.History{Source: fleet.HistorySnapshot, Days: []fleet.DayUsage{{Day: today, MB: 3}}}, today); err != nil {
			return err
		}
		return pt.PutHistory(CardHistoryKey("3"), fleet.History{Source: fleet.HistoryDaily}, today)
	}))
	require.NoError(t, st.View(func(tx *Tx) error {
		pt, err := tx.Provider("hw")
		require.NoError(t, err)
		require.Equal(t, fleet.HistoryDaily, pt.HistorySource(CardHistoryKey("1")))
		require.Equal(t, fleet.HistorySnapshot, pt.HistorySource(CardHistoryKey("2")))
		require.Empty(t, pt.HistorySource(CardHistoryKey("3")), "no days")
		require.Empty(t, pt.HistorySource(CardHistoryKey("4")), "none stored")
		return nil
	}))
}

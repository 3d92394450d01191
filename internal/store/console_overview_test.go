package store

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/fleet"
)

// peekStatus reads what DecodeCard reads, and a record cut anywhere or
// garbled is never a panic or a wrong status.
func TestPeekStatusAgreesWithDecodeCard(t *testing.T) {
	for _, st := range []string{"active", "suspended", "test", "", "bogus", "a much longer status than any provider sends ∞"} {
		c := fleet.Card{Provider: "hw", Account: "acc", ID: "4900000000001", ICCID: "89860000000000000001", MSISDN: "8613",
			IMSI: "46001", IMEI: "35000", Status: st, Tags: []string{"fleet-a"}}
		enc := fleet.EncodeCard(nil, &c)
		got, ok := peekStatus(enc)
		require.True(t, ok)
		dec, err := fleet.DecodeCard(enc)
		require.NoError(t, err)
		require.Equal(t, dec.Status, string(got))
		for n := range len(enc) {
			if got, ok := peekStatus(enc[:n]); ok {
				require.Equal(t, st, string(got), "a cut record read past the status")
			}
		}
	}
	for _, bad := range [][]byte{nil, {0}, {3, 1, 'a'}, {2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, {2, 200}} {
		_, ok := peekStatus(bad)
		require.False(t, ok, "%v", bad)
	}
	require.Equal(t, StatusUnknown, normalStatus("unknown"))
	require.Equal(t, StatusUnknown, normalStatus("bogus"))
	require.Equal(t, fleet.StatusTerminated, normalStatus("terminated"))
}

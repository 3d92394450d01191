package store

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

func sampleDelta() Delta {
	cards := [][]byte{bucketProviders, []byte("hw"), bucketCards}
	return Delta{
		Ops: []Op{
			{Kind: OpPut, Path: cards, Key: []byte("c1"), Value: []byte("v1")},
			{Kind: OpPut, Path: cards, Key: []byte("c2"), Value: []byte{}},
			{Kind: OpDelete, Path: cards, Key: []byte("c3")},
			{Kind: OpDropBucket, Path: [][]byte{bucketProviders, []byte("hw"), bucketCardFP}},
			{Kind: OpPut, Path: [][]byte{bucketAcks}, Key: []byte("k"), Value: []byte("{}")},
		},
		Events: [][]byte{[]byte(`{"id":"e1","seq":3}`), []byte(`{}`)},
	}
}

func TestDeltaRoundTrip(t *testing.T) {
	d := sampleDelta()
	data, err := d.MarshalBinary()
	require.NoError(t, err)
	var got Delta
	require.NoError(t, got.UnmarshalBinary(data))
	require.Equal(t, len(d.Ops), len(got.Ops))
	for i := range d.Ops {
		require.Equal(t, d.Ops[i].Kind, got.Ops[i].Kind)
		require.Equal(t, d.Ops[i].Path, got.Ops[i].Path)
		require.Equal(t, string(d.Ops[i].Key), string(got.Ops[i].Key))
		require.Equal(t, string(d.Ops[i].Value), string(got.Ops[i].Value))
	}
	require.Equal(t, d.Events, got.Events)

	var empty Delta
	data, err = empty.MarshalBinary()
	require.NoError(t, err)
	require.NoError(t, got.UnmarshalBinary(data))
	require.True(t, got.Empty())
}

func TestDeltaDecodeRefusesEveryTruncation(t *testing.T) {
	d := sampleDelta()
	data, err := d.MarshalBinary()
	require.NoError(t, err)
	for n := range len(data) {
		var got Delta
		err := got.UnmarshalBinary(data[:n])
		require.Error(t, err, "cut at %d", n)
		require.True(t, errors.Is(err, ErrBadDelta))
	}
	var got Delta
	require.ErrorIs(t, got.UnmarshalBinary(append(data, 0)), ErrBadDelta, "trailing bytes")
	// A huge count in a tiny message allocates nothing.
	require.ErrorIs(t, got.UnmarshalBinary([]byte("SWD1\xff\xff\xff\xff\xff\xff\xff\xff\x7f")), ErrBadDelta)
	require.ErrorIs(t, got.UnmarshalBinary([]byte("SWD1\x01\x81")), ErrBadDelta, "first op refers to a previous path")
	require.ErrorIs(t, got.UnmarshalBinary([]byte("SWD1\x01\x07")), ErrBadDelta, "unknown kind")
}

func TestDeltaMarshalRefusesUnknownKind(t *testing.T) {
	d := Delta{Ops: []Op{{Kind: 0}}}
	_, err := d.MarshalBinary()
	require.Error(t, err)
}

func FuzzDeltaDecode(f *testing.F) {
	d := sampleDelta()
	data, _ := d.MarshalBinary()
	f.Add(data)
	f.Add([]byte("SWD1"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		var d Delta
		if err := d.UnmarshalBinary(data); err != nil {
			return
		}
		// What decodes encodes back to a delta that decodes the same.
		again, err := d.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var d2 Delta
		if err := d2.UnmarshalBinary(again); err != nil {
			t.Fatal(err)
		}
		if len(d2.Ops) != len(d.Ops) || len(d2.Events) != len(d.Events) {
			t.Fatal("round trip changed the delta")
		}
	})
}

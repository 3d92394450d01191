package fleet

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The JSON shapes list the model's fields, in its order, under its names:
// a field added to Card or Pool and not to its shape fails here.
func TestJSONShapesMatchModel(t *testing.T) {
	for _, tc := range []struct{ model, shape reflect.Type }{
		{reflect.TypeFor[Card](), reflect.TypeFor[cardOut]()},
		{reflect.TypeFor[Pool](), reflect.TypeFor[poolOut]()},
	} {
		var model []string
		for i := range tc.model.NumField() {
			if f := tc.model.Field(i); f.Tag.Get("json") != "-" {
				model = append(model, f.Name+" "+f.Tag.Get("json"))
			}
		}
		var shape []string
		for i := range tc.shape.NumField() {
			f := tc.shape.Field(i)
			shape = append(shape, f.Name+" "+f.Tag.Get("json"))
		}
		require.Equal(t, model, shape, tc.shape.Name())
	}
}

// The one-pass MarshalJSON writes exactly what the earlier marshal-and-
// rewrite did, for random cards and pools with random unknown fields.
func TestMarshalJSONAsBefore(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	str := func() string {
		return []string{"", "a", `q"uote`, "<b>&", "é\u2028", "\xff", strings.Repeat("x", 40)}[rng.IntN(7)]
	}
	num := func() float64 { return []float64{0, 0.1 + 0.2, -3.5, 1e21, 1e-7, 123456789.125}[rng.IntN(6)] }
	for range 2000 {
		c := Card{Provider: str(), Account: str(), ID: str(), ICCID: str(), MSISDN: str(), IMSI: str(), IMEI: str(),
			Status: str(), StatusCode: rng.IntN(50), OperatorStatus: rng.IntN(9) - 1, FlowUsed: num(), FlowLeft: num(), FlowTotal: num(),
			PoolID: str(), Plan: str(), DeviceStatus: rng.IntN(5), SignalLevel: str(), NetworkType: str(), Vendor: str(), APN: str(),
			Unknown: Unknown(rng.Uint64()) & cardBits.mask}
		if rng.IntN(2) == 0 {
			c.ExpireTime = time.Date(2027, 1, 2, 3, 4, 5, rng.IntN(1e9), time.UTC)
			c.Tags = []string{str(), str()}
			c.Attributes = map[string]string{str(): str(), "k": str()}
		}
		old, err := oldMarshal(cardJSON(c), c.Unknown, cardBits)
		require.NoError(t, err)
		got, err := json.Marshal(c)
		require.NoError(t, err)
		require.Equal(t, string(old), string(got))

		p := Pool{Provider: str(), ID: str(), Name: str(), FlowTotal: num(), FlowUsed: num(), FlowLeft: num(), Quantity: rng.IntN(9),
			BillingCycle: str(), Unknown: Unknown(rng.Uint64()) & poolBits.mask}
		old, err = oldMarshal(poolJSON(p), p.Unknown, poolBits)
		require.NoError(t, err)
		got, err = json.Marshal(p)
		require.NoError(t, err)
		require.Equal(t, string(old), string(got))
	}
}

// oldMarshal is how MarshalJSON worked before: marshal, then rewrite the
// unknown fields as null.
func oldMarshal(v any, u Unknown, fb fieldBits) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil || u == 0 {
		return b, err
	}
	return nullFields(b, u, fb)
}

// nullFields rewrites the object b with the fields in u set to null,
// keeping the key order.
func nullFields(b []byte, u Unknown, fb fieldBits) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	if _, err := dec.Token(); err != nil { // {
		return nil, err
	}
	null := map[string]bool{}
	for bit, name := range fb.json {
		if u.Has(bit) {
			null[name] = true
		}
	}
	out := []byte{'{'}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, err
		}
		if len(out) > 1 {
			out = append(out, ',')
		}
		k, _ := json.Marshal(key)
		out = append(append(out, k...), ':')
		if null[key] {
			out = append(out, "null"...)
		} else {
			out = append(out, raw...)
		}
	}
	return append(out, '}'), nil
}

package gsl

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/fleet"
	"github.com/simwatch/simwatch/internal/provider/providertest"
)

func never(string, uint64) bool { return false }

// requireSameAsDecode checks the property streaming rests on: a scanned page
// says what the full decoder says. Where decodeCards refuses a page,
// streamCards refuses it with the same error; where it accepts one,
// streamCards lists the same ids in the same order and, decoding every
// record, the same cards; and a second scan that knows every fingerprint
// decodes nothing and lists the same.
func requireSameAsDecode(t *testing.T, body []byte) {
	t.Helper()
	want, werr := decodeCards("hw", body)
	got, gerr := streamCards("hw", body, never)
	if werr == nil && len(want.Items) > maxPageSize {
		require.ErrorContains(t, gerr, "more than any page holds")
		return
	}
	if werr == nil && cardListsIn(body) > 1 {
		require.ErrorIs(t, gerr, errCardsTwice, "encoding/json mixes two lists; the scan refuses them")
		return
	}
	if werr != nil {
		require.Error(t, gerr, "the decoder refuses this page (%v), the scan took it", werr)
		require.Equal(t, werr.Error(), gerr.Error())
		return
	}
	require.NoError(t, gerr, "the decoder takes this page, the scan refused it")
	require.Equal(t, want.Count, got.Count)
	require.Len(t, got.Items, len(want.Items))
	require.Len(t, got.Records, len(want.Items))
	fps := map[fleet.Seen]bool{}
	for i := range want.Items {
		require.Equal(t, want.Items[i].ID, got.Items[i].ID)
		require.Equal(t, want.Items[i].ID, got.Records[i].ID)
		c, err := fleet.DecodeCard(got.Records[i].Data)
		require.NoError(t, err)
		require.Equal(t, string(fleet.EncodeCard(nil, &want.Items[i])), string(fleet.EncodeCard(nil, &c)), "card %d", i)
		fps[got.Items[i]] = true
	}
	again, err := streamCards("hw", body, func(id string, fp uint64) bool { return fps[fleet.Seen{ID: id, FP: fp}] })
	require.NoError(t, err)
	require.Empty(t, again.Records, "a known record was decoded again")
	require.Equal(t, got.Items, again.Items)
}

// cardListsIn counts the page's top-level keys that encoding/json reads as
// sim_cards.
func cardListsIn(body []byte) int {
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return 0
	}
	n := 0
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return n
		}
		if k, ok := tok.(string); ok && strings.EqualFold(k, "sim_cards") {
			n++
		}
		var skip json.RawMessage
		if dec.Decode(&skip) != nil {
			return n
		}
	}
	return n
}

func FuzzStreamMatchesDecode(f *testing.F) {
	providertest.AddSeeds(f, "testdata/seed000_sim_cards.json", "testdata/cards/*.json")
	f.Fuzz(func(t *testing.T, body []byte) { requireSameAsDecode(t, body) })
}

func TestStreamMatchesDecode(t *testing.T) {
	files, err := filepath.Glob("testdata/cards/*.json")
	require.NoError(t, err)
	files = append(files, "testdata/seed000_sim_cards.json")
	for _, f := range files {
		body, err := os.ReadFile(f)
		require.NoError(t, err)
		t.Run(filepath.Base(f), func(t *testing.T) { requireSameAsDecode(t, body) })
	}
	// What the scanner itself must get right: JSON syntax at the edges,
	// keys as encoding/json matches them, the last of a key twice winning.
	rec := `{"sim_card_id":7,"sim_status":20,"iccid":"89"}`
	for name, body := range map[string]string{
		"escaped key":              `{"count":1,"sim_cards":[{"sim\u005fcard_id":7,"sim_status":20}]}`,
		"folded key":               `{"COUNT":1,"Sim_Cards":[{"SIM_CARD_ID":7,"sim_status":20}]}`,
		"kelvin sign folds to k":   `{"count":1,"sim_cards":[{"sim_card_id":7,"sim_status":20}],"\u212aeep":1}`,
		"long s folds to s":        `{"count":1,"ſim_cards":[` + rec + `]}`,
		"count twice":              `{"count":5,"sim_cards":[` + rec + `],"count":1}`,
		"count then null":          `{"count":1,"sim_cards":[` + rec + `],"count":null}`,
		"cards twice":              `{"count":1,"sim_cards":[{"sim_card_id":8,"sim_status":20}],"sim_cards":[` + rec + `]}`,
		"id twice in a record":     `{"count":1,"sim_cards":[{"sim_card_id":8,"sim_status":20,"sim_card_id":7}]}`,
		"id as float":              `{"count":1,"sim_cards":[{"sim_card_id":7.0,"sim_status":20}]}`,
		"id as exponent":           `{"count":1,"sim_cards":[{"sim_card_id":7e0,"sim_status":20}]}`,
		"id as string":             `{"count":1,"sim_cards":[{"sim_card_id":"7","sim_status":20}]}`,
		"id overflows":             `{"count":1,"sim_cards":[{"sim_card_id":99999999999999999999,"sim_status":20}]}`,
		"id negative":              `{"count":1,"sim_cards":[{"sim_card_id":-7,"sim_status":20}]}`,
		"null record":              `{"count":1,"sim_cards":[null]}`,
		"number record":            `{"count":1,"sim_cards":[7]}`,
		"trailing garbage":         `{"count":1,"sim_cards":[` + rec + `]} x`,
		"trailing comma":           `{"count":1,"sim_cards":[` + rec + `,]}`,
		"leading zero":             `{"count":01,"sim_cards":[` + rec + `]}`,
		"limit as string":          `{"count":1,"limit":"500","sim_cards":[` + rec + `]}`,
		"limit as float":           `{"count":1,"limit":1.5,"sim_cards":[` + rec + `]}`,
		"offset null":              `{"count":1,"offset":null,"sim_cards":[` + rec + `]}`,
		"bad escape":               `{"count":1,"x":"\q","sim_cards":[` + rec + `]}`,
		"control character":        "{\"count\":1,\"x\":\"a\x01\",\"sim_cards\":[" + rec + "]}",
		"invalid utf-8":            "{\"count\":1,\"x\":\"\xff\",\"sim_cards\":[" + rec + "]}",
		"deep nesting":             `{"count":1,"x":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `,"sim_cards":[` + rec + `]}`,
		"whitespace everywhere":    " \t\n{ \"count\" : 1 ,\r\n \"sim_cards\" : [ " + rec + " ] } \n",
		"cards null":               `{"count":0,"sim_cards":null}`,
		"cards missing":            `{"count":0}`,
		"not an object":            `[1]`,
		"empty":                    ``,
		"more records than a page": `{"count":501,"sim_cards":[` + strings.TrimSuffix(strings.Repeat(`{"sim_card_id":7,"sim_status":20},`, 501), ",") + `]}`,
		"unknown nested values":    `{"count":1,"extra":{"a":[true,false,null,-0.5e-3,"\u00e9"]},"sim_cards":[` + rec + `]}`,
	} {
		t.Run(name, func(t *testing.T) { requireSameAsDecode(t, []byte(body)) })
	}
}

// benchPage is a 500-card page built from the simulator's first record.
func benchPage(b *testing.B) []byte {
	body, err := os.ReadFile("testdata/cards/sim_page1.json")
	require.NoError(b, err)
	p, err := scanCardPage(body, nil)
	require.NoError(b, err)
	rec := string(body[p.records[0].start:p.records[0].end])
	var sb strings.Builder
	sb.WriteString(`{"limit":500,"offset":1,"count":500,"sim_cards":[`)
	for i := range 500 {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(strings.Replace(rec, "4900000000001", strings.TrimPrefix(fmt.Sprint(4900000000001+i), ""), 1))
	}
	sb.WriteString("]}")
	return []byte(sb.String())
}

// BenchmarkCardPage compares, per 500-card page, decoding every record
// (what a cycle did before streaming, and still does for a new fleet) with
// scanning a page whose records are all known (a steady cycle).
func BenchmarkCardPage(b *testing.B) {
	body := benchPage(b)
	b.Run("decode", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			if _, err := decodeCards("hw", body); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("stream-all-new", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			if _, err := streamCards("hw", body, never); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("stream-all-known", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		always := func(string, uint64) bool { return true }
		for b.Loop() {
			if _, err := streamCards("hw", body, always); err != nil {
				b.Fatal(err)
			}
		}
	})
}

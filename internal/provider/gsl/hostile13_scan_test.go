package gsl

import (
	"strings"
	"testing"
)

// Hostile inputs for the page scanner: each must read as encoding/json
// reads it (requireSameAsDecode), or be refused with the decoder's error.
func TestHostile13ScanEdges(t *testing.T) {
	rec := `{"sim_card_id":7,"sim_status":20,"iccid":"89"}`
	page := func(list string) string { return `{"count":1,"sim_cards":[` + list + `]}` }
	// nest wraps v in n arrays.
	nest := func(n int, v string) string { return strings.Repeat("[", n) + v + strings.Repeat("]", n) }
	for name, body := range map[string]string{
		"BOM before the page":                "\xef\xbb\xbf" + page(rec),
		"NUL after the page":                 page(rec) + "\x00",
		"NUL inside the page":                `{"count":1,` + "\x00" + `"sim_cards":[` + rec + `]}`,
		"vertical tab as whitespace":         "{\v\"count\":1,\"sim_cards\":[" + rec + "]}",
		"form feed as whitespace":            "{\f\"count\":1,\"sim_cards\":[" + rec + "]}",
		"NBSP as whitespace":                 "{\u00a0\"count\":1,\"sim_cards\":[" + rec + "]}",
		"long s in sim_card_id":              page(`{"ſim_card_id":7,"sim_status":20}`),
		"long s escaped in sim_card_id":      page(`{"\u017fim_card_id":7,"sim_status":20}`),
		"long s in offset":                   `{"count":1,"offſet":"x","sim_cards":[` + rec + `]}`,
		"long s in offset, a number":         `{"count":1,"offſet":3,"sim_cards":[` + rec + `]}`,
		"dotted capital I in sim_card_id":    page(`{"s\u0130m_card_id":8,"sim_card_id":7,"sim_status":20}`),
		"dotless i in sim_card_id":           page(`{"sim_card_\u0131d":8,"sim_card_id":7,"sim_status":20}`),
		"id under two case variants":         page(`{"SIM_CARD_ID":8,"sim_status":20,"Sim_Card_Id":7}`),
		"id then its case variant null":      page(`{"sim_card_id":7,"sim_status":20,"SIM_CARD_ID":null}`),
		"id null then a case variant":        page(`{"sim_card_id":null,"sim_status":20,"SIM_card_id":7}`),
		"id key with NUL escape":             page(`{"sim_card_id\u0000":8,"sim_card_id":7,"sim_status":20}`),
		"id key with lone high surrogate":    page(`{"sim_card_id\ud800":8,"sim_card_id":7,"sim_status":20}`),
		"id key with lone low surrogate":     page(`{"\udc00sim_card_id":8,"sim_card_id":7,"sim_status":20}`),
		"id key with surrogate pair":         page(`{"sim_card_id\ud83d\ude00":8,"sim_card_id":7,"sim_status":20}`),
		"id key with invalid utf-8":          page("{\"sim_card_id\xff\":8,\"sim_card_id\":7,\"sim_status\":20}"),
		"id key escaped and invalid utf-8":   page("{\"sim_card_i\\u0064\xff\":8,\"sim_card_id\":7,\"sim_status\":20}"),
		"id key fully escaped":               page(`{"\u0073\u0069\u006d\u005f\u0063\u0061\u0072\u0064\u005f\u0069\u0064":7,"sim_status":20}`),
		"id key escaped upper":               page(`{"\u0053IM_CARD_ID":7,"sim_status":20}`),
		"id -0":                              page(`{"sim_card_id":-0,"sim_status":20}`),
		"id 1E2":                             page(`{"sim_card_id":1E2,"sim_status":20}`),
		"id max int64":                       page(`{"sim_card_id":9223372036854775807,"sim_status":20}`),
		"id min int64":                       page(`{"sim_card_id":-9223372036854775808,"sim_status":20}`),
		"id true":                            page(`{"sim_card_id":true,"sim_status":20}`),
		"count -0":                           `{"count":-0,"sim_cards":[]}`,
		"count 1E0":                          `{"count":1E0,"sim_cards":[` + rec + `]}`,
		"count negative":                     `{"count":-1,"sim_cards":[` + rec + `]}`,
		"huge exponent in a flow":            page(`{"sim_card_id":7,"sim_status":20,"flow_used":1e400}`),
		"tiny exponent in a flow":            page(`{"sim_card_id":7,"sim_status":20,"flow_used":1e-400}`),
		"negative zero flow":                 page(`{"sim_card_id":7,"sim_status":20,"flow_used":-0,"flow_left":-0.0}`),
		"exponent without digits":            page(`{"sim_card_id":7,"sim_status":20,"flow_used":1e}`),
		"plus sign number":                   page(`{"sim_card_id":7,"sim_status":20,"flow_used":+1}`),
		"leading dot number":                 page(`{"sim_card_id":7,"sim_status":20,"flow_used":.5}`),
		"hex number":                         page(`{"sim_card_id":7,"sim_status":20,"flow_used":0x10}`),
		"NaN literal":                        page(`{"sim_card_id":7,"sim_status":20,"flow_used":NaN}`),
		"sim_cards as object":                `{"count":1,"sim_cards":{"a":` + rec + `}}`,
		"sim_cards as string":                `{"count":1,"sim_cards":"[]"}`,
		"record is an array":                 page(`[7]`),
		"record is a string":                 page(`"x"`),
		"nested record value at depth limit": page(`{"sim_card_id":7,"sim_status":20,"x":` + nest(9997, "1") + `}`),
		"nested record value past the limit": page(`{"sim_card_id":7,"sim_status":20,"x":` + nest(9998, "1") + `}`),
		"nested objects in a record":         page(`{"sim_card_id":7,"sim_status":20,"x":` + strings.Repeat(`{"a":`, 9997) + "1" + strings.Repeat("}", 9997) + `}`),
		"unterminated string at the end":     `{"count":1,"sim_cards":[` + rec + `],"x":"abc`,
		"escape at the very end":             `{"count":1,"sim_cards":[` + rec + `],"x":"\`,
		"short unicode escape at the end":    `{"count":1,"sim_cards":[` + rec + `],"x":"\u12`,
		"literal cut short":                  `{"count":1,"sim_cards":[` + rec + `],"x":tru`,
		"truncated in a record":              `{"count":1,"sim_cards":[{"sim_card_id":7,"sim_sta`,
		"only whitespace":                    " \n\t",
		"two pages back to back":             page(rec) + page(rec),
		"empty key":                          `{"":1,"count":1,"sim_cards":[` + rec + `]}`,
		"key not a string":                   `{count:1,"sim_cards":[` + rec + `]}`,
		"colon missing":                      `{"count" 1,"sim_cards":[` + rec + `]}`,
		"single quotes":                      `{'count':1,"sim_cards":[` + rec + `]}`,
		"two records same bytes":             `{"count":2,"sim_cards":[` + rec + `,` + rec + `]}`,
	} {
		t.Run(name, func(t *testing.T) { requireSameAsDecode(t, []byte(body)) })
	}
}

package api

import (
	"net/http/httptest"
	"testing"
)

// hostile12: decodeBody refuses unknown fields and trailing data so that "a
// misspelt field silently ignored could widen a silence", but Go's
// encoding/json takes the LAST of duplicate keys and matches keys
// case-insensitively. {"match":"rule==\"x\"","match":"true"} creates a
// silence that mutes everything while any proxy, audit log or reviewer
// reading the first "match" sees a narrow one; {"MATCH":..,"For":..} is
// accepted too. Both should be refused (400) like an unknown field.
func TestHostile12SilenceBodyDuplicateAndCaseKeys(t *testing.T) {
	st := openStore(t)
	srv := New(Options{Store: st, Tokens: []Token{{Name: "ops", Secret: adminSecret, Role: RoleAdmin}}})
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	for name, body := range map[string]string{
		"duplicate match": `{"match":"rule == \"card_low_flow\"","match":"true","for":"1h","comment":"x"}`,
		"duplicate for":   `{"match":"false","for":"1h","for":"8760h","comment":"x"}`,
		"upper-case key":  `{"MATCH":"true","For":"1h","comment":"x"}`,
	} {
		code, out := do12(t, ts, req12{"POST", "/api/v1/silences", body, bearer(adminSecret, "Content-Type", "application/json")})
		if code != 400 {
			t.Errorf("%s: got %d, want 400: %s", name, code, out)
		}
	}
}

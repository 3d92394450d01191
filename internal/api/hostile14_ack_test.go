package api

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The console's session cookie is a token like a bearer: a read token's
// cookie changes nothing; an admin's changes only from this site, with
// JSON; a wrong one is no one.
func TestHostile14SessionCookieRoles(t *testing.T) {
	r := newAlertRig(t)
	fillAlerts(r)
	r.outbox()
	ts := tokenServer(t, r)
	key := keyOf(t, r, ts, bearer(adminSecret), "hw", "card_low_flow", 2)
	cookie := func(secret string, more ...string) map[string]string {
		h := map[string]string{"Cookie": SessionCookie + "=" + secret, "Content-Type": "application/json"}
		for i := 0; i+1 < len(more); i += 2 {
			h[more[i]] = more[i+1]
		}
		return h
	}
	for _, c := range []struct {
		name string
		h    map[string]string
		path string
		body string
		code int
	}{
		{"read cookie acks", cookie(readSecret), "/api/v1/alerts/ack", ackBody(key, "x"), 403},
		{"read cookie silences", cookie(readSecret), "/api/v1/silences", `{"match": "true", "for": "1h", "comment": "x"}`, 403},
		{"read cookie replays", cookie(readSecret), "/api/v1/deadletters/replay", `{"notifier": "slack", "all": true}`, 403},
		{"wrong cookie", cookie("nope"), "/api/v1/alerts/ack", ackBody(key, "x"), 401},
		{"read bearer, admin cookie", map[string]string{"Authorization": "Bearer " + readSecret, "Cookie": SessionCookie + "=" + adminSecret, "Content-Type": "application/json"}, "/api/v1/alerts/ack", ackBody(key, "x"), 403},
		{"admin cookie cross-site", cookie(adminSecret, "Sec-Fetch-Site", "cross-site"), "/api/v1/alerts/ack", ackBody(key, "x"), 403},
		{"admin cookie foreign origin", cookie(adminSecret, "Origin", "https://evil.example"), "/api/v1/alerts/ack", ackBody(key, "x"), 403},
		{"admin cookie text/plain", cookie(adminSecret, "Content-Type", "text/plain"), "/api/v1/alerts/ack", ackBody(key, "x"), 415},
		{"admin cookie form", cookie(adminSecret, "Content-Type", "application/x-www-form-urlencoded"), "/api/v1/alerts/ack", "alert=" + key + "&comment=x", 415},
		{"admin cookie 10 MB", cookie(adminSecret), "/api/v1/alerts/ack", `{"alert":"` + key + `","comment":"` + strings.Repeat("a", 10<<20) + `"}`, 400},
		{"NUL in key", cookie(adminSecret), "/api/v1/alerts/ack", `{"alert":"hw/card_low_flow/card/1\u0000","comment":"x"}`, 400},
		{"escaped NUL in key", cookie(adminSecret), "/api/v1/alerts/ack", ackBody("hw/card_low_flow/card/%00", "x"), 400},
		{"LRE/PDF", cookie(adminSecret), "/api/v1/alerts/ack", ackBody(key, "ok \u202a x \u202c"), 400},
		{"isolate", cookie(adminSecret), "/api/v1/alerts/ack", ackBody(key, "ok \u2067 x \u2069"), 400},
	} {
		code, body := do12(t, ts, req12{method: http.MethodPost, path: c.path, body: c.body, header: c.h})
		if len(body) > 200 {
			body = body[:200]
		}
		require.Equal(t, c.code, code, "%s: %s", c.name, body)
	}
	acks, err := r.store.Acks()
	require.NoError(t, err)
	require.Empty(t, acks)
	require.Empty(t, r.outbox())

	// An admin's cookie, same-origin JSON, acknowledges.
	code, body := do12(t, ts, req12{method: http.MethodPost, path: "/api/v1/alerts/ack", body: ackBody(key, "on it"),
		header: cookie(adminSecret, "Sec-Fetch-Site", "same-origin", "Origin", ts.URL)})
	require.Equal(t, 200, code, body)
	require.Len(t, r.outbox(), 1)
}

// Many acks of one alert: a double submit announces nothing; each new
// comment is a new event in the alert's thread. Measured, not asserted
// beyond the double submit.
func TestHostile14AckRepeats(t *testing.T) {
	r := newAlertRig(t)
	fillAlerts(r)
	r.outbox()
	ts := tokenServer(t, r)
	admin := bearer(adminSecret)
	key := keyOf(t, r, ts, admin, "hw", "card_low_flow", 2)
	for range 20 {
		code, body := postAck(t, ts, admin, ackBody(key, "on it"))
		require.Equal(t, 200, code, body)
	}
	require.Len(t, r.outbox(), 1, "20 identical acks announce once")
	for i := range 20 {
		code, body := postAck(t, ts, admin, ackBody(key, []string{"a", "b"}[i%2]))
		require.Equal(t, 200, code, body)
	}
	t.Logf("20 acks alternating two comments announce %d events", len(r.outbox()))
}

package slack

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/simwatch/simwatch/internal/redact"
)

// What a Slack API (or a proxy at api_url) answers ends up in the error,
// and from there in a dead letter: the notifier masks configured secrets
// in it before it leaves.
func TestHostile12AnswerRedacted(t *testing.T) {
	const secret = "xoxb-SECRET-bot-token-42"
	for _, tc := range []struct{ name, answer string }{
		{"slack error string", `{"ok":false,"error":"invalid_auth ` + secret + `"}`},
		{"error with more text", `{"ok":false,"error":"you sent Bearer ` + secret + ` which is revoked"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(tc.answer))
			}))
			defer ts.Close()
			n, err := New(Options{Name: "ops", Token: secret, Channel: "#c", APIURL: ts.URL, Threads: nil,
				Redact: redact.New(secret)})
			if err != nil {
				t.Fatal(err)
			}
			_, _, err = n.post(context.Background(), nil, "text", "")
			if err == nil {
				t.Fatal("want an error")
			}
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("secret in error: %v", err)
			}
		})
	}
}

package webhook

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/simwatch/simwatch/internal/redact"
)

// A receiver that echoes a secret across the 512-byte cut of the answer an
// error keeps: masked after the cut, the secret's prefix would survive
// ("…/hook?token=QS3CRE"). post masks before cutting.
func TestHostile12MaskBeforeCut(t *testing.T) {
	const secret = "QS3CRETtok"
	for _, tc := range []struct {
		name string
		at   int // where the secret starts in the answer
	}{
		{"straddles the cut", snippetLen - 6},
		{"ends at the cut", snippetLen - len(secret)},
		{"starts at the cut", snippetLen},
		{"well inside", 10},
		{"long answer, straddles", snippetLen - 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := strings.Repeat("x", tc.at) + secret + strings.Repeat("y", 3000)
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusBadRequest)
				_, _ = w.Write([]byte(body))
			}))
			defer ts.Close()
			n := New(Options{Name: "crm", URL: ts.URL + "/hook?token=" + secret, Redact: redact.New(secret), Now: func() time.Time { return now }})
			_, err := n.Notify(context.Background(), sampleEvents()...)
			if err == nil {
				t.Fatal("want an error for HTTP 400")
			}
			for i := 4; i <= len(secret); i++ {
				if strings.Contains(err.Error(), "x"+secret[:i]) {
					t.Fatalf("prefix %q of the secret in error: …%s", secret[:i], tail(err.Error(), 40))
				}
			}
			if len(err.Error()) > snippetLen+200 {
				t.Fatalf("error is %d bytes: the snippet is not cut", len(err.Error()))
			}
		})
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

package sim

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/provider/gsl"
)

// The simulator checks AK/SK signatures as the gateway does: whatever
// headers the client chose to sign, with the date among them. Huawei's own
// SDK signs user-agent;x-project-id;x-sdk-date, not host, and is accepted.
func TestSignatureAsTheSDKSignsIt(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	s := NewServer(Options{Fleet: NewFleet(FleetOptions{Cards: 3, Pools: 1, Seed: 1}), Keys: map[string]string{"AK": "SK"}, Now: func() time.Time { return now }})
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	for _, tc := range []struct {
		name   string
		signed []string
		sk     string
		want   int
	}{
		{"as the SDK signs", []string{"user-agent", "x-project-id", "x-sdk-date"}, "SK", 200},
		{"as simwatch signs", []string{"host", "user-agent", "x-project-id", "x-sdk-date"}, "SK", 200},
		{"date not signed", []string{"host", "user-agent", "x-project-id"}, "SK", 401},
		{"wrong secret", []string{"user-agent", "x-project-id", "x-sdk-date"}, "XX", 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, ts.URL+"/v1/sim-cards?offset=1&limit=10", nil)
			require.NoError(t, err)
			req.Header.Set("User-Agent", "huaweicloud-usdk-go/3.0")
			req.Header.Set("X-Project-Id", "0123456789abcdef")
			req.Header.Set(gsl.HeaderSdkDate, now.Format(gsl.SdkDateFormat))
			sig := gsl.Signature(tc.sk, gsl.StringToSign(gsl.CanonicalRequest(req, tc.signed, nil), req.Header.Get(gsl.HeaderSdkDate)))
			req.Header.Set("Authorization", "SDK-HMAC-SHA256 Access=AK, SignedHeaders="+strings.Join(tc.signed, ";")+", Signature="+sig)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, tc.want, resp.StatusCode)
		})
	}
}

package sim

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
)

func serve(h http.Handler, method, target string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, target, nil))
	return rec
}

const lcList = "/?Action=ListCardInfo&Format=JSON&Version=2021-05-20&PageNo=1&PageSize=10"

// Over MaxRate the simulator answers as the real gateways do, on both
// providers' APIs together, and counts it; the threshold refills with time;
// control endpoints are never throttled.
func TestThrottleThreshold(t *testing.T) {
	tests := []struct {
		name       string
		retryAfter time.Duration
		wantHeader string
	}{
		{"no Retry-After, as gateways often do", 0, ""},
		{"Retry-After rounded up to seconds", 1500 * time.Millisecond, "2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := NewServer(Options{Fleet: NewFleet(FleetOptions{Cards: 30, Pools: 1, Seed: 3}), MaxRate: 20, ThrottleRetryAfter: tt.retryAfter})
				h := s.Handler()
				// A burst of 2 (a tenth of a second's worth) passes, at one instant.
				require.Equal(t, http.StatusOK, serve(h, "GET", "/v1/sim-cards?offset=1&limit=10").Code)
				require.Equal(t, http.StatusOK, serve(h, "GET", lcList).Code)

				gslRec := serve(h, "GET", "/v1/sim-cards?offset=2&limit=10")
				require.Equal(t, http.StatusTooManyRequests, gslRec.Code)
				var body map[string]string
				require.NoError(t, json.Unmarshal(gslRec.Body.Bytes(), &body))
				require.Equal(t, "APIGW.0308", body["error_code"])
				require.Equal(t, "The throttling threshold has been reached: policy user over ratelimit, limit:20, time:1 second", body["error_msg"])
				require.Equal(t, tt.wantHeader, gslRec.Header().Get("Retry-After"))
				require.NotEmpty(t, gslRec.Header().Get("X-Request-Id"))

				lcRec := serve(h, "GET", lcList)
				require.Equal(t, http.StatusBadRequest, lcRec.Code)
				require.NoError(t, json.Unmarshal(lcRec.Body.Bytes(), &body))
				require.Equal(t, "Throttling.User", body["Code"])
				require.NotEmpty(t, body["RequestId"])
				require.Equal(t, tt.wantHeader, lcRec.Header().Get("Retry-After"))

				// Control endpoints answer whatever the threshold.
				for range 5 {
					require.Equal(t, http.StatusOK, serve(h, "GET", "/_sim/stats").Code)
				}
				st := s.Stats()
				require.Equal(t, 2, st.Throttled)
				require.Equal(t, 4, st.Requests, "throttled answers are requests too")

				// 50ms later one more request fits (20/s).
				time.Sleep(50 * time.Millisecond)
				require.Equal(t, http.StatusOK, serve(h, "GET", "/v1/sim-pools?offset=1&limit=10").Code)
				require.Equal(t, http.StatusTooManyRequests, serve(h, "GET", "/v1/sim-pools?offset=1&limit=10").Code)

				// Over 10 seconds at 100/s offered, about 20/s pass.
				ok := 0
				for range 1000 {
					time.Sleep(10 * time.Millisecond)
					if serve(h, "GET", "/v1/sim-cards?offset=1&limit=10").Code == http.StatusOK {
						ok++
					}
				}
				require.InDelta(t, 200, ok, 3)
			})
		})
	}
}

// No MaxRate, no throttling, however fast the requests come.
func TestNoThresholdNoThrottle(t *testing.T) {
	s := NewServer(Options{Fleet: NewFleet(FleetOptions{Cards: 10, Pools: 1, Seed: 3})})
	h := s.Handler()
	for range 200 {
		require.Equal(t, http.StatusOK, serve(h, "GET", "/v1/sim-cards?offset=1&limit=10").Code)
	}
	require.Zero(t, s.Stats().Throttled)
}

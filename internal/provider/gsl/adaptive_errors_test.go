package gsl_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/provider/gsl"
)

// The adaptive controller slows down on exactly the answers that say GSL
// (or its API gateway) is throttling.
func TestAPIErrorThrottled(t *testing.T) {
	tests := []struct {
		status    int
		code      string
		throttled bool
	}{
		{429, gsl.CodeThrottled, true},
		{429, "", true},
		{503, "", true},
		{403, gsl.CodeNoRepeatIn5m, true},
		{500, gsl.CodeSystemBusy, false},
		{400, gsl.CodeParamInvalid, false},
		{401, "APIGW.0301", false},
	}
	for _, tt := range tests {
		e := &gsl.APIError{Status: tt.status, Code: tt.code}
		require.Equal(t, tt.throttled, e.Throttled(), "%d %s", tt.status, tt.code)
		if tt.throttled {
			require.True(t, e.Temporary(), "a throttled request is retried")
		}
	}
}

// Retry-After is read in both its forms, seconds and an HTTP date; garbage
// is no wait.
func TestRetryAfterHeaderForms(t *testing.T) {
	tests := []struct {
		name   string
		header func(now time.Time) string
		min    time.Duration
		max    time.Duration
	}{
		{"seconds", func(time.Time) string { return "7" }, 7 * time.Second, 7 * time.Second},
		{"http date", func(now time.Time) string { return now.Add(30 * time.Second).UTC().Format(http.TimeFormat) }, 28 * time.Second, 30 * time.Second},
		{"a year", func(time.Time) string { return "31536000" }, 5 * time.Minute, 5 * time.Minute},
		{"garbage", func(time.Time) string { return "later, maybe" }, 0, 0},
		{"negative", func(time.Time) string { return "-3" }, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Retry-After", tt.header(time.Now()))
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusTooManyRequests)
				_, _ = w.Write([]byte(`{"error_code":"APIGW.0308","error_msg":"The throttling threshold has been reached: policy user over ratelimit, limit:5, time:1 second"}`))
			}))
			defer ts.Close()
			c := newClient(t, gsl.Options{Endpoint: ts.URL, Token: "t", PageSize: 10, Retries: -1})
			_, err := c.Fetch(context.Background())
			var ae *gsl.APIError
			require.True(t, errors.As(err, &ae), "%v", err)
			require.True(t, ae.Throttled())
			require.GreaterOrEqual(t, ae.RetryAfter(), tt.min)
			require.LessOrEqual(t, ae.RetryAfter(), tt.max)
			require.EqualValues(t, 1, c.RequestStats().Throttled)
		})
	}
}

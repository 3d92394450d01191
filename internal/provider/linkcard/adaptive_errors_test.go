package linkcard_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/provider/linkcard"
)

// The adaptive controller slows down on every Throttling* code, on
// ServiceUnavailable and on HTTP 429 and 503, whatever the status beside
// them (Alibaba answers Throttling.User with HTTP 400).
func TestAPIErrorThrottled(t *testing.T) {
	tests := []struct {
		status    int
		code      string
		throttled bool
	}{
		{400, "Throttling.User", true},
		{400, "Throttling.Api", true},
		{400, "Throttling", true},
		{200, "Throttling.User", true},
		{503, "ServiceUnavailable", true},
		{503, "", true},
		{429, "", true},
		{400, "SignatureDoesNotMatch", false},
		{500, "InternalError", false},
		{400, "throttling", false},
		{404, "InvalidAccessKeyId.NotFound", false},
	}
	for _, tt := range tests {
		e := &linkcard.APIError{Status: tt.status, Code: tt.code}
		require.Equal(t, tt.throttled, e.Throttled(), "%d %s", tt.status, tt.code)
	}
}

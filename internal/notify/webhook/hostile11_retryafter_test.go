package webhook

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/notify"
)

// Hostile (issue 11, receivers): a receiver answers 429 with an absurd
// Retry-After (about 317 years in seconds). The README: 429 is retried
// "honouring Retry-After, capped at the notifier's max_backoff", and a
// longer request is capped and logged. The wait before the next attempt
// must be max_backoff, not the short base backoff (which hammers a receiver
// that asked us to back off).
func TestHostile11HugeRetryAfterIsCappedAtMaxBackoff(t *testing.T) {
	for _, ra := range []string{"9999999999", "99999999999999999999"} {
		t.Run(ra, func(t *testing.T) {
			hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Retry-After", ra)
				w.WriteHeader(http.StatusTooManyRequests)
			}))
			defer hook.Close()
			n := New(Options{Name: "crm", URL: hook.URL, Client: &http.Client{}})
			_, err := n.Notify(context.Background(), sampleEvents()...)
			var we *Error
			require.True(t, errors.As(err, &we))
			require.Greater(t, we.RetryAfter(), time.Duration(0), "a receiver asking for a very long wait asks for a long wait, not none (got %v)", we.RetryAfter())

			var infos []notify.RetryInfo
			r := notify.Retrier{Max: 2, Backoff: notify.Backoff{Base: time.Millisecond, Max: 50 * time.Millisecond},
				OnRetry: func(i notify.RetryInfo) { infos = append(infos, i) }}
			_, _, _, err = r.Run(context.Background(), n, sampleEvents())
			require.Error(t, err)
			require.Len(t, infos, 1)
			require.Equal(t, 50*time.Millisecond, infos[0].Wait, "capped at max_backoff")
			require.NotZero(t, infos[0].Asked, "and the cap is reported (logged)")
		})
	}
}

package sim

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// throttle is the provider's throttling threshold: a token bucket over every
// API request (control endpoints aside), refilled at MaxRate per second on
// the server's clock, with a burst of a tenth of a second's worth.
type throttle struct {
	mu     sync.Mutex
	rate   float64
	burst  float64
	tokens float64
	last   time.Time
}

func newThrottle(rate float64) *throttle {
	if rate <= 0 || math.IsNaN(rate) || math.IsInf(rate, 0) {
		return nil
	}
	burst := max(1, math.Floor(rate/10))
	return &throttle{rate: rate, burst: burst, tokens: burst}
}

// allow takes a token if one is left at now.
func (t *throttle) allow(now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.last.IsZero() && now.After(t.last) {
		t.tokens = min(t.burst, t.tokens+now.Sub(t.last).Seconds()*t.rate)
	}
	if t.last.IsZero() || now.After(t.last) {
		t.last = now
	}
	if t.tokens < 1 {
		return false
	}
	t.tokens--
	return true
}

// throttled answers requests over Options.MaxRate as the real providers do
// and hands the others to next: the Huawei API gateway answers 429
// APIGW.0308, LinkCard HTTP 400 Throttling.User. Throttled answers count as
// requests and as throttled in the stats.
func (s *Server) throttled(path string, next http.HandlerFunc) http.HandlerFunc {
	if s.limit == nil {
		return next
	}
	return func(w http.ResponseWriter, r *http.Request) {
		if s.limit.allow(s.o.Now()) {
			next(w, r)
			return
		}
		s.mu.Lock()
		s.stats.Requests++
		s.stats.ByPath[path]++
		s.stats.Throttled++
		s.mu.Unlock()
		if s.o.ThrottleRetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.FormatInt(int64(math.Ceil(s.o.ThrottleRetryAfter.Seconds())), 10))
		}
		if path == "linkcard" {
			rid := strings.ToUpper(newRequestID()[:8]) + "-SIM"
			lcError(w, http.StatusBadRequest, rid, "Throttling.User", "Request was denied due to user flow control.")
			return
		}
		w.Header().Set("X-Request-Id", newRequestID())
		gslError(w, http.StatusTooManyRequests, "APIGW.0308",
			fmt.Sprintf("The throttling threshold has been reached: policy user over ratelimit, limit:%s, time:1 second", strconv.FormatFloat(s.limit.rate, 'f', -1, 64)))
	}
}

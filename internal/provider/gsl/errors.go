package gsl

import (
	"fmt"
	"time"
)

// Documented GSL error codes the client treats specially.
const (
	CodeSystemBusy   = "GSL.00010003" // 500: retry later
	CodeParamInvalid = "GSL.00010004" // 400: the caller's fault
	CodeNoRepeatIn5m = "GSL.00016016" // 403: rate limited
	// CodeThrottled is the Huawei API gateway's 429, "The throttling
	// threshold has been reached".
	CodeThrottled     = "APIGW.0308"
	CodeWorkOrderOpen = "GSL.00016010"
)

// APIError is an answer from GSL that was not a success: an HTTP error status
// with GSL's {error_code, error_msg} body, or a 200 whose body could not be used.
type APIError struct {
	Op         string // e.g. "GET /v1/sim-cards page 3"
	Status     int
	Code       string
	Message    string
	RequestID  string
	retryAfter time.Duration // from Retry-After, when the server sent one
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("gsl: %s: HTTP %d", e.Op, e.Status)
	if e.Code != "" {
		s += " " + e.Code
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.RequestID != "" {
		s += " (request id " + e.RequestID + ")"
	}
	return s
}

// RateLimited reports whether GSL asked the caller to slow down: HTTP 429
// or 503, the gateway's throttling code, or "no repeated operation within
// 5 minutes".
func (e *APIError) RateLimited() bool {
	return e.Status == 429 || e.Status == 503 || e.Code == CodeThrottled || e.Code == CodeNoRepeatIn5m
}

// Throttled is RateLimited, for the adaptive controller: it halves the
// request rate on these answers.
func (e *APIError) Throttled() bool { return e.RateLimited() }

// Retryable reports whether the same request may succeed later: server
// errors, "system busy" and rate limiting. Client errors (400) are not.
func (e *APIError) Retryable() bool {
	return e.Status >= 500 || e.Code == CodeSystemBusy || e.RateLimited()
}

// Temporary is Retryable, for the shared retrier.
func (e *APIError) Temporary() bool { return e.Retryable() }

// RetryAfter is the wait GSL asked for, if any.
func (e *APIError) RetryAfter() time.Duration { return e.retryAfter }

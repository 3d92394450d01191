package gsl

import (
	"fmt"
	"time"
)

// Documented GSL error codes the client treats specially.
const (
	CodeSystemBusy    = "GSL.00010003" // 500: retry later
	CodeParamInvalid  = "GSL.00010004" // 400: the caller's fault
	CodeNoRepeatIn5m  = "GSL.00016016" // 403: rate limited
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

// RateLimited reports whether GSL asked the caller to slow down.
func (e *APIError) RateLimited() bool {
	return e.Status == 429 || e.Code == CodeNoRepeatIn5m
}

// Retryable reports whether the same request may succeed later: server
// errors, "system busy" and rate limiting. Client errors (400) are not.
func (e *APIError) Retryable() bool {
	return e.Status >= 500 || e.Code == CodeSystemBusy || e.RateLimited()
}

// Temporary is Retryable, for the shared retrier.
func (e *APIError) Temporary() bool { return e.Retryable() }

// RetryAfter is the wait GSL asked for, if any.
func (e *APIError) RetryAfter() time.Duration { return e.retryAfter }

// PageError is a page whose body was not a valid listing: malformed JSON or a
// record missing what identifies it. It is retried (the body may have been
// cut short) and fails the cycle if it persists.
type PageError struct {
	Op        string
	RequestID string
	Err       error
}

func (e *PageError) Error() string {
	s := fmt.Sprintf("gsl: %s: bad page: %v", e.Op, e.Err)
	if e.RequestID != "" {
		s += " (request id " + e.RequestID + ")"
	}
	return s
}

func (e *PageError) Unwrap() error { return e.Err }

// Temporary is true: a bad page may have been cut short on the way.
func (e *PageError) Temporary() bool { return true }

package linkcard

import (
	"fmt"
	"strings"
	"time"
)

// CodeServiceUnavailable is Alibaba's "try again later"; every code that
// starts with "Throttling" (Throttling, Throttling.User, Throttling.Api...)
// is flow control.
const CodeServiceUnavailable = "ServiceUnavailable"

// hints explain the codes a user can fix, in words.
var hints = map[string]string{
	"SignatureDoesNotMatch":       "the request signature does not match: check access_key_secret",
	"IncompleteSignature":         "the request signature is incomplete: check access_key_secret",
	"InvalidAccessKeyId.NotFound": "the access key id is not known: check access_key_id",
	"InvalidAccessKeyId.Inactive": "the access key is disabled: enable it or use another",
	"InvalidTimeStamp.Expired":    "the request timestamp is too far from the server's clock: check this machine's time",
	"Forbidden.RAM":               "the access key's RAM user may not call ListCardInfo: grant it linkcard permissions",
}

// APIError is an answer that was not a success: an HTTP error, or HTTP 200
// with Success false or a Code other than "200".
type APIError struct {
	Op         string
	Status     int
	Code       string
	Message    string
	RequestID  string
	retryAfter time.Duration
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("linkcard: %s: HTTP %d", e.Op, e.Status)
	if e.Code != "" {
		s += " " + e.Code
	}
	if h := hints[e.Code]; h != "" {
		s += ": " + h
	} else if e.Message != "" {
		s += ": " + e.Message
	}
	if e.RequestID != "" {
		s += " (request id " + e.RequestID + ")"
	}
	return s
}

// Throttled reports whether LinkCard asked the caller to slow down: a
// Throttling* code, ServiceUnavailable, HTTP 429 or 503.
func (e *APIError) Throttled() bool {
	return strings.HasPrefix(e.Code, "Throttling") || e.Code == CodeServiceUnavailable || e.Status == 503 || e.Status == 429
}

// Temporary reports whether the same request may succeed later: throttling
// and server errors. Signature and parameter errors are not.
func (e *APIError) Temporary() bool {
	return e.Throttled() || e.Status >= 500
}

// RetryAfter is the wait the server asked for, if any.
func (e *APIError) RetryAfter() time.Duration { return e.retryAfter }

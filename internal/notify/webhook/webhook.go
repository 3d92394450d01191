// Package webhook posts events as signed JSON, in simwatch's format (DESIGN §4)
// or as Alertmanager's webhook payload (version 4):
//
//	POST {"version":"1","receiver":..,"status":..,"group_key":..,"events":[...]}
//	Idempotency-Key:      the event id, or a hash of the ids for a group
//	X-Simwatch-Timestamp: unix seconds
//	X-Simwatch-Signature: sha256=hex(hmac_sha256(secret, timestamp + "." + body))
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/simwatch/simwatch/internal/event"
)

// Header names.
const (
	HeaderSignature   = "X-Simwatch-Signature"
	HeaderTimestamp   = "X-Simwatch-Timestamp"
	HeaderIdempotency = "Idempotency-Key"
)

// Options configures a Notifier.
type Options struct {
	Name   string // the receiver name in the payload
	URL    string
	Secret string // signing key; empty sends no signature
	Format string // FormatSimwatch (default) or FormatAlertmanager
	// ExternalURL is the watcher's status page, for Alertmanager's
	// externalURL and generatorURL.
	ExternalURL string
	Timeout     time.Duration
	Client      *http.Client
	Now         func() time.Time
}

// Notifier posts to one webhook URL.
type Notifier struct {
	o Options
}

// New returns a webhook notifier.
func New(o Options) *Notifier {
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	o.Client = NoRedirects(o.Client)
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Notifier{o: o}
}

// Payload is the body of a post.
type Payload struct {
	Version  string        `json:"version"`
	Receiver string        `json:"receiver"`
	Status   string        `json:"status"`
	GroupKey string        `json:"group_key"`
	Events   []event.Event `json:"events"`
}

// NoRedirects returns a copy of c (or of a zero client) that never follows a
// redirect: a signed post must reach the configured receiver, not be replayed
// as a GET or sent to another host. The 3xx comes back as the answer.
func NoRedirects(c *http.Client) *http.Client {
	var cp http.Client
	if c != nil {
		cp = *c
	}
	cp.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &cp
}

// RedirectTarget is the host a redirect answer points to, never its path or
// query (which may carry secrets).
func RedirectTarget(req *url.URL, location string) string {
	if location == "" {
		return "(no Location)"
	}
	u, err := url.Parse(location)
	if err != nil {
		return "(unreadable Location)"
	}
	if req != nil {
		u = req.ResolveReference(u)
	}
	if u.Host == "" {
		return "(no host)"
	}
	return u.Host
}

// Error is a post the receiver did not accept.
type Error struct {
	Status     int
	Body       string
	retryAfter time.Duration
	temporary  bool
}

func (e *Error) Error() string {
	return fmt.Sprintf("webhook: HTTP %d: %s", e.Status, e.Body)
}

// RetryAfter is the wait the receiver asked for.
func (e *Error) RetryAfter() time.Duration { return e.retryAfter }

// Notify posts events. 5xx, 408, 429 and network errors are worth retrying;
// other answers outside 2xx are not.
func (n *Notifier) Notify(ctx context.Context, events ...event.Event) (bool, error) {
	var payload any = Payload{
		Version:  "1",
		Receiver: n.o.Name,
		Status:   status(events),
		GroupKey: groupKey(events),
		Events:   wireEvents(events),
	}
	if n.o.Format == FormatAlertmanager {
		payload = alertmanagerPayload(n.o.Name, n.o.ExternalURL, events)
	}
	body, err := json.Marshal(payload)
	if err != nil {
		return false, fmt.Errorf("webhook: encode: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, n.o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.o.URL, bytes.NewReader(body))
	if err != nil {
		return false, fmt.Errorf("webhook: %w", err)
	}
	ts := strconv.FormatInt(n.o.Now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "simwatch")
	req.Header.Set(HeaderIdempotency, IdempotencyKey(events))
	req.Header.Set(HeaderTimestamp, ts)
	if n.o.Secret != "" {
		req.Header.Set(HeaderSignature, Sign(n.o.Secret, ts, body))
	}
	resp, err := n.o.Client.Do(req)
	if err != nil {
		// Never echo the URL's query, which may hold a token.
		return true, fmt.Errorf("webhook: post: %w", redact(err))
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 == 2 {
		return false, nil
	}
	if resp.StatusCode/100 == 3 {
		// Not followed (see NoRedirects), and not retried: the url is wrong.
		return false, fmt.Errorf("webhook %s: HTTP %d redirect to %s not followed (check the url)",
			n.o.Name, resp.StatusCode, RedirectTarget(req.URL, resp.Header.Get("Location")))
	}
	e := &Error{Status: resp.StatusCode, Body: strings.TrimSpace(string(snippet))}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
		e.retryAfter = time.Duration(s) * time.Second
	} else if t, err := http.ParseTime(resp.Header.Get("Retry-After")); err == nil {
		e.retryAfter = max(t.Sub(n.o.Now()), 0)
	}
	e.temporary = resp.StatusCode >= 500 || resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode == http.StatusTooManyRequests
	return e.temporary, e
}

// Sign is the X-Simwatch-Signature value for a body sent at timestamp ts.
func Sign(secret, ts string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts))
	m.Write([]byte("."))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify checks a signature as a receiver would, rejecting timestamps more
// than tolerance away from now (replays).
func Verify(secret, ts, signature string, body []byte, now time.Time, tolerance time.Duration) bool {
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return false
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return false
	}
	return hmac.Equal([]byte(Sign(secret, ts, body)), []byte(signature))
}

// IdempotencyKey is the event id for one event, or a hash of the ids of a group.
func IdempotencyKey(events []event.Event) string {
	if len(events) == 1 {
		return events[0].ID
	}
	h := sha256.New()
	for _, e := range events {
		h.Write([]byte(e.ID))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// wireEvents drops the fields that only route an event inside the watcher
// (which notifiers it is for, the silence that muted it): they are not part
// of the receiver's payload.
func wireEvents(events []event.Event) []event.Event {
	out := make([]event.Event, len(events))
	for i, e := range events {
		e.Notify = nil
		e.Silenced = ""
		out[i] = e
	}
	return out
}

func status(events []event.Event) string {
	for _, e := range events {
		if e.Kind != event.KindResolved {
			return event.KindFiring
		}
	}
	return event.KindResolved
}

func groupKey(events []event.Event) string {
	if len(events) == 0 {
		return ""
	}
	return "rule=" + events[0].Rule
}

// redact drops the URL from a transport error, which otherwise quotes it
// whole, query tokens included.
func redact(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}

// Package webhook posts events as signed JSON, in simwatch's format (DESIGN §4)
// or as Alertmanager's webhook payload (version 4):
//
//	POST {"version":"1","receiver":..,"status":..,"group_key":..,"events":[...]}
//	Idempotency-Key:      the event id, or a hash of the ids for a group
//	X-Simwatch-Part:      "k/n" on a part of a group split for the receiver's size limit
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
	"sync"
	"time"

	"github.com/simwatch/simwatch/internal/event"
	"github.com/simwatch/simwatch/internal/notify"
	"github.com/simwatch/simwatch/internal/notify/webhook/nofollow"
	"github.com/simwatch/simwatch/internal/redact"
)

// Header names.
const (
	HeaderSignature   = "X-Simwatch-Signature"
	HeaderTimestamp   = "X-Simwatch-Timestamp"
	HeaderIdempotency = "Idempotency-Key"
	// HeaderPart is "k/n" on the k-th of n parts of a group the receiver's
	// size limit split (see Notifier.Notify); absent when not split.
	HeaderPart = "X-Simwatch-Part"
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
	// Redact masks secrets in the receiver's answer before it is cut to
	// the snippet an error keeps, so that a secret straddling the cut
	// cannot leave its prefix behind; nil masks nothing.
	Redact *redact.Redactor
}

// Notifier posts to one webhook URL.
type Notifier struct {
	o Options

	mu            sync.Mutex
	acceptedParts map[string]time.Time // Idempotency-Key of accepted parts of split groups
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
	Version  string `json:"version"`
	Receiver string `json:"receiver"`
	Status   string `json:"status"`
	GroupKey string `json:"group_key"`
	// Part and Parts are set only when the receiver's size limit split the
	// group: this body carries the Part-th of Parts slices of its events.
	Part   int           `json:"part,omitempty"`
	Parts  int           `json:"parts,omitempty"`
	Events []event.Event `json:"events"`
}

// NoRedirects returns a copy of c (or of a zero client) that never follows a
// redirect (see nofollow.NoRedirects).
func NoRedirects(c *http.Client) *http.Client { return nofollow.NoRedirects(c) }

// RedirectTarget is the host a redirect answer points to, never its path or
// query (see nofollow.RedirectTarget).
func RedirectTarget(req *url.URL, location string) string {
	return nofollow.RedirectTarget(req, location)
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

// Notify posts events, all of them in one body however many. 5xx, 408, 429
// and network errors are worth retrying; other answers outside 2xx are not.
//
// Only a receiver's size limit splits a group: when it answers 413 Payload
// Too Large, the events are split into two halves, in order, each posted as a
// part of its own (recursively, down to one event; one event that still gets
// 413 is a permanent error naming its size). A part says which slice of the
// group it carries, "part": k, "parts": n (the k-th of n slices, n a power of
// two; parts of one call may be at different depths when only one half needed
// splitting again), in the body (simwatch format) and in the X-Simwatch-Part
// header "k/n" (both formats: Alertmanager's payload has no such field). Each
// part is signed on its own and has its own Idempotency-Key (the hash of its
// ids). A part accepted in this call is not sent again in it, and for
// acceptedTTL after, a retry of the whole call skips a part with the same
// Idempotency-Key (receivers dedupe by event id anyway).
func (n *Notifier) Notify(ctx context.Context, events ...event.Event) (bool, error) {
	if len(events) == 0 {
		return false, nil
	}
	g, _ := notify.GroupFrom(ctx)
	sp := &split{accepted: map[string]bool{}}
	retry, err := n.postPart(ctx, g, events, 0, 0, "", sp)
	tooLarge := errors.Join(sp.refused...)
	if err != nil {
		err = errors.Join(err, tooLarge)
		if retry || len(sp.accepted) == 0 {
			return retry, err
		}
		// Failed for good after some parts were accepted: only the others
		// failed.
		var ids []string
		for _, e := range events {
			if !sp.accepted[e.ID] {
				ids = append(ids, e.ID)
			}
		}
		return false, &notify.PartlyRefusedError{IDs: ids, Err: err}
	}
	switch len(sp.refused) {
	case 0:
		return false, nil
	case len(events):
		return false, tooLarge
	}
	ids := make([]string, len(sp.refused))
	for i, e := range sp.refused {
		ids[i] = e.(*TooLargeError).EventID
	}
	return false, &notify.PartlyRefusedError{IDs: ids, Err: tooLarge}
}

// split is what the parts of one call came to.
type split struct {
	refused  []error         // *TooLargeError: events too large even alone
	accepted map[string]bool // events in parts the receiver accepted
}

func (sp *split) accept(events []event.Event) {
	for _, e := range events {
		sp.accepted[e.ID] = true
	}
}

// postPart posts events as the index-th (from 0) of 2^depth slices of the
// group, splitting it in halves when the receiver says it is too large. why
// says why the group was split, for errors. An event too large even alone
// does not hold back the others: it is added to sp.refused and the rest
// still go; the error returned is about the others only.
func (n *Notifier) postPart(ctx context.Context, g notify.Group, events []event.Event, depth, index int, why string, sp *split) (bool, error) {
	key := IdempotencyKey(events)
	if depth > 0 && n.wasAccepted(key) {
		sp.accept(events)
		return false, nil
	}
	part := partOf{Part: index + 1, Parts: 1 << depth}
	body, err := n.body(g, events, part)
	if err != nil {
		return false, err
	}
	retry, err := n.post(ctx, body, key, part)
	var e *Error
	if err == nil || !errors.As(err, &e) || e.Status != http.StatusRequestEntityTooLarge {
		if err != nil && depth > 0 {
			err = fmt.Errorf("webhook %s: part %d of %d (%d events; %s): %w", n.o.Name, part.Part, part.Parts, len(events), why, err)
		}
		if err == nil {
			sp.accept(events)
			if depth > 0 {
				n.accepted(key)
			}
		}
		return retry, err
	}
	if len(events) == 1 {
		sp.refused = append(sp.refused, &TooLargeError{Notifier: n.o.Name, EventID: events[0].ID, Bytes: len(body), Err: err})
		return false, nil
	}
	if depth >= 30 {
		return false, fmt.Errorf("webhook %s: receiver keeps answering 413: %w", n.o.Name, err)
	}
	why = fmt.Sprintf("split in halves because the receiver answered 413 Payload Too Large to %d events in %d bytes", len(events), len(body))
	mid := len(events) / 2
	for i, half := range [][]event.Event{events[:mid], events[mid:]} {
		if retry, err := n.postPart(ctx, g, half, depth+1, 2*index+i, why, sp); err != nil {
			return retry, err
		}
	}
	return false, nil
}

// TooLargeError is an event the receiver refuses as too large (HTTP 413)
// even in a body of its own. It is permanent.
type TooLargeError struct {
	Notifier string
	EventID  string
	Bytes    int // the size of the body that carried it alone
	Err      error
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("webhook %s: event %s is too large for the receiver even alone (a %d-byte body answered HTTP 413): %v",
		e.Notifier, e.EventID, e.Bytes, e.Err)
}

func (e *TooLargeError) Unwrap() error { return e.Err }

// partOf numbers a part of a split group; Parts is 1 when not split.
type partOf struct{ Part, Parts int }

func (n *Notifier) body(g notify.Group, events []event.Event, part partOf) ([]byte, error) {
	var payload any
	if n.o.Format == FormatAlertmanager {
		payload = alertmanagerPayload(n.o.Name, n.o.ExternalURL, g, events)
	} else {
		p := Payload{
			Version:  "1",
			Receiver: n.o.Name,
			Status:   status(events),
			GroupKey: groupKey(g, events),
			Events:   wireEvents(events),
		}
		if part.Parts > 1 {
			p.Part, p.Parts = part.Part, part.Parts
		}
		payload = p
	}
	body, err := json.Marshal(payload)
	if err != nil {
		return nil, fmt.Errorf("webhook: encode: %w", err)
	}
	return body, nil
}

// post sends one signed body.
func (n *Notifier) post(ctx context.Context, body []byte, idempotencyKey string, part partOf) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, n.o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.o.URL, bytes.NewReader(body))
	if err != nil {
		return false, fmt.Errorf("webhook: %w", err)
	}
	ts := strconv.FormatInt(n.o.Now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "simwatch")
	req.Header.Set(HeaderIdempotency, idempotencyKey)
	req.Header.Set(HeaderTimestamp, ts)
	if part.Parts > 1 {
		req.Header.Set(HeaderPart, strconv.Itoa(part.Part)+"/"+strconv.Itoa(part.Parts))
	}
	if n.o.Secret != "" {
		req.Header.Set(HeaderSignature, Sign(n.o.Secret, ts, body))
	}
	resp, err := n.o.Client.Do(req)
	if err != nil {
		// Never echo the URL's query, which may hold a token.
		return true, fmt.Errorf("webhook: post: %w", dropURL(err))
	}
	defer resp.Body.Close()
	// Read past the snippet's end and mask before cutting: masked after,
	// a secret across the cut would keep its prefix.
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, snippetRead))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	snippet = n.o.Redact.Bytes(snippet)
	if len(snippet) > snippetLen {
		snippet = snippet[:snippetLen]
	}
	if resp.StatusCode/100 == 2 {
		return false, nil
	}
	if resp.StatusCode/100 == 3 {
		// Not followed (see NoRedirects), and not retried: the url is wrong.
		return false, fmt.Errorf("webhook %s: HTTP %d redirect to %s not followed (check the url)",
			n.o.Name, resp.StatusCode, RedirectTarget(req.URL, resp.Header.Get("Location")))
	}
	e := &Error{Status: resp.StatusCode, Body: strings.TrimSpace(string(snippet))}
	e.retryAfter = notify.ParseRetryAfter(resp.Header.Get("Retry-After"), n.o.Now())
	e.temporary = resp.StatusCode >= 500 || resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode == http.StatusTooManyRequests
	return e.temporary, e
}

// snippetLen is how much of a refusing receiver's answer an Error keeps;
// snippetRead is how much is read, and masked, to cut it from.
const (
	snippetLen  = 512
	snippetRead = 8 << 10
)

// acceptedTTL is how long a notifier remembers the parts of split groups the
// receiver accepted, so that a retry of the whole call does not resend them.
const acceptedTTL = 10 * time.Minute

// maxAccepted bounds that memory.
const maxAccepted = 4096

func (n *Notifier) accepted(key string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	now := n.o.Now()
	if n.acceptedParts == nil {
		n.acceptedParts = map[string]time.Time{}
	}
	if len(n.acceptedParts) >= maxAccepted {
		for k, at := range n.acceptedParts {
			if now.Sub(at) > acceptedTTL {
				delete(n.acceptedParts, k)
			}
		}
		if len(n.acceptedParts) >= maxAccepted {
			clear(n.acceptedParts)
		}
	}
	n.acceptedParts[key] = now
}

func (n *Notifier) wasAccepted(key string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	at, ok := n.acceptedParts[key]
	return ok && n.o.Now().Sub(at) <= acceptedTTL
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
// (which notifiers it is for, the silence or alert that muted it): they are
// not part of the receiver's payload. Order and seq are kept.
func wireEvents(events []event.Event) []event.Event {
	out := make([]event.Event, len(events))
	for i, e := range events {
		e.Notify = nil
		e.Silenced = ""
		e.Inhibited = ""
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

// groupKey is the group's key from the group stage (notify.GroupFrom), or
// "rule=<rule>" when the caller set none.
func groupKey(g notify.Group, events []event.Event) string {
	if g.Key != "" {
		return g.Key
	}
	if len(events) == 0 {
		return ""
	}
	return "rule=" + events[0].Rule
}

// dropURL drops the URL from a transport error, which otherwise quotes it
// whole, query tokens included.
func dropURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}

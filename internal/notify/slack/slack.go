// Package slack posts events to Slack with Block Kit: one detailed message
// for a single event, a digest for a burst ("card_low_flow for 25 cards",
// worst first, the first 10 listed), and resolutions as replies in the thread
// of the message that announced the alert.
package slack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/simwatch/simwatch/internal/event"
	"github.com/simwatch/simwatch/internal/notify/webhook"
)

// Threads remembers where each event was posted. It makes retries
// idempotent (a part already posted is not posted again) and lets a
// resolution find its alert's thread.
type Threads interface {
	Thread(notifier, eventID string) (channel, ts string, ok bool, err error)
	SaveThread(notifier string, at time.Time, eventID, channel, ts string) error
}

// Options configures a Notifier. Either Token and Channel (chat.postMessage)
// or WebhookURL (an incoming webhook; no threads) must be set.
type Options struct {
	Name       string
	Token      string
	Channel    string
	APIURL     string // overrides https://slack.com/api/
	WebhookURL string
	StatusURL  string // linked from every message when set
	Timeout    time.Duration
	Client     *http.Client
	Threads    Threads
	Now        func() time.Time
}

// Notifier posts to one Slack channel.
type Notifier struct {
	o   Options
	api *slack.Client
}

// New returns a Slack notifier.
func New(o Options) (*Notifier, error) {
	if o.WebhookURL == "" && (o.Token == "" || o.Channel == "") {
		return nil, errors.New("slack: set token and channel, or webhook_url")
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	// Never follow a redirect: the token or the webhook's secret path would
	// go along to wherever it points. A 3xx becomes a RedirectError.
	o.Client = webhook.NoRedirects(o.Client)
	o.Client.Transport = redirectStopper{base: o.Client.Transport}
	if o.Now == nil {
		o.Now = time.Now
	}
	n := &Notifier{o: o}
	if o.Token != "" {
		opts := []slack.Option{slack.OptionHTTPClient(o.Client)}
		if o.APIURL != "" {
			opts = append(opts, slack.OptionAPIURL(strings.TrimRight(o.APIURL, "/")+"/"))
		}
		n.api = slack.New(o.Token, opts...)
	}
	return n, nil
}

// permanent are Slack errors that no retry will heal.
var permanent = map[string]bool{
	"invalid_auth": true, "not_authed": true, "account_inactive": true, "token_revoked": true,
	"token_expired": true, "no_permission": true, "missing_scope": true, "channel_not_found": true,
	"not_in_channel": true, "is_archived": true, "invalid_blocks": true, "invalid_arguments": true,
	"msg_too_long": true, "restricted_action": true, "no_service": true, "invalid_token": true,
}

// RedirectError is a 3xx answer, which is never followed.
type RedirectError struct {
	Status int
	Host   string // the redirect's target host; never its path or query
}

func (e *RedirectError) Error() string {
	return fmt.Sprintf("HTTP %d redirect to %s not followed (check the url)", e.Status, e.Host)
}

// redirectStopper turns 3xx answers into a RedirectError, so that slack-go
// reports where the redirect pointed.
type redirectStopper struct{ base http.RoundTripper }

func (t redirectStopper) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.base
	if base == nil {
		base = http.DefaultTransport
	}
	resp, err := base.RoundTrip(req)
	if err != nil || resp.StatusCode/100 != 3 || resp.StatusCode == http.StatusNotModified {
		return resp, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	_ = resp.Body.Close()
	return nil, &RedirectError{Status: resp.StatusCode, Host: webhook.RedirectTarget(req.URL, resp.Header.Get("Location"))}
}

// redactedError is an error whose text had a secret URL taken out.
type redactedError struct {
	msg   string
	inner error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.inner }

// redact takes URLs out of an error's text: net/http quotes the request URL
// whole (url.Error), and an incoming-webhook URL is a secret. The chain below
// the url.Error is kept for classification.
func redact(err error, secret string) error {
	msg := err.Error()
	var inner error
	var ue *url.Error
	if errors.As(err, &ue) {
		inner = ue.Err
		msg = strings.ReplaceAll(msg, strconv.Quote(ue.URL), "[url redacted]")
		msg = strings.ReplaceAll(msg, ue.URL, "[url redacted]")
	}
	if secret != "" {
		msg = strings.ReplaceAll(msg, secret, "[url redacted]")
		if u, perr := url.Parse(secret); perr == nil && len(u.Path) > 1 {
			msg = strings.ReplaceAll(msg, u.Path, "[path redacted]")
			msg = strings.ReplaceAll(msg, u.EscapedPath(), "[path redacted]")
		}
	}
	if ue == nil && msg == err.Error() {
		return err
	}
	return &redactedError{msg: msg, inner: inner}
}

// Error is a post Slack did not accept.
type Error struct {
	Err        error
	retryAfter time.Duration
}

func (e *Error) Error() string             { return "slack: " + e.Err.Error() }
func (e *Error) Unwrap() error             { return e.Err }
func (e *Error) RetryAfter() time.Duration { return e.retryAfter }

// classify says whether a Slack failure is worth retrying, and how long Slack
// asked us to wait.
func classify(err error) (bool, error) {
	var re *RedirectError
	if errors.As(err, &re) {
		return false, &Error{Err: err}
	}
	var rl *slack.RateLimitedError
	if errors.As(err, &rl) {
		return true, &Error{Err: err, retryAfter: rl.RetryAfter}
	}
	var se slack.SlackErrorResponse
	if errors.As(err, &se) {
		return !permanent[se.Err], &Error{Err: err}
	}
	var sc slack.StatusCodeError
	if errors.As(err, &sc) {
		if sc.Code == http.StatusTooManyRequests || sc.Code >= 500 {
			return true, &Error{Err: err}
		}
		return false, &Error{Err: err}
	}
	for code := range permanent {
		if strings.Contains(err.Error(), code) {
			return false, &Error{Err: err}
		}
	}
	return true, &Error{Err: err}
}

// Notify posts one rule's events: the new ones as a message or digest, the
// resolutions as replies in their alerts' threads.
func (n *Notifier) Notify(ctx context.Context, events ...event.Event) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, n.o.Timeout)
	defer cancel()
	var opening, resolved []event.Event
	for _, e := range events {
		if done, err := n.posted(e.ID); err != nil {
			return true, err
		} else if done {
			continue
		}
		if e.Kind == event.KindResolved {
			resolved = append(resolved, e)
		} else {
			opening = append(opening, e)
		}
	}
	if len(opening) > 0 {
		if retry, err := n.post(ctx, opening, "", ""); err != nil {
			return retry, err
		}
	}
	// Resolutions reply in the thread of their firing message; those whose
	// firing was never posted here go out as a message of their own.
	threads := map[string][]event.Event{}
	var order []string
	for _, e := range resolved {
		key := ""
		if n.api != nil {
			firing := event.ID(e.Provider, e.Entity, e.EntityID, e.Rule, event.KindFiring, e.StartsAt, 0)
			channel, ts, ok, err := n.o.Threads.Thread(n.o.Name, firing)
			if err != nil {
				return true, err
			}
			if ok {
				key = channel + "\x00" + ts
			}
		}
		if _, seen := threads[key]; !seen {
			order = append(order, key)
		}
		threads[key] = append(threads[key], e)
	}
	for _, key := range order {
		channel, ts, _ := strings.Cut(key, "\x00")
		if retry, err := n.post(ctx, threads[key], channel, ts); err != nil {
			return retry, err
		}
	}
	return false, nil
}

func (n *Notifier) posted(id string) (bool, error) {
	if n.o.Threads == nil {
		return false, nil
	}
	_, _, ok, err := n.o.Threads.Thread(n.o.Name, id)
	return ok, err
}

// post sends one message (in a thread when ts is set) and records it for
// every event it carries.
func (n *Notifier) post(ctx context.Context, events []event.Event, channel, threadTS string) (bool, error) {
	blocks, fallback := message(events, n.o.StatusURL)
	var ts string
	var err error
	if n.api == nil {
		err = slack.PostWebhookCustomHTTPContext(ctx, n.o.WebhookURL, n.o.Client,
			&slack.WebhookMessage{Text: fallback, Blocks: &slack.Blocks{BlockSet: blocks}})
		channel = "webhook"
	} else {
		if channel == "" {
			channel = n.o.Channel
		}
		opts := []slack.MsgOption{slack.MsgOptionBlocks(blocks...), slack.MsgOptionText(fallback, false)}
		if threadTS != "" {
			opts = append(opts, slack.MsgOptionTS(threadTS))
		}
		channel, ts, err = n.api.PostMessageContext(ctx, channel, opts...)
	}
	if err != nil {
		if ctx.Err() != nil {
			return true, fmt.Errorf("slack: %w", ctx.Err())
		}
		return classify(redact(err, n.o.WebhookURL))
	}
	if n.o.Threads != nil {
		now := n.o.Now()
		for _, e := range events {
			if err := n.o.Threads.SaveThread(n.o.Name, now, e.ID, channel, ts); err != nil {
				return true, fmt.Errorf("slack: remember thread: %w", err)
			}
		}
	}
	return false, nil
}

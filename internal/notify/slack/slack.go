// Package slack posts events to Slack with Block Kit: one detailed message
// for a single event, a digest for a burst ("card_low_flow for 599 cards",
// worst first, the first 10 listed), and resolutions as replies in the thread
// of the message that announced the alert, which is edited in place to show
// them ("412 of 599 resolved", then resolved). Acknowledgements are replies
// in the same thread, with no edit. Each alert's seq shows as "#3".
package slack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"

	"github.com/simwatch/simwatch/internal/event"
	"github.com/simwatch/simwatch/internal/notify"
	"github.com/simwatch/simwatch/internal/notify/webhook/nofollow"
	"github.com/simwatch/simwatch/internal/redact"
	"github.com/simwatch/simwatch/internal/store"
)

// Threads remembers where each event was posted, which makes retries
// idempotent (a part already posted is not posted again); which messages
// announced each alert, so that its resolution finds its thread; and what
// each message showed, so that it can be edited in place. *store.Store
// implements it.
type Threads interface {
	Thread(notifier, eventID string) (channel, ts string, ok bool, err error)
	SavePosted(notifier string, p store.Posted) error
	PostedFor(notifier, alert string) ([]store.MessageRef, error)
	Message(notifier string, ref store.MessageRef) (data []byte, ok bool, err error)
	UpdateMessage(notifier string, ref store.MessageRef, at time.Time, fn func(data []byte, ok bool) ([]byte, bool, error)) error
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
	// Log gets what does not fail a delivery but should be seen (an edit
	// Slack refused for good); slog.Default() when nil.
	Log *slog.Logger
	// Redact masks secrets in what Slack or a proxy answered (an error
	// string, a status) before it becomes an error; nil masks nothing.
	Redact *redact.Redactor
}

// Notifier posts to one Slack channel.
type Notifier struct {
	o    Options
	api  *slack.Client
	edit sync.Mutex // serializes chat.update calls
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
	o.Client = nofollow.NoRedirects(o.Client)
	o.Client.Transport = redirectStopper{base: o.Client.Transport}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.Default()
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
	// chat.update, and thread_ts of a message that is gone
	"message_not_found": true, "cant_update_message": true, "edit_window_closed": true, "thread_not_found": true,
}

// parentGone are the errors of a reply or edit whose message is no longer there.
var parentGone = []string{"message_not_found", "thread_not_found"}

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
	return nil, &RedirectError{Status: resp.StatusCode, Host: nofollow.RedirectTarget(req.URL, resp.Header.Get("Location"))}
}

// redactedError is an error whose text had a secret URL taken out.
type redactedError struct {
	msg   string
	inner error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.inner }

// dropURL takes URLs out of an error's text: net/http quotes the request URL
// whole (url.Error), and an incoming-webhook URL is a secret. The chain below
// the url.Error is kept for classification.
func dropURL(err error, secret string) error {
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
		wait := rl.RetryAfter
		if wait < 0 { // slack-go multiplied a huge Retry-After past a Duration
			wait = notify.Forever
		}
		return true, &Error{Err: err, retryAfter: wait}
	}
	var ne *strconv.NumError
	if errors.As(err, &ne) {
		// slack-go could not read a 429's Retry-After (larger than an
		// int64): a receiver asking for longer than we can say.
		return true, &Error{Err: fmt.Errorf("slack: HTTP 429 with Retry-After %q", ne.Num), retryAfter: notify.Forever}
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

// Notify posts a group's events: the new ones (firings, reminders,
// transitions) as one message per rule and kind, detailed for one event and
// a digest for several, however many; the resolutions as one reply in the
// thread of each message that announced their alerts, and that message
// edited in place (chat.update) to show what has resolved; the
// acknowledgements likewise as replies, without an edit. Those whose
// alerts were never announced here (or in incoming-webhook mode, which can
// neither thread nor edit) go out as a message of their own.
//
// Retries are idempotent: a message or reply already posted for an event is
// not posted again (see Threads), and an edit is redone only while the
// message does not yet show its record's latest state.
//
// The reply is what must arrive; the edit is best effort unless retryable.
// A retryable chat.update failure (rate limit, 5xx, network) fails the call
// as retryable, after the reply went out: the retry does not post the reply
// again and makes the edit. A permanent one (message_not_found,
// cant_update_message, edit_window_closed …) is logged and given up: the
// resolution was delivered, in the thread, and failing the call would only
// dead-letter it.
func (n *Notifier) Notify(ctx context.Context, events ...event.Event) (bool, error) {
	// Events come in each alert's order. An alert that appears twice (it
	// flapped while the receiver was down) cuts the call into segments,
	// sent one after the other, so its firing, resolution and next firing
	// show in that order.
	seen := map[string]bool{}
	from := 0
	for i := range events {
		k := events[i].AlertKey()
		if seen[k] {
			if retry, err := n.notifySegment(ctx, events[from:i]); err != nil {
				return retry, err
			}
			clear(seen)
			from = i
		}
		seen[k] = true
	}
	return n.notifySegment(ctx, events[from:])
}

// notifySegment sends events in which each alert appears once: the new
// ones as one message per rule and kind, then the resolutions.
func (n *Notifier) notifySegment(ctx context.Context, events []event.Event) (bool, error) {
	var resolved, acked []event.Event
	type opening struct {
		rule, kind string
		events     []event.Event
	}
	var openings []*opening
	for _, e := range events {
		if e.Kind == event.KindResolved {
			resolved = append(resolved, e)
			continue
		}
		if e.Kind == event.KindAcknowledged {
			acked = append(acked, e)
			continue
		}
		if done, err := n.posted(e.ID); err != nil {
			return true, err
		} else if done {
			continue
		}
		i := slices.IndexFunc(openings, func(o *opening) bool { return o.rule == e.Rule && o.kind == e.Kind })
		if i < 0 {
			openings = append(openings, &opening{rule: e.Rule, kind: e.Kind})
			i = len(openings) - 1
		}
		openings[i].events = append(openings[i].events, e)
	}
	for _, o := range openings {
		if retry, err := n.announce(ctx, o.events); err != nil {
			return retry, err
		}
	}
	if len(acked) > 0 {
		if retry, err := n.thread(ctx, acked, false); err != nil {
			return retry, err
		}
	}
	if len(resolved) == 0 {
		return false, nil
	}
	return n.thread(ctx, resolved, true)
}

func (n *Notifier) posted(id string) (bool, error) {
	if n.o.Threads == nil {
		return false, nil
	}
	_, _, ok, err := n.o.Threads.Thread(n.o.Name, id)
	if err != nil {
		return false, fmt.Errorf("slack: threads: %w", err)
	}
	return ok, nil
}

// announce posts new events of one rule and kind as one message, and
// records it: where each event went, the alerts it announced, and what it
// shows.
func (n *Notifier) announce(ctx context.Context, events []event.Event) (bool, error) {
	rec := newRecord(events)
	blocks, fallback := render(rec, n.o.StatusURL)
	ref, retry, err := n.post(ctx, blocks, fallback, "")
	if err != nil {
		return retry, err
	}
	return n.save(ref, events, rec)
}

// save records a posted message; rec is nil for a reply, which is never
// edited.
func (n *Notifier) save(ref store.MessageRef, events []event.Event, rec *record) (bool, error) {
	if n.o.Threads == nil {
		return false, nil
	}
	p := store.Posted{MessageRef: ref, At: n.o.Now()}
	for i := range events {
		p.EventIDs = append(p.EventIDs, events[i].ID)
	}
	if rec != nil && n.api != nil && rec.Kind == event.KindFiring {
		for _, it := range rec.Items {
			p.Alerts = append(p.Alerts, it.Alert)
		}
		data, err := json.Marshal(rec)
		if err != nil {
			return false, fmt.Errorf("slack: record: %w", err)
		}
		p.Data, p.Finished = data, rec.finished()
	}
	if err := n.o.Threads.SavePosted(n.o.Name, p); err != nil {
		// Posted but not recorded: a retry posts it again.
		return true, fmt.Errorf("slack: remember thread: %w", err)
	}
	return false, nil
}

// thread replies in the threads of the messages that announced the
// events' alerts, one reply per message; for resolutions (edit), it also
// edits those messages to show them. An acknowledgement changes nothing
// in the announcement: the alert is still firing.
func (n *Notifier) thread(ctx context.Context, resolved []event.Event, edit bool) (bool, error) {
	type thread struct {
		ref    store.MessageRef
		events []event.Event
	}
	var threads []*thread
	var alone []event.Event
	edits := map[store.MessageRef][]event.Event{}
	var editOrder []store.MessageRef
	for _, e := range resolved {
		refs, err := n.announcedIn(&e)
		if err != nil {
			return true, err
		}
		if len(refs) == 0 {
			alone = append(alone, e)
			continue
		}
		i := slices.IndexFunc(threads, func(t *thread) bool { return t.ref == refs[0] })
		if i < 0 {
			threads = append(threads, &thread{ref: refs[0]})
			i = len(threads) - 1
		}
		threads[i].events = append(threads[i].events, e)
		if !edit {
			continue
		}
		for _, ref := range refs {
			if _, seen := edits[ref]; !seen {
				editOrder = append(editOrder, ref)
			}
			edits[ref] = append(edits[ref], e)
		}
	}
	// The records first: an edit whose message has not shown them yet is
	// then due, even when this call fails before making it.
	for _, ref := range editOrder {
		if err := n.mark(ref, edits[ref]); err != nil {
			return true, err
		}
	}
	for _, t := range threads {
		if retry, err := n.reply(ctx, t.ref, t.events); err != nil {
			return retry, err
		}
	}
	if len(alone) > 0 {
		if retry, err := n.reply(ctx, store.MessageRef{}, alone); err != nil {
			return retry, err
		}
	}
	var errs []error
	retry := false
	for _, ref := range editOrder {
		if r, err := n.refresh(ctx, ref); err != nil {
			retry = retry || r
			errs = append(errs, err)
		}
	}
	return retry, errors.Join(errs...)
}

// announcedIn returns the messages that announced e's alert, the thread's
// first. Records from before messages were kept are found by the firing
// event's id.
func (n *Notifier) announcedIn(e *event.Event) ([]store.MessageRef, error) {
	if n.api == nil || n.o.Threads == nil {
		return nil, nil
	}
	refs, err := n.o.Threads.PostedFor(n.o.Name, alertRef(e))
	if err != nil || len(refs) > 0 {
		if err != nil {
			err = fmt.Errorf("slack: threads: %w", err)
		}
		return refs, err
	}
	firing := event.ID(e.Provider, e.Entity, e.EntityID, e.Rule, event.KindFiring, e.StartsAt, 0)
	channel, ts, ok, err := n.o.Threads.Thread(n.o.Name, firing)
	if err != nil {
		return nil, fmt.Errorf("slack: threads: %w", err)
	}
	if ok && channel != "webhook" {
		return []store.MessageRef{{Channel: channel, TS: ts}}, nil
	}
	return nil, nil
}

// reply posts the events not yet posted, in ref's thread (or alone
// when ref is zero).
func (n *Notifier) reply(ctx context.Context, ref store.MessageRef, events []event.Event) (bool, error) {
	var todo []event.Event
	for _, e := range events {
		if done, err := n.posted(e.ID); err != nil {
			return true, err
		} else if !done {
			todo = append(todo, e)
		}
	}
	if len(todo) == 0 {
		return false, nil
	}
	blocks, fallback := render(newRecord(todo), n.o.StatusURL)
	posted, retry, err := n.post(ctx, blocks, fallback, ref.TS, ref.Channel)
	if err != nil && !retry && ref.TS != "" && slices.ContainsFunc(parentGone, func(code string) bool { return strings.Contains(err.Error(), code) }) {
		// The announcement was deleted: the resolutions stand alone.
		posted, retry, err = n.post(ctx, blocks, fallback, "", ref.Channel)
	}
	if err != nil {
		return retry, err
	}
	return n.save(posted, todo, nil)
}

// mark records the resolutions in the record of the message at ref.
func (n *Notifier) mark(ref store.MessageRef, resolutions []event.Event) error {
	err := n.o.Threads.UpdateMessage(n.o.Name, ref, n.o.Now(), func(data []byte, ok bool) ([]byte, bool, error) {
		if !ok {
			return nil, false, nil // not kept (an older version, or pruned): reply only
		}
		var rec record
		if err := json.Unmarshal(data, &rec); err != nil {
			return nil, false, nil // unreadable: reply only
		}
		if !rec.resolve(resolutions) {
			return nil, false, nil
		}
		out, err := json.Marshal(&rec)
		return out, rec.finished(), err
	})
	if err != nil {
		return fmt.Errorf("slack: record resolution: %w", err)
	}
	return nil
}

// refresh edits the message at ref to show its record, if it does not yet.
// Edits are serialized per notifier, so that an older rendering never lands
// after a newer one.
func (n *Notifier) refresh(ctx context.Context, ref store.MessageRef) (bool, error) {
	n.edit.Lock()
	defer n.edit.Unlock()
	data, ok, err := n.o.Threads.Message(n.o.Name, ref)
	if err != nil {
		return true, fmt.Errorf("slack: threads: %w", err)
	}
	var rec record
	if !ok || json.Unmarshal(data, &rec) != nil || rec.Shown >= rec.Version {
		return false, nil
	}
	blocks, fallback := render(&rec, n.o.StatusURL)
	cctx, cancel := context.WithTimeout(ctx, n.o.Timeout)
	_, _, _, err = n.api.UpdateMessageContext(cctx, ref.Channel, ref.TS,
		slack.MsgOptionBlocks(blocks...), slack.MsgOptionText(fallback, false))
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return true, fmt.Errorf("slack: update message: %w", ctx.Err())
		}
		retry, cerr := classify(n.o.Redact.Error(dropURL(err, n.o.WebhookURL)))
		if retry {
			return true, fmt.Errorf("slack: update message %s %s: %w", ref.Channel, ref.TS, cerr)
		}
		n.o.Log.Warn("slack: message not edited; its thread has the resolutions", "notifier", n.o.Name,
			"channel", ref.Channel, "ts", ref.TS, "err", cerr)
	}
	version := rec.Version
	err = n.o.Threads.UpdateMessage(n.o.Name, ref, n.o.Now(), func(data []byte, ok bool) ([]byte, bool, error) {
		var cur record
		if !ok || json.Unmarshal(data, &cur) != nil || cur.Shown >= version {
			return nil, false, nil
		}
		cur.Shown = version
		out, err := json.Marshal(&cur)
		return out, cur.finished(), err
	})
	if err != nil {
		return true, fmt.Errorf("slack: record edit: %w", err)
	}
	return false, nil
}

// post sends one message (in a thread when threadTS is set) to channel, or
// the configured channel.
func (n *Notifier) post(ctx context.Context, blocks []slack.Block, fallback, threadTS string, channel ...string) (store.MessageRef, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, n.o.Timeout)
	defer cancel()
	var ref store.MessageRef
	var err error
	if n.api == nil {
		err = slack.PostWebhookCustomHTTPContext(ctx, n.o.WebhookURL, n.o.Client,
			&slack.WebhookMessage{Text: fallback, Blocks: &slack.Blocks{BlockSet: blocks}})
		ref.Channel = "webhook"
	} else {
		ch := n.o.Channel
		if len(channel) > 0 && channel[0] != "" {
			ch = channel[0]
		}
		opts := []slack.MsgOption{slack.MsgOptionBlocks(blocks...), slack.MsgOptionText(fallback, false)}
		if threadTS != "" {
			opts = append(opts, slack.MsgOptionTS(threadTS))
		}
		ref.Channel, ref.TS, err = n.api.PostMessageContext(ctx, ch, opts...)
	}
	if err != nil {
		if ctx.Err() != nil {
			return ref, true, fmt.Errorf("slack: %w", ctx.Err())
		}
		retry, err := classify(n.o.Redact.Error(dropURL(err, n.o.WebhookURL)))
		return ref, retry, err
	}
	return ref, false, nil
}

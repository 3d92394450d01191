// Package action is the notifier that acts on a card: it stops or resumes
// the card an event is about, through the provider's API, behind guard rails.
// It is dry-run by default; only the listed rules may trigger it; it acts at
// most MaxPerHour times an hour, a dry run included (the excess is reported
// card by card and dead-lettered, not dropped); it never acts twice on one
// event; and every action, with its work order, is journaled and announced
// to the other notifiers (a dry run as info, a live action with the severity
// of the event that triggered it).
package action

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/simwatch/simwatch/internal/event"
	"github.com/simwatch/simwatch/internal/provider"
	"github.com/simwatch/simwatch/internal/provider/gsl"
	"github.com/simwatch/simwatch/internal/rules"
	"github.com/simwatch/simwatch/internal/store"
)

// Operator performs a card operation and returns the provider's work order id.
type Operator interface {
	CardAction(ctx context.Context, op, cardID, iccid string) (int64, error)
}

// Journal records actions (and their announcements) durably.
type Journal interface {
	Action(notifier, eventID string) (store.ActionRecord, bool, error)
	Actions(notifier string, since time.Time) ([]store.ActionRecord, error)
	RecordAction(r store.ActionRecord, announce *event.Event) error
}

// Options configures a Notifier.
type Options struct {
	Name       string
	Provider   string // the provider whose cards it acts on
	Operation  string // gsl.OpStop or gsl.OpResume
	Rules      []string
	DryRun     bool
	MaxPerHour int // default 10; applies to dry runs too, counting them with live actions
	// AnnounceTo are the notifiers told about each action.
	AnnounceTo []string
	Operator   Operator
	Journal    Journal
	Announced  func() // called after an announcement is in the outbox
	Now        func() time.Time
	Logger     *slog.Logger
}

// Notifier acts on cards.
type Notifier struct {
	o   Options
	log *slog.Logger
	// mu makes the hourly cap's check and the action one step: the
	// dispatcher may send several groups at once.
	mu sync.Mutex
}

// New returns an action notifier.
func New(o Options) (*Notifier, error) {
	if o.Operation != gsl.OpStop && o.Operation != gsl.OpResume {
		return nil, fmt.Errorf("action: operation must be stop or resume, not %q", o.Operation)
	}
	if len(o.Rules) == 0 {
		return nil, errors.New("action: list the rules that may trigger it")
	}
	if o.MaxPerHour <= 0 {
		o.MaxPerHour = 10
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Announced == nil {
		o.Announced = func() {}
	}
	return &Notifier{o: o, log: o.Logger.With("notifier", o.Name)}, nil
}

// Error is an action that did not happen: on which card, and why.
type Error struct {
	EventID    string
	ICCID      string
	Err        error
	dryRun     bool
	op         string
	retryAfter time.Duration
}

func (e *Error) Error() string { return "action: " + e.card() }

// card is the reason with the card it is about, without the package prefix.
func (e *Error) card() string {
	if e.dryRun {
		return fmt.Sprintf("dry run: card %s would not be %s: %v", e.ICCID, past(e.op), e.Err)
	}
	return fmt.Sprintf("card %s was not %s: %v", e.ICCID, past(e.op), e.Err)
}
func (e *Error) Unwrap() error             { return e.Err }
func (e *Error) RetryAfter() time.Duration { return e.retryAfter }

// BatchError reports the events of one Notify call that were not acted on.
// Every other eligible event of the call was acted on (or had been already)
// and is journaled, so delivering the whole batch again never repeats those.
type BatchError struct {
	Failed   []*Error // in the order of the events, one per event not acted on
	Eligible int      // events of the call this notifier would act on
	retry    bool
}

func (b *BatchError) Error() string {
	if len(b.Failed) == 1 {
		return b.Failed[0].Error()
	}
	parts := make([]string, len(b.Failed))
	for i, e := range b.Failed {
		parts[i] = e.card()
	}
	return fmt.Sprintf("action: %d of %d cards not acted on: %s", len(b.Failed), b.Eligible, strings.Join(parts, "; "))
}

// Unwrap returns the per-event errors.
func (b *BatchError) Unwrap() []error {
	out := make([]error, len(b.Failed))
	for i, e := range b.Failed {
		out[i] = e
	}
	return out
}

// RetryAfter is the longest wait any retryable failure asks for.
func (b *BatchError) RetryAfter() time.Duration {
	var d time.Duration
	for _, e := range b.Failed {
		d = max(d, e.retryAfter)
	}
	return d
}

// FailedEvents maps the id of each event not acted on to its error, so that a
// dispatcher able to settle events one by one can dead-letter (or retry)
// exactly those and record the others as delivered.
func (b *BatchError) FailedEvents() map[string]error {
	m := make(map[string]error, len(b.Failed))
	for _, e := range b.Failed {
		m[e.EventID] = e
	}
	return m
}

// operatorWait is how long GSL wants between operations on a card, and
// roughly how long a work order stays open.
const operatorWait = 5 * time.Minute

// Notify acts on each firing or transition event of an allowed rule. It
// goes through the whole batch: a refusal (the hourly cap, an operator
// error) of one event does not stop the others. When some were not acted
// on, the error is a *BatchError naming exactly those cards; retry is true
// when any of them may succeed later. A journal failure stops the batch at
// once (retry): what was acted on is journaled and is not repeated.
func (n *Notifier) Notify(ctx context.Context, events ...event.Event) (bool, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var berr BatchError
	for _, e := range events {
		// Only what the card does acts on it: never a resolution, an
		// announcement of an action, or an acknowledgement.
		if e.Entity != "card" || (e.Kind != event.KindFiring && e.Kind != event.KindTransition) ||
			e.Provider != n.o.Provider || !slices.Contains(n.o.Rules, e.Rule) {
			continue
		}
		berr.Eligible++
		retry, err := n.act(ctx, e)
		if err == nil {
			continue
		}
		var ae *Error
		if !errors.As(err, &ae) {
			return true, err // the journal: nothing decided about this event
		}
		berr.Failed = append(berr.Failed, ae)
		berr.retry = berr.retry || retry
	}
	if len(berr.Failed) == 0 {
		return false, nil
	}
	return berr.retry, &berr
}

// counts reports whether a journaled record uses up the hourly cap of a
// notifier in the given mode. A live action counts once its request went
// out (a lost answer included); a dry run counts its own would-be actions
// and the live ones, so it refuses exactly what live mode would.
func counts(r store.ActionRecord, dryRun bool) bool {
	if r.DryRun {
		return dryRun
	}
	return r.Started || r.WorkOrderID != 0
}

func (n *Notifier) act(ctx context.Context, e event.Event) (bool, error) {
	log := n.log.With("event_id", e.ID, "rule", e.Rule, "iccid", e.ICCID)
	fail := func(err error, retryAfter time.Duration) *Error {
		return &Error{EventID: e.ID, ICCID: e.ICCID, Err: err, dryRun: n.o.DryRun, op: n.o.Operation, retryAfter: retryAfter}
	}
	rec, done, err := n.o.Journal.Action(n.o.Name, e.ID)
	if err != nil {
		return true, err
	}
	if done && (rec.WorkOrderID != 0 || rec.DryRun) {
		return false, nil // acted already: a redelivery never acts twice
	}
	if done && rec.Started {
		// The request went out but its answer was lost (a crash): repeating
		// it could act twice, so the journal entry stands as the action.
		log.Warn("action outcome unknown after a restart; not repeating it")
		return false, nil
	}
	now := n.o.Now()
	// The cap applies alike in dry run and live mode, so that a dry run
	// shows what live mode would do.
	recent, err := n.o.Journal.Actions(n.o.Name, now.Add(-time.Hour))
	if err != nil {
		return true, err
	}
	used := 0
	for _, r := range recent {
		if counts(r, n.o.DryRun) {
			used++
		}
	}
	if used >= n.o.MaxPerHour {
		log.Warn("hourly cap reached; not acting", "max_per_hour", n.o.MaxPerHour, "dry_run", n.o.DryRun)
		return false, fail(fmt.Errorf("cap of %d actions per hour reached", n.o.MaxPerHour), 0)
	}
	rec = store.ActionRecord{Notifier: n.o.Name, EventID: e.ID, Rule: e.Rule, Provider: e.Provider, CardID: e.EntityID,
		ICCID: e.ICCID, Operation: n.o.Operation, DryRun: n.o.DryRun, At: now}
	if n.o.DryRun {
		log.Info("dry run: would act on card", "operation", n.o.Operation)
		return n.record(rec, e, fmt.Sprintf("dry run: card %s would be %s by rule %s", e.ICCID, past(n.o.Operation), e.Rule))
	}
	rec.Started = true
	if err := n.o.Journal.RecordAction(rec, nil); err != nil {
		return true, err
	}
	wo, err := n.o.Operator.CardAction(ctx, n.o.Operation, e.EntityID, e.ICCID)
	if err != nil {
		// The operator refused: nothing happened, so a later attempt is safe.
		rec.Started, rec.Error = false, err.Error()
		if jerr := n.o.Journal.RecordAction(rec, nil); jerr != nil {
			return true, jerr
		}
		var apiErr *gsl.APIError
		if errors.As(err, &apiErr) && (apiErr.Code == gsl.CodeNoRepeatIn5m || apiErr.Code == gsl.CodeWorkOrderOpen) {
			log.Info("operator asks to wait; will try again", "code", apiErr.Code)
			return true, fail(err, operatorWait)
		}
		return provider.IsTemporary(err), fail(err, 0)
	}
	rec.WorkOrderID = wo
	log.Info("acted on card", "operation", n.o.Operation, "work_order_id", wo)
	return n.record(rec, e, fmt.Sprintf("card %s %s by rule %s, work order %d", e.ICCID, past(n.o.Operation), e.Rule, wo))
}

// record journals the action and announces it to the other notifiers, in
// one transaction.
func (n *Notifier) record(rec store.ActionRecord, e event.Event, summary string) (bool, error) {
	values, _ := json.Marshal(rec)
	h := sha256.Sum256([]byte(e.ID + "\x00" + n.o.Name))
	announce := &event.Event{
		ID:         hex.EncodeToString(h[:16]),
		Kind:       event.KindAction,
		Rule:       e.Rule,
		Severity:   severity(rec, e),
		Summary:    summary,
		Labels:     e.Labels,
		Provider:   e.Provider,
		Entity:     e.Entity,
		EntityID:   e.EntityID,
		ICCID:      e.ICCID,
		Values:     values,
		StartsAt:   rec.At,
		ObservedAt: rec.At,
		Notify:     n.o.AnnounceTo,
	}
	if len(n.o.AnnounceTo) == 0 {
		announce = nil
	}
	if err := n.o.Journal.RecordAction(rec, announce); err != nil {
		return true, err
	}
	if announce != nil {
		n.o.Announced()
	}
	return false, nil
}

// severity is an announcement's own: a dry run changed nothing, so it is
// info; a live action carries the severity of the event that triggered it.
func severity(rec store.ActionRecord, e event.Event) string {
	if rec.DryRun || e.Severity == "" {
		return rules.SeverityInfo
	}
	return e.Severity
}

func past(op string) string {
	if op == gsl.OpResume {
		return "resumed"
	}
	return "stopped"
}

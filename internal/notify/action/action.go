// Package action is the notifier that acts on a card: it stops or resumes
// the card an event is about, through the provider's API, behind guard rails.
// It is dry-run by default; only the listed rules may trigger it; it acts at
// most MaxPerHour times an hour (the excess is dead-lettered, not dropped);
// it never acts twice on one event; and every action, with its work order,
// is journaled and announced to the other notifiers.
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
	"time"

	"github.com/simwatch/simwatch/internal/event"
	"github.com/simwatch/simwatch/internal/provider"
	"github.com/simwatch/simwatch/internal/provider/gsl"
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
	MaxPerHour int // default 10
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

// Error is an action that did not happen.
type Error struct {
	Err        error
	retryAfter time.Duration
}

func (e *Error) Error() string             { return "action: " + e.Err.Error() }
func (e *Error) Unwrap() error             { return e.Err }
func (e *Error) RetryAfter() time.Duration { return e.retryAfter }

// operatorWait is how long GSL wants between operations on a card, and
// roughly how long a work order stays open.
const operatorWait = 5 * time.Minute

// Notify acts on each firing or transition event of an allowed rule.
func (n *Notifier) Notify(ctx context.Context, events ...event.Event) (bool, error) {
	for _, e := range events {
		if e.Entity != "card" || e.Kind == event.KindResolved || e.Kind == event.KindAction ||
			e.Provider != n.o.Provider || !slices.Contains(n.o.Rules, e.Rule) {
			continue
		}
		if retry, err := n.act(ctx, e); err != nil {
			return retry, err
		}
	}
	return false, nil
}

func (n *Notifier) act(ctx context.Context, e event.Event) (bool, error) {
	log := n.log.With("event_id", e.ID, "rule", e.Rule, "iccid", e.ICCID)
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
	rec = store.ActionRecord{Notifier: n.o.Name, EventID: e.ID, Rule: e.Rule, Provider: e.Provider, CardID: e.EntityID,
		ICCID: e.ICCID, Operation: n.o.Operation, DryRun: n.o.DryRun, At: now}
	if n.o.DryRun {
		log.Info("dry run: would act on card", "operation", n.o.Operation)
		return n.record(rec, e, fmt.Sprintf("dry run: card %s would be %s by rule %s", e.ICCID, past(n.o.Operation), e.Rule))
	}
	recent, err := n.o.Journal.Actions(n.o.Name, now.Add(-time.Hour))
	if err != nil {
		return true, err
	}
	live := 0
	for _, r := range recent {
		if !r.DryRun && r.WorkOrderID != 0 {
			live++
		}
	}
	if live >= n.o.MaxPerHour {
		return false, &Error{Err: fmt.Errorf("cap of %d actions per hour reached; card %s was not %s", n.o.MaxPerHour, e.ICCID, past(n.o.Operation))}
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
			return true, &Error{Err: err, retryAfter: operatorWait}
		}
		return provider.IsTemporary(err), &Error{Err: err}
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
		Severity:   e.Severity,
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

func past(op string) string {
	if op == gsl.OpResume {
		return "resumed"
	}
	return "stopped"
}

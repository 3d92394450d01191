package api

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/simwatch/simwatch/internal/event"
	"github.com/simwatch/simwatch/internal/rules"
	"github.com/simwatch/simwatch/internal/store"
)

// AckRequest is the body of POST /api/v1/alerts/ack.
type AckRequest struct {
	Alert   string `json:"alert"` // the alert's key, as /api/v1/alerts gives it
	Comment string `json:"comment"`
}

// MaxAckComment bounds an acknowledgement's comment, in characters: it
// travels in an event to every receiver, and a Slack reply is read on a
// phone.
const MaxAckComment = 500

// AckedBy names who acknowledged when the API runs without tokens.
const AckedBy = "localhost"

// checkComment refuses an empty, over-long or binary comment.
func checkComment(c string) error {
	switch {
	case strings.TrimSpace(c) == "":
		return errors.New("comment: required (what is being done about it)")
	case !utf8.ValidString(c):
		return errors.New("comment: not valid UTF-8")
	case utf8.RuneCountInString(c) > MaxAckComment:
		return fmt.Errorf("comment: %d characters; at most %d", utf8.RuneCountInString(c), MaxAckComment)
	}
	for _, r := range c {
		if unicode.IsControl(r) && r != '\n' && r != '\t' {
			return fmt.Errorf("comment: control character %U", r)
		}
		// Bidi overrides make a reply read otherwise than it is.
		if (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) {
			return fmt.Errorf("comment: bidirectional control %U", r)
		}
	}
	return nil
}

// ack acknowledges an active alert: the ack is stored, shown with the
// alert in /api/v1/alerts until its episode ends, and announced to the
// notifiers the alert's events go to as an event of kind acknowledged
// (Slack replies in the alert's thread), appended to the outbox in the
// same transaction. It needs an admin token (the guard) and names its
// token as who acknowledged.
func (s *Server) ack(w http.ResponseWriter, r *http.Request) {
	var req AckRequest
	if err := decodeBody(w, r, &req); err != nil {
		writeError(w, http.StatusBadRequest, `want {"alert": KEY, "comment": "..."}: `+err.Error())
		return
	}
	ref, err := parseAlertKey(req.Alert)
	if err != nil {
		writeError(w, http.StatusBadRequest, "alert: "+err.Error())
		return
	}
	if err := checkComment(req.Comment); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	by := AckedBy
	if tok, ok := s.Who(r); ok && tok.Name != "" {
		by = tok.Name
	}
	var info ruleInfo
	book := s.ruleBook()
	if err := s.o.Store.View(func(tx *store.Tx) (err error) { info, err = book.info(tx, ref); return err }); err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	a := store.Ack{Provider: ref.provider, Alert: ref.storeKey(), By: by, Comment: req.Comment, At: time.Now().UTC()}
	a, created, err := s.writes().Ack(r.Context(), a, func(alert *rules.Alert, a store.Ack) *event.Event {
		return ackEvent(ref.provider, alert, a, info)
	})
	switch {
	case errors.Is(err, store.ErrNoAlert):
		writeError(w, http.StatusNotFound, "alert "+req.Alert+": no such alert")
		return
	case errors.Is(err, store.ErrAlertNotActive):
		writeError(w, http.StatusConflict, "alert "+req.Alert+": resolved; only a pending or firing alert can be acknowledged")
		return
	case err != nil:
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if created && s.o.Announced != nil {
		s.o.Announced()
	}
	writeJSON(w, map[string]any{"alert": req.Alert, "ack": AckView{By: a.By, Comment: a.Comment, At: a.At}, "announced": created})
}

// ackEvent is the event that announces an ack: one of the alert's events
// (same alert key, the episode's start), taking its next seq, routed to
// the notifiers the alert's events go to.
func ackEvent(provider string, alert *rules.Alert, a store.Ack, info ruleInfo) *event.Event {
	return &event.Event{
		ID:         event.ID(provider, alert.Entity, alert.EntityID, alert.Rule, event.KindAcknowledged, a.At, 0),
		Kind:       event.KindAcknowledged,
		Rule:       alert.Rule,
		Severity:   info.severity,
		Summary:    "acknowledged by " + a.By + ": " + a.Comment,
		Labels:     info.labels,
		Provider:   provider,
		Entity:     alert.Entity,
		EntityID:   alert.EntityID,
		ICCID:      alert.ICCID,
		Values:     alert.Values,
		StartsAt:   alert.ActiveAt,
		ObservedAt: a.At,
		Notify:     info.notify,
	}
}

package slack

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/event"
)

// Hostile (issue 11, per-alert order at Slack): an alert flaps while its
// events wait in one group (receiver down, or inside group_interval): firing
// #1, resolved #2, firing again #3 (a new episode). The order stage lets all
// three go in one send, in seq order, and the webhook keeps that order. Slack
// must too: #1 announced, #2 as a reply in #1's thread, then #3 as a new
// announcement. A digest carrying #1 and #3 together before #2's reply shows
// the alert's story out of order (and counts one card twice).
func TestHostile11SlackFlapInOneSendKeepsSeqOrder(t *testing.T) {
	f, n := setup(t)
	f1 := seq(cardEvent(1, event.KindFiring, 5), 1)
	r2 := seq(cardEvent(1, event.KindResolved, 80), 2)
	f3 := seq(cardEvent(1, event.KindFiring, 4), 3)
	f3.StartsAt = t0.Add(2 * time.Hour)
	f3.ObservedAt = f3.StartsAt
	f3.ID = event.ID(f3.Provider, f3.Entity, f3.EntityID, f3.Rule, event.KindFiring, f3.StartsAt, 0)

	_, err := n.Notify(context.Background(), f1, r2, f3)
	require.NoError(t, err)
	posts := f.Posts()
	var order []string
	for _, p := range posts {
		var marks []string
		for _, s := range []string{"#1", "#2", "#3"} {
			if strings.Contains(p.Blocks, s) {
				marks = append(marks, s)
			}
		}
		order = append(order, strings.Join(marks, "+")+" thread="+p.ThreadTS)
	}
	require.Equal(t, []string{"#1 thread=", "#2 thread=1795435200.000001", "#3 thread="}, order,
		"each alert's events in seq order: #1 announced, #2 in its thread, then #3 announced anew")
}

// A group that holds several rules (group_by [provider]) is one message
// per rule and kind, each a digest, as the README says: a digest is about
// one rule ("card_low_flow · warning for 3 cards").
func TestSlackGroupOfTwoRulesIsOneDigestPerRule(t *testing.T) {
	f, n := setup(t)
	var burst []event.Event
	for i := range 6 {
		e := cardEvent(i, event.KindFiring, float64(10+i))
		if i%2 == 1 {
			e.Rule = "card_suspended"
			e.ID = event.ID(e.Provider, e.Entity, e.EntityID, e.Rule, event.KindFiring, t0, 0)
		}
		burst = append(burst, e)
	}
	_, err := n.Notify(context.Background(), burst...)
	require.NoError(t, err)
	var texts []string
	for _, p := range f.Posts() {
		texts = append(texts, p.Text)
	}
	require.Equal(t, []string{"FIRING card_low_flow: 3 cards", "FIRING card_suspended: 3 cards"}, texts)
}

// Hostile (issue 11, receivers): Slack answers 429 with an absurd
// Retry-After. It must be honoured up to max_backoff (README: "HTTP 429
// waits for Retry-After, at most the notifier's max_backoff (a longer
// request is capped and logged)"), not turned into no wait at all.
func TestHostile11SlackHugeRetryAfterIsALongWait(t *testing.T) {
	f, n := setup(t)
	f.RateLimit(1, "9999999999")
	retry, err := n.Notify(context.Background(), cardEvent(1, event.KindFiring, 5))
	require.Error(t, err)
	require.True(t, retry)
	var se *Error
	require.ErrorAs(t, err, &se)
	require.Greater(t, se.RetryAfter(), time.Hour, "Slack asked for years; got %v", se.RetryAfter())
}

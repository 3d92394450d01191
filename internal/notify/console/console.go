// Package console writes one readable line per event, the demo's notifier.
package console

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/simwatch/simwatch/internal/event"
)

// Notifier writes events to W.
type Notifier struct {
	mu sync.Mutex
	w  io.Writer
}

// New returns a console notifier writing to w.
func New(w io.Writer) *Notifier { return &Notifier{w: w} }

// Notify writes a line per event, e.g.
//
//	2026-11-23T12:00:00Z FIRING     critical pool_overdraft hw pool 4940000001: Pool pool-01 is -12 MB in overdraft
func (n *Notifier) Notify(_ context.Context, events ...event.Event) (bool, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, e := range events {
		if _, err := fmt.Fprintln(n.w, Line(e)); err != nil {
			return true, fmt.Errorf("console: %w", err)
		}
	}
	return false, nil
}

// Line formats one event.
func Line(e event.Event) string {
	id := e.EntityID
	if e.ICCID != "" {
		id = e.ICCID
	}
	return fmt.Sprintf("%s %-10s %-8s %s %s %s %s: %s", e.ObservedAt.UTC().Format("2006-01-02T15:04:05Z"),
		strings.ToUpper(e.Kind), e.Severity, e.Rule, e.Provider, e.Entity, id, e.Summary)
}

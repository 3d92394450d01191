package notify

import "context"

// Group is what the group stage tells a notifier about the events of one
// Notify call: they share the values of the notifier's group_by fields.
type Group struct {
	// Key identifies the group within the notifier, stable across calls:
	// e.g. `{rule="card_low_flow"}`.
	Key string
	// Labels are the group_by fields and their shared values.
	Labels map[string]string
	// Receiver is the notifier's name.
	Receiver string
}

type groupKey struct{}

// WithGroup returns a context that carries g to a Notifier, as
// Alertmanager's notify.WithGroupKey does.
func WithGroup(ctx context.Context, g Group) context.Context {
	return context.WithValue(ctx, groupKey{}, g)
}

// GroupFrom returns the group of the events being notified, if the caller
// set one.
func GroupFrom(ctx context.Context) (Group, bool) {
	g, ok := ctx.Value(groupKey{}).(Group)
	return g, ok
}

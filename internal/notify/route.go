package notify

import "github.com/simwatch/simwatch/internal/event"

// route is the route stage: whether a notifier takes an event from the bus,
// and whether it is a dead letter replayed to it (delivered again although
// it was settled). replayFor and recoverFor are the bus headers naming the
// one notifier a replayed or recovered event is for.
func route(notifier string, e *event.Event, replayFor, recoverFor string) (replay, ok bool) {
	switch {
	case replayFor != "":
		return true, replayFor == notifier
	case recoverFor != "":
		return false, recoverFor == notifier
	}
	return false, e.For(notifier)
}

package event

// Encoded is an event as it goes on the wire: its encoding, bounded to
// MaxSize when it was stored, and the two things a publisher needs of it
// without decoding it (the id, for the bus's duplicate window, and the
// subject).
type Encoded struct {
	ID      string
	Subject string
	Data    []byte
}

package fleet

// Listing is one complete listing of a provider account in the form a poll
// cycle diffs it: every card's id with a fingerprint of what the provider
// said about it, and only the cards whose fingerprint the poller did not
// already know, decoded. A fleet where 1% changed costs 1% of the decoding.
type Listing struct {
	// Seen is every card of the listing, in listing order, each id once.
	Seen []Seen
	// Changed are the cards of Seen whose fingerprint was not known:
	// decoded, validated, and kept in their compact encoding (EncodeCard),
	// so that a listing where every card is new is not held decoded whole.
	Changed []Record
	// Pools is every pool, decoded.
	Pools []Pool
}

// Seen is one card of a listing: its id and the fingerprint of its record.
// Equal fingerprints of one kind mean the same card as far as rules can see.
type Seen struct {
	ID string
	FP uint64
}

// Record is a card in its compact encoding.
type Record struct {
	ID   string
	Data []byte
}

// Known tells a lister whether the poller already holds the card with this
// id and fingerprint: a card it knows need not be decoded. It is safe for
// concurrent use while a listing runs.
type Known func(id string, fp uint64) bool

package store

import (
	"fmt"

	"github.com/simwatch/simwatch/internal/fleet"
)

// DecodeCard decodes a stored card (fleet.EncodeCard's encoding, as PutCard
// stores it).
func DecodeCard(b []byte) (fleet.Card, error) {
	c, err := fleet.DecodeCard(b)
	if err != nil {
		return c, fmt.Errorf("store: %w", err)
	}
	return c, nil
}

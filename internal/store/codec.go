package store

import (
	"fmt"

	"github.com/simwatch/simwatch/internal/fleet"
)

// EncodeCard appends the compact encoding of c (fleet.EncodeCard), as PutCard stores it.
func EncodeCard(dst []byte, c *fleet.Card) []byte { return fleet.EncodeCard(dst, c) }

// DecodeCard decodes a stored card.
func DecodeCard(b []byte) (fleet.Card, error) {
	c, err := fleet.DecodeCard(b)
	if err != nil {
		return c, fmt.Errorf("store: %w", err)
	}
	return c, nil
}

// Fingerprint hashes an encoded entity (fleet.Fingerprint).
func Fingerprint(encoded []byte) uint64 { return fleet.Fingerprint(encoded) }

// Package providertest holds what the provider clients' tests share: the
// properties every decoded card and pool has, checked by each client's fuzz
// targets, and seeding a fuzz corpus from files. It is imported by tests only.
package providertest

import (
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/fleet"
)

// AddSeeds adds every file matching the patterns to f's corpus, and fails
// when none matches.
func AddSeeds(f *testing.F, patterns ...string) {
	n := 0
	for _, p := range patterns {
		files, err := filepath.Glob(p)
		require.NoError(f, err)
		for _, name := range files {
			b, err := os.ReadFile(name)
			require.NoError(f, err)
			f.Add(b)
			n++
		}
	}
	require.Positive(f, n, "no seeds in %v", patterns)
}

var statuses = map[string]bool{fleet.StatusTest: true, fleet.StatusInactive: true, fleet.StatusActive: true,
	fleet.StatusSuspended: true, fleet.StatusTerminated: true}

// CheckUnknown checks that only fields that may be unknown are, and that no
// bit stands beyond the entity's fields.
func CheckUnknown(t testing.TB, entity string, u fleet.Unknown) {
	t.Helper()
	var all fleet.Unknown
	bit := fleet.CardField
	if entity == fleet.EntityPool {
		bit = fleet.PoolField
	}
	for _, name := range fleet.UnknownNames(entity, ^fleet.Unknown(0)) {
		all |= bit(name)
	}
	require.Zero(t, u&^all, "bits beyond the fields")
	for _, name := range fleet.UnknownNames(entity, u) {
		require.True(t, fleet.MayBeUnknown(entity, name), "%s %s is unknown", entity, name)
	}
}

// CheckCard is the property every decoded card has: an id, figures a SIM
// can have, unknown bits only where a value may be unknown, and a status
// that is one of the five or unknown.
func CheckCard(t testing.TB, c *fleet.Card) {
	t.Helper()
	require.NotEmpty(t, c.ID)
	require.NoError(t, c.Validate())
	CheckUnknown(t, fleet.EntityCard, c.Unknown)
	status := fleet.CardField("status")
	if c.Status == "" {
		require.True(t, c.Unknown.Has(status), "empty status not marked unknown")
	} else {
		require.True(t, statuses[c.Status], "status %q", c.Status)
		require.False(t, c.Unknown.Has(status))
	}
	for _, v := range []float64{c.FlowUsed, c.FlowLeft, c.FlowTotal} {
		require.False(t, math.IsNaN(v) || math.IsInf(v, 0))
	}
}

// CheckPool is the property every decoded or derived pool has.
func CheckPool(t testing.TB, p *fleet.Pool) {
	t.Helper()
	require.NotEmpty(t, p.ID)
	require.NoError(t, p.Validate())
	CheckUnknown(t, fleet.EntityPool, p.Unknown)
}

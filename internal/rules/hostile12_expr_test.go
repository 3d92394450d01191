package rules

import (
	"strings"
	"testing"
	"time"

	"github.com/simwatch/simwatch/internal/fleet"
)

// hostile12: the wall-time budget (MaxWall, 25ms) is checked only every
// checkEvery (64) steps, and a regexp match (`matches`) is a single step
// however long it runs. A ~60 KB string (built under the string budget)
// matched against a pattern of many `(?:.*){999}` groups costs seconds per
// match; up to 63 of them between two checks cost a minute. One evaluation
// of one card must stop near its budget; this one ran 54 s (and 3-12 s for a
// single match without any loop). It passes `rules check`, stalls a daemon
// cycle (no rule_failed, no commit, /readyz 503) and delays SIGTERM by the
// length of the current evaluation (40 s observed).
func TestHostile12RegexpEscapesWallBudget(t *testing.T) {
	pat := strings.Repeat("(?:.*){999}", 3) + "x"
	for _, src := range []string{
		// one match, no loop: no step is even counted around it.
		`let s = join(map(1..3000, iccid), ""); s matches "` + strings.Repeat("(?:.*){999}", 5) + `x"`,
		// 30 matches placed between two checks (steps 3203..3232).
		`let s = join(map(1..3200, iccid), ""); any(1..30, {s matches "` + pat + `"})`,
	} {
		q, err := NewQuery(fleet.EntityCard, src, time.Now())
		if err != nil {
			continue // refused at compile time: fine
		}
		c := fleet.Card{ID: "1", ICCID: "89860000000000000001", Status: "active"}
		t0 := time.Now()
		_, err = q.MatchCard(&c)
		if d := time.Since(t0); d > 20*MaxWall {
			t.Errorf("one evaluation ran %v (budget %v), err=%v: %.90s", d, MaxWall, err, src)
		}
	}
}

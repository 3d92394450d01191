package rules

import (
	"strings"
	"testing"
	"time"

	"github.com/simwatch/simwatch/internal/fleet"
)

// hostile12c: expr's builtin uniq is quadratic (each element compared with
// every kept one through runtime.Equal) and is not metered: it counts no
// step, so neither the step budget nor the wall-time budget (checked every
// 64 steps) nor the context ever sees it. One uniq over a 10 000-element
// range (allowed by every size limit) takes about a second; chained with
// || (well under MaxNodes) one evaluation of one card takes minutes.
// It passes `rules check`, silence creation and a query's compile step.
func TestHostile12cUniqEscapesBudget(t *testing.T) {
	for _, src := range []string{
		`len(uniq(1..10000)) == 0`,
		`let a = 1..10000; ` + strings.Repeat(`len(uniq(a)) == 0 || `, 9) + `len(uniq(a)) == 0`,
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

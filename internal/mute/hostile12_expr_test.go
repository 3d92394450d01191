package mute

import (
	"strings"
	"testing"
	"time"

	"github.com/simwatch/simwatch/internal/store"
)

// hostile12: a silence match that runs one regexp over a ~60 KB string with
// a pattern of many `(?:.*){999}` groups takes seconds per event, as one
// budget "step": the 25ms wall budget never fires, so the silence is not
// marked failed and every event delivered pays it again (the mute stage runs
// before every send and every retry). Creating the silence (POST
// /api/v1/silences, `watcher silence add`) accepts it.
func TestHostile12SilenceRegexpEscapesBudget(t *testing.T) {
	match := `let s = join(map(1..3000, iccid), ""); s matches "` + strings.Repeat("(?:.*){999}", 5) + `x"`
	now := time.Now()
	s, err := NewSilence(match, "x", time.Hour, now)
	if err != nil {
		return // refused at creation: fine
	}
	set := Silences([]store.Silence{s}, now)
	for i := 0; i < 2; i++ {
		e := card()
		e.ICCID = "89860000000000000001"
		t0 := time.Now()
		_, _ = set.MatchErr(&e)
		if d := time.Since(t0); d > time.Second {
			t.Fatalf("event %d: matching one silence took %v", i, d)
		}
	}
}

package rules

import (
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/simwatch/simwatch/internal/fleet"
)

// Probe (scratch, removed before report): run EXPRS from a file, one per line.
func TestHostile12Probe(t *testing.T) {
	b, err := os.ReadFile("/tmp/h2/exprs.txt")
	if err != nil {
		t.Skip()
	}
	for _, src := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		src = strings.ReplaceAll(src, "\\n", "\n")
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		before := ms.TotalAlloc
		t0 := time.Now()
		q, err := NewQuery(fleet.EntityCard, src, time.Now())
		ct := time.Since(t0)
		if err != nil {
			e := err.Error()
			if len(e) > 200 { e = e[:200] }
			t.Logf("COMPILE %v ERR %s :: %.80s", ct, e, src)
			continue
		}
		c := fleet.Card{ID: "1", ICCID: "89860000000000000001", Status: "active", FlowLeft: 100000, FlowTotal: 200000, Tags: []string{"a", "b"}}
		t1 := time.Now()
		ok, err := q.MatchCard(&c)
		rt := time.Since(t1)
		runtime.ReadMemStats(&ms)
		es := ""
		if err != nil { es = err.Error(); if len(es) > 150 { es = es[:150] } }
		t.Logf("compile %v run %v alloc %dMB ok=%v err=%s :: %.100s", ct, rt, (ms.TotalAlloc-before)>>20, ok, es, src)
	}
}

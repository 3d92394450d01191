package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/simwatch/simwatch/internal/rules"
	"github.com/simwatch/simwatch/internal/store"
)

// benchAlerts is a store with 100 000 firing card alerts over ten rules
// (the last one critical, the others warning), one card in a thousand
// tagged vip.
func benchAlerts(b *testing.B) (*Server, *rules.Set) {
	b.Helper()
	st, err := store.Open(filepath.Join(b.TempDir(), "s.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	src := "rules:\n"
	for r := range 10 {
		sev := "warning"
		if r == 9 {
			sev = "critical"
		}
		src += fmt.Sprintf("  - {name: rule_%d, on: card, when: 'flow_left < %d', severity: %s}\n", r, r+1, sev)
	}
	set, err := rules.Parse("r.yaml", []byte(src), rules.LoadOptions{})
	if err != nil {
		b.Fatal(err)
	}
	t0 := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	err = st.Update(func(tx *store.Tx) error {
		p, err := tx.Provider("hw")
		if err != nil {
			return err
		}
		for i := range 100_000 {
			tags := `[]`
			if i%1000 == 0 {
				tags = `["vip"]`
			}
			id := fmt.Sprintf("49%011d", i)
			a := &rules.Alert{Rule: fmt.Sprintf("rule_%d", i%10), Entity: "card", EntityID: id, ICCID: "8986" + id,
				State: rules.StateFiring, ActiveAt: t0, FiredAt: t0,
				Values: json.RawMessage(`{"iccid":"8986` + id + `","status":"active","flow_left":0.5,"flow_total":100,"tags":` + tags + `}`)}
			if err := p.PutAlert(a.Key(), a); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return New(Options{Store: st, Rules: func() *rules.Set { return set }}), set
}

// BenchmarkAlertsPage is one page of /api/v1/alerts at 100 000 alerts:
// the first page, a severity that only the last rule has, a rule, and a
// tag (which decodes every alert's card: the worst case).
func BenchmarkAlertsPage(b *testing.B) {
	srv, _ := benchAlerts(b)
	h := srv.Handler()
	for _, q := range []string{"", "severity=critical", "rule=rule_5&limit=1000", "tag=vip"} {
		b.Run("q="+q, func(b *testing.B) {
			for b.Loop() {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "http://localhost/api/v1/alerts?"+q, nil))
				if w.Code != 200 {
					b.Fatal(w.Code, w.Body.String())
				}
			}
		})
	}
}

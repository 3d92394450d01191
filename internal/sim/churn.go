package sim

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
)

// ChurnRequest is the body of POST /_sim/churn.
type ChurnRequest struct {
	Percent float64 `json:"percent"` // of the fleet's cards, 0 < percent <= 100
	Seed    uint64  `json:"seed"`    // which cards: the same seed picks the same cards
}

// Churn adds 1 MB to the flow_used of percent% of the cards (rounded to the
// nearest card), picked deterministically from seed, and returns the ICCIDs
// it changed. It is what a benchmark needs between cycles: a known share of
// a large fleet changed in one call, the same share on every run.
func (f *Fleet) Churn(percent float64, seed uint64) ([]string, error) {
	if math.IsNaN(percent) || percent <= 0 || percent > 100 {
		return nil, fmt.Errorf("churn: percent must be more than 0 and at most 100, not %v", percent)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	n := len(f.cards)
	k := int(math.Round(percent * float64(n) / 100))
	if n == 0 || k == 0 {
		return nil, nil
	}
	// start + i*step (mod n) visits k distinct cards when step and n are
	// coprime; a step near n/φ spreads them over the whole listing.
	h := mix64(seed)
	start := int(h % uint64(n))
	step := max(1, int(float64(n)*0.6180339887))
	for gcd(step, n) != 1 {
		step++
	}
	out := make([]string, 0, k)
	for i := range k {
		c := f.cards[(start+i*step)%n]
		c.Used = round2(c.Used + 1)
		out = append(out, c.ICCID)
	}
	return out, nil
}

func mix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// churnHandler serves POST /_sim/churn: {"percent": 1, "seed": 7} changes
// 1% of the cards and answers {"changed": N}. A million-card churn is one
// request.
func (s *Server) churnHandler(w http.ResponseWriter, r *http.Request) {
	var req ChurnRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, "churn: "+err.Error(), http.StatusBadRequest)
		return
	}
	changed, err := s.o.Fleet.Churn(req.Percent, req.Seed)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"changed": len(changed)})
}

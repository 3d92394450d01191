package sim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/simwatch/simwatch/internal/provider/gsl"
)

// Fault kinds.
const (
	FaultError     = "error"     // answer Status with GSL's error body (default 500 GSL.00010003)
	FaultThrottle  = "throttle"  // answer 403 GSL.00016016 with Retry-After
	FaultSlow      = "slow"      // wait Delay, then answer normally
	FaultMalformed = "malformed" // answer 200 with a body cut short
	FaultFail      = "fail"      // LinkCard: answer HTTP 200 with Success false
)

// Fault is an injected misbehaviour. It matches requests to Path ("sim-cards",
// "sim-pools"; empty for any) and Page (0 for any), and applies Count times
// (0 for until cleared).
type Fault struct {
	Kind       string `json:"kind"`
	Path       string `json:"path,omitempty"`
	Page       int    `json:"page,omitempty"`
	Count      int    `json:"count,omitempty"`
	Status     int    `json:"status,omitempty"`
	Code       string `json:"code,omitempty"`
	DelayMS    int    `json:"delay_ms,omitempty"`
	RetryAfter int    `json:"retry_after,omitempty"` // seconds
	used       int
}

// AddFault injects f.
func (s *Server) AddFault(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &f)
}

// ClearFaults removes every injected fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

func (s *Server) takeFault(path string, page int) *Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range s.faults {
		if (f.Path == "" || f.Path == path) && (f.Page == 0 || f.Page == page) {
			f.used++
			if f.Count > 0 && f.used >= f.Count {
				s.faults = append(s.faults[:i:i], s.faults[i+1:]...)
			}
			cp := *f
			return &cp
		}
	}
	return nil
}

// apply writes the fault's answer and reports whether it did; a slow fault
// only delays and lets the normal answer follow.
func (f *Fault) apply(w http.ResponseWriter, r *http.Request) bool {
	switch f.Kind {
	case FaultSlow:
		select {
		case <-time.After(time.Duration(f.DelayMS) * time.Millisecond):
		case <-r.Context().Done():
		}
		return false
	case FaultThrottle:
		ra := f.RetryAfter
		if ra == 0 {
			ra = 1
		}
		w.Header().Set("Retry-After", strconv.Itoa(ra))
		gslError(w, http.StatusForbidden, gsl.CodeNoRepeatIn5m, "5分钟内不允许重复操作,请稍作等待。")
	case FaultMalformed:
		w.Header().Set("Content-Type", "application/json;charset=UTF-8")
		_, _ = w.Write([]byte(`{"limit":10,"offset":1,"count":3,"sim_cards":[{"sim_card_id":49`))
	default:
		status, code, msg := f.Status, f.Code, "系统繁忙,请稍后重试。"
		if status == 0 {
			status = http.StatusInternalServerError
		}
		if code == "" {
			code = gsl.CodeSystemBusy
		}
		if status == http.StatusBadRequest {
			msg = "参数异常"
		}
		gslError(w, status, code, msg)
	}
	return true
}

// CardPatch sets fields of a simulated card; nil fields stay as they are.
// Names follow GSL's SimDeviceVO.
type CardPatch struct {
	SimStatus      *int     `json:"sim_status"`
	OperatorStatus *int     `json:"operator_status"`
	IMEI           *string  `json:"imei"`
	FlowUsed       *float64 `json:"flow_used"`
	FlowTotal      *float64 `json:"flow_total"`
	Tags           *string  `json:"tag_names"`
	Attr1          *string  `json:"customer_attribute1"`
	ExpireTime     *string  `json:"expire_time"`
}

// PatchCard applies p to the card with this ICCID.
func (f *Fleet) PatchCard(iccid string, p CardPatch) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.byICC[iccid]
	if c == nil {
		return fmt.Errorf("no card with iccid %s", iccid)
	}
	if p.ExpireTime != nil {
		t, err := time.Parse(time.RFC3339, *p.ExpireTime)
		if err != nil {
			return fmt.Errorf("expire_time: %w", err)
		}
		c.ExpireTime = t
	}
	set(&c.Status, p.SimStatus)
	set(&c.OperatorStatus, p.OperatorStatus)
	set(&c.IMEI, p.IMEI)
	set(&c.Used, p.FlowUsed)
	set(&c.Total, p.FlowTotal)
	set(&c.Tags, p.Tags)
	set(&c.Attr1, p.Attr1)
	return nil
}

// RemoveCard drops a card from the listing, as a dismantled card disappears.
func (f *Fleet) RemoveCard(iccid string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.byICC[iccid] == nil {
		return fmt.Errorf("no card with iccid %s", iccid)
	}
	delete(f.byICC, iccid)
	for i, c := range f.cards {
		if c.ICCID == iccid {
			f.cards = append(f.cards[:i], f.cards[i+1:]...)
			break
		}
	}
	return nil
}

// PoolPatch sets fields of a simulated pool.
type PoolPatch struct {
	FlowTotal *float64 `json:"flow_total"`
}

// PatchPool applies p to the pool with this id.
func (f *Fleet) PatchPool(id int64, p PoolPatch) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, pl := range f.pools {
		if pl.ID == id {
			set(&pl.Total, p.FlowTotal)
			return nil
		}
	}
	return fmt.Errorf("no pool with id %d", id)
}

// CardICCIDs lists the ICCIDs in listing order.
func (f *Fleet) CardICCIDs() []string {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := make([]string, len(f.cards))
	for i, c := range f.cards {
		out[i] = c.ICCID
	}
	return out
}

// PoolIDs lists the pool ids in listing order.
func (f *Fleet) PoolIDs() []int64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := make([]int64, len(f.pools))
	for i, p := range f.pools {
		out[i] = p.ID
	}
	return out
}

func set[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

// control mounts /_sim/: faults, card and pool patches, advancing days, stats.
func (s *Server) control(mux *http.ServeMux) {
	mux.HandleFunc("GET /_sim/stats", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Stats())
	})
	mux.HandleFunc("POST /_sim/faults", func(w http.ResponseWriter, r *http.Request) {
		var f Fault
		if err := json.NewDecoder(r.Body).Decode(&f); err != nil {
			http.Error(w, "fault: "+err.Error(), http.StatusBadRequest)
			return
		}
		s.AddFault(f)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("DELETE /_sim/faults", func(w http.ResponseWriter, r *http.Request) {
		s.ClearFaults()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /_sim/cards/{iccid}", func(w http.ResponseWriter, r *http.Request) {
		var p CardPatch
		if err := json.NewDecoder(r.Body).Decode(&p); err != nil {
			http.Error(w, "card: "+err.Error(), http.StatusBadRequest)
			return
		}
		if err := s.o.Fleet.PatchCard(r.PathValue("iccid"), p); err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("DELETE /_sim/cards/{iccid}", func(w http.ResponseWriter, r *http.Request) {
		if err := s.o.Fleet.RemoveCard(r.PathValue("iccid")); err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /_sim/pools/{id}", func(w http.ResponseWriter, r *http.Request) {
		var p PoolPatch
		id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
		if err == nil {
			err = json.NewDecoder(r.Body).Decode(&p)
		}
		if err != nil {
			http.Error(w, "pool: "+err.Error(), http.StatusBadRequest)
			return
		}
		if err := s.o.Fleet.PatchPool(id, p); err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /_sim/advance", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Days int `json:"days"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Days < 1 {
			http.Error(w, `advance: want {"days": N} with N >= 1`, http.StatusBadRequest)
			return
		}
		changes := s.o.Fleet.Advance(req.Days)
		writeJSON(w, http.StatusOK, map[string]any{"day": s.o.Fleet.Day(), "changes": changes})
	})
}

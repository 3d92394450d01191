package sim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
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

// Fault is an injected misbehaviour. It matches requests to Path
// ("sim-cards", "sim-pools", "linkcard", "batch-daily-flow", "stop", "reset";
// empty for any) and Page (0 for any), and applies Count times (0 for until
// cleared). The first matching fault answers a request. The listing
// mutations (see hostile.go) match listings only.
type Fault struct {
	Kind       string `json:"kind"`
	Path       string `json:"path,omitempty"`
	Page       int    `json:"page,omitempty"`
	Count      int    `json:"count,omitempty"`
	Status     int    `json:"status,omitempty"`
	Code       string `json:"code,omitempty"`
	DelayMS    int    `json:"delay_ms,omitempty"`
	RetryAfter int    `json:"retry_after,omitempty"` // seconds

	Body      string `json:"body"`       // FaultBody: the answer, verbatim
	Location  string `json:"location"`   // FaultRedirect: the Location header
	Shift     int    `json:"shift"`      // FaultDrift: cards the fleet moved by
	Drop      int    `json:"drop"`       // FaultDrop: cards left off (default 1)
	Total     int    `json:"total"`      // FaultCount: the count to report
	PageCount int    `json:"page_count"` // FaultCount: LinkCard PageCount (0: from Total)
	used      int
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
		if (f.Path == "" || f.Path == path) && (f.Page == 0 || f.Page == page) &&
			(isListing(path) || !isListingMutation(f.Kind)) {
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
// only delays and lets the normal answer follow, and a listing mutation
// leaves the answer to the listing.
func (f *Fault) apply(w http.ResponseWriter, r *http.Request) bool {
	if f.applyHostile(w, r) {
		return true
	}
	if isListingMutation(f.Kind) {
		return false
	}
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
//
// Raw and Unset override the card's wire rendering at every provider, for
// values no normal fleet has: Raw keys (wire names, e.g. "flow_left" or
// "DataLevel") are written over the rendered JSON, Unset keys are deleted from
// it. Keys merge with earlier patches, the latest winning; an explicitly
// empty Raw ({}) or Unset ([]) clears that part. Overrides win over the
// card's simulated fields.
type CardPatch struct {
	SimStatus      *int     `json:"sim_status"`
	OperatorStatus *int     `json:"operator_status"`
	IMEI           *string  `json:"imei"`
	FlowUsed       *float64 `json:"flow_used"`
	FlowTotal      *float64 `json:"flow_total"`
	Tags           *string  `json:"tag_names"`
	Attr1          *string  `json:"customer_attribute1"`
	ExpireTime     *string  `json:"expire_time"`

	Raw   map[string]json.RawMessage `json:"raw"`
	Unset []string                   `json:"unset"`
}

// validRaw checks that every raw override is JSON, so rendering cannot fail.
func validRaw(raw map[string]json.RawMessage) error {
	for k, v := range raw {
		if !json.Valid(v) {
			return fmt.Errorf("raw %q: not valid JSON", k)
		}
	}
	return nil
}

// PatchCard applies p to the card with this ICCID.
func (f *Fleet) PatchCard(iccid string, p CardPatch) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.byICC[iccid]
	if c == nil {
		return fmt.Errorf("no card with iccid %s", iccid)
	}
	if err := validRaw(p.Raw); err != nil {
		return err
	}
	if p.ExpireTime != nil {
		t, err := time.Parse(time.RFC3339, *p.ExpireTime)
		if err != nil {
			return fmt.Errorf("expire_time: %w", err)
		}
		c.ExpireTime = t
	}
	c.over.patch(p.Raw, p.Unset)
	set(&c.Status, p.SimStatus)
	set(&c.OperatorStatus, p.OperatorStatus)
	set(&c.IMEI, p.IMEI)
	set(&c.Used, p.FlowUsed)
	set(&c.Total, p.FlowTotal)
	set(&c.Tags, p.Tags)
	set(&c.Attr1, p.Attr1)
	return nil
}

// AddCard appends a new card to the listing, active with a plan of total MB
// and no usage yet, as a fleet grows (also mid-listing), and returns its
// ICCID. Its id and identifiers follow the generated cards', never reusing a
// removed card's. Its daily usage starts on the day it is added.
func (f *Fleet) AddCard(total float64) (iccid string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seq++
	n := f.seq
	plan := fmt.Sprintf("IoT %gMB monthly", total)
	for _, p := range plans {
		if p.total == total {
			plan = p.name
		}
	}
	today := f.today()
	c := &card{
		ID:             4900000000000 + int64(n),
		AccountID:      "04eef84sim",
		ICCID:          fmt.Sprintf("89860%015d", n),
		IMSI:           fmt.Sprintf("46001%010d", n),
		MSISDN:         fmt.Sprintf("861%010d", n),
		IMEI:           fmt.Sprintf("35%013d", (uint64(n)*0x9e3779b97f4a7c15)%1e13),
		Status:         gslInUse,
		OperatorStatus: -1,
		Plan:           plan,
		Total:          total,
		Daily:          total / 30,
		ActDate:        today,
		ExpireTime:     today.AddDate(1, 0, 0),
		NetworkType:    "4G",
		added:          true,
		born:           int32(f.day),
	}
	f.cards = append(f.cards, c)
	f.byICC[c.ICCID] = c
	return c.ICCID
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

// PoolPatch sets fields of a simulated pool. Raw and Unset override its GSL
// rendering (SimPoolVO) as CardPatch's do a card's.
type PoolPatch struct {
	FlowTotal *float64 `json:"flow_total"`

	Raw   map[string]json.RawMessage `json:"raw"`
	Unset []string                   `json:"unset"`
}

// PatchPool applies p to the pool with this id.
func (f *Fleet) PatchPool(id int64, p PoolPatch) error {
	if err := validRaw(p.Raw); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, pl := range f.pools {
		if pl.ID == id {
			set(&pl.Total, p.FlowTotal)
			pl.over.patch(p.Raw, p.Unset)
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
		if !knownFaultKind(f.Kind) {
			http.Error(w, "fault: unknown kind "+strconv.Quote(f.Kind), http.StatusBadRequest)
			return
		}
		s.AddFault(f)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /_sim/churn", s.churnHandler) // churn.go
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
	mux.HandleFunc("POST /_sim/cards", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			FlowTotal *float64 `json:"flow_total"`
		}
		if r.ContentLength != 0 {
			if err := json.NewDecoder(r.Body).Decode(&req); err != nil && !errors.Is(err, io.EOF) {
				http.Error(w, "card: "+err.Error(), http.StatusBadRequest)
				return
			}
		}
		total := 100.0
		if req.FlowTotal != nil {
			total = *req.FlowTotal
		}
		if total < 0 || math.IsNaN(total) {
			http.Error(w, "card: flow_total must be at least 0", http.StatusBadRequest)
			return
		}
		iccid := s.o.Fleet.AddCard(total)
		writeJSON(w, http.StatusCreated, map[string]string{"iccid": iccid})
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
	mux.HandleFunc(ElsewherePath+"/", s.elsewhere)
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

// Raw builds CardPatch.Raw and PoolPatch.Raw from wire names and raw JSON
// values, in pairs: Raw("flow_left", "null", "sim_status", "99").
func Raw(kv ...string) map[string]json.RawMessage {
	m := make(map[string]json.RawMessage, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = json.RawMessage(kv[i+1])
	}
	return m
}

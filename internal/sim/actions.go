package sim

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/simwatch/simwatch/internal/provider/gsl"
)

// workOrder is a stop or resume the simulated operator is processing.
type workOrder struct {
	ID     int64
	Card   *card
	Stop   bool
	Due    time.Time // when the card's state changes
	Issued time.Time
}

// WorkOrderDelay is how long the simulated operator takes to stop or resume
// a card; zero means 2 seconds.
func (s *Server) workOrderDelay() time.Duration {
	if s.o.WorkOrderDelay > 0 {
		return s.o.WorkOrderDelay
	}
	return 2 * time.Second
}

// completeWorkOrders applies the work orders that are due. Callers hold s.mu.
func (s *Server) completeWorkOrders() {
	now := s.o.Now()
	f := s.o.Fleet
	kept := s.orders[:0]
	for _, o := range s.orders {
		if now.Before(o.Due) {
			kept = append(kept, o)
			continue
		}
		f.mu.Lock()
		if o.Stop {
			o.Card.Status, o.Card.OperatorStatus = gslStopped, 5
		} else {
			o.Card.Status, o.Card.OperatorStatus = gslInUse, -1
		}
		f.mu.Unlock()
	}
	s.orders = kept
}

// cardAction serves POST /v1/sim-cards/{sim_card_id}/stop and .../reset.
func (s *Server) cardAction(stop bool) func(w http.ResponseWriter, r *http.Request, _ pageReq) {
	return func(w http.ResponseWriter, r *http.Request, _ pageReq) {
		var body struct {
			DownUpSwitch int    `json:"down_up_switch"`
			ICCID        string `json:"iccid"`
		}
		id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
		if err == nil {
			err = json.NewDecoder(r.Body).Decode(&body)
		}
		if err != nil {
			gslError(w, http.StatusBadRequest, gsl.CodeParamInvalid, "参数异常")
			return
		}
		f := s.o.Fleet
		f.mu.RLock()
		c := f.byICC[body.ICCID]
		if id != 0 {
			c = f.byID(id)
		}
		f.mu.RUnlock()
		if c == nil {
			gslError(w, http.StatusBadRequest, gsl.CodeParamInvalid, "参数异常")
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		s.completeWorkOrders()
		now := s.o.Now()
		for _, o := range s.orders {
			if o.Card == c {
				gslError(w, http.StatusForbidden, gsl.CodeWorkOrderOpen, "您操作的卡仍有未完成的停机受理单,请勿重复操作。")
				return
			}
		}
		if last, ok := s.lastAction[c.ID]; ok && now.Sub(last) < 5*time.Minute {
			gslError(w, http.StatusForbidden, gsl.CodeNoRepeatIn5m, "5分钟内不允许重复操作,请稍作等待。")
			return
		}
		s.nextOrder++
		o := &workOrder{ID: 1000000 + s.nextOrder, Card: c, Stop: stop, Due: now.Add(s.workOrderDelay()), Issued: now}
		s.orders = append(s.orders, o)
		s.lastAction[c.ID] = now
		s.stats.Actions++
		writeJSON(w, http.StatusOK, map[string]int64{"work_order_id": o.ID})
	}
}

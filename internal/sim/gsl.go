package sim

import (
	"net/http"
	"time"
)

// The wire shapes below follow seeds 000 (SimDeviceVO) and 003 (SimPoolVO)
// field for field, nulls included.

type simDeviceVO struct {
	SimCardID          int64   `json:"sim_card_id"`
	AccountID          string  `json:"account_id"`
	CID                string  `json:"cid"`
	SimPoolID          *int64  `json:"sim_pool_id"`
	IMEI               *string `json:"imei"`
	SimStatus          int     `json:"sim_status"`
	DeviceStatus       *int    `json:"device_status"`
	DeviceModel        *string `json:"device_model"`
	ActDate            string  `json:"act_date"`
	DeviceStatusDate   *string `json:"device_status_date"`
	NodeID             *string `json:"node_id"`
	ICCID              string  `json:"iccid"`
	NetworkType        *string `json:"network_type"`
	DBM                *string `json:"dbm"`
	SignalLevel        *string `json:"signal_level"`
	SimType            int     `json:"sim_type"`
	TagNames           *string `json:"tag_names"`
	OrderID            int64   `json:"order_id"`
	ExpireTime         string  `json:"expire_time"`
	PricePlanName      string  `json:"price_plan_name"`
	SimPricePlanID     *int64  `json:"sim_price_plan_id"`
	FlowLeft           float64 `json:"flow_left"`
	FlowUsed           float64 `json:"flow_used"`
	OperatorStatus     int     `json:"operator_status"`
	MSISDN             string  `json:"msisdn"`
	IMSI               string  `json:"imsi"`
	CustomerAttribute1 *string `json:"customer_attribute1"`
	CustomerAttribute2 *string `json:"customer_attribute2"`
	CustomerAttribute3 *string `json:"customer_attribute3"`
	CustomerAttribute4 *string `json:"customer_attribute4"`
	CustomerAttribute5 *string `json:"customer_attribute5"`
	CustomerAttribute6 *string `json:"customer_attribute6"`
	RealNamed          bool    `json:"real_named"`
	CutNetFlag         bool    `json:"cut_net_flag"`
	ExceedCutNetFlag   bool    `json:"exceed_cut_net_flag"`
	ExceedCutNetQuota  *int    `json:"exceed_cut_net_quota"`
	IMEIBindRemain     *int    `json:"imei_bind_remain_times"`
	SpeedValue         *int    `json:"speed_value"`
}

type simPoolVO struct {
	ID                      int64   `json:"id"`
	PoolName                string  `json:"pool_name"`
	PricePlanName           string  `json:"price_plan_name"`
	PricePlanID             string  `json:"price_plan_id"`
	EffectiveTime           string  `json:"effective_time"`
	ExpiredTime             string  `json:"expired_time"`
	BillingCycle            string  `json:"billing_cycle"`
	FlowTotal               float64 `json:"flow_total"`
	FlowUsed                float64 `json:"flow_used"`
	FlowLeft                float64 `json:"flow_left"`
	Quantity                int     `json:"quantity"`
	ModifyTime              string  `json:"modify_time"`
	OrderID                 int64   `json:"order_id"`
	ActivatedSimQuantity    int     `json:"activated_sim_quantity"`
	InactiveSimQuantity     int     `json:"inactive_sim_quantity"`
	DisassembledSimQuantity int     `json:"disassembled_sim_quantity"`
	OrderIDs                string  `json:"order_ids"`
}

// GSL renders times like "2022-09-16T01:14:58.000+00:00".
const gslTime = "2006-01-02T15:04:05.000-07:00"

func gslTimeString(t time.Time) string { return t.UTC().Format(gslTime) }

func nullable[T comparable](v T) *T {
	var zero T
	if v == zero {
		return nil
	}
	return &v
}

func (c *card) gslVO() simDeviceVO {
	vo := simDeviceVO{
		SimCardID:          c.ID,
		AccountID:          c.AccountID,
		CID:                c.ICCID,
		SimPoolID:          nullable(c.PoolID),
		IMEI:               nullable(c.IMEI),
		SimStatus:          c.Status,
		ActDate:            gslTimeString(c.ActDate),
		ICCID:              c.ICCID,
		NetworkType:        nullable(c.NetworkType),
		SimType:            3,
		TagNames:           nullable(c.Tags),
		OrderID:            494000000000,
		ExpireTime:         gslTimeString(c.ExpireTime),
		PricePlanName:      c.Plan,
		FlowLeft:           round2(c.left()),
		FlowUsed:           round2(c.Used),
		OperatorStatus:     c.OperatorStatus,
		MSISDN:             c.MSISDN,
		IMSI:               c.IMSI,
		CustomerAttribute1: nullable(c.Attr1),
	}
	return vo
}

// listCards serves GET /v1/sim-cards: the page asked for, as q.Fault (if a
// listing mutation) bends it.
func (s *Server) listCards(w http.ResponseWriter, r *http.Request, q pageReq) {
	f := s.o.Fleet
	f.mu.RLock()
	cards := f.cards
	if r.URL.Query().Get("main_search_type") == "1" { // by container id: the ICCID
		cards = f.byICCID(r.URL.Query().Get("main_search_key"))
	}
	idx := q.Fault.pick(len(cards), q.Page, q.Limit)
	page := make([]*card, len(idx))
	for i, j := range idx {
		page[i] = cards[j]
	}
	list := renderList(page, (*card).gslVO, func(c *card) *overrides { return &c.over })
	count := q.Fault.count(len(cards))
	f.mu.RUnlock()
	writeJSON(w, http.StatusOK, struct {
		Limit    int `json:"limit"`
		Offset   int `json:"offset"`
		Count    int `json:"count"`
		SimCards any `json:"sim_cards"`
	}{q.Limit, q.Page, count, list})
}

// poolVO renders p with its members' figures st. Callers hold f.mu.
func (f *Fleet) poolVO(p *pool, st *poolStats) simPoolVO {
	return simPoolVO{
		ID:                      p.ID,
		PoolName:                p.Name,
		PricePlanName:           p.Plan,
		PricePlanID:             "10000",
		EffectiveTime:           gslTimeString(p.Effective),
		ExpiredTime:             gslTimeString(p.Expired),
		BillingCycle:            p.Cycle,
		FlowTotal:               round2(p.Total),
		FlowUsed:                round2(st.used),
		FlowLeft:                round2(p.Total - st.used),
		Quantity:                st.quantity,
		ModifyTime:              gslTimeString(f.start.AddDate(0, 0, f.day)),
		OrderID:                 100000000,
		ActivatedSimQuantity:    st.activated,
		InactiveSimQuantity:     st.inactive,
		DisassembledSimQuantity: st.dismantled,
		OrderIDs:                "1000000",
	}
}

// listPools serves GET /v1/sim-pools, bent by q.Fault like listCards.
func (s *Server) listPools(w http.ResponseWriter, r *http.Request, q pageReq) {
	f := s.o.Fleet
	f.mu.RLock()
	stats := f.poolStats()
	idx := q.Fault.pick(len(f.pools), q.Page, q.Limit)
	page := make([]*pool, len(idx))
	for i, j := range idx {
		page[i] = f.pools[j]
	}
	list := renderList(page, func(p *pool) simPoolVO { return f.poolVO(p, stats[p.ID]) },
		func(p *pool) *overrides { return &p.over })
	count := q.Fault.count(len(f.pools))
	f.mu.RUnlock()
	writeJSON(w, http.StatusOK, struct {
		Limit  int `json:"limit"`
		Offset int `json:"offset"`
		Count  int `json:"count"`
		Pools  any `json:"pools"`
	}{q.Limit, q.Page, count, list})
}

// window returns the slice bounds of page (from 1) of size limit.
func window(n, page, limit int) (lo, hi int) {
	lo = min((page-1)*limit, n)
	hi = min(lo+limit, n)
	return lo, hi
}

// byICCID is the listing filtered to one ICCID (GSL main_search_key,
// LinkCard Iccid). Callers hold f.mu.
func (f *Fleet) byICCID(iccid string) []*card {
	if c := f.byICC[iccid]; c != nil {
		return []*card{c}
	}
	return nil
}

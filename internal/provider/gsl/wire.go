package gsl

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/simwatch/simwatch/internal/fleet"
	"github.com/simwatch/simwatch/internal/provider"
)

// cardPage is the answer of GET /v1/sim-cards (seed 000). Count and SimCards
// are pointers to tell a missing key from a value: a page without them is
// not a page.
type cardPage struct {
	Limit    int64        `json:"limit"`
	Offset   int64        `json:"offset"`
	Count    *int64       `json:"count"`
	SimCards *[]simDevice `json:"sim_cards"`
}

// simDevice is SimDeviceVO. Nullable fields are pointers: nil is a value the
// provider left out or gave as null, never 0.
type simDevice struct {
	SimCardID      *int64   `json:"sim_card_id"`
	AccountID      *string  `json:"account_id"`
	CID            *string  `json:"cid"`
	SimPoolID      *int64   `json:"sim_pool_id"`
	IMEI           *string  `json:"imei"`
	SimStatus      *int     `json:"sim_status"`
	DeviceStatus   *int     `json:"device_status"`
	ActDate        *string  `json:"act_date"`
	ICCID          *string  `json:"iccid"`
	NetworkType    *string  `json:"network_type"`
	SignalLevel    *string  `json:"signal_level"`
	TagNames       *string  `json:"tag_names"`
	ExpireTime     *string  `json:"expire_time"`
	PricePlanName  *string  `json:"price_plan_name"`
	FlowLeft       *float64 `json:"flow_left"`
	FlowUsed       *float64 `json:"flow_used"`
	OperatorStatus *int     `json:"operator_status"`
	MSISDN         *string  `json:"msisdn"`
	IMSI           *string  `json:"imsi"`
	Attr1          *string  `json:"customer_attribute1"`
	Attr2          *string  `json:"customer_attribute2"`
	Attr3          *string  `json:"customer_attribute3"`
	Attr4          *string  `json:"customer_attribute4"`
	Attr5          *string  `json:"customer_attribute5"`
	Attr6          *string  `json:"customer_attribute6"`
}

// poolPage is the answer of GET /v1/sim-pools (seed 003).
type poolPage struct {
	Limit  int64      `json:"limit"`
	Offset int64      `json:"offset"`
	Count  *int64     `json:"count"`
	Pools  *[]simPool `json:"pools"`
}

// simPool is SimPoolVO.
type simPool struct {
	ID                 *int64   `json:"id"`
	PoolName           *string  `json:"pool_name"`
	PricePlanName      *string  `json:"price_plan_name"`
	ExpiredTime        *string  `json:"expired_time"`
	BillingCycle       *string  `json:"billing_cycle"`
	FlowTotal          *float64 `json:"flow_total"`
	FlowUsed           *float64 `json:"flow_used"`
	FlowLeft           *float64 `json:"flow_left"`
	Quantity           *int     `json:"quantity"`
	ActivatedQuantity  *int     `json:"activated_sim_quantity"`
	InactiveQuantity   *int     `json:"inactive_sim_quantity"`
	DisassembledAmount *int     `json:"disassembled_sim_quantity"`
}

// The Unknown bits the decoders set.
var (
	cardStatus         = fleet.CardField("status")
	cardOperatorStatus = fleet.CardField("operator_status")
	cardDeviceStatus   = fleet.CardField("device_status")
	cardFlowUsed       = fleet.CardField("flow_used")
	cardFlowLeft       = fleet.CardField("flow_left")
	cardFlowTotal      = fleet.CardField("flow_total")

	// Identity and dates: the fleet model lets them be unknown (an IMEI or
	// date left out is not "" or the zero time).
	cardIMEI        = provider.UnknownBit(fleet.EntityCard, "imei")
	cardActDate     = provider.UnknownBit(fleet.EntityCard, "act_date")
	cardExpireTime  = provider.UnknownBit(fleet.EntityCard, "expire_time")
	poolExpiredTime = provider.UnknownBit(fleet.EntityPool, "expired_time")

	poolFlowTotal    = fleet.PoolField("flow_total")
	poolFlowUsed     = fleet.PoolField("flow_used")
	poolFlowLeft     = fleet.PoolField("flow_left")
	poolQuantity     = fleet.PoolField("quantity")
	poolActivated    = fleet.PoolField("activated")
	poolInactive     = fleet.PoolField("inactive")
	poolDisassembled = fleet.PoolField("disassembled")
)

// StatusName maps GSL's sim_status to the normalised status, or "" for a
// code the DESIGN table does not list (the card's status is then unknown).
func StatusName(code int) string {
	switch code {
	case 10:
		return fleet.StatusTest
	case 11, 13:
		return fleet.StatusInactive
	case 14:
		return fleet.StatusSuspended
	case 20:
		return fleet.StatusActive
	case 30:
		return fleet.StatusTerminated
	}
	return ""
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// known sets *dst to *p, or marks bit unknown when p is nil.
func known[T int | float64](dst *T, p *T, u *fleet.Unknown, bit fleet.Unknown) {
	if p == nil {
		*u |= bit
		return
	}
	*dst = *p
}

// parseTime accepts GSL's "2022-09-16T01:14:58.000+00:00" and "...Z" forms;
// missing, null or "" marks bit unknown.
func parseTime(field string, p *string, u *fleet.Unknown, bit fleet.Unknown) (time.Time, error) {
	if p == nil || *p == "" {
		*u |= bit
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, *p)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: %q is not a timestamp", field, *p)
	}
	return t.UTC(), nil
}

// errMissing is a required key that is missing or null.
func errMissing(key string) error { return fmt.Errorf("%s: missing or null", key) }

// listKey tells, for a page whose list decoded to nil, whether the key was
// there (null: an empty page) or missing (not a page).
func listKey(body []byte, key string) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return err
	}
	for k := range m {
		if strings.EqualFold(k, key) { // as encoding/json matches keys
			return nil
		}
	}
	return fmt.Errorf("%s: missing", key)
}

// decodeCards decodes one page of GET /v1/sim-cards into cards that passed
// Validate. Every error names the record, its id where known, and the field.
func decodeCards(name string, body []byte) (provider.Page[fleet.Card], error) {
	var p cardPage
	if err := json.Unmarshal(body, &p); err != nil {
		return provider.Page[fleet.Card]{}, err
	}
	if p.Count == nil {
		return provider.Page[fleet.Card]{}, errMissing("count")
	}
	if p.SimCards == nil {
		if err := listKey(body, "sim_cards"); err != nil {
			return provider.Page[fleet.Card]{}, err
		}
		return provider.Page[fleet.Card]{Count: *p.Count}, nil
	}
	devices := *p.SimCards
	out := make([]fleet.Card, len(devices))
	for i := range devices {
		if err := devices[i].card(name, &out[i]); err != nil {
			if id := devices[i].SimCardID; id != nil {
				return provider.Page[fleet.Card]{}, fmt.Errorf("sim_cards[%d] (sim_card_id %d): %w", i, *id, err)
			}
			return provider.Page[fleet.Card]{}, fmt.Errorf("sim_cards[%d]: %w", i, err)
		}
	}
	return provider.Page[fleet.Card]{Items: out, Count: *p.Count}, nil
}

// decodePools decodes one page of GET /v1/sim-pools.
func decodePools(name string, body []byte) (provider.Page[fleet.Pool], error) {
	var p poolPage
	if err := json.Unmarshal(body, &p); err != nil {
		return provider.Page[fleet.Pool]{}, err
	}
	if p.Count == nil {
		return provider.Page[fleet.Pool]{}, errMissing("count")
	}
	if p.Pools == nil {
		if err := listKey(body, "pools"); err != nil {
			return provider.Page[fleet.Pool]{}, err
		}
		return provider.Page[fleet.Pool]{Count: *p.Count}, nil
	}
	pools := *p.Pools
	out := make([]fleet.Pool, len(pools))
	for i := range pools {
		if err := pools[i].pool(name, &out[i]); err != nil {
			if id := pools[i].ID; id != nil {
				return provider.Page[fleet.Pool]{}, fmt.Errorf("pools[%d] (id %d): %w", i, *id, err)
			}
			return provider.Page[fleet.Pool]{}, fmt.Errorf("pools[%d]: %w", i, err)
		}
	}
	return provider.Page[fleet.Pool]{Items: out, Count: *p.Count}, nil
}

func (d *simDevice) card(name string, c *fleet.Card) error {
	if d.SimCardID == nil {
		return errMissing("sim_card_id")
	}
	if *d.SimCardID <= 0 {
		return fmt.Errorf("sim_card_id: %d is not a card id", *d.SimCardID)
	}
	if d.SimStatus == nil {
		return errMissing("sim_status")
	}
	*c = fleet.Card{
		Provider:    name,
		Account:     str(d.AccountID),
		ID:          strconv.FormatInt(*d.SimCardID, 10),
		ICCID:       str(d.ICCID),
		MSISDN:      str(d.MSISDN),
		IMSI:        str(d.IMSI),
		IMEI:        str(d.IMEI),
		Status:      StatusName(*d.SimStatus),
		StatusCode:  *d.SimStatus,
		Plan:        str(d.PricePlanName),
		SignalLevel: str(d.SignalLevel),
		NetworkType: str(d.NetworkType),
	}
	if c.Status == "" {
		c.Unknown |= cardStatus
	}
	if c.ICCID == "" {
		c.ICCID = str(d.CID)
	}
	if d.IMEI == nil {
		c.Unknown |= cardIMEI
	}
	known(&c.OperatorStatus, d.OperatorStatus, &c.Unknown, cardOperatorStatus)
	known(&c.DeviceStatus, d.DeviceStatus, &c.Unknown, cardDeviceStatus)
	known(&c.FlowUsed, d.FlowUsed, &c.Unknown, cardFlowUsed)
	known(&c.FlowLeft, d.FlowLeft, &c.Unknown, cardFlowLeft)
	if c.Unknown.Has(cardFlowUsed | cardFlowLeft) {
		c.Unknown |= cardFlowTotal
	} else {
		c.FlowTotal = c.FlowUsed + c.FlowLeft
	}
	if d.SimPoolID != nil && *d.SimPoolID != 0 {
		c.PoolID = strconv.FormatInt(*d.SimPoolID, 10)
	}
	var err error
	if c.ExpireTime, err = parseTime("expire_time", d.ExpireTime, &c.Unknown, cardExpireTime); err != nil {
		return err
	}
	if c.ActDate, err = parseTime("act_date", d.ActDate, &c.Unknown, cardActDate); err != nil {
		return err
	}
	if t := strings.TrimSpace(str(d.TagNames)); t != "" {
		for _, tag := range strings.Split(t, ",") {
			if tag = strings.TrimSpace(tag); tag != "" {
				c.Tags = append(c.Tags, tag)
			}
		}
	}
	for i, a := range [...]*string{d.Attr1, d.Attr2, d.Attr3, d.Attr4, d.Attr5, d.Attr6} {
		if v := str(a); v != "" {
			if c.Attributes == nil {
				c.Attributes = map[string]string{}
			}
			c.Attributes[attrNames[i]] = v
		}
	}
	return c.Validate() // last: every field, dates included, is set
}

var attrNames = [...]string{"customer_attribute1", "customer_attribute2", "customer_attribute3",
	"customer_attribute4", "customer_attribute5", "customer_attribute6"}

func (p *simPool) pool(name string, out *fleet.Pool) error {
	if p.ID == nil {
		return errMissing("id")
	}
	if *p.ID <= 0 {
		return fmt.Errorf("id: %d is not a pool id", *p.ID)
	}
	*out = fleet.Pool{
		Provider:     name,
		ID:           strconv.FormatInt(*p.ID, 10),
		Name:         str(p.PoolName),
		Plan:         str(p.PricePlanName),
		BillingCycle: str(p.BillingCycle),
	}
	u := &out.Unknown
	known(&out.FlowTotal, p.FlowTotal, u, poolFlowTotal)
	known(&out.FlowUsed, p.FlowUsed, u, poolFlowUsed)
	known(&out.FlowLeft, p.FlowLeft, u, poolFlowLeft)
	known(&out.Quantity, p.Quantity, u, poolQuantity)
	known(&out.Activated, p.ActivatedQuantity, u, poolActivated)
	known(&out.Inactive, p.InactiveQuantity, u, poolInactive)
	known(&out.Disassembled, p.DisassembledAmount, u, poolDisassembled)
	var err error
	if out.ExpiredTime, err = parseTime("expired_time", p.ExpiredTime, &out.Unknown, poolExpiredTime); err != nil {
		return err
	}
	return out.Validate() // last: every field, dates included, is set
}

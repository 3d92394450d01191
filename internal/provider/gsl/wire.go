package gsl

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/simwatch/simwatch/internal/fleet"
)

// cardPage is the answer of GET /v1/sim-cards (seed 000).
type cardPage struct {
	Limit    int64       `json:"limit"`
	Offset   int64       `json:"offset"`
	Count    int64       `json:"count"`
	SimCards []simDevice `json:"sim_cards"`
}

// simDevice is SimDeviceVO. Nullable fields are pointers.
type simDevice struct {
	SimCardID      int64    `json:"sim_card_id"`
	AccountID      *string  `json:"account_id"`
	CID            *string  `json:"cid"`
	SimPoolID      *int64   `json:"sim_pool_id"`
	IMEI           *string  `json:"imei"`
	SimStatus      int      `json:"sim_status"`
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
	Limit  int64     `json:"limit"`
	Offset int64     `json:"offset"`
	Count  int64     `json:"count"`
	Pools  []simPool `json:"pools"`
}

// simPool is SimPoolVO.
type simPool struct {
	ID                 int64    `json:"id"`
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

// StatusName maps GSL's sim_status to the normalised status.
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
	return "unknown"
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func num[T int | int64 | float64](p *T) T {
	if p == nil {
		var zero T
		return zero
	}
	return *p
}

// parseTime accepts GSL's "2022-09-16T01:14:58.000+00:00" and "...Z" forms.
func parseTime(field string, p *string) (time.Time, error) {
	if p == nil || *p == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, *p)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: %q is not a timestamp", field, *p)
	}
	return t.UTC(), nil
}

func (d *simDevice) card(provider string) (fleet.Card, error) {
	if d.SimCardID == 0 {
		return fleet.Card{}, fmt.Errorf("sim_card_id missing")
	}
	c := fleet.Card{
		Provider:       provider,
		Account:        str(d.AccountID),
		ID:             strconv.FormatInt(d.SimCardID, 10),
		ICCID:          str(d.ICCID),
		MSISDN:         str(d.MSISDN),
		IMSI:           str(d.IMSI),
		IMEI:           str(d.IMEI),
		Status:         StatusName(d.SimStatus),
		StatusCode:     d.SimStatus,
		OperatorStatus: -1,
		FlowUsed:       num(d.FlowUsed),
		FlowLeft:       num(d.FlowLeft),
		Plan:           str(d.PricePlanName),
		DeviceStatus:   num(d.DeviceStatus),
		SignalLevel:    str(d.SignalLevel),
		NetworkType:    str(d.NetworkType),
	}
	if c.ICCID == "" {
		c.ICCID = str(d.CID)
	}
	if d.OperatorStatus != nil {
		c.OperatorStatus = *d.OperatorStatus
	}
	c.FlowTotal = c.FlowUsed + c.FlowLeft
	if d.SimPoolID != nil && *d.SimPoolID != 0 {
		c.PoolID = strconv.FormatInt(*d.SimPoolID, 10)
	}
	var err error
	if c.ExpireTime, err = parseTime("expire_time", d.ExpireTime); err != nil {
		return c, err
	}
	if c.ActDate, err = parseTime("act_date", d.ActDate); err != nil {
		return c, err
	}
	if t := strings.TrimSpace(str(d.TagNames)); t != "" {
		for _, tag := range strings.Split(t, ",") {
			if tag = strings.TrimSpace(tag); tag != "" {
				c.Tags = append(c.Tags, tag)
			}
		}
	}
	for i, a := range []*string{d.Attr1, d.Attr2, d.Attr3, d.Attr4, d.Attr5, d.Attr6} {
		if v := str(a); v != "" {
			if c.Attributes == nil {
				c.Attributes = map[string]string{}
			}
			c.Attributes["customer_attribute"+strconv.Itoa(i+1)] = v
		}
	}
	return c, nil
}

func (p *simPool) pool(provider string) (fleet.Pool, error) {
	if p.ID == 0 {
		return fleet.Pool{}, fmt.Errorf("id missing")
	}
	out := fleet.Pool{
		Provider:     provider,
		ID:           strconv.FormatInt(p.ID, 10),
		Name:         str(p.PoolName),
		Plan:         str(p.PricePlanName),
		FlowTotal:    num(p.FlowTotal),
		FlowUsed:     num(p.FlowUsed),
		FlowLeft:     num(p.FlowLeft),
		Quantity:     num(p.Quantity),
		Activated:    num(p.ActivatedQuantity),
		Inactive:     num(p.InactiveQuantity),
		Disassembled: num(p.DisassembledAmount),
		BillingCycle: str(p.BillingCycle),
	}
	var err error
	out.ExpiredTime, err = parseTime("expired_time", p.ExpiredTime)
	return out, err
}

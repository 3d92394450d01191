package fleet

import (
	"encoding/json"
	"time"
)

// cardOut is Card as JSON carries it: the fields rules may see as unknown
// are pointers, nil (null) when unknown. json.Marshal writes it in one
// pass; TestJSONShapesMatchModel keeps it field for field in step with Card.
type cardOut struct {
	Provider       string            `json:"provider"`
	Account        string            `json:"account"`
	ID             string            `json:"id"`
	ICCID          string            `json:"iccid"`
	MSISDN         string            `json:"msisdn"`
	IMSI           string            `json:"imsi"`
	IMEI           *string           `json:"imei"`
	Status         *string           `json:"status"`
	StatusCode     int               `json:"status_code"`
	OperatorStatus *int              `json:"operator_status"`
	FlowUsed       *float64          `json:"flow_used"`
	FlowLeft       *float64          `json:"flow_left"`
	FlowTotal      *float64          `json:"flow_total"`
	PoolID         string            `json:"pool_id"`
	Plan           string            `json:"plan"`
	ExpireTime     *time.Time        `json:"expire_time"`
	ActDate        *time.Time        `json:"act_date"`
	Tags           []string          `json:"tags"`
	Attributes     map[string]string `json:"attributes"`
	DeviceStatus   *int              `json:"device_status"`
	SignalLevel    string            `json:"signal_level"`
	NetworkType    string            `json:"network_type"`
	Vendor         string            `json:"vendor,omitempty"`
	APN            string            `json:"apn,omitempty"`
}

// poolOut is Pool as JSON carries it (see cardOut).
type poolOut struct {
	Provider     string     `json:"provider"`
	Account      string     `json:"account"`
	ID           string     `json:"id"`
	Name         string     `json:"name"`
	Plan         string     `json:"plan"`
	FlowTotal    *float64   `json:"flow_total"`
	FlowUsed     *float64   `json:"flow_used"`
	FlowLeft     *float64   `json:"flow_left"`
	Quantity     *int       `json:"quantity"`
	Activated    *int       `json:"activated"`
	Inactive     *int       `json:"inactive"`
	Disassembled *int       `json:"disassembled"`
	BillingCycle string     `json:"billing_cycle"`
	ExpiredTime  *time.Time `json:"expired_time"`
}

// ifKnown is &v, or nil when bit is unknown.
func ifKnown[T any](u, bit Unknown, v *T) *T {
	if u.Has(bit) {
		return nil
	}
	return v
}

// MarshalJSON writes the card with its unknown fields as null.
func (c Card) MarshalJSON() ([]byte, error) {
	u := c.Unknown
	return json.Marshal(cardOut{
		Provider: c.Provider, Account: c.Account, ID: c.ID, ICCID: c.ICCID, MSISDN: c.MSISDN, IMSI: c.IMSI,
		IMEI:           ifKnown(u, cardJSONBits.imei, &c.IMEI),
		Status:         ifKnown(u, cardJSONBits.status, &c.Status),
		StatusCode:     c.StatusCode,
		OperatorStatus: ifKnown(u, cardJSONBits.operatorStatus, &c.OperatorStatus),
		FlowUsed:       ifKnown(u, cardJSONBits.flowUsed, &c.FlowUsed),
		FlowLeft:       ifKnown(u, cardJSONBits.flowLeft, &c.FlowLeft),
		FlowTotal:      ifKnown(u, cardJSONBits.flowTotal, &c.FlowTotal),
		PoolID:         c.PoolID, Plan: c.Plan,
		ExpireTime:   ifKnown(u, cardJSONBits.expireTime, &c.ExpireTime),
		ActDate:      ifKnown(u, cardJSONBits.actDate, &c.ActDate),
		Tags:         c.Tags,
		Attributes:   c.Attributes,
		DeviceStatus: ifKnown(u, cardJSONBits.deviceStatus, &c.DeviceStatus),
		SignalLevel:  c.SignalLevel, NetworkType: c.NetworkType, Vendor: c.Vendor, APN: c.APN,
	})
}

// MarshalJSON writes the pool with its unknown fields as null.
func (p Pool) MarshalJSON() ([]byte, error) {
	u := p.Unknown
	return json.Marshal(poolOut{
		Provider: p.Provider, Account: p.Account, ID: p.ID, Name: p.Name, Plan: p.Plan,
		FlowTotal:    ifKnown(u, poolJSONBits.flowTotal, &p.FlowTotal),
		FlowUsed:     ifKnown(u, poolJSONBits.flowUsed, &p.FlowUsed),
		FlowLeft:     ifKnown(u, poolJSONBits.flowLeft, &p.FlowLeft),
		Quantity:     ifKnown(u, poolJSONBits.quantity, &p.Quantity),
		Activated:    ifKnown(u, poolJSONBits.activated, &p.Activated),
		Inactive:     ifKnown(u, poolJSONBits.inactive, &p.Inactive),
		Disassembled: ifKnown(u, poolJSONBits.disassembled, &p.Disassembled),
		BillingCycle: p.BillingCycle,
		ExpiredTime:  ifKnown(u, poolJSONBits.expiredTime, &p.ExpiredTime),
	})
}

// The bits MarshalJSON reads, looked up once.
var (
	cardJSONBits = struct {
		imei, status, operatorStatus, flowUsed, flowLeft, flowTotal, expireTime, actDate, deviceStatus Unknown
	}{
		CardField("imei"), CardField("status"), CardField("operator_status"), CardField("flow_used"),
		CardField("flow_left"), CardField("flow_total"), CardField("expire_time"), CardField("act_date"), CardField("device_status"),
	}
	poolJSONBits = struct {
		flowTotal, flowUsed, flowLeft, quantity, activated, inactive, disassembled, expiredTime Unknown
	}{
		PoolField("flow_total"), PoolField("flow_used"), PoolField("flow_left"), PoolField("quantity"),
		PoolField("activated"), PoolField("inactive"), PoolField("disassembled"), PoolField("expired_time"),
	}
)

// Package fleet defines the provider-neutral model of a SIM fleet: the Card and
// Pool every provider's listing is normalised into, and the field names rules see.
//
// Field names follow GSL's snake_case names whatever the provider, so one rule
// watches every account. Flows are MB in the current billing cycle.
package fleet

import (
	"time"
)

// Normalised card statuses.
const (
	StatusTest       = "test"
	StatusInactive   = "inactive"
	StatusActive     = "active"
	StatusSuspended  = "suspended"
	StatusTerminated = "terminated"
)

// Card is one SIM card as every provider's listing is normalised.
// The expr tags are the names rule expressions use; json tags are the names
// events and the API carry. They are the same on purpose.
type Card struct {
	Provider       string            `json:"provider" expr:"provider"`
	Account        string            `json:"account" expr:"account"`
	ID             string            `json:"id" expr:"id"`
	ICCID          string            `json:"iccid" expr:"iccid"`
	MSISDN         string            `json:"msisdn" expr:"msisdn"`
	IMSI           string            `json:"imsi" expr:"imsi"`
	IMEI           string            `json:"imei" expr:"imei"`
	Status         string            `json:"status" expr:"status"`
	StatusCode     int               `json:"status_code" expr:"status_code"`
	OperatorStatus int               `json:"operator_status" expr:"operator_status"`
	FlowUsed       float64           `json:"flow_used" expr:"flow_used"`
	FlowLeft       float64           `json:"flow_left" expr:"flow_left"`
	FlowTotal      float64           `json:"flow_total" expr:"flow_total"`
	PoolID         string            `json:"pool_id" expr:"pool_id"`
	Plan           string            `json:"plan" expr:"plan"`
	ExpireTime     time.Time         `json:"expire_time" expr:"expire_time"`
	ActDate        time.Time         `json:"act_date" expr:"act_date"`
	Tags           []string          `json:"tags" expr:"tags"`
	Attributes     map[string]string `json:"attributes" expr:"attributes"`
	DeviceStatus   int               `json:"device_status" expr:"device_status"`
	SignalLevel    string            `json:"signal_level" expr:"signal_level"`
	NetworkType    string            `json:"network_type" expr:"network_type"`
	Vendor         string            `json:"vendor,omitempty" expr:"vendor"` // LinkCard: CMCC, CUCC, CTCC, VNO
	APN            string            `json:"apn,omitempty" expr:"apn"`
}

// Pool is one data ("flow") pool. FlowLeft is negative when the pool is in overdraft.
type Pool struct {
	Provider     string    `json:"provider" expr:"provider"`
	Account      string    `json:"account" expr:"account"`
	ID           string    `json:"id" expr:"id"`
	Name         string    `json:"name" expr:"name"`
	Plan         string    `json:"plan" expr:"plan"`
	FlowTotal    float64   `json:"flow_total" expr:"flow_total"`
	FlowUsed     float64   `json:"flow_used" expr:"flow_used"`
	FlowLeft     float64   `json:"flow_left" expr:"flow_left"`
	Quantity     int       `json:"quantity" expr:"quantity"`
	Activated    int       `json:"activated" expr:"activated"`
	Inactive     int       `json:"inactive" expr:"inactive"`
	Disassembled int       `json:"disassembled" expr:"disassembled"`
	BillingCycle string    `json:"billing_cycle" expr:"billing_cycle"`
	ExpiredTime  time.Time `json:"expired_time" expr:"expired_time"`
}

// Snapshot is one complete listing of a provider account. A Snapshot only
// exists when every page was fetched: partial listings are errors, never snapshots.
type Snapshot struct {
	Cards []Card
	Pools []Pool
}

// Entity kinds, as rules' `on:` and events' `entity` name them.
const (
	EntityCard = "card"
	EntityPool = "pool"
)

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

// DayUsage is data used on one calendar day, in MB. Day counts days since
// 1970-01-01 of the provider's calendar (China time for GSL and LinkCard).
type DayUsage struct {
	Day int32
	MB  float64
}

// ChinaTime is the zone the providers count days and billing months in.
var ChinaTime = time.FixedZone("UTC+8", 8*3600)

// DayOf is the calendar day of t in ChinaTime.
func DayOf(t time.Time) int32 {
	y, m, d := t.In(ChinaTime).Date()
	return int32(time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400)
}

// DayDate is the midnight (UTC) that names a day, for formatting.
func DayDate(day int32) time.Time { return time.Unix(int64(day)*86400, 0).UTC() }

// History sources: where a card's or pool's daily usage came from.
const (
	HistoryDaily    = "daily"    // the provider's daily usage API
	HistorySnapshot = "snapshot" // differences between successive listings
)

// History is an entity's daily usage, oldest first, one entry per day.
type History struct {
	Source string
	Days   []DayUsage
}

// Set records mb for day, replacing what the day had.
func (h *History) Set(day int32, mb float64) {
	i := len(h.Days)
	for i > 0 && h.Days[i-1].Day > day {
		i--
	}
	if i > 0 && h.Days[i-1].Day == day {
		h.Days[i-1].MB = mb
		return
	}
	h.Days = append(h.Days, DayUsage{})
	copy(h.Days[i+1:], h.Days[i:])
	h.Days[i] = DayUsage{Day: day, MB: mb}
}

// Get returns the usage on day, and whether the day is recorded.
func (h *History) Get(day int32) (float64, bool) {
	for i := len(h.Days) - 1; i >= 0; i-- {
		if h.Days[i].Day == day {
			return h.Days[i].MB, true
		}
		if h.Days[i].Day < day {
			break
		}
	}
	return 0, false
}

// Trim drops days before from.
func (h *History) Trim(from int32) {
	i := 0
	for i < len(h.Days) && h.Days[i].Day < from {
		i++
	}
	h.Days = h.Days[i:]
}

// Sum adds the usage of days in [from, to].
func (h *History) Sum(from, to int32) (mb float64, days int) {
	for _, d := range h.Days {
		if d.Day >= from && d.Day <= to {
			mb += d.MB
			days++
		}
	}
	return mb, days
}

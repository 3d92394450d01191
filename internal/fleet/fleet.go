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
	Provider       string            `json:"provider" expr:"provider" doc:"|the configured provider instance (its name in watcher.yaml)"`
	Account        string            `json:"account" expr:"account" doc:"|the provider account id, where the provider gives one"`
	ID             string            `json:"id" expr:"id" doc:"|the provider's stable card id (GSL sim_card_id, LinkCard Iccid)"`
	ICCID          string            `json:"iccid" expr:"iccid" doc:"|the SIM's ICCID"`
	MSISDN         string            `json:"msisdn" expr:"msisdn" doc:"|the phone number"`
	IMSI           string            `json:"imsi" expr:"imsi" doc:"|the subscriber identity"`
	IMEI           string            `json:"imei" expr:"imei" unknown:"" doc:"|the device the SIM is in (GSL only)"`
	Status         string            `json:"status" expr:"status" unknown:"" doc:"|test, inactive, active, suspended or terminated; unknown for a code simwatch does not know (status_code keeps it)"`
	StatusCode     int               `json:"status_code" expr:"status_code" doc:"|the provider's own status code"`
	OperatorStatus int               `json:"operator_status" expr:"operator_status" unknown:"" doc:"|GSL stop reason (-1 normal, 1..7) or LinkCard OsStatus"`
	FlowUsed       float64           `json:"flow_used" expr:"flow_used" unknown:"" doc:"MB|data used in the current billing cycle"`
	FlowLeft       float64           `json:"flow_left" expr:"flow_left" unknown:"" doc:"MB|data left in the current billing cycle (negative in overdraft for pools)"`
	FlowTotal      float64           `json:"flow_total" expr:"flow_total" unknown:"" doc:"MB|the billing cycle's allowance"`
	PoolID         string            `json:"pool_id" expr:"pool_id" doc:"|the pool the card draws on, if any"`
	Plan           string            `json:"plan" expr:"plan" doc:"|the price plan (GSL) or package credential (LinkCard)"`
	ExpireTime     time.Time         `json:"expire_time" expr:"expire_time" unknown:"" doc:"time|when the plan ends"`
	ActDate        time.Time         `json:"act_date" expr:"act_date" unknown:"" doc:"time|when the card was activated"`
	Tags           []string          `json:"tags" expr:"tags" doc:"|the card's tags"`
	Attributes     map[string]string `json:"attributes" expr:"attributes" doc:"|custom attributes (GSL customer_attribute1..6; LinkCard data_type, sim_type, remark)"`
	DeviceStatus   int               `json:"device_status" expr:"device_status" unknown:"" doc:"|GSL device status: 1 registered, 2 rebooted, 3 online, 4 offline"`
	SignalLevel    string            `json:"signal_level" expr:"signal_level" doc:"|signal level, where given: 1 poor, 2 fair, 3 good"`
	NetworkType    string            `json:"network_type" expr:"network_type" doc:"|network type, e.g. 4G"`
	Vendor         string            `json:"vendor,omitempty" expr:"vendor" doc:"|LinkCard carrier: CMCC, CUCC, CTCC or VNO"` // LinkCard: CMCC, CUCC, CTCC, VNO
	APN            string            `json:"apn,omitempty" expr:"apn" doc:"|LinkCard APN name"`
	// Unknown marks the fields the provider left out or gave as null.
	Unknown Unknown `json:"-" expr:"-"`
}

// Pool is one data ("flow") pool. FlowLeft is negative when the pool is in overdraft.
type Pool struct {
	Provider     string    `json:"provider" expr:"provider" doc:"|the configured provider instance"`
	Account      string    `json:"account" expr:"account" doc:"|the provider account id"`
	ID           string    `json:"id" expr:"id" doc:"|the pool id (GSL id; LinkCard PoolId or shared CredentialNo)"`
	Name         string    `json:"name" expr:"name" doc:"|the pool name"`
	Plan         string    `json:"plan" expr:"plan" doc:"|the price plan"`
	FlowTotal    float64   `json:"flow_total" expr:"flow_total" unknown:"" doc:"MB|the pool's allowance this billing cycle"`
	FlowUsed     float64   `json:"flow_used" expr:"flow_used" unknown:"" doc:"MB|data its members used this billing cycle"`
	FlowLeft     float64   `json:"flow_left" expr:"flow_left" unknown:"" doc:"MB|what is left; negative in overdraft"`
	Quantity     int       `json:"quantity" expr:"quantity" unknown:"" doc:"|members"`
	Activated    int       `json:"activated" expr:"activated" unknown:"" doc:"|members in use or suspended"`
	Inactive     int       `json:"inactive" expr:"inactive" unknown:"" doc:"|members not yet activated"`
	Disassembled int       `json:"disassembled" expr:"disassembled" unknown:"" doc:"|members terminated"`
	BillingCycle string    `json:"billing_cycle" expr:"billing_cycle" doc:"|the billing month, YYYY-MM"`
	ExpiredTime  time.Time `json:"expired_time" expr:"expired_time" unknown:"" doc:"time|when the pool's plan ends"`
	// Unknown marks the fields the provider left out or gave as null.
	Unknown Unknown `json:"-" expr:"-"`
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

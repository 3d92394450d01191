package linkcard

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/simwatch/simwatch/internal/fleet"
)

// response is the envelope of every LinkCard answer (seed 002). HTTP errors
// carry Code, Message and RequestId; business errors come as HTTP 200 with
// Success false or a Code other than "200".
type response struct {
	Code         string `json:"Code"`
	Success      *bool  `json:"Success"`
	RequestID    string `json:"RequestId"`
	ErrorMessage string `json:"ErrorMessage"`
	Message      string `json:"Message"`
	Data         *page  `json:"Data"`
}

type page struct {
	PageNo    int       `json:"PageNo"`
	PageSize  int       `json:"PageSize"`
	PageCount int       `json:"PageCount"`
	Total     int       `json:"Total"`
	List      []cardDTO `json:"List"`
}

// cardDTO is ListCardInfo's CardDTO, the fields simwatch uses.
type cardDTO struct {
	Iccid          string   `json:"Iccid"`
	Status         string   `json:"Status"`
	OsStatus       string   `json:"OsStatus"`
	DataType       string   `json:"DataType"`
	CredentialType string   `json:"CredentialType"`
	CredentialNo   string   `json:"CredentialNo"`
	PoolID         string   `json:"PoolId"`
	PeriodRestFlow string   `json:"PeriodRestFlow"`
	PeriodAddFlow  string   `json:"PeriodAddFlow"`
	DataLevel      string   `json:"DataLevel"`
	ExpireTime     string   `json:"ExpireTime"`
	ActiveTime     string   `json:"ActiveTime"`
	Vendor         string   `json:"Vendor"`
	ApnName        string   `json:"ApnName"`
	NetworkType    string   `json:"NetworkType"`
	SimType        string   `json:"SimType"`
	Remark         string   `json:"Remark"`
	Imsi           []string `json:"Imsi"`
	Msisdn         []string `json:"Msisdn"`
	TagList        []struct {
		TagName string `json:"TagName"`
		ID      int64  `json:"Id"`
	} `json:"TagList"`
}

// StatusName maps LinkCard's Status to the normalised status.
func StatusName(code int) string {
	switch code {
	case 10:
		return fleet.StatusTest
	case 20:
		return fleet.StatusInactive
	case 30:
		return fleet.StatusActive
	case 35, 40:
		return fleet.StatusSuspended
	case 50:
		return fleet.StatusTerminated
	}
	return "unknown"
}

// sharedDataTypes are the DataTypes whose cards draw on a shared pool
// identified by their CredentialNo.
var sharedDataTypes = map[string]bool{
	"sameflowcard":             true,
	"directional_sameflowcard": true,
	"unityPayPool":             true,
	"GREcard":                  true,
}

// chinaTime is the zone LinkCard's times are written in.
var chinaTime = time.FixedZone("UTC+8", 8*3600)

const timeLayout = "2006-01-02 15:04:05"

func parseTime(field, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.ParseInLocation(timeLayout, s, chinaTime)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: %q is not yyyy-MM-dd HH:mm:ss", field, s)
	}
	return t.UTC(), nil
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

// poolKey is the pool a card draws on: its PoolId, or for shared data types
// its CredentialNo. Empty means the card has its own allowance.
func (d *cardDTO) poolKey() string {
	if d.PoolID != "" {
		return d.PoolID
	}
	if sharedDataTypes[d.DataType] || sharedDataTypes[d.CredentialType] {
		return d.CredentialNo
	}
	return ""
}

func (d *cardDTO) card(provider string) (fleet.Card, error) {
	if d.Iccid == "" {
		return fleet.Card{}, fmt.Errorf("Iccid missing")
	}
	c := fleet.Card{
		Provider:    provider,
		ID:          d.Iccid,
		ICCID:       d.Iccid,
		MSISDN:      first(d.Msisdn),
		IMSI:        first(d.Imsi),
		PoolID:      d.poolKey(),
		Plan:        d.CredentialNo,
		Vendor:      d.Vendor,
		APN:         d.ApnName,
		NetworkType: d.NetworkType,
	}
	var err error
	if c.StatusCode, err = strconv.Atoi(d.Status); err != nil {
		return c, fmt.Errorf("card %s: Status %q is not a status code", d.Iccid, d.Status)
	}
	c.Status = StatusName(c.StatusCode)
	if d.OsStatus != "" {
		if c.OperatorStatus, err = strconv.Atoi(d.OsStatus); err != nil {
			return c, fmt.Errorf("card %s: OsStatus %q is not a status code", d.Iccid, d.OsStatus)
		}
	}
	for _, f := range []struct {
		name string
		in   string
		out  *float64
	}{{"DataLevel", d.DataLevel, &c.FlowTotal}, {"PeriodAddFlow", d.PeriodAddFlow, &c.FlowUsed}, {"PeriodRestFlow", d.PeriodRestFlow, &c.FlowLeft}} {
		if *f.out, err = ParseFlow(f.in); err != nil {
			return c, fmt.Errorf("card %s: %s: %w", d.Iccid, f.name, err)
		}
	}
	if c.ExpireTime, err = parseTime("ExpireTime", d.ExpireTime); err != nil {
		return c, fmt.Errorf("card %s: %w", d.Iccid, err)
	}
	if c.ActDate, err = parseTime("ActiveTime", d.ActiveTime); err != nil {
		return c, fmt.Errorf("card %s: %w", d.Iccid, err)
	}
	for _, t := range d.TagList {
		if name := strings.TrimSpace(t.TagName); name != "" {
			c.Tags = append(c.Tags, name)
		}
	}
	for k, v := range map[string]string{"data_type": d.DataType, "sim_type": d.SimType, "remark": d.Remark} {
		if v != "" {
			if c.Attributes == nil {
				c.Attributes = map[string]string{}
			}
			c.Attributes[k] = v
		}
	}
	return c, nil
}

// derivePools builds a Pool for every pool key the cards share: totals, usage
// and what is left are summed over the members (LinkCard lists no pools).
// The billing cycle is the month of now in China time.
func derivePools(provider string, cards []fleet.Card, now time.Time) []fleet.Pool {
	index := map[string]int{}
	var pools []fleet.Pool
	for i := range cards {
		c := &cards[i]
		if c.PoolID == "" {
			continue
		}
		j, ok := index[c.PoolID]
		if !ok {
			j = len(pools)
			index[c.PoolID] = j
			pools = append(pools, fleet.Pool{Provider: provider, ID: c.PoolID, Name: c.PoolID, Plan: c.Plan,
				BillingCycle: now.In(chinaTime).Format("2006-01")})
		}
		p := &pools[j]
		p.FlowTotal += c.FlowTotal
		p.FlowUsed += c.FlowUsed
		p.Quantity++
		switch c.Status {
		case fleet.StatusActive, fleet.StatusSuspended:
			p.Activated++
		case fleet.StatusTerminated:
			p.Disassembled++
		default:
			p.Inactive++
		}
		if c.ExpireTime.After(p.ExpiredTime) {
			p.ExpiredTime = c.ExpireTime
		}
	}
	for i := range pools {
		pools[i].FlowTotal = round6(pools[i].FlowTotal)
		pools[i].FlowUsed = round6(pools[i].FlowUsed)
		pools[i].FlowLeft = round6(pools[i].FlowTotal - pools[i].FlowUsed)
	}
	return pools
}

// round6 drops float noise from sums, so an unchanged pool keeps its fingerprint.
func round6(v float64) float64 {
	const k = 1e6
	r := v * k
	if r < 0 {
		return float64(int64(r-0.5)) / k
	}
	return float64(int64(r+0.5)) / k
}

package linkcard

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/simwatch/simwatch/internal/fleet"
	"github.com/simwatch/simwatch/internal/provider"
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

// page is ListCardInfo's Data. Pointers tell a missing key from a value.
type page struct {
	PageNo    int        `json:"PageNo"`
	PageSize  int        `json:"PageSize"`
	PageCount *int       `json:"PageCount"`
	Total     *int       `json:"Total"`
	List      *[]cardDTO `json:"List"`
}

// cardDTO is ListCardInfo's CardDTO, the fields simwatch uses. The fields
// that may be unknown are pointers: nil is left out or null, never 0.
type cardDTO struct {
	Iccid          *string  `json:"Iccid"`
	Status         *string  `json:"Status"`
	OsStatus       *string  `json:"OsStatus"`
	DataType       *string  `json:"DataType"`
	CredentialType *string  `json:"CredentialType"`
	CredentialNo   *string  `json:"CredentialNo"`
	PoolID         *string  `json:"PoolId"`
	PeriodRestFlow *string  `json:"PeriodRestFlow"`
	PeriodAddFlow  *string  `json:"PeriodAddFlow"`
	DataLevel      *string  `json:"DataLevel"`
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

// The Unknown bits the decoder sets.
var (
	cardStatus         = fleet.CardField("status")
	cardOperatorStatus = fleet.CardField("operator_status")
	cardFlowUsed       = fleet.CardField("flow_used")
	cardFlowLeft       = fleet.CardField("flow_left")
	cardFlowTotal      = fleet.CardField("flow_total")

	// Identity and dates: the fleet model lets them be unknown (an IMEI or
	// date left out is not "" or the zero time).
	cardActDate     = provider.UnknownBit(fleet.EntityCard, "act_date")
	cardExpireTime  = provider.UnknownBit(fleet.EntityCard, "expire_time")
	poolExpiredTime = provider.UnknownBit(fleet.EntityPool, "expired_time")

	poolFlowTotal    = fleet.PoolField("flow_total")
	poolFlowUsed     = fleet.PoolField("flow_used")
	poolFlowLeft     = fleet.PoolField("flow_left")
	poolActivated    = fleet.PoolField("activated")
	poolInactive     = fleet.PoolField("inactive")
	poolDisassembled = fleet.PoolField("disassembled")
)

// errMissing is a required key that is missing or null.
func errMissing(key string) error { return fmt.Errorf("%s: missing or null", key) }

// decodeData checks ListCardInfo's Data and decodes its cards. body is the
// whole answer, read again only to tell a null List from a missing one.
func decodeData(name string, resp *response, body []byte) (provider.Page[fleet.Card], error) {
	var out provider.Page[fleet.Card]
	d := resp.Data
	switch {
	case d == nil:
		return out, errMissing("Data")
	case d.Total == nil:
		return out, errMissing("Data.Total")
	case d.PageCount == nil:
		return out, errMissing("Data.PageCount")
	}
	out.Count, out.PageCount, out.HasPageCount = int64(*d.Total), *d.PageCount, true
	if d.List == nil {
		// null is an empty page (short, if Total says more); missing is no page.
		var m struct {
			Data map[string]json.RawMessage `json:"Data"`
		}
		if err := json.Unmarshal(body, &m); err != nil {
			return out, err
		}
		for k := range m.Data {
			if strings.EqualFold(k, "List") {
				return out, nil
			}
		}
		return out, fmt.Errorf("Data.List: missing")
	}
	list := *d.List
	out.Items = make([]fleet.Card, len(list))
	for i := range list {
		if err := list[i].card(name, &out.Items[i]); err != nil {
			out.Items = nil
			if id := list[i].Iccid; id != nil && *id != "" {
				return out, fmt.Errorf("List[%d] (Iccid %s): %w", i, *id, err)
			}
			return out, fmt.Errorf("List[%d]: %w", i, err)
		}
	}
	return out, nil
}

// StatusName maps LinkCard's Status to the normalised status, or "" for a
// code the DESIGN table does not list (the card's status is then unknown).
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
	return ""
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
// its CredentialNo. Empty means the card has its own allowance. Which pool
// a card draws on decides its pool's figures, so a card whose membership
// the page does not tell (no PoolId, and no DataType or CredentialType, or
// a shared type without a CredentialNo) fails the page rather than leave
// its pool.
func (d *cardDTO) poolKey() (string, error) {
	if id := strings.TrimSpace(str(d.PoolID)); id != "" {
		return id, nil
	}
	if d.DataType == nil && d.CredentialType == nil {
		return "", errors.New("DataType: missing or null, and no PoolId: the card's pool cannot be told")
	}
	if sharedDataTypes[str(d.DataType)] || sharedDataTypes[str(d.CredentialType)] {
		if strings.TrimSpace(str(d.CredentialNo)) == "" {
			return "", errors.New("CredentialNo: missing or empty on a shared data type: the card's pool cannot be told")
		}
		return *d.CredentialNo, nil
	}
	return "", nil
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// code parses a status code; missing, null or "" is not given.
func code(field string, p *string) (v int, given bool, err error) {
	if p == nil || *p == "" {
		return 0, false, nil
	}
	v, err = strconv.Atoi(*p)
	if err != nil {
		return 0, true, fmt.Errorf("%s: %q is not a status code", field, *p)
	}
	return v, true, nil
}

func (d *cardDTO) card(name string, c *fleet.Card) error {
	if d.Iccid == nil || *d.Iccid == "" {
		return errMissing("Iccid")
	}
	// One spelling per card, so that " 8986…" and "8986…f" are the same
	// card in the duplicate check and from one listing to the next.
	iccid := strings.ToUpper(strings.TrimSpace(*d.Iccid))
	if iccid == "" {
		return fmt.Errorf("Iccid: %q is blank", *d.Iccid)
	}
	*c = fleet.Card{
		Provider:    name,
		ID:          iccid,
		ICCID:       iccid,
		MSISDN:      first(d.Msisdn),
		IMSI:        first(d.Imsi),
		Plan:        str(d.CredentialNo),
		Vendor:      d.Vendor,
		APN:         d.ApnName,
		NetworkType: d.NetworkType,
	}
	var err error
	if c.PoolID, err = d.poolKey(); err != nil {
		return err
	}
	var given bool
	if c.StatusCode, given, err = code("Status", d.Status); err != nil {
		return err
	} else if !given {
		return errMissing("Status")
	}
	if c.Status = StatusName(c.StatusCode); c.Status == "" {
		c.Unknown |= cardStatus
	}
	if c.OperatorStatus, given, err = code("OsStatus", d.OsStatus); err != nil {
		return err
	} else if !given {
		c.Unknown |= cardOperatorStatus
	}
	for _, f := range [...]struct {
		name string
		in   *string
		out  *float64
		bit  fleet.Unknown
	}{{"DataLevel", d.DataLevel, &c.FlowTotal, cardFlowTotal}, {"PeriodAddFlow", d.PeriodAddFlow, &c.FlowUsed, cardFlowUsed}, {"PeriodRestFlow", d.PeriodRestFlow, &c.FlowLeft, cardFlowLeft}} {
		if f.in == nil || *f.in == "" {
			c.Unknown |= f.bit
			continue
		}
		if *f.out, err = ParseFlow(*f.in); err != nil {
			return fmt.Errorf("%s: %w", f.name, err)
		}
	}
	if c.ExpireTime, err = parseTime("ExpireTime", d.ExpireTime); err != nil {
		return err
	} else if d.ExpireTime == "" {
		c.Unknown |= cardExpireTime
	}
	if c.ActDate, err = parseTime("ActiveTime", d.ActiveTime); err != nil {
		return err
	} else if d.ActiveTime == "" {
		c.Unknown |= cardActDate
	}
	for _, t := range d.TagList {
		if name := strings.TrimSpace(t.TagName); name != "" {
			c.Tags = append(c.Tags, name)
		}
	}
	for _, a := range [...]struct{ k, v string }{{"data_type", str(d.DataType)}, {"sim_type", d.SimType}, {"remark", d.Remark}} {
		if a.v != "" {
			if c.Attributes == nil {
				c.Attributes = map[string]string{}
			}
			c.Attributes[a.k] = a.v
		}
	}
	return c.Validate() // last: every field, dates included, is set
}

// derivePools builds a Pool for every pool key the cards share: totals, usage
// and what is left are summed over the members (LinkCard lists no pools).
// A sum is unknown when any member's figure is, and the member counts by
// status are unknown when any member's status is. The billing cycle is the
// month of now in China time.
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
		if c.Unknown.Has(cardFlowTotal) {
			p.Unknown |= poolFlowTotal
		}
		if c.Unknown.Has(cardFlowUsed) {
			p.Unknown |= poolFlowUsed
		}
		if c.Unknown.Has(cardStatus) {
			p.Unknown |= poolActivated | poolInactive | poolDisassembled
		}
		p.FlowTotal += c.FlowTotal
		p.FlowUsed += c.FlowUsed
		p.Quantity++
		switch c.Status {
		case fleet.StatusActive, fleet.StatusSuspended:
			p.Activated++
		case fleet.StatusTerminated:
			p.Disassembled++
		case "":
		default:
			p.Inactive++
		}
		if c.Unknown.Has(cardExpireTime) {
			p.Unknown |= poolExpiredTime
		}
		if c.ExpireTime.After(p.ExpiredTime) {
			p.ExpiredTime = c.ExpireTime
		}
	}
	for i := range pools {
		p := &pools[i]
		p.FlowTotal = round6(p.FlowTotal)
		p.FlowUsed = round6(p.FlowUsed)
		p.FlowLeft = round6(p.FlowTotal - p.FlowUsed)
		if p.Unknown.Has(poolFlowTotal | poolFlowUsed) {
			p.Unknown |= poolFlowLeft
		}
		if p.Unknown.Has(poolExpiredTime) {
			p.ExpiredTime = time.Time{}
		}
		// An unknown figure holds 0 as a placeholder, never a partial sum.
		for _, f := range [...]struct {
			bit fleet.Unknown
			v   *float64
		}{{poolFlowTotal, &p.FlowTotal}, {poolFlowUsed, &p.FlowUsed}, {poolFlowLeft, &p.FlowLeft}} {
			if p.Unknown.Has(f.bit) {
				*f.v = 0
			}
		}
		for _, f := range [...]struct {
			bit fleet.Unknown
			v   *int
		}{{poolActivated, &p.Activated}, {poolInactive, &p.Inactive}, {poolDisassembled, &p.Disassembled}} {
			if p.Unknown.Has(f.bit) {
				*f.v = 0
			}
		}
	}
	return pools
}

// round6 drops float noise from sums, so an unchanged pool keeps its
// fingerprint. Figures too large for a micro-MB fraction stay as they are.
func round6(v float64) float64 {
	const k = 1e6
	if r := v * k; math.Abs(r) < 1<<53 {
		return math.Round(r) / k
	}
	return v
}

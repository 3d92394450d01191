package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/simwatch/simwatch/internal/provider/gsl"
)

// errSDKRejected is the simulator refusing the official SDK's signature.
type errSDKRejected struct{ msg string }

func (e *errSDKRejected) Error() string { return "the simulator rejected the SDK's request: " + e.msg }

// runSDK runs the bench/sdk binary once: the official SDK listing every page
// in turn. It returns the listing's time as the binary measured it (process
// start and exit excluded) and the cards it saw.
func runSDK(ctx context.Context, bin, endpoint string) (time.Duration, int, error) {
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, "--endpoint", endpoint, "--ak", benchAK, "--sk", benchSK)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(errb.String())
		if strings.Contains(msg, "APIGW.0301") || strings.Contains(msg, "401") {
			return 0, 0, &errSDKRejected{msg: msg}
		}
		return 0, 0, fmt.Errorf("bench: %s: %w: %s", bin, err, msg)
	}
	var r struct {
		ElapsedMS float64 `json:"elapsed_ms"`
		Cards     int     `json:"cards"`
	}
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		return 0, 0, fmt.Errorf("bench: %s printed %q: %w", bin, out.String(), err)
	}
	return time.Duration(r.ElapsedMS * float64(time.Millisecond)), r.Cards, nil
}

// sdkCard mirrors the official SDK's model.SimDeviceVo: every field a
// pointer, as the SDK decodes it. Times stay strings (the SDK parses them
// with several layouts in turn), which only makes this baseline cheaper.
type sdkCard struct {
	SimCardID           *int64   `json:"sim_card_id,omitempty"`
	AccountID           *string  `json:"account_id,omitempty"`
	CID                 *string  `json:"cid,omitempty"`
	SimPoolID           *int64   `json:"sim_pool_id,omitempty"`
	IMEI                *string  `json:"imei,omitempty"`
	SimStatus           *int32   `json:"sim_status,omitempty"`
	DeviceStatus        *int32   `json:"device_status,omitempty"`
	DeviceModel         *string  `json:"device_model,omitempty"`
	ActDate             *string  `json:"act_date,omitempty"`
	DeviceStatusDate    *string  `json:"device_status_date,omitempty"`
	NodeID              *string  `json:"node_id,omitempty"`
	ICCID               *string  `json:"iccid,omitempty"`
	NetworkType         *string  `json:"network_type,omitempty"`
	DBM                 *string  `json:"dbm,omitempty"`
	SignalLevel         *string  `json:"signal_level,omitempty"`
	SimType             *int32   `json:"sim_type,omitempty"`
	TagNames            *string  `json:"tag_names,omitempty"`
	OrderID             *int64   `json:"order_id,omitempty"`
	ExpireTime          *string  `json:"expire_time,omitempty"`
	PricePlanName       *string  `json:"price_plan_name,omitempty"`
	SimPricePlanID      *int64   `json:"sim_price_plan_id,omitempty"`
	FlowLeft            *float64 `json:"flow_left,omitempty"`
	FlowUsed            *float64 `json:"flow_used,omitempty"`
	OperatorStatus      *int32   `json:"operator_status,omitempty"`
	MSISDN              *string  `json:"msisdn,omitempty"`
	IMSI                *string  `json:"imsi,omitempty"`
	CustomerAttribute1  *string  `json:"customer_attribute1,omitempty"`
	CustomerAttribute2  *string  `json:"customer_attribute2,omitempty"`
	CustomerAttribute3  *string  `json:"customer_attribute3,omitempty"`
	CustomerAttribute4  *string  `json:"customer_attribute4,omitempty"`
	CustomerAttribute5  *string  `json:"customer_attribute5,omitempty"`
	CustomerAttribute6  *string  `json:"customer_attribute6,omitempty"`
	RealNamed           *bool    `json:"real_named,omitempty"`
	CutNetFlag          *bool    `json:"cut_net_flag,omitempty"`
	ExceedCutNetFlag    *bool    `json:"exceed_cut_net_flag,omitempty"`
	ExceedCutNetQuota   *int32   `json:"exceed_cut_net_quota,omitempty"`
	ImeiBindRemainTimes *int32   `json:"imei_bind_remain_times,omitempty"`
	SpeedValue          *int32   `json:"speed_value,omitempty"`
}

// strictListing is the baseline at least as strict as the SDK: every page
// in turn (never two at once), each request signed as the SDK signs, the
// body decoded with encoding/json into SDK-shaped structs, and nothing else.
// It returns the time and the cards seen.
func strictListing(ctx context.Context, endpoint string, keyed bool) (time.Duration, int, error) {
	client := &http.Client{Timeout: time.Minute}
	start := time.Now()
	cards := 0
	for page := 1; ; page++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/v1/sim-cards?limit=500&offset=%d", endpoint, page), nil)
		if err != nil {
			return 0, 0, err
		}
		if keyed {
			gsl.Sign(req, nil, benchAK, benchSK, time.Now())
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, 0, fmt.Errorf("bench: strict listing: %w", err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return 0, 0, fmt.Errorf("bench: strict listing: %w", err)
		}
		if resp.StatusCode != http.StatusOK {
			return 0, 0, fmt.Errorf("bench: strict listing: page %d: %s: %s", page, resp.Status, bytes.TrimSpace(body))
		}
		var out struct {
			Limit    *int64     `json:"limit,omitempty"`
			Offset   *int64     `json:"offset,omitempty"`
			Count    *int64     `json:"count,omitempty"`
			SimCards *[]sdkCard `json:"sim_cards,omitempty"`
		}
		if err := json.Unmarshal(body, &out); err != nil {
			return 0, 0, fmt.Errorf("bench: strict listing: page %d: %w", page, err)
		}
		n := 0
		if out.SimCards != nil {
			n = len(*out.SimCards)
		}
		cards += n
		if n == 0 || out.Count == nil || int64(cards) >= *out.Count {
			return time.Since(start), cards, nil
		}
	}
}

// median of a non-empty list of durations.
func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

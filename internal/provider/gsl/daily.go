package gsl

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/simwatch/simwatch/internal/fleet"
	"github.com/simwatch/simwatch/internal/provider"
)

// DailyFlowBatch is how many cards one batch-daily-flow request names.
const DailyFlowBatch = 100

// DailyQuery selects the days of a batch-daily-flow request: a whole month
// ("202408") or one date ("20240821"), in China time.
type DailyQuery struct {
	Month string
	Date  string
}

// DailyFlow fetches the cards' daily usage (POST /v1/sim-cards/batch-daily-flow)
// in batches of DailyFlowBatch, concurrently under the rate limit. It returns
// each card id's usage by day; a card the answer leaves out has no entry.
func (c *Client) DailyFlow(ctx context.Context, q DailyQuery, cardIDs []string) (map[string][]fleet.DayUsage, error) {
	if (q.Month == "") == (q.Date == "") {
		return nil, fmt.Errorf("gsl: daily flow: give a month or a date")
	}
	batches := (len(cardIDs) + DailyFlowBatch - 1) / DailyFlowBatch
	if batches == 0 {
		return map[string][]fleet.DayUsage{}, nil
	}
	type row struct {
		id    string
		usage fleet.DayUsage
	}
	fetch := func(ctx context.Context, batch int) ([]row, error) {
		ids := cardIDs[(batch-1)*DailyFlowBatch : min(batch*DailyFlowBatch, len(cardIDs))]
		body := map[string]any{}
		nums := make([]int64, len(ids))
		for i, id := range ids {
			n, err := strconv.ParseInt(id, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("gsl: daily flow: card id %q is not a GSL sim_card_id", id)
			}
			nums[i] = n
		}
		body["sim_card_ids"] = nums
		if q.Month != "" {
			body["month"] = q.Month
		} else {
			d, err := strconv.Atoi(q.Date)
			if err != nil {
				return nil, fmt.Errorf("gsl: daily flow: bad date %q", q.Date)
			}
			body["date"] = d
		}
		data, _ := json.Marshal(body)
		op := fmt.Sprintf("POST /v1/sim-cards/batch-daily-flow batch %d", batch)
		var rows []row
		err := c.do(ctx, op, http.MethodPost, "/v1/sim-cards/batch-daily-flow", nil, data, func(b []byte, requestID string) error {
			var days []struct {
				Date    string `json:"date"`
				SimFlow []struct {
					Flow      float64 `json:"flow"`
					SimCardID int64   `json:"sim_card_id"`
				} `json:"sim_flow"`
			}
			if err := json.Unmarshal(b, &days); err != nil {
				return &provider.PageError{Provider: "gsl", Op: op, RequestID: requestID, Err: err}
			}
			rows = rows[:0]
			for _, d := range days {
				t, err := time.Parse("20060102", d.Date)
				if err != nil {
					return &provider.PageError{Provider: "gsl", Op: op, RequestID: requestID, Err: fmt.Errorf("date %q", d.Date)}
				}
				day := int32(t.Unix() / 86400)
				for _, f := range d.SimFlow {
					rows = append(rows, row{id: strconv.FormatInt(f.SimCardID, 10), usage: fleet.DayUsage{Day: day, MB: f.Flow}})
				}
			}
			return nil
		})
		return rows, err
	}
	first, err := fetch(ctx, 1)
	if err != nil {
		return nil, err
	}
	rows, err := provider.Pages(ctx, c.o.Concurrency, batches, first, fetch)
	if err != nil {
		return nil, err
	}
	out := make(map[string][]fleet.DayUsage, len(cardIDs))
	for _, r := range rows {
		out[r.id] = append(out[r.id], r.usage)
	}
	return out, nil
}

// Card operations.
const (
	OpStop   = "stop"
	OpResume = "resume"
)

// CardAction stops or resumes a card (POST /v1/sim-cards/{id}/stop or
// .../reset) and returns GSL's work order id. It is not retried here: the
// caller decides, since GSL refuses a repeat within 5 minutes
// (GSL.00016016) and while a work order is open (GSL.00016010).
func (c *Client) CardAction(ctx context.Context, op, cardID, iccid string) (int64, error) {
	path, sw := "/v1/sim-cards/"+cardID+"/stop", 1
	if op == OpResume {
		path, sw = "/v1/sim-cards/"+cardID+"/reset", 2
	} else if op != OpStop {
		return 0, fmt.Errorf("gsl: unknown card operation %q", op)
	}
	body, _ := json.Marshal(map[string]any{"down_up_switch": sw, "iccid": iccid})
	name := "POST " + path
	var wo int64
	err := c.once.Do(ctx, name, func(ctx context.Context) error {
		return c.attempt(ctx, name, http.MethodPost, path, nil, body, func(b []byte, requestID string) error {
			var r struct {
				WorkOrderID int64 `json:"work_order_id"`
			}
			if err := json.Unmarshal(b, &r); err != nil || r.WorkOrderID == 0 {
				return &provider.PageError{Provider: "gsl", Op: name, RequestID: requestID, Err: fmt.Errorf("answer has no work_order_id: %s", b)}
			}
			wo = r.WorkOrderID
			return nil
		})
	})
	return wo, err
}

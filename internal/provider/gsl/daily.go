package gsl

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
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
// each card id's usage by day, in the order the answer gives the days. A
// card×day the answer leaves out has no entry: the days present are the days
// the provider had data for. Every row is checked (decodeDaily); an answer
// that fails a check fails the fetch with a PageError naming batch, date,
// card and field.
func (c *Client) DailyFlow(ctx context.Context, q DailyQuery, cardIDs []string) (map[string][]fleet.DayUsage, error) {
	switch {
	case (q.Month == "") == (q.Date == ""):
		return nil, fmt.Errorf("gsl: daily flow: give a month or a date")
	case q.Month != "" && !isDate(q.Month, "200601"):
		return nil, fmt.Errorf("gsl: daily flow: bad month %q (want YYYYMM)", q.Month)
	case q.Date != "" && !isDate(q.Date, "20060102"):
		return nil, fmt.Errorf("gsl: daily flow: bad date %q (want YYYYMMDD)", q.Date)
	}
	ids := make([]int64, 0, len(cardIDs))
	asked := make(map[int64]struct{}, len(cardIDs))
	for _, id := range cardIDs {
		n, err := strconv.ParseInt(id, 10, 64)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("gsl: daily flow: card id %q is not a GSL sim_card_id", id)
		}
		if _, dup := asked[n]; !dup {
			asked[n] = struct{}{}
			ids = append(ids, n)
		}
	}
	batches := (len(ids) + DailyFlowBatch - 1) / DailyFlowBatch
	if batches == 0 {
		return map[string][]fleet.DayUsage{}, nil
	}
	fetch := func(ctx context.Context, batch int) ([]dailyBatch, error) {
		nums := ids[(batch-1)*DailyFlowBatch : min(batch*DailyFlowBatch, len(ids))]
		body := map[string]any{"sim_card_ids": nums}
		if q.Month != "" {
			body["month"] = q.Month
		} else {
			d, _ := strconv.Atoi(q.Date)
			body["date"] = d
		}
		data, _ := json.Marshal(body)
		op := fmt.Sprintf("POST /v1/sim-cards/batch-daily-flow batch %d", batch)
		res := dailyBatch{batch: batch}
		err := c.do(ctx, op, http.MethodPost, "/v1/sim-cards/batch-daily-flow", nil, data, func(b []byte, requestID string) error {
			var err error
			if res.rows, res.days, err = decodeDaily(b, q, nums); err != nil {
				return &provider.PageError{Provider: "gsl", Op: op, RequestID: requestID, Err: err}
			}
			return nil
		})
		return []dailyBatch{res}, err
	}
	first, err := fetch(ctx, 1)
	if err != nil {
		return nil, err
	}
	results, err := provider.Pages(ctx, c.o.Concurrency, batches, first, fetch)
	if err != nil {
		return nil, err
	}
	// GSL publishes a day at some moment; when it falls while the batches
	// are asked, the early batches lack the day the later ones have. Ask
	// the batches that lack a day another had once more, so that a day is
	// in the result for every card or (still unpublished) for none.
	if lagging := laggingBatches(results); len(lagging) > 0 {
		c.o.Logger.Warn("daily flow: a day appeared while the batches were asked; asking the earlier batches again",
			"provider", c.o.Name, "batches", len(lagging))
		again := func(ctx context.Context, k int) ([]dailyBatch, error) { return fetch(ctx, results[lagging[k-1]].batch) }
		first, err := again(ctx, 1)
		if err != nil {
			return nil, err
		}
		redone, err := provider.Pages(ctx, c.o.Concurrency, len(lagging), first, again)
		if err != nil {
			return nil, err
		}
		for k, i := range lagging {
			results[i] = redone[k]
		}
	}
	out := make(map[string][]fleet.DayUsage, len(ids))
	for _, b := range results {
		for _, r := range b.rows {
			id := strconv.FormatInt(r.id, 10)
			out[id] = append(out[id], r.usage)
		}
	}
	return out, nil
}

// dailyBatch is one batch's answer: its rows and the days it had.
type dailyBatch struct {
	batch int
	rows  []dailyRow
	days  []int32 // distinct
}

// laggingBatches lists the indexes of the batches that lack a day another
// batch had.
func laggingBatches(results []dailyBatch) []int {
	all := map[int32]struct{}{}
	for _, b := range results {
		for _, d := range b.days {
			all[d] = struct{}{}
		}
	}
	var lagging []int
	for i, b := range results {
		if len(b.days) < len(all) {
			lagging = append(lagging, i)
		}
	}
	return lagging
}

func isDate(s, layout string) bool {
	_, err := time.Parse(layout, s)
	return err == nil && len(s) == len(layout)
}

// dailyRow is one card's usage on one day.
type dailyRow struct {
	id    int64
	usage fleet.DayUsage
}

// dailyAnswer is the answer of batch-daily-flow (seed 001). Pointers tell a
// missing key from a value.
type dailyAnswer []dailyDay

type dailyDay struct {
	Date    *string      `json:"date"`
	SimFlow *[]dailyFlow `json:"sim_flow"`
}

type dailyFlow struct {
	Flow      *float64 `json:"flow"`
	SimCardID *int64   `json:"sim_card_id"`
}

// decodeDaily decodes and checks one batch's answer: every day a date
// YYYYMMDD within the query's month (or the query's date), every row a card
// of this batch with a flow in [0, fleet.MaxDailyMB]. A card×day given twice
// is kept once if the flows agree and is an error if they differ.
func decodeDaily(body []byte, q DailyQuery, batch []int64) (rows []dailyRow, had []int32, err error) {
	days, err := parseDaily(body)
	if err != nil {
		return nil, nil, err
	}
	if days == nil {
		return nil, nil, fmt.Errorf("answer is null, want a list of days")
	}
	asked := make(map[int64]struct{}, len(batch))
	for _, id := range batch {
		asked[id] = struct{}{}
	}
	type key struct {
		id  int64
		day int32
	}
	seen := map[key]float64{}
	for i, d := range days {
		if d.Date == nil {
			return nil, nil, fmt.Errorf("days[%d]: date: missing or null", i)
		}
		date := *d.Date
		t, err := time.Parse("20060102", date)
		if err != nil || len(date) != 8 {
			return nil, nil, fmt.Errorf("days[%d]: date: %q is not YYYYMMDD", i, date)
		}
		if (q.Month != "" && date[:6] != q.Month) || (q.Date != "" && date != q.Date) {
			return nil, nil, fmt.Errorf("date %s: not in the requested %s", date, q.Month+q.Date)
		}
		if d.SimFlow == nil {
			return nil, nil, fmt.Errorf("date %s: sim_flow: missing or null", date)
		}
		day := int32(t.Unix() / 86400)
		if !slices.Contains(had, day) {
			had = append(had, day)
		}
		for j, f := range *d.SimFlow {
			if f.SimCardID == nil {
				return nil, nil, fmt.Errorf("date %s: sim_flow[%d]: sim_card_id: missing or null", date, j)
			}
			id := *f.SimCardID
			if _, ok := asked[id]; !ok {
				return nil, nil, fmt.Errorf("date %s: sim_flow[%d] (sim_card_id %d): sim_card_id: not asked for in this batch", date, j, id)
			}
			if f.Flow == nil {
				return nil, nil, fmt.Errorf("date %s: sim_flow[%d] (sim_card_id %d): flow: missing or null", date, j, id)
			}
			if err := fleet.CheckMB("flow", *f.Flow, fleet.MaxDailyMB, false); err != nil {
				return nil, nil, fmt.Errorf("date %s: sim_flow[%d] (sim_card_id %d): %w", date, j, id, err)
			}
			k := key{id, day}
			if prev, dup := seen[k]; dup {
				if prev != *f.Flow {
					return nil, nil, fmt.Errorf("date %s: sim_flow[%d] (sim_card_id %d): flow: given twice, %g and %g MB", date, j, id, prev, *f.Flow)
				}
				continue
			}
			seen[k] = *f.Flow
			rows = append(rows, dailyRow{id: id, usage: fleet.DayUsage{Day: day, MB: *f.Flow}})
		}
	}
	return rows, had, nil
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

package sim

import (
	"encoding/json"
	"math"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/simwatch/simwatch/internal/provider/gsl"
)

// MaxDailyFlowIDs is how many cards one batch-daily-flow request may name.
const MaxDailyFlowIDs = 100

// The simulator's "now" for usage is the start of the current simulated day:
// GSL's flow data is as of yesterday 24:00.
func (f *Fleet) today() time.Time { return f.start.AddDate(0, 0, f.day) }

// published is the first day the daily-flow API has no figures for: the
// current day, or DailyLag days earlier.
func (f *Fleet) published() time.Time { return f.today().AddDate(0, 0, -f.lag) }

// dailyUsage is what the card used on day (0 for days it was idle, days not
// yet over, and days before its billing data begins: before the start for a
// calm fleet, before the day it was added for an added card).
func (f *Fleet) dailyUsage(c *card, day time.Time) float64 {
	if !day.Before(f.today()) {
		return 0
	}
	d := int32(math.Floor(day.Sub(f.start).Hours() / 24))
	if (f.calm && d < 0) || (c.added && d < c.born) {
		return 0
	}
	if d >= 0 && slices.Contains(c.idle, d) {
		return 0
	}
	return c.usageOn(day)
}

type simFlow struct {
	Flow      float64 `json:"flow"`
	ICCID     string  `json:"iccid"`
	SimCardID int64   `json:"sim_card_id"`
}

type dayFlow struct {
	Date    string    `json:"date"`
	SimFlow []simFlow `json:"sim_flow"`
}

// batchDailyFlow serves POST /v1/sim-cards/batch-daily-flow: by month
// ("202408") or by date (20240821), for sim_card_ids or iccids.
func (s *Server) batchDailyFlow(w http.ResponseWriter, r *http.Request, _ pageReq) {
	var req struct {
		Month      string   `json:"month"`
		Date       int      `json:"date"`
		SimCardIDs []int64  `json:"sim_card_ids"`
		ICCIDs     []string `json:"iccids"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil ||
		(req.Month == "") == (req.Date == 0) ||
		len(req.SimCardIDs)+len(req.ICCIDs) == 0 || len(req.SimCardIDs)+len(req.ICCIDs) > MaxDailyFlowIDs {
		gslError(w, http.StatusBadRequest, gsl.CodeParamInvalid, "参数异常")
		return
	}
	var days []time.Time
	if req.Month != "" {
		m, err := time.Parse("200601", req.Month)
		if err != nil {
			gslError(w, http.StatusBadRequest, gsl.CodeParamInvalid, "参数异常")
			return
		}
		for d := m; d.Month() == m.Month(); d = d.AddDate(0, 0, 1) {
			days = append(days, d)
		}
	} else {
		d, err := time.Parse("20060102", strconv.Itoa(req.Date))
		if err != nil {
			gslError(w, http.StatusBadRequest, gsl.CodeParamInvalid, "参数异常")
			return
		}
		days = []time.Time{d}
	}
	f := s.o.Fleet
	f.mu.RLock()
	defer f.mu.RUnlock()
	var cards []*card
	for _, id := range req.SimCardIDs {
		if c := f.byID(id); c != nil {
			cards = append(cards, c)
		}
	}
	for _, iccid := range req.ICCIDs {
		if c := f.byICC[iccid]; c != nil {
			cards = append(cards, c)
		}
	}
	out := []dayFlow{}
	for _, d := range days {
		if !d.Before(f.published()) {
			break // not over yet, or not yet published: no data
		}
		df := dayFlow{Date: d.Format("20060102"), SimFlow: []simFlow{}}
		for _, c := range cards {
			df.SimFlow = append(df.SimFlow, simFlow{Flow: f.dailyUsage(c, d), ICCID: c.ICCID, SimCardID: c.ID})
		}
		out = append(out, df)
	}
	writeJSON(w, http.StatusOK, out)
}

func (f *Fleet) byID(id int64) *card {
	i := int(id - 4900000000001)
	if i >= 0 && i < len(f.cards) && f.cards[i].ID == id {
		return f.cards[i]
	}
	for _, c := range f.cards {
		if c.ID == id {
			return c
		}
	}
	return nil
}

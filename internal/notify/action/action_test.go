package action

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/event"
	"github.com/simwatch/simwatch/internal/provider/gsl"
	"github.com/simwatch/simwatch/internal/sim"
	"github.com/simwatch/simwatch/internal/store"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type rig struct {
	sim    *sim.Server
	client *gsl.Client
	store  *store.Store
	clock  *clock
	iccids []string
}

func newRig(t *testing.T) *rig {
	clk := &clock{now: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)}
	s := sim.NewServer(sim.Options{Fleet: sim.NewFleet(sim.FleetOptions{Cards: 20, Seed: 1, Calm: true}), Now: clk.Now, WorkOrderDelay: time.Minute})
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	c, err := gsl.New(gsl.Options{Name: "hw", Endpoint: ts.URL, Token: "t", Rate: 1000})
	require.NoError(t, err)
	st, err := store.Open(filepath.Join(t.TempDir(), "s.db"))
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	return &rig{sim: s, client: c, store: st, clock: clk, iccids: s.Fleet().CardICCIDs()}
}

func (r *rig) notifier(t *testing.T, mut func(*Options)) *Notifier {
	o := Options{Name: "stopper", Provider: "hw", Operation: gsl.OpStop, Rules: []string{"sim_swap"}, AnnounceTo: []string{"ops"},
		Operator: r.client, Journal: r.store, Now: r.clock.Now}
	if mut != nil {
		mut(&o)
	}
	n, err := New(o)
	require.NoError(t, err)
	return n
}

func swap(i int, iccid string) event.Event {
	id := 4900000000001 + int64(i)
	return event.Event{ID: "swap-" + iccid, Kind: event.KindTransition, Rule: "sim_swap", Severity: "critical", Provider: "hw",
		Entity: "card", EntityID: itoa(id), ICCID: iccid}
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

func (r *rig) announcements(t *testing.T) []string {
	out, err := r.store.Outbox(100)
	require.NoError(t, err)
	var s []string
	for _, e := range out {
		require.Equal(t, event.KindAction, e.Event.Kind)
		require.Equal(t, []string{"ops"}, e.Event.Notify)
		s = append(s, e.Event.Summary)
	}
	return s
}

func (r *rig) cardStatus(t *testing.T, i int) string {
	snap, err := r.client.Fetch(context.Background())
	require.NoError(t, err)
	return snap.Cards[i].Status
}

func TestDryRunRecordsAndActsNot(t *testing.T) {
	r := newRig(t)
	n := r.notifier(t, func(o *Options) { o.DryRun = true })
	retry, err := n.Notify(context.Background(), swap(0, r.iccids[0]))
	require.NoError(t, err)
	require.False(t, retry)
	require.Zero(t, r.sim.Stats().Actions)
	require.Equal(t, []string{"dry run: card " + r.iccids[0] + " would be stopped by rule sim_swap"}, r.announcements(t))
	rec, ok, err := r.store.Action("stopper", "swap-"+r.iccids[0])
	require.NoError(t, err)
	require.True(t, ok)
	require.True(t, rec.DryRun)
}

func TestLiveStopOnceWithWorkOrder(t *testing.T) {
	r := newRig(t)
	n := r.notifier(t, nil)
	e := swap(1, r.iccids[1])
	_, err := n.Notify(context.Background(), e)
	require.NoError(t, err)
	_, err = n.Notify(context.Background(), e) // redelivered
	require.NoError(t, err)
	require.Equal(t, 1, r.sim.Stats().Actions, "a redelivered event never stops a card twice")
	ann := r.announcements(t)
	require.Len(t, ann, 1)
	require.Regexp(t, `^card `+r.iccids[1]+` stopped by rule sim_swap, work order \d+$`, ann[0])
	rec, _, err := r.store.Action("stopper", e.ID)
	require.NoError(t, err)
	require.NotZero(t, rec.WorkOrderID)

	require.Equal(t, "active", r.cardStatus(t, 1), "the work order takes a while")
	r.clock.Add(2 * time.Minute)
	require.Equal(t, "suspended", r.cardStatus(t, 1))
}

func TestOnlyListedRulesAct(t *testing.T) {
	r := newRig(t)
	n := r.notifier(t, nil)
	e := swap(2, r.iccids[2])
	e.Rule = "card_low_flow"
	resolved := swap(3, r.iccids[3])
	resolved.Kind = event.KindResolved
	_, err := n.Notify(context.Background(), e, resolved)
	require.NoError(t, err)
	require.Zero(t, r.sim.Stats().Actions)
}

func TestHourlyCapDeadLettersTheExcess(t *testing.T) {
	r := newRig(t)
	n := r.notifier(t, func(o *Options) { o.MaxPerHour = 2 })
	for i := range 2 {
		_, err := n.Notify(context.Background(), swap(i, r.iccids[i]))
		require.NoError(t, err)
	}
	retry, err := n.Notify(context.Background(), swap(2, r.iccids[2]))
	require.EqualError(t, err, "action: card "+r.iccids[2]+" was not stopped: cap of 2 actions per hour reached")
	require.False(t, retry, "the excess goes to the dead letters")
	require.Equal(t, 2, r.sim.Stats().Actions)
	r.clock.Add(61 * time.Minute)
	_, err = n.Notify(context.Background(), swap(2, r.iccids[2]))
	require.NoError(t, err, "an hour later, there is room again")
}

func TestOperatorSaysWait(t *testing.T) {
	r := newRig(t)
	stop := r.notifier(t, nil)
	resume := r.notifier(t, func(o *Options) { o.Name = "resumer"; o.Operation = gsl.OpResume })
	_, err := stop.Notify(context.Background(), swap(4, r.iccids[4]))
	require.NoError(t, err)

	// The stop's work order is still open: GSL.00016010, retried later.
	retry, err := resume.Notify(context.Background(), swap(4, r.iccids[4]))
	require.True(t, retry)
	require.ErrorContains(t, err, gsl.CodeWorkOrderOpen)
	var ae *Error
	require.ErrorAs(t, err, &ae)
	require.Equal(t, 5*time.Minute, ae.RetryAfter())

	// The order is done, but it is within 5 minutes: GSL.00016016, retried later.
	r.clock.Add(2 * time.Minute)
	retry, err = resume.Notify(context.Background(), swap(4, r.iccids[4]))
	require.True(t, retry)
	require.ErrorContains(t, err, gsl.CodeNoRepeatIn5m)

	r.clock.Add(5 * time.Minute)
	_, err = resume.Notify(context.Background(), swap(4, r.iccids[4]))
	require.NoError(t, err)
	require.Equal(t, 2, r.sim.Stats().Actions)
}

func TestStartedButUnansweredIsNotRepeated(t *testing.T) {
	r := newRig(t)
	n := r.notifier(t, nil)
	e := swap(5, r.iccids[5])
	require.NoError(t, r.store.RecordAction(store.ActionRecord{Notifier: "stopper", EventID: e.ID, Started: true, At: r.clock.Now()}, nil))
	_, err := n.Notify(context.Background(), e)
	require.NoError(t, err)
	require.Zero(t, r.sim.Stats().Actions)
}

// A batch larger than the room left under the cap: the first events are acted
// on, and the error names exactly the others, each by its own card — in dry
// run just as in live mode.
func TestHourlyCapInOneBatch(t *testing.T) {
	for _, tc := range []struct {
		name      string
		dryRun    bool
		liveFirst int // live actions already taken this hour, by a live twin
		acted     []int
		refused   []int
		simActs   int
		msg       string
	}{
		{name: "live", acted: []int{0, 1}, refused: []int{2, 3}, simActs: 2, msg: "was not stopped"},
		{name: "dry run", dryRun: true, acted: []int{0, 1}, refused: []int{2, 3}, simActs: 0, msg: "would not be stopped"},
		{name: "dry run counts live actions", dryRun: true, liveFirst: 1, acted: []int{0}, refused: []int{1, 2, 3}, simActs: 1, msg: "would not be stopped"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			ctx := context.Background()
			for i := range tc.liveFirst {
				live := r.notifier(t, func(o *Options) { o.MaxPerHour = 2 })
				_, err := live.Notify(ctx, swap(10+i, r.iccids[10+i]))
				require.NoError(t, err)
			}
			n := r.notifier(t, func(o *Options) { o.MaxPerHour = 2; o.DryRun = tc.dryRun })
			batch := make([]event.Event, 4)
			for i := range batch {
				batch[i] = swap(i, r.iccids[i])
			}
			for attempt := range 2 { // the second is the dispatcher's redelivery
				retry, err := n.Notify(ctx, batch...)
				require.False(t, retry, "attempt %d: the excess goes to the dead letters", attempt)
				var be *BatchError
				require.ErrorAs(t, err, &be)
				require.Equal(t, 4, be.Eligible)
				var got []string
				for _, f := range be.Failed {
					got = append(got, f.ICCID)
					require.Contains(t, f.Error(), "card "+f.ICCID+" "+tc.msg+": cap of 2 actions per hour reached")
					require.Equal(t, "swap-"+f.ICCID, f.EventID)
				}
				var want []string
				for _, i := range tc.refused {
					want = append(want, r.iccids[i])
					require.Contains(t, err.Error(), r.iccids[i])
					require.Contains(t, be.FailedEvents(), batch[i].ID)
				}
				require.Equal(t, want, got)
				require.Len(t, be.FailedEvents(), len(tc.refused))
				for _, i := range tc.acted {
					require.NotContains(t, err.Error(), r.iccids[i], "an acted card is never reported as not acted on")
				}
				require.Equal(t, tc.simActs, r.sim.Stats().Actions, "attempt %d", attempt)
			}

			recs, err := r.store.Actions("stopper", r.clock.Now().Add(-time.Hour))
			require.NoError(t, err)
			var journaled []string
			for _, rec := range recs {
				if rec.EventID == "swap-"+rec.ICCID && rec.ICCID != r.iccids[10] {
					require.Equal(t, tc.dryRun, rec.DryRun)
					if !tc.dryRun {
						require.NotZero(t, rec.WorkOrderID)
					}
					journaled = append(journaled, rec.ICCID)
				}
			}
			var want []string
			for _, i := range tc.acted {
				want = append(want, r.iccids[i])
			}
			require.ElementsMatch(t, want, journaled, "only the acted ones are journaled")

			// An hour later there is room again, for dry run as for live.
			r.clock.Add(61 * time.Minute)
			_, err = n.Notify(ctx, batch[tc.refused[0]])
			require.NoError(t, err)
		})
	}
}

func TestAnnouncementSeverity(t *testing.T) {
	for _, tc := range []struct {
		name     string
		dryRun   bool
		severity string // of the triggering event
		want     string
	}{
		{name: "dry run is info", dryRun: true, severity: "critical", want: "info"},
		{name: "live keeps the rule's critical", severity: "critical", want: "critical"},
		{name: "live keeps the rule's warning", severity: "warning", want: "warning"},
		{name: "live without a severity is info", want: "info"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			n := r.notifier(t, func(o *Options) { o.DryRun = tc.dryRun })
			e := swap(0, r.iccids[0])
			e.Severity = tc.severity
			_, err := n.Notify(context.Background(), e)
			require.NoError(t, err)
			out, err := r.store.Outbox(100)
			require.NoError(t, err)
			require.Len(t, out, 1)
			require.Equal(t, event.KindAction, out[0].Event.Kind)
			require.Equal(t, tc.want, out[0].Event.Severity)
		})
	}
}

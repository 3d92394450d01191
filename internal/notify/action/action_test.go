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
	require.ErrorContains(t, err, "cap of 2 actions per hour reached; card "+r.iccids[2]+" was not stopped")
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

package notify

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/event"
)

// groupStep is, at an offset from the start, events added, or a look at
// what is due (each due group rendered "key ids", then flushed).
type groupStep struct {
	at      time.Duration
	add     []event.Event
	due     bool
	all     bool
	wantDue []string
}

func add(at time.Duration, events ...event.Event) groupStep { return groupStep{at: at, add: events} }

func due(at time.Duration, want ...string) groupStep {
	return groupStep{at: at, due: true, wantDue: want}
}

func dueAll(at time.Duration, want ...string) groupStep {
	return groupStep{at: at, due: true, all: true, wantDue: want}
}

// onRule is a firing event of alert entityID under rule.
func onRule(id, rule, entityID string) event.Event {
	e := firing(id, entityID, 1)
	e.Rule = rule
	return e
}

func TestGrouper(t *testing.T) {
	withTeam := func(id, provider, team string) event.Event {
		e := firing(id, id, 1)
		e.Provider, e.Labels = provider, map[string]string{"team": team}
		return e
	}
	tests := []struct {
		name     string
		by       []string
		wait     time.Duration
		interval time.Duration
		steps    []groupStep
	}{
		{
			name: "group_by defaults to rule",
			steps: []groupStep{
				add(0, onRule("a", "r1", "x"), onRule("b", "r1", "y"), onRule("c", "r2", "x")),
				due(0, "rule=r1 a,b", "rule=r2 c"),
			},
		},
		{
			name: "group_wait holds the first event of a new group",
			wait: 30 * time.Second,
			steps: []groupStep{
				add(0, onRule("a", "r", "x")),
				due(29 * time.Second),
				due(30*time.Second, "rule=r a"),
			},
		},
		{
			name: "a burst spread over several batches is one flush",
			wait: 30 * time.Second,
			steps: []groupStep{
				add(0, onRule("a", "r", "x")),
				add(10*time.Second, onRule("b", "r", "y")),
				due(20 * time.Second),
				add(25*time.Second, onRule("c", "r", "z"), onRule("d", "r", "w")),
				due(29 * time.Second),
				due(30*time.Second, "rule=r a,b,c,d"),
			},
		},
		{
			name:     "group_interval spaces later flushes of a group",
			wait:     10 * time.Second,
			interval: 5 * time.Minute,
			steps: []groupStep{
				add(0, onRule("a", "r", "x")),
				due(10*time.Second, "rule=r a"),
				add(time.Minute, onRule("b", "r", "y")),
				due(time.Minute + 10*time.Second), // not group_wait again
				add(3*time.Minute, onRule("c", "r", "z")),
				due(5*time.Minute + 9*time.Second),
				due(5*time.Minute+10*time.Second, "rule=r b,c"),
			},
		},
		{
			name:     "a group quiet for group_interval starts again with group_wait",
			wait:     10 * time.Second,
			interval: 5 * time.Minute,
			steps: []groupStep{
				add(0, onRule("a", "r", "x")),
				due(10*time.Second, "rule=r a"),
				add(10*time.Minute, onRule("b", "r", "y")),
				due(10*time.Minute + 9*time.Second),
				due(10*time.Minute+10*time.Second, "rule=r b"),
			},
		},
		{
			name: "different group_by values make separate groups",
			by:   []string{"provider", "labels.team"},
			steps: []groupStep{
				add(0, withTeam("a", "hw", "x"), withTeam("b", "hw", "y"), withTeam("c", "hw", "x"), withTeam("d", "lc", "x")),
				due(0, "provider=hw,labels.team=x a,c", "provider=hw,labels.team=y b", "provider=lc,labels.team=x d"),
			},
		},
		{
			name: "Due with all returns every group, windows or not",
			wait: time.Hour,
			steps: []groupStep{
				add(0, onRule("a", "r1", "x")),
				add(time.Minute, onRule("b", "r2", "x")),
				due(2 * time.Minute),
				dueAll(2*time.Minute, "rule=r1 a", "rule=r2 b"),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := Grouper{By: tt.by, Wait: tt.wait, Interval: tt.interval}
			var lseq uint64
			for _, s := range tt.steps {
				now := t0.Add(s.at)
				for _, e := range s.add {
					lseq++
					g.Add(&item{lseq: lseq, ev: e}, now)
				}
				if !s.due {
					continue
				}
				var got []string
				for _, pg := range g.Due(now, s.all) {
					ids := make([]string, len(pg.items))
					for i, it := range pg.items {
						ids[i] = it.ev.ID
					}
					got = append(got, pg.Key+" "+strings.Join(ids, ","))
					settled := map[uint64]bool{}
					for _, it := range g.Start(pg, now) {
						settled[it.lseq] = true
					}
					g.Done(pg, pg.items, settled, now, 0)
				}
				require.Equal(t, s.wantDue, got, "due at +%v", s.at)
			}
			require.Zero(t, g.Len(), "every event was flushed")
		})
	}
}

func TestGroupOfLabels(t *testing.T) {
	g := Grouper{By: []string{"provider", "severity", "labels.team"}}
	e := firing("a", "x", 1)
	e.Severity, e.Labels = "critical", map[string]string{"team": "core"}
	got := g.GroupOf(&e)
	require.Equal(t, "provider=hw,severity=critical,labels.team=core", got.Key)
	require.Equal(t, map[string]string{"provider": "hw", "severity": "critical", "labels.team": "core"}, got.Labels)
}

package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

func TestOneMemberTakesAllAccounts(t *testing.T) {
	url := singleURL(t)
	accs := accountsN(3)
	a := startMember(t, url, "a", accs, 2*time.Second)
	eventually(t, 2*time.Second, "a holds all accounts", func() bool { return a.held(accs) == 3 })

	st, err := a.g.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Self != "a" || len(st.Members) != 1 || len(st.Members[0].Leases) != 3 || len(st.Leases) != 3 || len(st.Unheld) != 0 {
		t.Fatalf("status = %+v", st)
	}
	for _, l := range st.Leases {
		if l.Holder != "a" || l.ExpiresInSeconds <= 0 || l.ExpiresInSeconds > 2 {
			t.Errorf("lease %+v", l)
		}
	}
	b, _ := json.Marshal(st)
	for _, k := range []string{`"members"`, `"leases"`, `"expires_in_seconds"`, `"heartbeat_age_seconds"`, `"self"`} {
		if !strings.Contains(string(b), k) {
			t.Errorf("status JSON lacks %s: %s", k, b)
		}
	}
	s := a.g.Stats()
	if s.Acquisitions != 3 || s.Losses != 0 || s.Held != 3 {
		t.Errorf("stats = %+v", s)
	}
	for _, acc := range accs {
		if d, ok := a.takeover(acc); !ok || d != 0 {
			t.Errorf("%s: takeover %v, %v; want 0 for a free account", acc, d, ok)
		}
	}
}

func TestNotifyWorkerHoldsNothingAndDoesNotDiluteShare(t *testing.T) {
	url := singleURL(t)
	accs := accountsN(4)
	n := startMember(t, url, "notify1", nil, 2*time.Second)
	a := startMember(t, url, "a", accs, 2*time.Second)
	// With the notify worker counted, a would stop at 2.
	eventually(t, 3*time.Second, "a holds all 4", func() bool { return a.held(accs) == 4 })
	if n.g.Stats().Acquisitions != 0 {
		t.Fatal("notify-only member took a lease")
	}
}

func TestTwoMembersSplitAccounts(t *testing.T) {
	url := singleURL(t)
	accs := accountsN(4)
	a := startMember(t, url, "a", accs, 2*time.Second)
	eventually(t, 2*time.Second, "a holds all", func() bool { return a.held(accs) == 4 })
	b := startMember(t, url, "b", accs, 2*time.Second)
	took := eventually(t, 4*time.Second, "2/2 split", func() bool { return a.held(accs) == 2 && b.held(accs) == 2 })
	t.Logf("rebalance to 2/2 took %v", took)
	if r := a.g.Stats().Releases; r != 2 {
		t.Errorf("a released %d leases, want exactly 2 (no flapping)", r)
	}
	for _, acc := range accs {
		if a.g.Holds(acc) == b.g.Holds(acc) {
			t.Errorf("%s: a %v, b %v", acc, a.g.Holds(acc), b.g.Holds(acc))
		}
	}
}

func TestDeadMemberLeasesTakenWithinTTL(t *testing.T) {
	const ttl = 2 * time.Second
	url := singleURL(t)
	accs := accountsN(4)
	a := startMember(t, url, "a", accs, ttl)
	b := startMember(t, url, "b", accs, ttl, noRelease)
	eventually(t, 4*time.Second, "2/2 split", func() bool { return a.held(accs) == 2 && b.held(accs) == 2 })
	var bAccs []string
	for _, acc := range accs {
		if b.g.Holds(acc) {
			bAccs = append(bAccs, acc)
		}
	}
	b.stop() // dies: no hand-back, no renewals
	died := time.Now()
	var bStopped time.Duration
	took := eventually(t, ttl+ttl/2, "a takes b's accounts", func() bool {
		if bStopped == 0 && b.held(accs) == 0 {
			bStopped = time.Since(died)
		}
		for _, acc := range bAccs {
			if a.g.Holds(acc) && b.g.Holds(acc) {
				t.Fatalf("%s held by both", acc)
			}
		}
		return a.held(accs) == 4
	})
	t.Logf("b stopped claiming after %v; a took over after %v", bStopped, took)
	if bStopped == 0 || bStopped >= ttl {
		t.Errorf("b stopped claiming after %v, want under the TTL %v", bStopped, ttl)
	}
	for _, acc := range bAccs {
		d, ok := a.takeover(acc)
		// Since b's last renewal: at least the TTL (the server expired it),
		// at most TTL plus b's renewal period plus a polling round.
		if !ok || d < ttl-100*time.Millisecond || d > ttl+ttl/3+ttl/2 {
			t.Errorf("%s: takeover %v, want about %v", acc, d, ttl)
		}
		t.Logf("%s: takeover %v", acc, d)
		if a.g.Stats().Takeover[acc] != d {
			t.Errorf("%s: Stats takeover %v, callback %v", acc, a.g.Stats().Takeover[acc], d)
		}
	}
}

func TestOrderlyShutdownHandsOverAtOnce(t *testing.T) {
	const ttl = 10 * time.Second
	url := singleURL(t)
	accs := accountsN(4)
	a := startMember(t, url, "a", accs, ttl)
	b := startMember(t, url, "b", accs, ttl)
	eventually(t, 5*time.Second, "2/2 split", func() bool { return a.held(accs) == 2 && b.held(accs) == 2 })
	b.stop()
	took := eventually(t, ttl/4, "a takes b's accounts", func() bool { return a.held(accs) == 4 })
	t.Logf("orderly handover took %v (TTL %v)", took, ttl)
	for _, acc := range accs {
		if d, ok := a.takeover(acc); ok && d != 0 {
			t.Errorf("%s: takeover %v after an orderly hand-back, want 0", acc, d)
		}
		if why := b.lost(acc); why != "" && why != LoseShutdown && why != LoseRebalance {
			t.Errorf("%s: b lost it because %q", acc, why)
		}
	}
	st, err := a.g.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Members) != 1 {
		t.Errorf("members after b left: %+v", st.Members)
	}
}

func TestConnectionDropStopsClaimingWithinTTL(t *testing.T) {
	const ttl = 2 * time.Second
	url := singleURL(t)
	accs := accountsN(2)
	a := startMember(t, url, "a", accs, ttl)
	b := startMember(t, url, "b", accs, ttl)
	eventually(t, 4*time.Second, "1/1 split", func() bool { return a.held(accs) == 1 && b.held(accs) == 1 })
	b.nc.Close()
	stopped := eventually(t, ttl, "b stops claiming", func() bool { return b.held(accs) == 0 })
	taken := eventually(t, ttl+ttl/2, "a takes over", func() bool { return a.held(accs) == 2 })
	t.Logf("b stopped claiming %v after its connection dropped; a held both %v later", stopped, taken)
	eventually(t, ttl, "b's OnLose", func() bool {
		for _, acc := range accs {
			if b.lost(acc) == LoseExpired {
				return true
			}
		}
		return false
	})
	if s := b.g.Stats(); s.Losses != 1 || s.Held != 0 {
		t.Errorf("b stats %+v", s)
	}
}

// TestNeverTwoHolders churns members (orderly stops, crashes, new members)
// while checking that no two members Hold an account at once.
func TestNeverTwoHolders(t *testing.T) {
	const ttl = 2 * time.Second
	url := singleURL(t)
	accs := accountsN(5)
	var mu sync.Mutex
	var live []*member
	var violations atomic.Int64
	var samples atomic.Int64
	stop := make(chan struct{})
	checked := make(chan struct{})
	go func() {
		defer close(checked)
		for {
			select {
			case <-stop:
				return
			default:
			}
			mu.Lock()
			ms := append([]*member(nil), live...)
			mu.Unlock()
			for _, acc := range accs {
				for i, x := range ms {
					if !x.g.Holds(acc) {
						continue
					}
					for _, y := range ms[i+1:] {
						// x held before and after y did: both held at once.
						if y.g.Holds(acc) && x.g.Holds(acc) {
							violations.Add(1)
						}
					}
				}
			}
			samples.Add(1)
		}
	}()
	add := func(id string, mod ...func(*Options)) *member {
		m := startMember(t, url, id, accs, ttl, mod...)
		mu.Lock()
		live = append(live, m)
		mu.Unlock()
		return m
	}
	allHeld := func() bool {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, m := range live {
			n += m.held(accs)
		}
		return n == len(accs)
	}
	a := add("a")
	b := add("b", noRelease)
	c := add("c")
	eventually(t, 4*time.Second, "all held", allHeld)
	b.stop() // crash
	eventually(t, 2*ttl, "all held after b crashed", allHeld)
	c.stop() // orderly
	eventually(t, 2*ttl, "all held after c left", allHeld)
	d := add("d")
	e := add("e", noRelease)
	eventually(t, 2*ttl, "all held after d, e joined", func() bool {
		return allHeld() && d.held(accs) > 0 && e.held(accs) > 0
	})
	a.stop()
	e.stop()
	eventually(t, 2*ttl, "d holds all", func() bool { return d.held(accs) == len(accs) })
	close(stop)
	<-checked
	t.Logf("%d samples, %d violations", samples.Load(), violations.Load())
	if violations.Load() != 0 {
		t.Fatalf("%d samples saw two holders of one account", violations.Load())
	}
}

func TestOpenUpdatesBucketTTL(t *testing.T) {
	url := singleURL(t)
	_, js := connect(t, url)
	ctx := context.Background()
	for _, ttl := range []time.Duration{2 * time.Second, 3 * time.Second} {
		if _, err := Open(ctx, Options{JS: js, Cluster: "c1", Member: "m", TTL: ttl}); err != nil {
			t.Fatal(err)
		}
		for _, b := range []string{LeasesBucket("c1"), MembersBucket("c1")} {
			kv, err := js.KeyValue(ctx, b)
			if err != nil {
				t.Fatal(err)
			}
			st, err := kv.Status(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if st.TTL() != ttl {
				t.Errorf("%s TTL %v, want %v", b, st.TTL(), ttl)
			}
			if b == LeasesBucket("c1") && st.(*jetstream.KeyValueBucketStatus).LimitMarkerTTL() == 0 {
				t.Errorf("%s has no limit markers", b)
			}
		}
	}
}

func TestOpenRejectsBadOptions(t *testing.T) {
	url := singleURL(t)
	_, js := connect(t, url)
	for name, o := range map[string]Options{
		"no js":         {Cluster: "c", Member: "m"},
		"dotted name":   {JS: js, Cluster: "a.b", Member: "m"},
		"wildcard name": {JS: js, Cluster: "*", Member: "m"},
		"empty member":  {JS: js, Cluster: "c"},
		"bad account":   {JS: js, Cluster: "c", Member: "m", Accounts: []string{"x>"}},
		"tiny ttl":      {JS: js, Cluster: "c", Member: "m", TTL: time.Millisecond},
		"negative ttl":  {JS: js, Cluster: "c", Member: "m", TTL: -time.Second},
	} {
		if _, err := Open(context.Background(), o); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err %v, want ErrInvalid", name, err)
		}
	}
}

func TestMemberID(t *testing.T) {
	re := regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
	seen := map[string]bool{}
	for _, host := range []string{"", "web-1.example.com", "a b/c*>", "ünïcode", "...", strings.Repeat("x", 300), "h"} {
		id := MemberID(host, 42)
		if !re.MatchString(id) || len(id) > 60 {
			t.Errorf("MemberID(%q) = %q: not a safe key", host, id)
		}
		if seen[id] {
			t.Errorf("MemberID(%q) = %q repeats", host, id)
		}
		seen[id] = true
	}
	if MemberID("h", 1) == MemberID("h", 1) {
		t.Error("same host and pid gave the same id: a restarted process would collide")
	}
}

// TestDifferentAccountListsLeaveNothingUnpolled: members configured with
// different providers hand over only what the other can poll and never
// leave an account free.
func TestDifferentAccountListsLeaveNothingUnpolled(t *testing.T) {
	url := singleURL(t)
	accs := accountsN(4)
	a := startMember(t, url, "a", accs, 2*time.Second)
	eventually(t, 2*time.Second, "a holds all", func() bool { return a.held(accs) == 4 })
	b := startMember(t, url, "b", accs[:1], 2*time.Second) // b can poll acct1 only
	eventually(t, 3*time.Second, "b takes acct1", func() bool { return b.g.Holds(accs[0]) })
	// a keeps 3 although its share is 2: b cannot poll them. Until every
	// lease has been renewed (several rounds of both members) nothing moves.
	t0 := time.Now()
	eventually(t, 3*time.Second, "every lease renewed", func() bool {
		st, err := a.g.Status(context.Background())
		if err != nil || len(st.Leases) != 4 {
			t.Fatalf("status %+v, %v", st, err)
		}
		for _, l := range st.Leases {
			if !l.Renewed.After(t0) {
				return false
			}
		}
		return true
	})
	if a.held(accs[1:]) != 3 || a.g.Stats().Releases != 1 || b.g.Stats().Acquisitions != 1 {
		t.Fatalf("a holds %d of acct2-4, a released %d, b took %d (want 3, 1, 1)",
			a.held(accs[1:]), a.g.Stats().Releases, b.g.Stats().Acquisitions)
	}
}

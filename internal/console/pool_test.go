package console

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/fleet"
	"github.com/simwatch/simwatch/internal/sim"
)

func TestPoolPageListsMembersAndFlagsOverdraft(t *testing.T) {
	r := newPageRig(t)
	ids := r.sim.Fleet().PoolIDs()
	pid := strconv.FormatInt(ids[0], 10)
	members := r.stored(func(c *fleet.Card) bool { return c.PoolID == pid })
	require.NotEmpty(t, members)
	others := r.stored(func(c *fleet.Card) bool { return c.PoolID != pid })

	body := r.page("/pools/hw/" + pid)
	require.NotContains(t, body, "Overdraft:", "a pool with room is not flagged")
	for _, c := range members[:min(len(members), memberPage)] {
		require.Contains(t, body, `href="/cards/hw/`+c.ID+`"`)
	}
	for _, c := range others {
		require.NotContains(t, body, `href="/cards/hw/`+c.ID+`"`, "card %s is not a member", c.ID)
	}
	chartData(t, body) // the pool has its chart too

	// Overdraft: the pool's allowance cut below what its members used.
	one := 1.0
	require.NoError(t, r.sim.Fleet().PatchPool(ids[0], sim.PoolPatch{FlowTotal: &one}))
	r.later()
	body = r.page("/pools/hw/" + pid)
	require.Contains(t, body, `class="overdraft sev-critical" role="alert">Overdraft:`)
	require.Regexp(t, `<tr class="overdraft"><th scope="row">flow_left</th>`, body)
	require.Contains(t, body, "pool_overdraft", "the overdraft event is on the pool's timeline")
}

func TestPoolMembersArePaged(t *testing.T) {
	r := newPageRig(t)
	// Move enough cards into one pool for three pages.
	pid := r.sim.Fleet().PoolIDs()[1]
	want := map[string]bool{}
	for _, c := range r.stored(func(c *fleet.Card) bool { return c.PoolID == strconv.FormatInt(pid, 10) }) {
		want[c.ID] = true
	}
	for _, iccid := range r.sim.Fleet().CardICCIDs() {
		if len(want) >= 2*memberPage+7 {
			break
		}
		require.NoError(t, r.sim.Fleet().PatchCard(iccid, sim.CardPatch{Raw: map[string]json.RawMessage{"sim_pool_id": []byte(strconv.FormatInt(pid, 10))}}))
	}
	r.later()
	want = map[string]bool{}
	for _, c := range r.stored(func(c *fleet.Card) bool { return c.PoolID == strconv.FormatInt(pid, 10) }) {
		want[c.ID] = true
	}
	require.Greater(t, len(want), 2*memberPage)

	link := regexp.MustCompile(`href="\?after=([^"]+)" rel="next"`)
	row := regexp.MustCompile(`<td><a href="/cards/hw/([^"]+)">`)
	seen := map[string]bool{}
	path, pages := "/pools/hw/"+strconv.FormatInt(pid, 10), 0
	for {
		body := r.page(path)
		pages++
		rows := row.FindAllStringSubmatch(body, -1)
		require.LessOrEqual(t, len(rows), memberPage)
		for _, m := range rows {
			require.False(t, seen[m[1]], "member %s listed twice", m[1])
			seen[m[1]] = true
		}
		m := link.FindStringSubmatch(body)
		if m == nil {
			break
		}
		path = "/pools/hw/" + strconv.FormatInt(pid, 10) + "?after=" + m[1]
		require.Less(t, pages, 10)
	}
	require.Equal(t, want, seen, "every member once across the pages")
	require.Equal(t, 3, pages)
}

func TestPoolPageShowsUnknownFigures(t *testing.T) {
	r := newPageRig(t)
	pid := r.sim.Fleet().PoolIDs()[2]
	require.NoError(t, r.sim.Fleet().PatchPool(pid, sim.PoolPatch{Raw: map[string]json.RawMessage{"flow_left": []byte("null")}}))
	r.later()
	code, body := r.get("/pools/hw/"+strconv.FormatInt(pid, 10), "")
	require.Equal(t, http.StatusOK, code, body)
	require.Regexp(t, `<th scope="row">flow_left</th><td class="unknown muted">unknown</td>`, body)
	require.False(t, strings.Contains(body, "Overdraft:"), "an unknown flow_left is no overdraft")
}

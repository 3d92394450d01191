package console

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/api"
	"github.com/simwatch/simwatch/internal/fleet"
	"github.com/simwatch/simwatch/internal/store"
)

// A fresh watcher (no cycle yet, a configured provider never polled) shows
// every page, empty, never a 500.
func TestHostile14FreshStorePages(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "s.db"))
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	con := New(Options{Store: st, Access: api.New(api.Options{Store: st}), Providers: []Provider{{Name: "hw", Type: "gsl", Interval: time.Minute}},
		Notifiers: []string{"slack"}})
	for _, p := range []string{"/", "/alerts", "/alerts?provider=hw&rule=x&tag=y&state=firing&severity=critical", "/alerts?after=hw/a/b/c",
		"/events", "/events?provider=hw&entity_id=1", "/silences", "/deadletters", "/actions", "/cards/hw/1", "/pools/hw/1", "/login"} {
		req := httptest.NewRequest(http.MethodGet, p, nil)
		req.Host = "localhost"
		w := httptest.NewRecorder()
		con.Handler().ServeHTTP(w, req)
		require.Contains(t, []int{200, 404}, w.Code, "%s: %s", p, w.Body.String())
	}
}

// Garbage in any query is a 400 (or is ignored), never a 500 or a page
// that reads without bound.
func TestHostile14PageQueriesGarbage(t *testing.T) {
	r := newPageRig(t)
	card := r.stored(func(c *fleet.Card) bool { return true })[0]
	long := strings.Repeat("x", 10000)
	cases := map[string][]int{
		"/alerts?limit=0":                                             {400},
		"/alerts?limit=-1":                                            {400},
		"/alerts?limit=1e9":                                           {400},
		"/alerts?limit=501":                                           {400},
		"/alerts?limit=99999999999999999999":                          {400},
		"/alerts?after=garbage":                                       {400},
		"/alerts?after=%00/%00/%00/%00":                               {400},
		"/alerts?after=zz/a/b/c":                                      {200},
		"/alerts?after=a/b/c/d&after=x":                               {200, 400},
		"/alerts?rule=" + long:                                        {200},
		"/alerts?tag=" + long + "&state=firing":                       {200},
		"/alerts?severity=CRITICAL":                                   {400},
		"/alerts?state=resolved":                                      {400},
		"/events?limit=0":                                             {400},
		"/events?limit=1e9":                                           {400},
		"/events?before=zz":                                           {400},
		"/events?before=" + strings.Repeat("0", 32):                   {200, 400},
		"/events?before=" + strings.Repeat("f", 2000):                 {400},
		"/events?since=-7d":                                           {400},
		"/events?since=99999999d":                                     {200, 400},
		"/events?since=9999-99-99":                                    {400},
		"/events?until=0001-01-01":                                    {200},
		"/events?kind=<script>":                                       {400},
		"/events?rule=" + long:                                        {200},
		"/events?iccid=%00":                                           {200},
		"/cards/hw/" + card.ID + "?before=zz":                         {400},
		"/cards/hw/" + card.ID + "?before=" + strings.Repeat("ab", 8): {200, 400},
		"/cards/hw/..%2F..%2Fetc":                                     {404},
		"/cards/hw/%00":                                               {404},
		"/cards/hw/a%3Fb%23c":                                         {404},
		"/cards/" + url.PathEscape(long) + "/1":                       {404},
		"/pools/hw/" + card.PoolID + "?after=" + long:                 {200, 404},
		"/pools/hw/" + card.PoolID + "?before=zz":                     {400, 404},
		"/actions?since=garbage":                                      {400},
		"/actions?since=-1h":                                          {400},
		"/actions?notifier=" + long:                                   {200, 400},
	}
	for p, want := range cases {
		code, body := r.get(p, "")
		if len(body) > 300 {
			body = body[:300]
		}
		require.Contains(t, want, code, "%s: %s", p, body)
	}
}

package console

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/api"
)

var h14Tokens = []api.Token{{Name: "ops", Secret: "admin-secret", Role: api.RoleAdmin}, {Name: "viewer", Secret: "read-secret", Role: api.RoleRead}}

// h14Do sends one request through the console handler.
func h14Do(h http.Handler, req *http.Request) *httptest.ResponseRecorder {
	if req.Host == "" || req.Host == "example.com" {
		req.Host = "127.0.0.1:8080"
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

// h14Login posts the sign-in form as a same-origin browser would.
func h14Login(h http.Handler, token, next string) *httptest.ResponseRecorder {
	form := url.Values{"token": {token}, "next": {next}}
	req := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "http://127.0.0.1:8080")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	return h14Do(h, req)
}

// h14Offsite reports whether a browser following Location from
// http://127.0.0.1:8080/login would leave the site. A browser's URL parser
// strips ASCII tab and newline anywhere in a URL and leading/trailing C0
// controls and spaces, and treats \ as / in http(s) URLs.
func h14Offsite(loc string) bool {
	loc = strings.Trim(loc, "\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f ")
	loc = strings.NewReplacer("\t", "", "\n", "", "\r", "").Replace(loc)
	loc = strings.ReplaceAll(loc, `\`, "/")
	base, _ := url.Parse("http://127.0.0.1:8080/login")
	u, err := base.Parse(loc)
	if err != nil {
		return true // a Location we cannot even read is not ours
	}
	return u.Host != "127.0.0.1:8080"
}

// A sign-in link can carry where to go next; it must never take the
// signed-in user to another site (an open redirect a phishing mail uses).
func TestHostile14LoginNextStaysOnSite(t *testing.T) {
	a := api.New(api.Options{Tokens: h14Tokens})
	h := New(Options{Access: a}).Handler()
	for _, next := range []string{
		"//evil.com", `/\evil.com`, "https:evil.com", "https://evil.com", "/%2F%2Fevil.com", "/%5Cevil.com",
		"/\r\nLocation: https://evil.com", "/%0d%0aSet-Cookie:x=y", "javascript:alert(1)", "/.//evil.com",
		"/\t/evil.com", "/\n/evil.com", "/\\\t\\evil.com", " //evil.com", "/ /evil.com", "\t//evil.com",
		"/./\\evil.com", "/..//evil.com", "/\x00/evil.com",
	} {
		w := h14Login(h, "admin-secret", next)
		require.Equal(t, http.StatusSeeOther, w.Code, "next %q", next)
		loc := w.Header().Get("Location")
		require.False(t, h14Offsite(loc), "next %q sends the browser to %q, another site", next, loc)
		require.NotContains(t, loc, "\n", next)
		require.Empty(t, w.Header().Get("X-Injected"))
	}
	// The sign-in page's hidden next is what the form posts back.
	req := httptest.NewRequest(http.MethodGet, "/login?next=%2F%09%2Fevil.com", nil)
	w := h14Do(h, req)
	require.Equal(t, http.StatusOK, w.Code)
	require.NotContains(t, w.Body.String(), `value="/&#9;/evil.com"`, "the sign-in form carries a tab-split // next")
}

// Cross-site requests cannot sign in (login CSRF: the victim then works
// in the attacker's session) nor sign out.
func TestHostile14CrossSiteLoginLogoutRefused(t *testing.T) {
	a := api.New(api.Options{Tokens: h14Tokens})
	h := New(Options{Access: a}).Handler()
	for _, hdr := range []map[string]string{
		{"Origin": "https://evil.com"},
		{"Sec-Fetch-Site": "cross-site"},
		{"Origin": "null"},
		{"Sec-Fetch-Site": "same-site", "Origin": "http://other.127.0.0.1.nip.io:8080"},
	} {
		for _, path := range []string{"/login", "/logout"} {
			req := httptest.NewRequest(http.MethodPost, path, strings.NewReader("token=admin-secret&next=/"))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.AddCookie(&http.Cookie{Name: api.SessionCookie, Value: "admin-secret"})
			for k, v := range hdr {
				req.Header.Set(k, v)
			}
			w := h14Do(h, req)
			require.Equal(t, http.StatusForbidden, w.Code, "%s with %v: %s", path, hdr, w.Body.String())
			require.Empty(t, w.Header().Values("Set-Cookie"), "%s with %v sets no cookie", path, hdr)
		}
	}
}

// The session cookie: HttpOnly, SameSite=Strict, Path=/, the token's
// secret only after a right token; a wrong one gets no cookie and no page.
func TestHostile14SessionCookie(t *testing.T) {
	r := newCARig(t, caOptions{cards: 10, pools: 1, tokens: h14Tokens})
	h := r.con.Handler()

	w := h14Login(h, "wrong", "/")
	require.Equal(t, http.StatusUnauthorized, w.Code)
	require.Empty(t, w.Header().Values("Set-Cookie"))

	w = h14Login(h, "read-secret", "/alerts")
	require.Equal(t, http.StatusSeeOther, w.Code)
	cs := w.Result().Cookies()
	require.Len(t, cs, 1)
	c := cs[0]
	require.Equal(t, api.SessionCookie, c.Name)
	require.True(t, c.HttpOnly)
	require.Equal(t, http.SameSiteStrictMode, c.SameSite)
	require.Equal(t, "/", c.Path)
	require.Equal(t, "/alerts", w.Header().Get("Location"))

	// A cookie with a wrong token sees nothing.
	for _, v := range []string{"wrong", "admin-secret\x00", "read-secret-", "read-secret%20", "READ-SECRET"} {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Header.Set("Cookie", api.SessionCookie+"="+v)
		w = h14Do(h, req)
		require.Equal(t, http.StatusSeeOther, w.Code, "cookie %q", v)
		require.True(t, strings.HasPrefix(w.Header().Get("Location"), "/login"), "cookie %q", v)
	}
	// A wrong bearer with a right cookie: the bearer decides (no page).
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("Authorization", "Bearer wrong")
	req.AddCookie(&http.Cookie{Name: api.SessionCookie, Value: "admin-secret"})
	w = h14Do(h, req)
	require.Equal(t, http.StatusSeeOther, w.Code)

	// Logout clears the cookie (same-origin).
	req = httptest.NewRequest(http.MethodPost, "/logout", nil)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.AddCookie(&http.Cookie{Name: api.SessionCookie, Value: "admin-secret"})
	w = h14Do(h, req)
	require.Equal(t, http.StatusSeeOther, w.Code)
	cs = w.Result().Cookies()
	require.Len(t, cs, 1)
	require.Equal(t, "", cs[0].Value)
	require.Less(t, cs[0].MaxAge, 0)
	require.Equal(t, "/", cs[0].Path)
}

// With tokens, no page leaks fleet data without a session; static files
// are open; a page is never framed nor cached.
func TestHostile14PagesNeedASession(t *testing.T) {
	r := newCARig(t, caOptions{cards: 30, pools: 2, overdraft: true, tokens: h14Tokens})
	for _, p := range []string{"/", "/alerts", "/events", "/silences", "/deadletters", "/actions", "/cards/hw/1", "/pools/hw/4940000001",
		"/alerts?limit=500", "/nope", "//", "/./alerts", "/ALERTS", "/alerts/", "/%2e/alerts", "/static/../alerts", "/login/../alerts"} {
		code, body := r.get(p, "")
		require.Contains(t, []int{http.StatusSeeOther, http.StatusMovedPermanently, http.StatusTemporaryRedirect, http.StatusNotFound}, code, "%s: %d %s", p, code, body)
		require.NotContains(t, body, "hw gsl", p)
		require.NotContains(t, body, "<table", p)
	}
	// HEAD too.
	req := httptest.NewRequest(http.MethodHead, "/alerts", nil)
	w := h14Do(r.con.Handler(), req)
	require.Equal(t, http.StatusSeeOther, w.Code)
	code, body := r.get("/static/console.js", "")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "data-api")
	code, _ = r.get("/", "read-secret")
	require.Equal(t, http.StatusOK, code)
}

// Without tokens the console answers only to a loopback Host: a site that
// rebinds its DNS name to 127.0.0.1 gets nothing, static files included.
func TestHostile14OpenConsoleRefusesForeignHost(t *testing.T) {
	r := newCARig(t, caOptions{cards: 10, pools: 1})
	for _, host := range []string{"evil.com", "evil.com:8080", "127.0.0.1.evil.com", "localhost.evil.com", "0x7f000001", "2130706433", "[::ffff:127.0.0.1]:80", "127.1", ""} {
		for _, p := range []string{"/", "/alerts", "/login", "/static/console.js", "/cards/hw/1"} {
			req := httptest.NewRequest(http.MethodGet, p, nil)
			req.Host = host
			w := httptest.NewRecorder()
			r.con.Handler().ServeHTTP(w, req)
			if host == "[::ffff:127.0.0.1]:80" {
				continue // an IPv4-mapped loopback is loopback
			}
			require.Equal(t, http.StatusMisdirectedRequest, w.Code, "Host %q %s", host, p)
		}
	}
}

package console

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// Whatever next a sign-in link carries, the browser lands on this site,
// and the login form's hidden field keeps it as one value.
func TestHostile15SafeNextStaysOnSite(t *testing.T) {
	base, _ := url.Parse("https://watch.example/login")
	for _, next := range []string{
		"//evil.example", "/\\evil.example", "/%2F/evil.example", "/%2f%2fevil.example", "/.//evil.example", "/..//evil.example",
		"/a/../..//evil.example", "https:evil.example", "/\t/evil.example", "/%09/evil.example", "/%5C/evil.example",
		"/?next=//evil.example", "/x#//evil.example", "/x?a=\"><script>", "/x?a=%0d%0aSet-Cookie:x", "/\u3002/evil.example",
		"/\uff0f/evil.example", "/%E3%80%82evil.example", "/;//evil.example", "/x;/../..//evil.example", "/@evil.example",
		"/x?%zz", "/x%zz", "/%00", "/%", "",
	} {
		out := safeNext(next)
		w := httptest.NewRecorder()
		http.Redirect(w, httptest.NewRequest("POST", "/login", nil), out, http.StatusSeeOther)
		loc := w.Header().Get("Location")
		u, err := base.Parse(loc)
		require.NoError(t, err, "%q → %q", next, loc)
		require.Equal(t, "watch.example", u.Host, "%q → %q leaves the site", next, loc)
		require.Equal(t, "https", u.Scheme, "%q → %q", next, loc)
		require.False(t, strings.ContainsAny(loc, "\r\n\t\\ \x00"), "%q → %q", next, loc)
	}
}

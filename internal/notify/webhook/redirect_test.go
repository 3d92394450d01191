package webhook

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
)

// A receiver answering 302 or 307 is not followed: neither as a GET without
// body (counted as delivered) nor with the signed payload to another host.
// The failure is permanent and names the target host, never its query.
func TestRedirectNotFollowed(t *testing.T) {
	for _, code := range []int{http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect, http.StatusMovedPermanently} {
		t.Run(http.StatusText(code), func(t *testing.T) {
			var reached atomic.Int32
			other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				reached.Add(1)
			}))
			defer other.Close()
			var posts atomic.Int32
			hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				posts.Add(1)
				http.Redirect(w, r, other.URL+"/elsewhere?token=leaked-secret", code)
			}))
			defer hook.Close()

			n := New(Options{Name: "crm", URL: hook.URL, Secret: "s3cret", Client: &http.Client{}})
			retry, err := n.Notify(context.Background(), sampleEvents()...)
			require.Error(t, err)
			require.False(t, retry, "a redirect is permanent")
			host := must(url.Parse(other.URL)).Host
			require.Equal(t, "webhook crm: HTTP "+itoa(code)+" redirect to "+host+" not followed (check the url)", err.Error())
			require.NotContains(t, err.Error(), "leaked-secret")
			require.NotContains(t, err.Error(), "elsewhere")
			require.EqualValues(t, 1, posts.Load())
			require.Zero(t, reached.Load(), "the redirect target was never contacted")
		})
	}
}

// The configured client is copied, not changed.
func TestRedirectClientCopied(t *testing.T) {
	c := &http.Client{}
	_ = New(Options{Name: "crm", URL: "http://127.0.0.1/", Client: c})
	require.Nil(t, c.CheckRedirect)
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func itoa(i int) string { return strconv.Itoa(i) }

package slack

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/event"
)

const secretPath = "/services/T0001/B0002/hooksecretXYZ"

// Neither the incoming webhook nor the Web API follows a redirect: the
// token or the webhook's secret path would go along. The failure is
// permanent, names the target host, and never quotes the secret URL.
func TestRedirectNotFollowed(t *testing.T) {
	for _, code := range []int{http.StatusFound, http.StatusTemporaryRedirect} {
		var reached atomic.Int32
		other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached.Add(1) }))
		defer other.Close()
		hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, other.URL+"/x?token=q-secret", code)
		}))
		defer hook.Close()
		host := must(url.Parse(other.URL)).Host

		hooked, err := New(Options{Name: "ops", WebhookURL: hook.URL + secretPath})
		require.NoError(t, err)
		api, err := New(Options{Name: "ops", Token: "xoxb-secret-token", Channel: "#c", APIURL: hook.URL})
		require.NoError(t, err)
		for _, n := range []*Notifier{hooked, api} {
			retry, err := n.Notify(context.Background(), cardEvent(1, event.KindFiring, 5))
			require.Error(t, err)
			require.False(t, retry, "a redirect is permanent")
			require.Contains(t, err.Error(), "redirect to "+host+" not followed (check the url)")
			for _, secret := range []string{"hooksecretXYZ", "q-secret", "xoxb-secret-token"} {
				require.NotContains(t, err.Error(), secret)
			}
		}
		require.Zero(t, reached.Load(), "the redirect target was never contacted")
	}
}

// A transport error (net/http quotes the URL whole) does not leak the
// incoming webhook's secret path, and is still worth retrying.
func TestWebhookURLNotInErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.Close() // hang up before answering
		}
	}()
	defer ln.Close()
	n, err := New(Options{Name: "ops", WebhookURL: "http://" + ln.Addr().String() + secretPath})
	require.NoError(t, err)
	retry, err := n.Notify(context.Background(), cardEvent(1, event.KindFiring, 5))
	require.Error(t, err)
	require.True(t, retry)
	require.NotContains(t, err.Error(), "hooksecretXYZ")
	require.NotContains(t, err.Error(), "/services/")
	require.Contains(t, err.Error(), "[url redacted]")
	for e := error(err); e != nil; e = unwrap(e) {
		require.NotContains(t, e.Error(), "hooksecretXYZ", "no wrapped error quotes the url either")
	}
}

func unwrap(err error) error {
	if u, ok := err.(interface{ Unwrap() error }); ok {
		return u.Unwrap()
	}
	return nil
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

package app

import (
	"net"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/config"
)

// TestFix12ListenErrors: each way http.listen cannot be bound is one line
// naming the address and what to do.
func TestFix12ListenErrors(t *testing.T) {
	held, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer held.Close()
	inUse := held.Addr().String()
	for _, tc := range []struct{ addr, want string }{
		{inUse, "http.listen " + inUse + ": another process listens on " + inUse + ": stop it or change http.listen"},
		{"127.0.0.1:99999", `http.listen "127.0.0.1:99999" is not a valid address (port "99999" is neither a number from 0 to 65535 nor a service name): want HOST:PORT`},
		{"127.0.0.1", `http.listen "127.0.0.1" is not a valid address (missing port in address): want HOST:PORT`},
		{"127.0.0.1:80:80", `http.listen "127.0.0.1:80:80" is not a valid address (too many colons in address)`},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			w := &Watcher{cfg: &config.Config{HTTP: config.HTTP{Listen: tc.addr}}}
			ln, err := w.listenHTTP()
			if ln != nil {
				ln.Close()
			}
			require.Error(t, err)
			t.Log(err)
			require.NotContains(t, err.Error(), "\n")
			require.Contains(t, err.Error(), tc.want)
			require.True(t, strings.HasPrefix(err.Error(), "http.listen "))
		})
	}
}

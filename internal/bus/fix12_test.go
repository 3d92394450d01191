package bus

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestFix12BadURL: a nats.url that does not parse is said to be not a valid
// URL, with the fix, never "unreachable", and without its credentials.
func TestFix12BadURL(t *testing.T) {
	for _, tc := range []struct{ url, want string }{
		{"nats://alice:s3cret@ho st:4222", `invalid character " " in host name`},
		{"nats://alice:s3cret@host:abc", `invalid port ":abc" after host`},
		{"nats://alice:s3cret@host:99999", "port 99999 is not in 1..65535"},
		{"nats://alice:s3%zzcret@host:4222", "bad %-escape"},
		{"nats://host:4222, nats://s3cret@h st", "server 2: "},
	} {
		t.Run(tc.url, func(t *testing.T) {
			_, err := Open(context.Background(), Options{URL: tc.url, DataDir: t.TempDir()})
			require.Error(t, err)
			t.Log(err)
			var se *StartError
			require.True(t, errors.As(err, &se))
			msg := err.Error()
			require.Contains(t, msg, "is not a valid URL")
			require.NotContains(t, msg, "unreachable")
			require.NotContains(t, msg, "s3cret")
			require.NotContains(t, msg, "zz")
			require.NotContains(t, msg, "\n")
			require.Contains(t, msg, "fix nats.url")
			require.Contains(t, msg, tc.want)
		})
	}
}

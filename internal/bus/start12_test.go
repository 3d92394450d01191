package bus

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/event"
)

// closedAddr is a local address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// silentAddr accepts connections and never says a word: a NATS client
// waits for the INFO line that never comes.
func silentAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	return l.Addr().String()
}

// populated returns a data_dir whose embedded JetStream store holds an event.
func populated(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	ctx := context.Background()
	b, err := Open(ctx, Options{DataDir: dir})
	require.NoError(t, err)
	require.NoError(t, b.Publish(ctx, &event.Event{ID: "e1", Provider: "hw", Entity: "card", Rule: "r"}))
	b.Close()
	return dir
}

func streamDir(dir string) string {
	return filepath.Join(dir, "nats", "jetstream", server.DEFAULT_GLOBAL_ACCOUNT, "streams", EventsStream)
}

func TestStart12OpenFailsClearly(t *testing.T) {
	noJS, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	require.NoError(t, err)
	noJS.Start()
	require.True(t, noJS.ReadyForConnections(5*time.Second))
	t.Cleanup(noJS.Shutdown)

	for _, tc := range []struct {
		name   string
		opts   func(t *testing.T) Options
		want   []string // in the one line
		hidden []string // never in it
	}{{
		name: "unreachable url with credentials",
		opts: func(t *testing.T) Options {
			return Options{URL: "nats://alice:s3cret@" + closedAddr(t)}
		},
		want:   []string{"nats.url nats://127.0.0.1:", "is unreachable", "leave nats.url empty"},
		hidden: []string{"alice", "s3cret"},
	}, {
		name: "token in url, list of servers",
		opts: func(t *testing.T) Options {
			return Options{URL: "nats://T0KEN@" + closedAddr(t) + ",nats://T0KEN@" + closedAddr(t)}
		},
		want:   []string{"is unreachable", "start that NATS server"},
		hidden: []string{"T0KEN"},
	}, {
		name: "server that never answers",
		opts: func(t *testing.T) Options {
			return Options{URL: "nats://bob:pw@" + silentAddr(t)}
		},
		want:   []string{"is unreachable", "leave nats.url empty"},
		hidden: []string{"bob", "pw@"},
	}, {
		name: "server without jetstream",
		opts: func(t *testing.T) Options {
			u := strings.Replace(noJS.ClientURL(), "nats://", "nats://carol:pw2@", 1)
			return Options{URL: u}
		},
		want:   []string{"does not answer JetStream requests", "leave nats.url empty"},
		hidden: []string{"carol", "pw2"},
	}, {
		name: "embedded store is a file",
		opts: func(t *testing.T) Options {
			dir := t.TempDir()
			require.NoError(t, os.WriteFile(filepath.Join(dir, "nats"), []byte("x"), 0o600))
			return Options{DataDir: dir}
		},
		want: []string{"the embedded NATS store", "watcher doctor"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			b, err := Open(context.Background(), tc.opts(t))
			if err == nil {
				b.Close()
				t.Fatal("Open succeeded")
			}
			took := time.Since(start)
			msg := err.Error()
			t.Logf("%s (%s)", msg, took.Round(time.Millisecond))
			require.Less(t, took, 2*StartTimeout+time.Second, "bounded")
			require.NotContains(t, msg, "\n", "one line")
			var se *StartError
			require.True(t, errors.As(err, &se), "typed: %T", err)
			for _, w := range tc.want {
				require.Contains(t, msg, w)
			}
			for _, h := range tc.hidden {
				require.NotContains(t, msg, h)
			}
		})
	}
}

func TestStart12RedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"nats://u:p@h:4222":                      "nats://h:4222",
		"nats://tok@h:4222,tls://u:p@g:4223?x=1": "nats://h:4222,tls://g:4223",
		"h:4222":                                 "h:4222",
		"u:p@h:4222":                             "h:4222",
		"nats://h":                               "nats://h",
	} {
		require.Equal(t, want, RedactURL(in), in)
	}
}

// A damaged stream in the embedded store is not a start-up failure: the
// server leaves it out, Open makes the stream anew, and the consumers made
// anew are refilled from the store's ledger (see Consumer). What must hold
// is that Open neither fails nor hangs nor panics, and the bus works.
func TestStart12EmbeddedDamagedStreamRecovers(t *testing.T) {
	for _, tc := range []struct {
		name string
		file string
	}{
		{"metadata garbage", "meta.inf"},
		{"metadata checksum garbage", "meta.sum"},
		{"message block garbage", filepath.Join("msgs", "1.blk")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := populated(t)
			path := filepath.Join(streamDir(dir), tc.file)
			_, err := os.Stat(path)
			require.NoError(t, err, "the file to damage exists")
			require.NoError(t, os.WriteFile(path, []byte("\x00garbage{\xff\xff\xff\xff"), 0o600))
			ctx := context.Background()
			b, err := Open(ctx, Options{DataDir: dir})
			require.NoError(t, err)
			defer b.Close()
			require.NoError(t, b.Publish(ctx, &event.Event{ID: "e2", Provider: "hw", Entity: "card", Rule: "r"}))
		})
	}
}

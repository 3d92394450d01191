package app_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/crash"
	"github.com/simwatch/simwatch/internal/event"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// watcherBinary builds cmd/watcher once for the crash tests: they kill a real
// process, not an in-process fake.
func watcherBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "simwatch-bin-*")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "watcher")
		out, err := exec.Command("go", "build", "-o", binPath, "../../cmd/watcher").CombinedOutput()
		if err != nil {
			binErr = errors.New(string(out))
		}
	})
	require.NoError(t, binErr)
	return binPath
}

// start runs `watcher run --once` as a process with extra environment.
func (e *env) start(t *testing.T, env ...string) (*exec.Cmd, *strings.Builder) {
	cmd := exec.Command(watcherBinary(t), "run", "--once", "--timeout", "60s", "--config", e.config)
	cmd.Env = append(os.Environ(), env...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	return cmd, &out
}

func killedBySIGKILL(t *testing.T, err error, out string) {
	t.Helper()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee, out)
	ws := ee.Sys().(syscall.WaitStatus)
	require.True(t, ws.Signaled() && ws.Signal() == syscall.SIGKILL, "want killed by SIGKILL, got %v\n%s", err, out)
}

// TestKill9AtEveryStage kills a real watcher at each stage of a cycle and
// restarts it: every event is delivered, a repeat carries the same id, and no
// alert transition is generated twice.
func TestKill9AtEveryStage(t *testing.T) {
	stages := []struct {
		name string
		kill func(t *testing.T, e *env)
	}{
		{"after the snapshot commit before publishing", func(t *testing.T, e *env) {
			cmd, out := e.start(t, "SIMWATCH_CRASH_AT="+crash.AfterCommit)
			killedBySIGKILL(t, cmd.Wait(), out.String())
		}},
		{"after publishing before delivery", func(t *testing.T, e *env) {
			cmd, out := e.start(t, "SIMWATCH_CRASH_AT="+crash.AfterPublish)
			killedBySIGKILL(t, cmd.Wait(), out.String())
		}},
		{"while the receiver holds the request", func(t *testing.T, e *env) {
			hold := make(chan struct{})
			e.recv.mu.Lock()
			e.recv.hold, e.recv.arrived = hold, make(chan struct{}, 10)
			e.recv.mu.Unlock()
			cmd, out := e.start(t)
			select {
			case <-e.recv.arrived:
			case <-time.After(30 * time.Second):
				t.Fatalf("no delivery arrived\n%s", out.String())
			}
			require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
			killedBySIGKILL(t, cmd.Wait(), out.String())
			e.recv.mu.Lock()
			e.recv.hold = nil
			e.recv.mu.Unlock()
			close(hold) // the receiver accepts what it held, after the watcher died
		}},
	}
	for _, st := range stages {
		t.Run(st.name, func(t *testing.T) {
			e := newEnv(t, "nats: {ack_wait: 1s}\n")
			cmd, out := e.start(t)
			require.NoError(t, cmd.Wait(), out.String())
			e.patchCard(1, `{"flow_used": 99995, "flow_total": 100000}`)
			e.patchCard(2, `{"sim_status": 14, "operator_status": 5}`)
			e.patchCard(3, `{"imei": "869999999999999"}`)

			st.kill(t, e)
			cmd, out = e.start(t)
			require.NoError(t, cmd.Wait(), out.String())

			got := e.recv.takeEvents()
			ids := map[string]event.Event{}
			for _, ev := range got {
				if prev, seen := ids[ev.ID]; seen {
					require.Equal(t, prev.Kind+prev.Rule+prev.EntityID, ev.Kind+ev.Rule+ev.EntityID, "a repeat is the same event")
				}
				ids[ev.ID] = ev
			}
			var distinct []string
			for _, ev := range ids {
				distinct = append(distinct, ev.Kind+" "+ev.Rule+" "+ev.ICCID)
			}
			require.ElementsMatch(t, []string{
				"firing card_low_flow " + e.iccids[1],
				"transition card_suspended " + e.iccids[2],
				"transition sim_swap " + e.iccids[3],
			}, distinct, "every event delivered; no transition generated twice")

			// Nothing is left to deliver or generate.
			cmd, out = e.start(t)
			require.NoError(t, cmd.Wait(), out.String())
			require.Empty(t, e.recv.take())
		})
	}
}

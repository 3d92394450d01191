package app

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Credentials the bench's simulator accepts and its clients sign with.
const (
	benchAK = "SIMWATCHBENCHAK"
	benchSK = "simwatch-bench-secret-key"
)

// benchSim is the simulator running as a child process.
type benchSim struct {
	cmd      *exec.Cmd
	endpoint string // http://127.0.0.1:PORT
	keyed    bool   // it checks AK/SK signatures
	done     chan struct{}
}

var simServing = regexp.MustCompile(`on (http://\S+)`)

// startBenchSim execs `exe sim` on a free loopback port and waits for the
// line that says where it serves. keyed makes it check AK/SK signatures.
func startBenchSim(ctx context.Context, exe string, o benchOpts, keyed bool, stderr io.Writer) (*benchSim, error) {
	args := []string{"sim", "--listen", "127.0.0.1:0", "--cards", strconv.Itoa(o.cards),
		"--pools", strconv.Itoa(o.pools), "--seed", strconv.FormatUint(o.seed, 10)}
	if keyed {
		args = append(args, "--ak", benchAK, "--sk", benchSK)
	}
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench: starting the simulator: %w", err)
	}
	s := &benchSim{cmd: cmd, keyed: keyed, done: make(chan struct{})}
	addr := make(chan string, 1)
	go func() { // owned: ends when the child closes its stdout
		defer close(s.done)
		sc := bufio.NewScanner(out)
		sent := false
		for sc.Scan() {
			if m := simServing.FindStringSubmatch(sc.Text()); m != nil && !sent {
				addr <- m[1]
				sent = true
			}
		}
	}()
	select {
	case s.endpoint = <-addr:
		return s, nil
	case <-s.done:
		_ = cmd.Wait()
		return nil, fmt.Errorf("bench: the simulator exited before serving (%v)", cmd.ProcessState)
	case <-ctx.Done():
		s.stop()
		return nil, ctx.Err()
	}
}

// stop ends the simulator: SIGTERM, then a kill if it lingers.
func (s *benchSim) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	_ = s.cmd.Wait()
}

// churn changes percent% of the simulator's cards (their flow_used), picked
// by seed, in one request, and returns how many it changed.
func (s *benchSim) churn(ctx context.Context, percent float64, seed int) (int, error) {
	body := fmt.Sprintf(`{"percent": %g, "seed": %d}`, percent, seed)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.endpoint+"/_sim/churn", strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("bench: churn: %w", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("bench: churn: %s: %s", resp.Status, bytes.TrimSpace(b))
	}
	var out struct {
		Changed int `json:"changed"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return 0, fmt.Errorf("bench: churn: %w", err)
	}
	return out.Changed, nil
}

// cycleLine is what the watcher logs for each committed cycle (msg "cycle").
type cycleLine struct {
	Cards, Changed, Events, Firing int
	CardDays                       int // a history update's
	Took, Fetch, Commit            time.Duration
}

// parseCycleLine reads a JSON log line; ok is false unless it is a cycle.
func parseCycleLine(line []byte) (cycleLine, bool) {
	return parseLogLine(line, "cycle")
}

// parseHistoryLine reads the log line of a daily history update: Took is
// its time, Events the card-days it merged.
func parseHistoryLine(line []byte) (cycleLine, bool) {
	c, ok := parseLogLine(line, "daily usage history")
	return c, ok
}

func parseLogLine(line []byte, msg string) (cycleLine, bool) {
	var raw map[string]any
	if json.Unmarshal(line, &raw) != nil || raw["msg"] != msg {
		return cycleLine{}, false
	}
	num := func(k string) int {
		f, _ := raw[k].(float64)
		return int(f)
	}
	dur := func(k string) time.Duration {
		switch v := raw[k].(type) {
		case string:
			d, _ := time.ParseDuration(v)
			return d
		case float64: // slog's own encoding: nanoseconds
			return time.Duration(v)
		}
		return 0
	}
	return cycleLine{Cards: num("cards"), Changed: num("changed"), Events: num("events"), Firing: num("firing"),
		CardDays: num("card_days"), Took: dur("took"), Fetch: dur("fetch"), Commit: dur("commit")}, true
}

// vmHWM is a live process's peak resident set in bytes, from /proc.
func vmHWM(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// childMaxRSS is an exited child's peak resident set in bytes (Linux
// reports ru_maxrss in KiB).
func childMaxRSS(ps *os.ProcessState) int64 {
	if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
		return ru.Maxrss * 1024
	}
	return 0
}

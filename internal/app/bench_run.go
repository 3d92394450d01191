package app

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"
)

// benchReceiver is the webhook the measured watcher delivers to: it reads
// each request and answers 200 at once, counting what it got.
type benchReceiver struct {
	srv      *http.Server
	addr     string
	requests atomic.Int64
	bytes    atomic.Int64
}

func startBenchReceiver() (*benchReceiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &benchReceiver{addr: ln.Addr().String()}
	r.srv = &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		n, _ := io.Copy(io.Discard, req.Body)
		r.requests.Add(1)
		r.bytes.Add(n)
	})}
	go func() { _ = r.srv.Serve(ln) }() // owned: ends with close
	return r, nil
}

func (r *benchReceiver) close() { _ = r.srv.Close() }

// writeBenchConfig writes the measured watcher's config and rules into dir:
// provider defaults (no rate, no concurrency, default page size), AK/SK
// signing, JSON logs, and one notifier. It returns the config's path.
func writeBenchConfig(dir, endpoint string, o benchOpts, receiver string) (string, error) {
	rulesPath := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(rulesPath, []byte(benchRules(o.rules)), 0o644); err != nil {
		return "", err
	}
	notifier := fmt.Sprintf(`{name: hook, type: webhook, url: "http://%s/", group_wait: 0s, group_interval: 0s}`, receiver)
	if o.notifier == "console" {
		notifier = `{name: console, type: console}`
	}
	text := fmt.Sprintf(`# written by watcher bench
data_dir: %q
rule_files: [%q]
log: {format: json}
providers:
  - name: hw
    type: huawei-gsl
    endpoint: %s
    auth: {ak: %s, sk: %s}
    interval: %s
notifiers:
  - %s
`, filepath.Join(dir, "data"), rulesPath, endpoint, benchAK, benchSK, o.interval, notifier)
	path := filepath.Join(dir, "watcher.yaml")
	return path, os.WriteFile(path, []byte(text), 0o644)
}

// onceRun is one measured `watcher run --once`.
type onceRun struct {
	Wall   time.Duration `json:"wall_ns"`
	MaxRSS int64         `json:"max_rss_bytes"`
	Cycle  cycleLine     `json:"cycle"`
	// History is the daily usage update that followed the cycle, if one
	// was due (the first run's backfill).
	History *cycleLine `json:"history,omitempty"`
	Store   int64      `json:"store_bytes"`
	Churned int        `json:"churned"` // cards changed before the run
}

// runOnceChild execs `exe run --config cfg --once` and measures its wall
// time (exec to exit) and its peak RSS.
func runOnceChild(ctx context.Context, exe, cfg string, o benchOpts) (onceRun, error) {
	var logs bytes.Buffer
	cmd := exec.CommandContext(ctx, exe, "run", "--config", cfg, "--once", "--timeout", o.timeout.String())
	cmd.Stderr = &logs // stdout (console events) goes to /dev/null
	start := time.Now()
	err := cmd.Run()
	r := onceRun{Wall: time.Since(start)}
	if cmd.ProcessState != nil {
		r.MaxRSS = childMaxRSS(cmd.ProcessState)
	}
	if err != nil {
		return r, fmt.Errorf("bench: run --once: %w\n%s", err, tail(logs.Bytes(), 20))
	}
	found := false
	for line := range bytes.SplitSeq(logs.Bytes(), []byte("\n")) {
		if c, ok := parseCycleLine(line); ok {
			r.Cycle, found = c, true
		}
		if h, ok := parseHistoryLine(line); ok {
			r.History = &h
		}
	}
	if !found {
		return r, fmt.Errorf("bench: run --once logged no cycle line:\n%s", tail(logs.Bytes(), 20))
	}
	r.Store = fileSize(filepath.Join(filepath.Dir(cfg), "data", "simwatch.db"))
	return r, nil
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// tail is the last n lines of b, for error messages.
func tail(b []byte, n int) string {
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	return string(bytes.Join(lines[max(0, len(lines)-n):], []byte("\n")))
}

// daemonRun is the daemon's measured steady cycles.
type daemonRun struct {
	First  cycleLine   `json:"first"`
	Steady []cycleLine `json:"steady"`
	MaxRSS int64       `json:"max_rss_bytes"` // VmHWM before it was stopped
}

// runDaemonChild execs `exe run --config cfg` and follows its JSON log. After
// its first cycle, it changes o.changed% of the cards right after each
// cycle line (the next cycle starts an interval later), o.cycles times, and
// records the cycles that follow. It then reads the peak RSS and stops the
// daemon with SIGTERM.
func runDaemonChild(ctx context.Context, exe, cfg string, sim *benchSim, o benchOpts, say func(string, ...any)) (daemonRun, error) {
	var r daemonRun
	cmd := exec.CommandContext(ctx, exe, "run", "--config", cfg)
	errPipe, err := cmd.StderrPipe()
	if err != nil {
		return r, err
	}
	if err := cmd.Start(); err != nil {
		return r, err
	}
	cycles := make(chan cycleLine, 16)
	var last bytes.Buffer // the log's end, for errors
	done := make(chan struct{})
	go func() { // owned: ends when the daemon closes stderr
		defer close(done)
		sc := bufio.NewScanner(errPipe)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			if c, ok := parseCycleLine(sc.Bytes()); ok {
				select {
				case cycles <- c:
				default: // nobody is reading any more: never block the log
				}
			} else if last.Len() < 64<<10 {
				last.Write(sc.Bytes())
				last.WriteByte('\n')
			}
		}
	}()
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(time.Minute):
			_ = cmd.Process.Kill()
			<-done
		}
		_ = cmd.Wait()
	}
	next := func() (cycleLine, error) {
		select {
		case c := <-cycles:
			return c, nil
		case <-done:
			_ = cmd.Wait()
			return cycleLine{}, fmt.Errorf("bench: the daemon exited (%v):\n%s", cmd.ProcessState, tail(last.Bytes(), 20))
		case <-time.After(o.timeout):
			stop()
			return cycleLine{}, fmt.Errorf("bench: no daemon cycle within %s:\n%s", o.timeout, tail(last.Bytes(), 20))
		case <-ctx.Done():
			stop()
			return cycleLine{}, ctx.Err()
		}
	}
	if r.First, err = next(); err != nil {
		return r, err
	}
	say("daemon: first cycle %s (%d changed)", r.First.Took, r.First.Changed)
	for i := range o.cycles {
		n, err := sim.churn(ctx, o.changed, 100+i)
		if err != nil {
			stop()
			return r, err
		}
		c, err := next()
		if err != nil {
			return r, err
		}
		say("daemon: steady cycle %d: %s, %d changed (churned %d), %d events", i+1, c.Took, c.Changed, n, c.Events)
		r.Steady = append(r.Steady, c)
	}
	r.MaxRSS = vmHWM(cmd.Process.Pid)
	stop()
	return r, nil
}

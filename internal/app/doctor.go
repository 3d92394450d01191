package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/simwatch/simwatch/internal/bus"
	"github.com/simwatch/simwatch/internal/config"
	"github.com/simwatch/simwatch/internal/store"
	"github.com/simwatch/simwatch/internal/yamlread"
)

// DoctorError says `watcher doctor` found problems it did not fix; each was
// printed with what to do.
type DoctorError struct{ Problems int }

func (e *DoctorError) Error() string {
	return fmt.Sprintf("doctor: %d problem(s) found; see above for what to do", e.Problems)
}

// Doctor checks what a watcher needs to start, in order: the config, the
// data_dir lock (is a watcher running?), the bbolt store (opens, every page
// checked) and the JetStream store (or the server at nats.url). Each check
// prints one line, "ok" or "FAIL" with what to do. With repair, a damaged
// bbolt store is salvaged (store.Salvage: what can be read is copied into a
// fresh file, the damaged one is kept as simwatch.db.damaged-<time>) and a
// damaged embedded JetStream store is moved aside as nats.damaged-<time>;
// nothing is deleted. The data_dir lock is held throughout, so no watcher
// starts meanwhile.
func Doctor(ctx context.Context, cfgPath string, repair bool, stdout io.Writer) error {
	d := &doctor{out: stdout, now: time.Now}
	cfg, unset, err := loadForDoctor(cfgPath)
	if err != nil {
		d.fail("config", "%v", err)
		return d.result()
	}
	if len(unset) == 0 {
		d.ok("config", "%s loads", cfgPath)
	} else {
		d.ok("config", "%s loads; unset environment variables were ignored for these checks (%s): the watcher needs them set to start",
			cfgPath, strings.Join(unset, ", "))
	}
	if strings.Contains(cfg.DataDir, unsetMark) {
		d.fail("data_dir", "data_dir %s uses an unset environment variable (%s): set it and run doctor again", cfg.DataDir, strings.Join(unset, ", "))
		return d.result()
	}

	dir := cfg.DataDir
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		d.ok("data_dir", "%s does not exist yet; the watcher creates it at its first start", dir)
		return d.result()
	}
	unlock, err := store.LockDir(dir)
	if err != nil {
		d.fail("data_dir", "%v", err)
		return d.result()
	}
	defer unlock()
	d.ok("data_dir", "%s is not in use by a watcher", dir)

	d.checkStore(cfg, repair)
	d.checkBus(ctx, cfg, repair)
	return d.result()
}

// unsetMark is in what doctor puts in place of an unset ${VAR}; see loadForDoctor.
const unsetMark = "unset.invalid"

// loadForDoctor loads the config as the watcher does, except that an unset
// ${VAR} does not refuse it: doctor needs no credentials, and an operator
// fixing a broken start may not have them in this shell. Each unset variable
// stands in as a placeholder, first a bare host name, then (should the
// config refuse that, e.g. as a URL) an https URL; unset lists their names.
func loadForDoctor(path string) (cfg *config.Config, unset []string, err error) {
	raw, err := yamlread.ReadFile(path, yamlread.ConfigLimits.MaxBytes)
	if err != nil {
		return nil, nil, fmt.Errorf("config: %w", err)
	}
	for _, placeholder := range []string{unsetMark, "https://" + unsetMark + "/"} {
		seen := map[string]bool{}
		unset = unset[:0]
		lookup := func(name string) (string, bool) {
			if v, ok := os.LookupEnv(name); ok {
				return v, true
			}
			if !seen[name] {
				seen[name] = true
				unset = append(unset, name)
			}
			return placeholder, true
		}
		var perr error
		if cfg, perr = config.Parse(path, raw, lookup); perr == nil {
			return cfg, unset, nil
		}
		if err == nil {
			err = perr
		}
		if len(unset) == 0 {
			break
		}
	}
	if len(unset) > 0 {
		err = fmt.Errorf("%w\n(unset environment variables %s were given the placeholder %q for this check)", err, strings.Join(unset, ", "), unsetMark)
	}
	return nil, unset, err
}

type doctor struct {
	out      io.Writer
	now      func() time.Time
	problems int
}

func (d *doctor) ok(what, format string, args ...any) {
	fmt.Fprintf(d.out, "ok    %-8s %s\n", what, fmt.Sprintf(format, args...))
}

func (d *doctor) fail(what, format string, args ...any) {
	d.problems++
	fmt.Fprintf(d.out, "FAIL  %-8s %s\n", what, fmt.Sprintf(format, args...))
}

func (d *doctor) fixed(what, format string, args ...any) {
	fmt.Fprintf(d.out, "FIXED %-8s %s\n", what, fmt.Sprintf(format, args...))
}

func (d *doctor) result() error {
	if d.problems > 0 {
		return &DoctorError{Problems: d.problems}
	}
	return nil
}

func (d *doctor) checkStore(cfg *config.Config, repair bool) {
	path := filepath.Join(cfg.DataDir, "simwatch.db")
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		d.ok("store", "%s does not exist yet; the watcher creates it at its start", path)
		return
	}
	start := time.Now()
	err := store.CheckFile(path)
	if err == nil {
		fi, _ := os.Stat(path)
		d.ok("store", "%s is sound (%d MB, every page checked in %s)", path, fi.Size()>>20, time.Since(start).Round(time.Millisecond))
		return
	}
	var dmg *store.DamagedError
	if !errors.As(err, &dmg) {
		d.fail("store", "%v", err)
		return
	}
	if !repair {
		d.fail("store", "%s is damaged (%v): run `watcher doctor --config %s --repair` to salvage what can be read into a fresh store", path, dmg.Err, cfg.Path)
		return
	}
	rep, err := store.Salvage(path, d.now())
	if err != nil {
		d.fail("store", "%s is damaged and could not be salvaged: %v", path, err)
		return
	}
	lost := "nothing"
	if len(rep.Lost) > 0 {
		lost = strings.Join(rep.Lost, ", ") + " (see README: Recovering a damaged store, for what that means)"
	}
	d.fixed("store", "%s salvaged: %d keys in %d buckets copied into a fresh store; lost: %s; the damaged file is kept as %s",
		path, rep.Keys, rep.Buckets, lost, rep.Damaged)
}

func (d *doctor) checkBus(ctx context.Context, cfg *config.Config, repair bool) {
	if strings.Contains(cfg.NATS.URL, unsetMark) {
		d.fail("nats", "nats.url uses an unset environment variable: set it and run doctor again to check the server")
		return
	}
	// Opening the bus is the check: the embedded server loads its store
	// (or the external server answers) and the streams are found or made.
	ctx, cancel := context.WithTimeout(ctx, 3*bus.StartTimeout)
	defer cancel()
	b, err := bus.Open(ctx, bus.Options{URL: cfg.NATS.URL, DataDir: cfg.DataDir, Logger: slog.New(slog.DiscardHandler)})
	if err == nil {
		b.Close()
		if cfg.NATS.URL != "" {
			d.ok("nats", "the server at %s answers and holds the streams", bus.RedactURL(cfg.NATS.URL))
		} else {
			d.ok("nats", "the embedded JetStream store %s is sound", filepath.Join(cfg.DataDir, "nats"))
		}
		return
	}
	var se *bus.StartError
	if !errors.As(err, &se) || !se.Damaged {
		d.fail("nats", "%v", err)
		return
	}
	dir := filepath.Join(cfg.DataDir, "nats")
	if !repair {
		d.fail("nats", "%s cannot be used (%v): run `watcher doctor --config %s --repair` to move it aside", dir, se.Err, cfg.Path)
		return
	}
	aside := fmt.Sprintf("%s.damaged-%s", dir, d.now().UTC().Format("20060102T150405Z"))
	if err := os.Rename(dir, aside); err != nil {
		d.fail("nats", "%s cannot be used (%v) nor moved aside: %v", dir, se.Err, err)
		return
	}
	d.fixed("nats", "%s moved aside as %s; the next start makes it anew and republishes from the store what notifiers are owed; dead letters stay in the moved directory", dir, aside)
}

// doctorCmd runs `watcher doctor --config F [--repair]` from the command
// table; a *DoctorError exits 1 after the checks printed what to do.
func doctorCmd(ctx context.Context, c *call) error {
	return Doctor(ctx, c.str("config"), c.boolean("repair"), c.stdout)
}

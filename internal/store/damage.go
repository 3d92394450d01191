package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"syscall"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// DamagedError says the database file is corrupt: bbolt refused its meta
// pages, tx.Check found inconsistent pages, or bbolt panicked reading a
// page. Starting again cannot help; `watcher doctor --repair` salvages what
// can be read into a fresh file and keeps the damaged one aside.
type DamagedError struct {
	Path string
	// Config, when the caller knows it, is named in the fix.
	Config string
	Err    error
}

func (e *DamagedError) Error() string {
	cmd := "watcher doctor --repair"
	if e.Config != "" {
		cmd = "watcher doctor --config " + e.Config + " --repair"
	}
	return fmt.Sprintf("the store %s is damaged (%v): stop the watcher and run `%s` (README: Recovering a damaged store)", e.Path, e.Err, cmd)
}

func (e *DamagedError) Unwrap() error { return e.Err }

// errStoreLocked says bbolt's own file lock on the database is held by a
// process that did not take the data_dir lock (see LockDir).
var errStoreLocked = errors.New("the store file is locked by another process")

// db is bbolt with the guards every transaction of the store goes through:
// a panic inside bbolt (it panics on corrupt pages rather than returning
// errors) becomes a *DamagedError, and tests can make commits fail.
type db struct {
	*bolt.DB
	path string
	// commitFault, when set, is asked after a write transaction's work and
	// before its commit; an error rolls the transaction back as a failed
	// commit would (disk full, file gone read-only).
	commitFault atomic.Pointer[func() error]
}

// Update is bolt.DB.Update, guarded.
func (d *db) Update(fn func(*bolt.Tx) error) (err error) {
	defer guard(d.path, &err)()
	return d.DB.Update(func(tx *bolt.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		if f := d.commitFault.Load(); f != nil {
			return (*f)()
		}
		return nil
	})
}

// View is bolt.DB.View, guarded.
func (d *db) View(fn func(*bolt.Tx) error) (err error) {
	defer guard(d.path, &err)()
	return d.DB.View(fn)
}

// InjectCommitFault makes every later write transaction ask f before it
// commits, and fail (roll back) with f's error: fault injection for tests
// of a full disk or a read-only file. nil removes it. Not for production use.
func (s *Store) InjectCommitFault(f func() error) {
	if f == nil {
		s.db.commitFault.Store(nil)
		return
	}
	s.db.commitFault.Store(&f)
}

// guard is deferred around a bbolt call (defer guard(path, &err)()). It turns
// a memory fault on the mapped file into a panic for the goroutine (a
// truncated file would otherwise kill the process with SIGBUS) and recovers a
// panic raised inside bbolt into a *DamagedError. bbolt's Update and View
// roll their transaction back while the panic unwinds, so the database stays
// usable for what is not damaged. A panic raised elsewhere (in a callback)
// is a bug, not damage, and goes on.
func guard(path string, err *error) func() {
	old := debug.SetPanicOnFault(true)
	return func() {
		debug.SetPanicOnFault(old)
		r := recover()
		if r == nil {
			return
		}
		if !panickedInBolt() {
			panic(r)
		}
		*err = &DamagedError{Path: path, Err: fmt.Errorf("a page cannot be read: %v", r)}
	}
}

// panickedInBolt reports whether the panic being recovered was raised in
// bbolt: the first frame below runtime.gopanic that is not the runtime's
// own (index checks, signal handling) is bbolt's.
func panickedInBolt() bool {
	pcs := make([]uintptr, 64)
	frames := runtime.CallersFrames(pcs[:runtime.Callers(1, pcs)])
	seenPanic := false
	for {
		f, more := frames.Next()
		switch {
		case f.Function == "runtime.gopanic":
			seenPanic = true
		case seenPanic && !strings.HasPrefix(f.Function, "runtime."):
			return strings.HasPrefix(f.Function, "go.etcd.io/bbolt")
		}
		if !more {
			return false
		}
	}
}

// openError says why bbolt could not open path, as a *DamagedError when the
// file is corrupt.
func openError(path string, err error) error {
	var errno syscall.Errno
	var pathErr *fs.PathError
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return fmt.Errorf("store %s: %w: stop the other watcher or command using it", path, errStoreLocked)
	case errors.Is(err, fs.ErrPermission), errors.Is(err, syscall.EROFS):
		return fmt.Errorf("the store %s is not writable by this user (%w): fix the file's owner or mode, or the data_dir's mount", path, err)
	case errors.Is(err, syscall.ENOSPC):
		return fmt.Errorf("the store %s cannot be opened: the disk is full (%w): free space on its filesystem", path, err)
	case errors.As(err, &pathErr), errors.As(err, &errno):
		return fmt.Errorf("store: open %s: %w", path, err)
	}
	// bbolt's own refusals: invalid or mismatched meta pages, a file too
	// small or not a bbolt database.
	return &DamagedError{Path: path, Err: err}
}

// minStoreSize is the size below which an existing store file cannot be a
// bbolt database: two meta pages of the smallest page size simwatch writes
// (every file bbolt creates has four pages of at least 4 KiB).
const minStoreSize = 2 * 4096

// statStore checks the store file before bbolt opens it. A missing file is a
// first start (nil: bbolt creates it). A file cut short, even to nothing, is
// a *DamagedError: bbolt would silently make a fresh, empty store of a
// zero-length file and every alert, silence and delivery record would be
// gone. A directory, or anything but a regular file, is named with the fix.
func statStore(path string) error {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return openError(path, err)
	case fi.IsDir():
		return fmt.Errorf("the store %s is a directory, not a database file: move it out of the data_dir (simwatch keeps its state in a file by that name), then start again for a fresh store", path)
	case !fi.Mode().IsRegular():
		return fmt.Errorf("the store %s is not a regular file (%s): move it out of the data_dir, then start again for a fresh store", path, fi.Mode().Type())
	case fi.Size() < minStoreSize:
		return &DamagedError{Path: path, Err: fmt.Errorf("truncated: %d bytes, shorter than a bbolt file can be", fi.Size())}
	}
	return nil
}

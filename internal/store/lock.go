package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// LockFile is the name of the lock file LockDir keeps in a data_dir.
const LockFile = "watcher.lock"

// InUseError says another process holds a data_dir's lock.
type InUseError struct {
	Dir string
	PID int // 0 when the holder's pid could not be read
}

func (e *InUseError) Error() string {
	who := "another watcher"
	if e.PID > 0 {
		who = fmt.Sprintf("another watcher (pid %d)", e.PID)
	}
	return fmt.Sprintf("data_dir %s is in use by %s: stop it first, or give this one its own data_dir", e.Dir, who)
}

// LockDir takes an exclusive lock on dir, which must exist, for as long as
// the process holds it: a second watcher, or a CLI command that would open
// the store and an embedded NATS server in process, fails at once with an
// *InUseError naming the holder's pid instead of waiting on bbolt's file
// lock. The lock is a flock on dir/watcher.lock, so the kernel releases it
// when the holder dies, however it dies: a lock file left by a killed
// process does not block, and the pid written into it is only informative.
// release unlocks; the file stays, since removing it would let a process
// that opened it just before lock a file no other process can find.
func LockDir(dir string) (release func() error, err error) {
	if fi, err := os.Stat(dir); err != nil {
		return nil, dirError(dir, err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("data_dir %s is not a directory: point data_dir at a directory", dir)
	}
	path := filepath.Join(dir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, dirError(dir, err)
	}
	if err := flock(f); err != nil {
		pid := readPID(f)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, &InUseError{Dir: dir, PID: pid}
		}
		return nil, fmt.Errorf("data_dir %s: lock %s: %w", dir, path, err)
	}
	// Written in place, then cut to length: a process that fails to lock
	// and reads the file meanwhile sees a pid, never an empty file.
	pid := strconv.Itoa(os.Getpid()) + "\n"
	// A failed write costs only the informative pid: the lock is held.
	if _, err := f.WriteAt([]byte(pid), 0); err == nil {
		_ = f.Truncate(int64(len(pid)))
	}
	return func() error {
		err := funlock(f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return err
	}, nil
}

func readPID(f *os.File) int {
	buf := make([]byte, 32)
	n, _ := f.ReadAt(buf, 0)
	pid, err := strconv.Atoi(strings.TrimSpace(string(buf[:n])))
	if err != nil {
		return 0
	}
	return pid
}

// dirError says what is wrong with a data_dir that cannot be used, and what to do.
func dirError(dir string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("data_dir %s does not exist: create it or fix data_dir in the config: %w", dir, err)
	case errors.Is(err, syscall.EROFS):
		return fmt.Errorf("data_dir %s is on a read-only filesystem (%w): remount it read-write, or point data_dir elsewhere", dir, err)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("data_dir %s is not writable by this user (%w): fix its owner or mode, or point data_dir elsewhere", dir, err)
	case errors.Is(err, syscall.ENOTDIR):
		return fmt.Errorf("data_dir %s is not a directory: point data_dir at a directory: %w", dir, err)
	}
	return fmt.Errorf("data_dir %s: %w", dir, err)
}

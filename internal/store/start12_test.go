package store

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"
)

// filled returns a closed store holding many cards of one provider and a
// few outbox-like keys elsewhere, so that it has many leaf pages.
func filled(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "simwatch.db")
	s, err := Open(path)
	require.NoError(t, err)
	require.NoError(t, s.Update(func(tx *Tx) error {
		pt, err := tx.Provider("hw")
		if err != nil {
			return err
		}
		for i := range 5000 {
			if err := pt.PutCard(fmt.Sprintf("card-%06d", i), bytes.Repeat([]byte{'v'}, 100)); err != nil {
				return err
			}
		}
		return pt.PutMeta(Meta{Cycles: 1})
	}))
	require.NoError(t, s.Close())
	return path
}

// leafPage finds a leaf page of the cards bucket, away from its first key.
func leafPage(t *testing.T, path string) int64 {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	ps := os.Getpagesize()
	db, err := bolt.Open(path, 0o600, nil)
	require.NoError(t, err)
	defer db.Close()
	var found int64 = -1
	require.NoError(t, db.View(func(tx *bolt.Tx) error {
		for id := 2; id*ps < len(data); id++ {
			info, err := tx.Page(id)
			if err != nil || info == nil || info.Type != "leaf" {
				continue
			}
			if bytes.Contains(data[id*ps:(id+1)*ps], []byte("card-002")) {
				found = int64(id)
				return nil
			}
		}
		return nil
	}))
	require.GreaterOrEqual(t, found, int64(2), "a leaf page of cards")
	return found
}

// smash writes garbage over page id of the file at path.
func smash(t *testing.T, path string, id int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	require.NoError(t, err)
	defer f.Close()
	ps := os.Getpagesize()
	_, err = f.WriteAt(bytes.Repeat([]byte{0xA5}, ps), id*int64(ps))
	require.NoError(t, err)
}

func requireDamaged(t *testing.T, err error, path string) {
	t.Helper()
	require.Error(t, err)
	t.Log(err)
	var dmg *DamagedError
	require.True(t, errors.As(err, &dmg), "a *DamagedError: %T %v", err, err)
	msg := err.Error()
	require.NotContains(t, msg, "\n", "one line")
	require.Contains(t, msg, "the store "+path+" is damaged")
	require.Contains(t, msg, "watcher doctor")
}

func TestStart12OpenDamaged(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, path string)
	}{
		{"both meta pages", func(t *testing.T, path string) { smash(t, path, 0); smash(t, path, 1) }},
		{"a data page", func(t *testing.T, path string) { smash(t, path, leafPage(t, path)) }},
		{"not a bbolt file", func(t *testing.T, path string) {
			require.NoError(t, os.WriteFile(path, bytes.Repeat([]byte("garbage "), 4096), 0o600))
		}},
		{"truncated", func(t *testing.T, path string) { require.NoError(t, os.Truncate(path, 100)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filled(t)
			tc.damage(t, path)
			start := time.Now()
			var err error
			require.NotPanics(t, func() {
				var s *Store
				if s, err = Open(path); err == nil {
					s.Close()
				}
			})
			requireDamaged(t, err, path)
			require.Less(t, time.Since(start), 5*time.Second)
		})
	}
}

// One bad meta page is not damage: bbolt falls back on the other one.
func TestStart12OneMetaPageIsTolerated(t *testing.T) {
	path := filled(t)
	smash(t, path, 0)
	s, err := Open(path)
	require.NoError(t, err)
	require.NoError(t, s.Close())
}

// A page that goes bad while the store is open (Open checked it before)
// makes the operations that read it fail with a *DamagedError; the process
// does not crash and the rest of the store stays usable.
func TestStart12CorruptPageLaterIsAnError(t *testing.T) {
	path := filled(t)
	smash(t, path, leafPage(t, path))
	s, err := openDB(path) // unchecked, as if the page went bad after Open
	require.NoError(t, err)
	defer s.Close()
	for range 2 { // and again: the panic left no transaction or lock behind
		err = s.View(func(tx *Tx) error {
			pt, err := tx.Provider("hw")
			if err != nil {
				return err
			}
			return pt.ForEachCard(func(string, []byte) error { return nil })
		})
		requireDamaged(t, err, path)
	}
	require.NoError(t, s.AppendOutboxForTest(), "other buckets still written")
}

// A panic of the caller's own code inside a transaction is a bug, not
// damage: it is not turned into an error.
func TestStart12CallbackPanicGoesOn(t *testing.T) {
	s, _ := open(t)
	require.PanicsWithValue(t, "mine", func() { _ = s.View(func(*Tx) error { panic("mine") }) })
	require.PanicsWithValue(t, "mine", func() { _ = s.Update(func(*Tx) error { panic("mine") }) })
	require.NoError(t, s.Update(func(*Tx) error { return nil }), "the write lock was released")
}

func TestStart12CommitFault(t *testing.T) {
	s, _ := open(t)
	full := fmt.Errorf("write: %w", syscall.ENOSPC)
	s.InjectCommitFault(func() error { return full })
	err := s.Update(func(tx *Tx) error {
		pt, err := tx.Provider("hw")
		if err != nil {
			return err
		}
		return pt.PutMeta(Meta{Cycles: 7})
	})
	require.ErrorIs(t, err, syscall.ENOSPC)
	s.InjectCommitFault(nil)
	require.NoError(t, s.View(func(tx *Tx) error {
		pt, _ := tx.Provider("hw")
		m, err := pt.Meta()
		require.Zero(t, m.Cycles, "rolled back")
		return err
	}))
}

func TestStart12LockDir(t *testing.T) {
	dir := t.TempDir()
	release, err := LockDir(dir)
	require.NoError(t, err)

	// A second holder, in this process or another, is turned away at once
	// with the holder's pid (flock locks belong to the open file).
	start := time.Now()
	_, err = LockDir(dir)
	require.Less(t, time.Since(start), time.Second)
	var inUse *InUseError
	require.True(t, errors.As(err, &inUse), "%T %v", err, err)
	require.Equal(t, os.Getpid(), inUse.PID)
	require.Equal(t, fmt.Sprintf("data_dir %s is in use by another watcher (pid %d): stop it first, or give this one its own data_dir", dir, os.Getpid()), err.Error())

	require.NoError(t, release())
	release, err = LockDir(dir)
	require.NoError(t, err, "free again once released")
	require.NoError(t, release())

	// A lock file left by a killed process (the kernel dropped its lock)
	// does not block; the new holder writes its own pid.
	require.NoError(t, os.WriteFile(filepath.Join(dir, LockFile), []byte("999999999\n"), 0o600))
	release, err = LockDir(dir)
	require.NoError(t, err)
	b, err := os.ReadFile(filepath.Join(dir, LockFile))
	require.NoError(t, err)
	require.Equal(t, strconv.Itoa(os.Getpid())+"\n", string(b))
	require.NoError(t, release())
}

func TestStart12LockDirBadDir(t *testing.T) {
	file := filepath.Join(t.TempDir(), "f")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	for dir, want := range map[string]string{
		file:                                  "is not a directory",
		filepath.Join(t.TempDir(), "missing"): "does not exist",
	} {
		_, err := LockDir(dir)
		require.Error(t, err)
		require.True(t, strings.HasPrefix(err.Error(), "data_dir "+dir+" "), err.Error())
		require.Contains(t, err.Error(), want)
	}
}

func TestStart12Salvage(t *testing.T) {
	path := filled(t)
	smash(t, path, leafPage(t, path))
	now := time.Date(2026, 11, 24, 17, 0, 0, 0, time.UTC)
	rep, err := Salvage(path, now)
	require.NoError(t, err)
	t.Logf("%+v", rep)
	require.Equal(t, path+".damaged-20261124T170000Z", rep.Damaged)
	require.FileExists(t, rep.Damaged, "kept, never deleted")
	require.Equal(t, []string{"providers/hw/cards"}, rep.Lost)
	require.Greater(t, rep.Keys, 1000, "the cards before the bad page, and the rest of the store")

	s, err := Open(path)
	require.NoError(t, err, "the salvaged store is sound")
	defer s.Close()
	require.NoError(t, s.View(func(tx *Tx) error {
		pt, err := tx.Provider("hw")
		require.NoError(t, err)
		m, err := pt.Meta()
		require.Equal(t, uint64(1), m.Cycles, "the provider's metadata came through")
		require.NoError(t, err)
		var first string
		n := 0
		require.NoError(t, pt.ForEachCard(func(id string, _ []byte) error {
			first = cmp.Or(first, id)
			n++
			return nil
		}))
		require.Equal(t, "card-000000", first, "the cards before the bad page came through")
		require.Greater(t, n, 1000)
		return nil
	}))
}

func TestStart12SalvageUnopenable(t *testing.T) {
	path := filled(t)
	smash(t, path, 0)
	smash(t, path, 1)
	rep, err := Salvage(path, time.Now())
	require.NoError(t, err)
	require.Len(t, rep.Lost, 1)
	require.Contains(t, rep.Lost[0], "the whole file")
	s, err := Open(path)
	require.NoError(t, err, "an empty, sound store in its place")
	require.NoError(t, s.Close())
}

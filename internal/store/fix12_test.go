package store

import (
	"crypto/sha256"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func fileSum(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return sha256.Sum256(b)
}

// TestFix12CheckFileNeverWrites: diagnosis does not change what it
// diagnoses, sound or damaged, and does not create a missing file.
func TestFix12CheckFileNeverWrites(t *testing.T) {
	for _, tc := range []struct {
		name    string
		damage  func(t *testing.T, path string)
		damaged bool
	}{
		{name: "sound", damage: func(*testing.T, string) {}},
		{name: "damaged leaf", damage: func(t *testing.T, p string) { smash(t, p, leafPage(t, p)) }, damaged: true},
		{name: "both meta pages", damage: func(t *testing.T, p string) { smash(t, p, 0); smash(t, p, 1) }, damaged: true},
		{name: "truncated to nothing", damage: func(t *testing.T, p string) { require.NoError(t, os.Truncate(p, 0)) }, damaged: true},
		{name: "truncated to one page", damage: func(t *testing.T, p string) { require.NoError(t, os.Truncate(p, 4096)) }, damaged: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filled(t)
			tc.damage(t, path)
			before := fileSum(t, path)
			st, err := os.Stat(path)
			require.NoError(t, err)
			err = CheckFile(path)
			if tc.damaged {
				requireDamaged(t, err, path)
			} else {
				require.NoError(t, err)
			}
			require.Equal(t, before, fileSum(t, path), "CheckFile changed the file's bytes")
			st2, err := os.Stat(path)
			require.NoError(t, err)
			require.Equal(t, st.ModTime(), st2.ModTime())
		})
	}
	missing := filepath.Join(t.TempDir(), "simwatch.db")
	require.Error(t, CheckFile(missing))
	_, err := os.Stat(missing)
	require.ErrorIs(t, err, os.ErrNotExist, "CheckFile created the file")
}

// TestFix12OpenShortOrOddFile: an existing store file that is empty or
// shorter than two pages is damaged, never a fresh store; a directory is
// named with the fix; a missing file is a first start.
func TestFix12OpenShortOrOddFile(t *testing.T) {
	for _, tc := range []struct {
		name    string
		make    func(t *testing.T, path string)
		damaged bool
		want    []string
	}{
		{name: "missing", make: func(*testing.T, string) {}},
		{name: "zero length", make: func(t *testing.T, p string) { require.NoError(t, os.WriteFile(p, nil, 0o600)) },
			damaged: true, want: []string{"truncated: 0 bytes"}},
		{name: "one page", make: func(t *testing.T, p string) { require.NoError(t, os.WriteFile(p, make([]byte, 4096), 0o600)) },
			damaged: true, want: []string{"truncated: 4096 bytes"}},
		{name: "directory", make: func(t *testing.T, p string) { require.NoError(t, os.Mkdir(p, 0o700)) },
			want: []string{"is a directory", "move it out of the data_dir"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "simwatch.db")
			tc.make(t, path)
			s, err := Open(path)
			if len(tc.want) == 0 {
				require.NoError(t, err)
				require.NoError(t, s.Close())
				return
			}
			require.Error(t, err)
			t.Log(err)
			if tc.damaged {
				requireDamaged(t, err, path)
			}
			msg := err.Error()
			require.NotContains(t, msg, "\n")
			require.Equal(t, 1, strings.Count(msg, path), "the path once: %s", msg)
			for _, w := range tc.want {
				require.Contains(t, msg, w)
			}
			if tc.damaged {
				fi, err := os.Stat(path)
				require.NoError(t, err)
				require.Less(t, fi.Size(), int64(minStoreSize), "Open must not have initialised the file")
			}
			cerr := CheckFile(path)
			require.Error(t, cerr)
			require.Equal(t, msg, cerr.Error(), "doctor says what the start says")
		})
	}
}

// TestFix12SalvageTruncated: --repair moves a truncated file aside and puts
// a fresh store in its place.
func TestFix12SalvageTruncated(t *testing.T) {
	path := filepath.Join(t.TempDir(), "simwatch.db")
	require.NoError(t, os.WriteFile(path, nil, 0o600))
	rep, err := Salvage(path, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	require.NoError(t, err)
	require.Len(t, rep.Lost, 1)
	require.Contains(t, rep.Lost[0], "the whole file (truncated")
	fi, err := os.Stat(rep.Damaged)
	require.NoError(t, err)
	require.Zero(t, fi.Size())
	require.NoError(t, CheckFile(path))
	s, err := Open(path)
	require.NoError(t, err)
	require.NoError(t, s.Close())
}

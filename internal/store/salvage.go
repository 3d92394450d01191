package store

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// CheckFile opens the database at path read-only, without creating it or
// anything in it, checks every page and closes it: nil when it is sound, a
// *DamagedError when it is not. It never writes to the file: diagnosis must
// not change what it diagnoses. The caller must hold the data_dir lock
// (LockDir).
func CheckFile(path string) (err error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("the store %s does not exist", path)
	}
	if err := statStore(path); err != nil {
		return err
	}
	var bdb *bolt.DB
	func() {
		defer guard(path, &err)()
		bdb, err = bolt.Open(path, 0o400, &bolt.Options{ReadOnly: true, Timeout: 2 * time.Second})
	}()
	if err != nil {
		var dmg *DamagedError
		if errors.As(err, &dmg) {
			return err
		}
		return openError(path, err)
	}
	s := &Store{db: &db{DB: bdb, path: path}}
	err = s.Check()
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	return err
}

// SalvageReport says what Salvage kept and what it lost.
type SalvageReport struct {
	Damaged string // where the damaged file was moved
	Keys    int    // keys copied
	Buckets int    // buckets copied (wholly or in part)
	// Lost lists the buckets (as a/b/c) that could not be read to the end,
	// or "the whole file" when bbolt could not open it at all.
	Lost []string
}

// Salvage copies every key of the damaged database at path that can still
// be read into a fresh database, moves the damaged file aside as
// path.damaged-<timestamp> (never deleting it) and puts the fresh one in its
// place. A bucket whose pages cannot be read is copied up to the first bad
// page; the rest of it is lost, and listed in the report. When bbolt cannot
// open the file at all (both meta pages bad), nothing is copied and the
// watcher starts with an empty store. The caller must hold the data_dir lock.
func Salvage(path string, now time.Time) (SalvageReport, error) {
	var rep SalvageReport
	fresh := path + ".salvage"
	_ = os.Remove(fresh) // an earlier salvage that did not finish
	dst, err := bolt.Open(fresh, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return rep, fmt.Errorf("store: salvage into %s: %w", fresh, err)
	}
	var src *bolt.DB
	if err = statStore(path); err == nil {
		func() {
			defer guard(path, &err)()
			src, err = bolt.Open(path, 0o400, &bolt.Options{ReadOnly: true, Timeout: time.Second})
		}()
	} else if dmg, ok := errors.AsType[*DamagedError](err); ok {
		err = dmg.Err // a truncated file: nothing in it to copy
	}
	if err != nil {
		rep.Lost = append(rep.Lost, fmt.Sprintf("the whole file (%v)", err))
		err = nil
	} else {
		err = copyBucket(&db{DB: src, path: path}, dst, nil, &rep)
		src.Close()
	}
	if err == nil {
		err = forgetFingerprints(dst)
	}
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(fresh)
		return rep, fmt.Errorf("store: salvage %s: %w", path, err)
	}
	rep.Damaged = fmt.Sprintf("%s.damaged-%s", path, now.UTC().Format("20060102T150405Z"))
	if err := os.Rename(path, rep.Damaged); err != nil {
		os.Remove(fresh)
		return rep, fmt.Errorf("store: move %s aside: %w", path, err)
	}
	if err := os.Rename(fresh, path); err != nil {
		return rep, fmt.Errorf("store: put the salvaged store in place (it is %s; the damaged one is %s): %w", fresh, rep.Damaged, err)
	}
	syncDir(filepath.Dir(path))
	return rep, nil
}

// forgetFingerprints drops every provider's card fingerprints from a
// salvaged store: a bucket cut short may have left cards without one, which
// the poller would then never see. Without fingerprints, the next cycle
// knows the cards by their ids and decodes each once.
func forgetFingerprints(db *bolt.DB) error {
	return db.Update(func(tx *bolt.Tx) error {
		root := tx.Bucket(bucketProviders)
		if root == nil {
			return nil
		}
		return root.ForEachBucket(func(name []byte) error {
			if pb := root.Bucket(name); pb.Bucket(bucketCardFP) != nil {
				return pb.DeleteBucket(bucketCardFP)
			}
			return nil
		})
	})
}

// salvageBatch is how many keys one write transaction of the copy takes.
const salvageBatch = 10000

// copyBucket copies the bucket at path (nil: the root) from src to dst and
// recurses into its nested buckets, each read in a transaction of its own so
// that a bad page costs only the rest of the bucket it is in.
func copyBucket(src *db, dst *bolt.DB, path [][]byte, rep *SalvageReport) error {
	type kv struct{ k, v []byte }
	var (
		kvs    []kv
		nested [][]byte
	)
	err := src.View(func(tx *bolt.Tx) error {
		c := cursorAt(tx, path)
		if c == nil {
			return errors.New("bucket not found")
		}
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if v == nil {
				nested = append(nested, bytes.Clone(k))
				continue
			}
			kvs = append(kvs, kv{bytes.Clone(k), bytes.Clone(v)})
		}
		return nil
	})
	if err != nil {
		var dmg *DamagedError
		if !errors.As(err, &dmg) && len(path) == 0 {
			return err
		}
		rep.Lost = append(rep.Lost, bucketName(path))
	}
	if len(path) > 0 {
		rep.Buckets++
	}
	for len(kvs) > 0 {
		n := min(len(kvs), salvageBatch)
		err := dst.Update(func(tx *bolt.Tx) error {
			b, err := createPath(tx, path)
			if err != nil {
				return err
			}
			for _, e := range kvs[:n] {
				if err := b.Put(e.k, e.v); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		rep.Keys += n
		kvs = kvs[n:]
	}
	for _, name := range nested {
		sub := append(append([][]byte{}, path...), name)
		if err := dst.Update(func(tx *bolt.Tx) error { _, err := createPath(tx, sub); return err }); err != nil {
			return err
		}
		if err := copyBucket(src, dst, sub, rep); err != nil {
			return err
		}
	}
	return nil
}

func cursorAt(tx *bolt.Tx, path [][]byte) *bolt.Cursor {
	if len(path) == 0 {
		return tx.Cursor()
	}
	b := tx.Bucket(path[0])
	for _, name := range path[1:] {
		if b == nil {
			return nil
		}
		b = b.Bucket(name)
	}
	if b == nil {
		return nil
	}
	return b.Cursor()
}

// createPath makes the bucket at path in tx; the root cannot hold keys, so
// a path is never empty here.
func createPath(tx *bolt.Tx, path [][]byte) (*bolt.Bucket, error) {
	if len(path) == 0 {
		return nil, errors.New("keys at the root")
	}
	b, err := tx.CreateBucketIfNotExists(path[0])
	for _, name := range path[1:] {
		if err != nil {
			return nil, err
		}
		b, err = b.CreateBucketIfNotExists(name)
	}
	return b, err
}

func bucketName(path [][]byte) string {
	if len(path) == 0 {
		return "(root)"
	}
	parts := make([]string, len(path))
	for i, p := range path {
		parts[i] = string(p)
	}
	return strings.Join(parts, "/")
}

// syncDir makes the renames in dir durable; a failure only weakens that.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

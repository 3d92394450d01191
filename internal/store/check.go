package store

import (
	"fmt"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// checkErrors is how many of tx.Check's findings a *DamagedError quotes.
const checkErrors = 3

// Check walks every page of the database (bbolt's tx.Check: each page
// reachable once, freed pages not in use, keys in order) and returns a
// *DamagedError with the first findings when it is inconsistent. bbolt
// panics when a transaction reads a corrupt page; checking at open turns a
// crash on every start into one clear error. It runs in a read transaction,
// so writers are not held up.
func (s *Store) Check() error {
	var found []string
	err := s.db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			// Drain the channel even past the quoted findings: the
			// checker's goroutine blocks until it is read to the end.
			if len(found) < checkErrors {
				// bbolt reports a page it could not read as "panic: …".
				found = append(found, strings.TrimPrefix(err.Error(), "panic: "))
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(found) > 0 {
		return &DamagedError{Path: s.db.path, Err: fmt.Errorf("check: %s", strings.Join(found, "; "))}
	}
	return nil
}
